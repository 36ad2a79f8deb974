package decode

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// Packet builders for tests. They write headers by hand, following the RFC
// diagrams, so the decoder is checked against an independent encoding.

var (
	addrA  = netip.MustParseAddr("192.0.2.1")
	addrB  = netip.MustParseAddr("198.51.100.2")
	addr6A = netip.MustParseAddr("2001:db8::1")
	addr6B = netip.MustParseAddr("2001:db8::2")
	t0     = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
)

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ether returns an Ethernet header with the given VLAN tags (TPID, VID
// pairs) and final EtherType.
func ether(etype uint16, tags ...uint16) []byte {
	b := make([]byte, 12)
	for i := range 12 {
		b[i] = byte(0x10 + i)
	}
	for i := 0; i+1 < len(tags); i += 2 {
		b = append(b, be16(tags[i])...)
		b = append(b, be16(0xe000|tags[i+1])...) // PCP 7 set, to check masking
	}
	return append(b, be16(etype)...)
}

func udpHdr(sport, dport uint16, payload []byte) []byte {
	b := cat(be16(sport), be16(dport), be16(uint16(8+len(payload))), be16(0))
	return append(b, payload...)
}

func tcpHdr(sport, dport uint16, seq uint32, flags byte, payload []byte) []byte {
	b := cat(be16(sport), be16(dport), binary.BigEndian.AppendUint32(nil, seq), make([]byte, 4))
	b = append(b, 5<<4, flags|0x10) // data offset 5 words; ACK
	b = append(b, be16(65535)...)
	b = append(b, make([]byte, 4)...)
	return append(b, payload...)
}

// ipv4Opts returns an IPv4 header with options opts (a multiple of 4 bytes)
// around payload. ff is the flags/fragment-offset field.
func ipv4Opts(src, dst netip.Addr, proto byte, id, ff uint16, opts, payload []byte) []byte {
	ihl := 20 + len(opts)
	b := []byte{0x40 | byte(ihl/4), 0}
	b = append(b, be16(uint16(ihl+len(payload)))...)
	b = append(b, be16(id)...)
	b = append(b, be16(ff)...)
	b = append(b, 64, proto, 0, 0)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = append(b, opts...)
	return append(b, payload...)
}

func ipv4(proto byte, payload []byte) []byte {
	return ipv4Opts(addrA, addrB, proto, 0x1234, 0x4000, nil, payload)
}

// ipv6 returns an IPv6 header with next header nh around payload (which
// includes any extension headers).
func ipv6(nh byte, payload []byte) []byte {
	b := []byte{0x60, 0, 0, 0}
	b = append(b, be16(uint16(len(payload)))...)
	b = append(b, nh, 64)
	b = append(b, addr6A.AsSlice()...)
	b = append(b, addr6B.AsSlice()...)
	return append(b, payload...)
}

// ext6 returns an IPv6 extension header (hop-by-hop, routing or destination
// options) of 8*(units+1) bytes.
func ext6(nh byte, units int) []byte {
	b := make([]byte, 8*(units+1))
	b[0] = nh
	b[1] = byte(units)
	return b
}

// frag6 returns an IPv6 fragment header.
func frag6(nh byte, off int, more bool, id uint32) []byte {
	of := uint16(off)
	if more {
		of |= 1
	}
	return cat([]byte{nh, 0}, be16(of), binary.BigEndian.AppendUint32(nil, id))
}

func frame(lt capture.LinkType, data []byte) *capture.Frame {
	return &capture.Frame{Data: data, Time: t0, Length: len(data), LinkType: lt}
}

// collector records delivered datagrams, copying payloads.
type collector struct{ got []Datagram }

func (c *collector) HandleDatagram(dg *Datagram) {
	g := *dg
	g.Payload = bytes.Clone(dg.Payload)
	c.got = append(c.got, g)
}

func (c *collector) payloads() []string {
	var out []string
	for _, g := range c.got {
		out = append(out, string(g.Payload))
	}
	return out
}

// nopHandler discards datagrams.
type nopHandler struct{ n int }

func (h *nopHandler) HandleDatagram(dg *Datagram) { h.n += len(dg.Payload) }
