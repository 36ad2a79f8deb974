// Package decode owns link and network decoding: it turns a captured
// [capture.Frame] into [Datagram]s. It walks the link layer (Ethernet with
// 802.1Q/QinQ tags, BSD loopback, Linux SLL and SLL2, raw IP), the tunnels
// (GRE, ERSPAN I/II/III, VXLAN, IPIP and IPv6-in-IP, PPPoE, MPLS, TZSP,
// L2TPv2, nested up to a depth limit), IPv4 and IPv6 (extension headers),
// reassembles IPv4 and IPv6 fragments, delivers every UDP datagram and every
// SCTP user message, and reassembles SIP-over-TCP streams (on the SIP ports,
// and on any port whose stream starts like SIP) and SIP over WebSocket
// (RFC 7118) into whole SIP messages. Each [Datagram] records its VLAN and
// the tunnel it came through ([Encap]).
//
// Allowed imports: internal/capture only (plus the standard library).
package decode
