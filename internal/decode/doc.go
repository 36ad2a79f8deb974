// Package decode owns link and network decoding: it turns a captured
// [capture.Frame] into [Datagram]s. It walks the link layer (Ethernet with
// 802.1Q/QinQ tags, BSD loopback, Linux SLL and SLL2, raw IP), IPv4 and IPv6
// (extension headers), reassembles IPv4 and IPv6 fragments, delivers every
// UDP datagram, and reassembles SIP-over-TCP streams into whole SIP messages.
//
// Allowed imports: internal/capture only (plus the standard library).
package decode
