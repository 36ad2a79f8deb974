// Package capture owns packet sources and [Frame]: pcap and pcapng files,
// paced replay of a file, and live AF_PACKET capture.
//
// Allowed imports: nothing internal.
package capture
