// Package offline analyses capture files without a running sensor: the
// read command's whole-file analysis (Analyze) and the export command's
// cutting of one call out of a capture or the spool (Export). Each run has
// its own decoder and call table; nothing is shared with a live sensor.
package offline
