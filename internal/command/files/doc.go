// Package files implements the manager API's spool file commands as the
// VoIPmonitor sniffer answers them: getfile and getfile_zip (a recording's
// bytes), file_exists and fileexists (its size), getfile_is_zip_support,
// getfile_in_tar (always a missing tar: this sensor writes none) and
// spool_stat (the recorder's and cleaner's counters). The spool is reached
// through the small [Spool] interface declared here; the sensor adapts
// package spool to it, which confines every name to the spool directory.
//
// Allowed imports: command and the standard library. It never imports a
// transport.
package files
