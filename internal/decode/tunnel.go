package decode

import (
	"encoding/binary"
	"net/netip"
)

// EncapLayers is a set of the tunnel kinds a datagram came through.
type EncapLayers uint16

// Tunnel kinds recorded in [Encap.Layers].
const (
	EncapGRE    EncapLayers = 1 << iota // GRE (RFC 2784, 2890)
	EncapERSPAN                         // ERSPAN type I, II or III inside GRE
	EncapTEB                            // Ethernet bridged over GRE (0x6558)
	EncapVXLAN                          // VXLAN (RFC 7348)
	EncapIPIP                           // IPv4 inside IP (protocol 4)
	EncapIPv6                           // IPv6 inside IP (protocol 41)
	EncapPPPoE                          // PPPoE session (RFC 2516)
	EncapMPLS                           // MPLS label stack (RFC 3032)
	EncapTZSP                           // TaZmen Sniffer Protocol
	EncapL2TP                           // L2TPv2 data message (RFC 2661)
)

// EncapNoProto is [Encap.Proto] when no IP header carried a tunnel: 0xFF,
// VoIPmonitor's value for the *_encaps_prot fields of a call without one.
const EncapNoProto uint8 = 0xFF

// Encap describes the tunnels around a datagram. Src, Dst and Proto are the
// outermost IP header that carried a tunnel, as VoIPmonitor's sniffer
// reports them per call (sipcallerip_encaps, sipcalledip_encaps,
// *_encaps_prot): for GRE, IPIP and IPv6-in-IP the outer addresses and
// protocol 47, 4 or 41; for VXLAN, TZSP and L2TP the addresses of the UDP
// datagram carrying them and protocol 17. A tunnel below IP (PPPoE, MPLS)
// sets only Layers. The zero Encap means no tunnel; use [Encap.IPProto] for
// the VoIPmonitor value.
type Encap struct {
	Src, Dst netip.Addr  // outer IP header of the outermost IP-borne tunnel; invalid if none
	Proto    uint8       // that header's IP protocol; meaningful only when Src is valid
	Layers   EncapLayers // every tunnel kind crossed
}

// Equal reports whether e and o are the same (it lets go-cmp compare
// structs holding an Encap).
func (e Encap) Equal(o Encap) bool { return e == o }

// IPProto returns e.Proto, or [EncapNoProto] when no IP header carried a
// tunnel.
func (e Encap) IPProto() uint8 {
	if !e.Src.IsValid() {
		return EncapNoProto
	}
	return e.Proto
}

// maxEncapDepth bounds the tunnels followed in one frame; a frame nested
// deeper is counted in [Stats.TunnelTooDeep] and skipped.
const maxEncapDepth = 8

// maxMPLSLabels bounds an MPLS label stack.
const maxMPLSLabels = 16

// enter records that decoding goes into a tunnel of kind k and reports
// whether the depth limit still allows it.
func (d *Decoder) enter(k EncapLayers) bool {
	d.depth++
	if d.depth > maxEncapDepth {
		d.stats.TunnelTooDeep++
		return false
	}
	d.dg.Encap.Layers |= k
	return true
}

// outer records the outermost IP header that carried a tunnel.
func (d *Decoder) outer(src, dst netip.Addr, proto uint8) {
	if !d.dg.Encap.Src.IsValid() {
		d.dg.Encap.Src, d.dg.Encap.Dst, d.dg.Encap.Proto = src, dst, proto
	}
}

// badTunnel counts a tunnel header that did not parse.
func (d *Decoder) badTunnel() { d.stats.TunnelMalformed++ }

// GRE header flags (RFC 2784 section 2, RFC 2890 section 2).
const (
	greChecksum = 0x8000
	greRouting  = 0x4000 // RFC 1701 source routing, deprecated
	greKey      = 0x2000
	greSequence = 0x1000
	greVersion  = 0x0007
)

// gre decodes a GRE header (RFC 2784, with the key and sequence number of
// RFC 2890):
//
//	|C|R|K|S| Reserved0       | Ver |         Protocol Type         |
//	|      Checksum (optional)      |       Reserved1 (optional)    |
//	|                         Key (optional)                        |
//	|                 Sequence Number (optional)                    |
//
// The protocol type is an EtherType: IPv4, IPv6, MPLS, Ethernet (0x6558),
// ERSPAN (0x88BE, 0x22EB). Version 1 (PPTP) and source routing are not
// decoded.
func (d *Decoder) gre(b []byte, h Handler) {
	if len(b) < 4 {
		d.badTunnel()
		return
	}
	flags := binary.BigEndian.Uint16(b)
	proto := binary.BigEndian.Uint16(b[2:])
	if flags&greVersion != 0 || flags&greRouting != 0 {
		d.stats.Unsupported++
		return
	}
	n := 4
	if flags&greChecksum != 0 {
		n += 4
	}
	if flags&greKey != 0 {
		n += 4
	}
	if flags&greSequence != 0 {
		n += 4
	}
	if len(b) < n {
		d.badTunnel()
		return
	}
	b = b[n:]
	switch proto {
	case etherTypeERSPAN:
		if !d.enter(EncapERSPAN) {
			return
		}
		if flags&greSequence == 0 {
			// Type I: no ERSPAN header, the mirrored frame follows.
			d.ethernet(b, h)
			return
		}
		d.erspan2(b, h)
	case etherTypeERSPN3:
		if d.enter(EncapERSPAN) {
			d.erspan3(b, h)
		}
	default:
		d.etherType(proto, b, h)
	}
}

// erspan2 decodes an ERSPAN type II header (draft-foschiano-erspan
// section 4.1) and the mirrored Ethernet frame after it:
//
//	|  Ver  |          VLAN         | COS | En|T|    Session ID     |
//	|      Reserved         |                  Index                |
func (d *Decoder) erspan2(b []byte, h Handler) {
	if len(b) < 8 || b[0]>>4 != 1 {
		d.badTunnel()
		return
	}
	d.ethernet(b[8:], h)
}

// erspan3 decodes an ERSPAN type III header (draft-foschiano-erspan
// section 4.2), its optional platform-specific subheader, and the mirrored
// frame:
//
//	|  Ver  |          VLAN         | COS |BSO|T|     Session ID    |
//	|                          Timestamp                            |
//	|             SGT               |P|    FT   |   Hw ID   |D|Gra|O|
//	|        Platform Specific SubHeader (8 octets, if O)           |
//
// Frame type (FT) 0 is an Ethernet frame, 2 an IP packet.
func (d *Decoder) erspan3(b []byte, h Handler) {
	if len(b) < 12 || b[0]>>4 != 2 {
		d.badTunnel()
		return
	}
	ft := (b[10] >> 2) & 0x1f
	n := 12
	if b[11]&1 != 0 {
		n += 8
	}
	if len(b) < n {
		d.badTunnel()
		return
	}
	b = b[n:]
	switch ft {
	case 0:
		d.ethernet(b, h)
	case 2:
		d.ipAny(b, h)
	default:
		d.stats.Unsupported++
	}
}

// ipAny decodes an IPv4 or IPv6 packet by its version nibble.
func (d *Decoder) ipAny(b []byte, h Handler) {
	if len(b) == 0 {
		d.short()
		return
	}
	switch b[0] >> 4 {
	case 4:
		d.ipv4(b, h)
	case 6:
		d.ipv6(b, h)
	default:
		d.stats.Malformed++
	}
}

// PPP protocol numbers (RFC 1661, RFC 5072).
const (
	pppIPv4 = 0x0021
	pppIPv6 = 0x0057
)

// pppoe decodes a PPPoE session header (RFC 2516 section 4):
//
//	|  VER  | TYPE  |      CODE     |          SESSION_ID           |
//	|            LENGTH             |           payload             ~
//
// VER and TYPE are 1, CODE is 0 in the session stage; LENGTH counts the
// PPP frame after the header.
func (d *Decoder) pppoe(b []byte, h Handler) {
	if !d.enter(EncapPPPoE) {
		return
	}
	if len(b) < 6 || b[0] != 0x11 || b[1] != 0 {
		d.badTunnel()
		return
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	b = b[6:]
	if n > len(b) {
		d.short()
		return
	}
	d.ppp(b[:n], h)
}

// ppp decodes a PPP frame (RFC 1661 section 2) without HDLC framing: an
// optional address/control pair 0xFF 0x03 (absent when compressed, RFC 1661
// section 6.6), then a protocol field of two bytes, or one when compressed
// (an odd first byte).
func (d *Decoder) ppp(b []byte, h Handler) {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b = b[2:]
	}
	if len(b) == 0 {
		d.badTunnel()
		return
	}
	var proto uint16
	if b[0]&1 != 0 {
		proto, b = uint16(b[0]), b[1:]
	} else {
		if len(b) < 2 {
			d.badTunnel()
			return
		}
		proto, b = binary.BigEndian.Uint16(b), b[2:]
	}
	switch proto {
	case pppIPv4:
		d.ipv4(b, h)
	case pppIPv6:
		d.ipv6(b, h)
	default:
		d.stats.Unsupported++ // LCP, IPCP, CHAP...: control traffic
	}
}

// mpls decodes an MPLS label stack (RFC 3032 section 2.1), one 4-byte entry
// per label until the bottom-of-stack bit:
//
//	|                Label                  | TC  |S|       TTL     |
//
// What follows has no type field. As Wireshark does, the first nibble
// decides: 4 is IPv4, 6 is IPv6, 0 is the control word of an Ethernet
// pseudowire (RFC 4448 section 4.6) followed by the Ethernet frame.
func (d *Decoder) mpls(b []byte, h Handler) {
	if !d.enter(EncapMPLS) {
		return
	}
	for i := 0; ; i++ {
		if len(b) < 4 || i == maxMPLSLabels {
			d.badTunnel()
			return
		}
		bottom := b[2]&1 != 0
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) == 0 {
		d.badTunnel()
		return
	}
	switch b[0] >> 4 {
	case 4:
		d.ipv4(b, h)
	case 6:
		d.ipv6(b, h)
	case 0:
		if len(b) < 4 {
			d.badTunnel()
			return
		}
		d.ethernet(b[4:], h)
	default:
		d.stats.Unsupported++
	}
}

// udpTunnel decapsulates VXLAN, TZSP and L2TP datagrams and reports whether
// p was one; false leaves it to be delivered as plain UDP.
func (d *Decoder) udpTunnel(src, dst netip.Addr, sport, dport uint16, p []byte, h Handler) bool {
	switch {
	case dport == d.cfg.VXLANPort:
		return d.vxlan(src, dst, p, h)
	case sport == d.cfg.TZSPPort || dport == d.cfg.TZSPPort:
		return d.tzsp(src, dst, p, h)
	case sport == d.cfg.L2TPPort || dport == d.cfg.L2TPPort:
		return d.l2tp(src, dst, p, h)
	}
	return false
}

// vxlan decodes a VXLAN header (RFC 7348 section 5) and the Ethernet frame
// after it:
//
//	|R|R|R|R|I|R|R|R|            Reserved                           |
//	|                VXLAN Network Identifier (VNI) |   Reserved    |
//
// A datagram whose I flag is clear, or that looks like RTP/RTCP version 2,
// is not VXLAN and stays plain UDP.
func (d *Decoder) vxlan(src, dst netip.Addr, p []byte, h Handler) bool {
	if len(p) < 8 || p[0]&0x08 == 0 || p[0]>>6 == 2 {
		return false
	}
	d.outer(src, dst, uint8(ProtoUDP))
	if d.enter(EncapVXLAN) {
		d.ethernet(p[8:], h)
	}
	return true
}

// TZSP tag types and encapsulated protocols.
const (
	tzspTagPadding  = 0
	tzspTagEnd      = 1
	tzspEthernet    = 1
	tzspMaxTagBytes = 256
)

// tzsp decodes a TZSP header (version, type, encapsulated protocol, then
// tagged fields up to the END tag) and the Ethernet frame after it:
//
//	|    Version    |     Type      |     Encapsulated Protocol     |
//	|  Tag type | Tag length | Tag data ...       ...  END (0x01)   |
//
// Version must be 1; type 0 (received tag list) and 1 (packet for
// transmit) carry a packet. Padding (0) and END (1) are one byte; other
// tags are type, length, data.
func (d *Decoder) tzsp(src, dst netip.Addr, p []byte, h Handler) bool {
	if len(p) < 5 || p[0] != 1 || p[1] > 1 {
		return false
	}
	d.outer(src, dst, uint8(ProtoUDP))
	if !d.enter(EncapTZSP) {
		return true
	}
	if binary.BigEndian.Uint16(p[2:]) != tzspEthernet {
		d.stats.Unsupported++
		return true
	}
	i := 4
	for {
		if i >= len(p) || i > tzspMaxTagBytes {
			d.badTunnel()
			return true
		}
		switch p[i] {
		case tzspTagEnd:
			d.ethernet(p[i+1:], h)
			return true
		case tzspTagPadding:
			i++
		default:
			if i+1 >= len(p) {
				d.badTunnel()
				return true
			}
			i += 2 + int(p[i+1])
		}
	}
}

// L2TPv2 header flags (RFC 2661 section 3.1).
const (
	l2tpType    = 0x8000 // control message
	l2tpLength  = 0x4000
	l2tpSeq     = 0x0800
	l2tpOffset  = 0x0200
	l2tpVersion = 0x000f
)

// l2tp decodes an L2TPv2 data message header (RFC 2661 section 3.1) and the
// PPP frame it carries:
//
//	|T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//	|           Tunnel ID           |           Session ID          |
//	|             Ns (opt)          |             Nr (opt)          |
//	|      Offset Size (opt)        |    Offset pad... (opt)
//
// Control messages (T set, with L and S, as section 3.1 requires) carry no
// user traffic. Only version 2 is decoded; anything else stays plain UDP.
func (d *Decoder) l2tp(src, dst netip.Addr, p []byte, h Handler) bool {
	if len(p) < 6 {
		return false
	}
	flags := binary.BigEndian.Uint16(p)
	if flags&l2tpVersion != 2 || (flags&l2tpType != 0 && flags&(l2tpLength|l2tpSeq) != l2tpLength|l2tpSeq) {
		return false // a control message must have L and S set: this is not L2TP (RTP with PT 2?)
	}
	d.outer(src, dst, uint8(ProtoUDP))
	if !d.enter(EncapL2TP) {
		return true
	}
	if flags&l2tpType != 0 {
		d.stats.Unsupported++
		return true
	}
	n := 6
	if flags&l2tpLength != 0 {
		if l := int(binary.BigEndian.Uint16(p[2:])); l >= 8 && l <= len(p) {
			p = p[:l]
		} else {
			d.badTunnel()
			return true
		}
		n += 2
	}
	if flags&l2tpSeq != 0 {
		n += 4
	}
	if flags&l2tpOffset != 0 {
		if len(p) < n+2 {
			d.badTunnel()
			return true
		}
		n += 2 + int(binary.BigEndian.Uint16(p[n:]))
	}
	if len(p) < n {
		d.badTunnel()
		return true
	}
	d.ppp(p[n:], h)
	return true
}
