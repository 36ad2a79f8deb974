// Package system implements the sensor-wide commands: help, getversion,
// getbuild, getverbuild, sniffer_version, sniffer_stat, sniffer_threads,
// reload, terminating, support_aes, exists_aes_key and manager_file. Its
// data sources and controllers are small interfaces declared here
// ([Stats], [Threads], [Lifecycle], [AES], [Sockets]); thread CPU usage is
// read from /proc/self/task by this package.
//
// Allowed imports: command and the standard library. It never imports a
// transport.
package system
