package decode

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// Tunnel builders, written from the RFC and draft diagrams (see tunnel.go
// for the references), independent of the decoder.

var (
	outerA = netip.MustParseAddr("203.0.113.1")
	outerB = netip.MustParseAddr("203.0.113.2")
)

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ipv4From wraps payload in an IPv4 header from src to dst.
func ipv4From(src, dst netip.Addr, proto byte, payload []byte) []byte {
	return ipv4Opts(src, dst, proto, 7, 0x4000, nil, payload)
}

// greHdr returns a GRE header with the optional fields selected.
func greHdr(proto uint16, csum, key, seq bool) []byte {
	var flags uint16
	var opt []byte
	if csum {
		flags |= 0x8000
		opt = append(opt, 0xab, 0xcd, 0, 0)
	}
	if key {
		flags |= 0x2000
		opt = append(opt, be32(0xdeadbeef)...)
	}
	if seq {
		flags |= 0x1000
		opt = append(opt, be32(42)...)
	}
	return cat(be16(flags), be16(proto), opt)
}

// erspan2Hdr is the 8-byte ERSPAN type II header: version 1, VLAN, COS, En,
// T, session ID, index.
func erspan2Hdr() []byte { return cat(be16(0x1000|55), be16(0x2000|100), be32(7)) }

// erspan3Hdr is the 12-byte ERSPAN type III header, with the 8-byte
// platform-specific subheader when sub is set, frame type ft.
func erspan3Hdr(ft byte, sub bool) []byte {
	b := cat(be16(0x2000|55), be16(100), be32(0x11223344), be16(0x0102), []byte{ft << 2, 0})
	if sub {
		b[11] |= 1
		b = append(b, make([]byte, 8)...)
	}
	return b
}

func vxlanHdr(vni uint32) []byte { return cat([]byte{0x08, 0, 0, 0}, be32(vni<<8)) }

func pppoeHdr(pppProto uint16, payload []byte) []byte {
	return cat([]byte{0x11, 0}, be16(0x1234), be16(uint16(2+len(payload))), be16(pppProto), payload)
}

// mplsStack returns label stack entries, the last one with the bottom bit.
func mplsStack(labels ...uint32) []byte {
	var b []byte
	for i, l := range labels {
		e := l<<12 | 64 // TTL 64
		if i == len(labels)-1 {
			e |= 1 << 8
		}
		b = append(b, be32(e)...)
	}
	return b
}

// tzspHdr is version 1, type 0 (received), protocol 1 (Ethernet), a
// padding tag, a signal tag (type 10, 1 byte), the END tag.
func tzspHdr() []byte { return []byte{1, 0, 0, 1, 0, 10, 1, 0xc8, 1} }

// l2tpHdr is an L2TPv2 data header with the length bit, tunnel and session
// IDs, then a PPP frame with address/control and protocol.
func l2tpHdr(payload []byte, pppProto uint16) []byte {
	ppp := cat([]byte{0xff, 0x03}, be16(pppProto), payload)
	return cat(be16(0x4002), be16(uint16(8+len(ppp))), be16(1), be16(2), ppp)
}

func TestDecodeTunnels(t *testing.T) {
	payload := []byte("hello SIP")
	u := udpHdr(5060, 5062, payload)
	inner4 := ipv4(17, u)
	inner6 := ipv6(17, u)
	v4flow := Flow{Src: netip.AddrPortFrom(addrA, 5060), Dst: netip.AddrPortFrom(addrB, 5062), Proto: ProtoUDP}
	v6flow := Flow{Src: netip.AddrPortFrom(addr6A, 5060), Dst: netip.AddrPortFrom(addr6B, 5062), Proto: ProtoUDP}
	outer := func(proto byte, p []byte) []byte { return cat(ether(0x0800), ipv4From(outerA, outerB, proto, p)) }
	viaUDP := func(dport uint16, p []byte) []byte {
		return outer(17, udpHdr(40000, dport, p))
	}
	ip4Encap := func(proto uint8, l EncapLayers) Encap {
		return Encap{Src: outerA, Dst: outerB, Proto: proto, Layers: l}
	}
	outer6Encap := func(proto uint8, l EncapLayers) Encap {
		return Encap{Src: addr6A, Dst: addr6B, Proto: proto, Layers: l}
	}

	tests := []struct {
		name  string
		data  []byte
		flow  Flow
		vlan  uint16
		encap Encap
	}{
		{"gre ipv4", outer(47, cat(greHdr(0x0800, false, false, false), inner4)), v4flow, NoVLAN, ip4Encap(47, EncapGRE)},
		{"gre ipv6 checksum key seq", outer(47, cat(greHdr(0x86dd, true, true, true), inner6)), v6flow, NoVLAN, ip4Encap(47, EncapGRE)},
		{"gre key only", outer(47, cat(greHdr(0x0800, false, true, false), inner4)), v4flow, NoVLAN, ip4Encap(47, EncapGRE)},
		{"gre ethernet bridging", outer(47, cat(greHdr(0x6558, false, true, false), ether(0x0800, 0x8100, 12), inner4)), v4flow, 12, ip4Encap(47, EncapGRE|EncapTEB)},
		{"erspan I", outer(47, cat(greHdr(0x88be, false, false, false), ether(0x0800), inner4)), v4flow, NoVLAN, ip4Encap(47, EncapGRE|EncapERSPAN)},
		{"erspan II", outer(47, cat(greHdr(0x88be, false, false, true), erspan2Hdr(), ether(0x86dd, 0x8100, 300), inner6)), v6flow, 300, ip4Encap(47, EncapGRE|EncapERSPAN)},
		{"erspan III", outer(47, cat(greHdr(0x22eb, false, false, true), erspan3Hdr(0, false), ether(0x0800), inner4)), v4flow, NoVLAN, ip4Encap(47, EncapGRE|EncapERSPAN)},
		{"erspan III subheader", outer(47, cat(greHdr(0x22eb, false, false, true), erspan3Hdr(0, true), ether(0x0800), inner4)), v4flow, NoVLAN, ip4Encap(47, EncapGRE|EncapERSPAN)},
		{"erspan III ip frame", outer(47, cat(greHdr(0x22eb, false, false, true), erspan3Hdr(2, false), inner6)), v6flow, NoVLAN, ip4Encap(47, EncapGRE|EncapERSPAN)},
		{"gre mpls", outer(47, cat(greHdr(0x8847, false, false, false), mplsStack(100), inner4)), v4flow, NoVLAN, ip4Encap(47, EncapGRE|EncapMPLS)},
		{"vxlan", viaUDP(4789, cat(vxlanHdr(5000), ether(0x0800), inner4)), v4flow, NoVLAN, ip4Encap(17, EncapVXLAN)},
		{"vxlan inner vlan", viaUDP(4789, cat(vxlanHdr(5000), ether(0x86dd, 0x8100, 4000), inner6)), v6flow, 4000, ip4Encap(17, EncapVXLAN)},
		{"ipip", outer(4, inner4), v4flow, NoVLAN, ip4Encap(4, EncapIPIP)},
		{"ipv6 in ipv4", outer(41, inner6), v6flow, NoVLAN, ip4Encap(41, EncapIPv6)},
		{"ipv4 in ipv6", cat(ether(0x86dd), ipv6(4, inner4)), v4flow, NoVLAN, outer6Encap(4, EncapIPIP)},
		{"ipv6 in ipv6", cat(ether(0x86dd), ipv6(41, inner6)), v6flow, NoVLAN, outer6Encap(41, EncapIPv6)},
		{"pppoe ipv4", cat(ether(0x8864), pppoeHdr(0x0021, inner4)), v4flow, NoVLAN, Encap{Layers: EncapPPPoE}},
		{"pppoe ipv6 in vlan", cat(ether(0x8864, 0x8100, 7), pppoeHdr(0x0057, inner6)), v6flow, 7, Encap{Layers: EncapPPPoE}},
		{"mpls one label", cat(ether(0x8847), mplsStack(16), inner4), v4flow, NoVLAN, Encap{Layers: EncapMPLS}},
		{"mpls stack ipv6", cat(ether(0x8847), mplsStack(16, 17, 18), inner6), v6flow, NoVLAN, Encap{Layers: EncapMPLS}},
		{"mpls multicast", cat(ether(0x8848), mplsStack(16), inner4), v4flow, NoVLAN, Encap{Layers: EncapMPLS}},
		{"mpls ethernet pseudowire", cat(ether(0x8847), mplsStack(16, 17), be32(0), ether(0x0800, 0x8100, 9), inner4), v4flow, 9, Encap{Layers: EncapMPLS}},
		{"tzsp", viaUDP(37008, cat(tzspHdr(), ether(0x0800), inner4)), v4flow, NoVLAN, ip4Encap(17, EncapTZSP)},
		{"l2tp", viaUDP(1701, l2tpHdr(inner4, 0x0021)), v4flow, NoVLAN, ip4Encap(17, EncapL2TP)},
		{"l2tp ipv6 no length", viaUDP(1701, cat(be16(0x0002), be16(1), be16(2), []byte{0xff, 0x03}, be16(0x0057), inner6)), v6flow, NoVLAN, ip4Encap(17, EncapL2TP)},
		{"l2tp compressed ppp", viaUDP(1701, cat(be16(0x0002), be16(1), be16(2), []byte{0x21}, inner4)), v4flow, NoVLAN, ip4Encap(17, EncapL2TP)},
		{
			// The nesting the brief names: VLAN in ERSPAN in GRE in IPv6,
			// itself in VXLAN over an outer IPv4.
			"vlan in erspan in gre in ipv6 in vxlan",
			viaUDP(4789, cat(vxlanHdr(1), ether(0x86dd), ipv6(47, cat(greHdr(0x88be, false, false, true), erspan2Hdr(), ether(0x0800, 0x8100, 77), inner4)))),
			v4flow, 77, ip4Encap(17, EncapVXLAN|EncapGRE|EncapERSPAN),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var c collector
			d.Decode(frame(capture.LinkTypeEthernet, tt.data), &c)
			st := d.Stats()
			if len(c.got) != 1 {
				t.Fatalf("%d datagrams, Stats() %+v; want 1", len(c.got), st)
			}
			g := c.got[0]
			if g.Flow != tt.flow || string(g.Payload) != string(payload) || g.VLAN != tt.vlan || g.Encap != tt.encap {
				t.Errorf("got flow %v payload %q vlan %d encap %+v\nwant flow %v payload %q vlan %d encap %+v",
					g.Flow, g.Payload, g.VLAN, g.Encap, tt.flow, payload, tt.vlan, tt.encap)
			}
			if st.Tunneled != 1 || st.Malformed+st.Unsupported+st.Truncated+st.TunnelMalformed != 0 {
				t.Errorf("Stats() = %+v, want Tunneled 1 and no errors", st)
			}
		})
	}
}

func TestDecodeTunnelRejects(t *testing.T) {
	u := udpHdr(5060, 5062, []byte("x"))
	inner4 := ipv4(17, u)
	outer := func(proto byte, p []byte) []byte { return cat(ether(0x0800), ipv4From(outerA, outerB, proto, p)) }
	viaUDP := func(dport uint16, p []byte) []byte { return outer(17, udpHdr(40000, dport, p)) }
	type counts struct{ TunnelMalformed, Unsupported, Malformed, TooDeep, Datagrams uint64 }
	// deep nests n IPIP headers.
	deep := func(n int) []byte {
		b := inner4
		for range n {
			b = ipv4From(outerA, outerB, 4, b)
		}
		return cat(ether(0x0800), b)
	}
	tests := []struct {
		name string
		data []byte
		want counts
	}{
		{"gre cut", outer(47, []byte{0, 0, 8}), counts{TunnelMalformed: 1}},
		{"gre options cut", outer(47, cat(greHdr(0x0800, true, true, true)[:10])), counts{TunnelMalformed: 1}},
		{"gre version 1 (pptp)", outer(47, cat(be16(0x3001), be16(0x880b), make([]byte, 8))), counts{Unsupported: 1}},
		{"gre routing", outer(47, cat(be16(0x4000), be16(0x0800), make([]byte, 8), inner4)), counts{Unsupported: 1}},
		{"gre unknown protocol", outer(47, cat(greHdr(0x1234, false, false, false), inner4)), counts{Unsupported: 1}},
		{"erspan II bad version", outer(47, cat(greHdr(0x88be, false, false, true), be16(0x2000), make([]byte, 6), ether(0x0800), inner4)), counts{TunnelMalformed: 1}},
		{"erspan II cut", outer(47, cat(greHdr(0x88be, false, false, true), be16(0x1000))), counts{TunnelMalformed: 1}},
		{"erspan III cut subheader", outer(47, cat(greHdr(0x22eb, false, false, true), erspan3Hdr(0, true)[:14])), counts{TunnelMalformed: 1}},
		{"erspan III unknown frame type", outer(47, cat(greHdr(0x22eb, false, false, true), erspan3Hdr(5, false), inner4)), counts{Unsupported: 1}},
		{"pppoe bad version", cat(ether(0x8864), []byte{0x21, 0}, be16(1), be16(2+uint16(len(inner4))), be16(0x21), inner4), counts{TunnelMalformed: 1}},
		{"pppoe lcp", cat(ether(0x8864), pppoeHdr(0xc021, make([]byte, 10))), counts{Unsupported: 1}},
		{"pppoe length beyond frame", cat(ether(0x8864), pppoeHdr(0x0021, inner4)[:20]), counts{Malformed: 1}},
		{"mpls no bottom", cat(ether(0x8847), be32(16<<12), be32(17<<12)), counts{TunnelMalformed: 1}},
		{"mpls endless stack", cat(ether(0x8847), make([]byte, 4*20), inner4), counts{TunnelMalformed: 1}},
		{"mpls unknown payload", cat(ether(0x8847), mplsStack(16), []byte{0x90, 0, 0, 0}), counts{Unsupported: 1}},
		{"tzsp tags never end", viaUDP(37008, []byte{1, 0, 0, 1, 10, 1, 0, 0}), counts{TunnelMalformed: 1}},
		{"tzsp 802.11", viaUDP(37008, []byte{1, 0, 0, 18, 1, 0, 0, 0}), counts{Unsupported: 1}},
		{"l2tp control", viaUDP(1701, cat(be16(0xc802), be16(12), be16(1), be16(0), be32(0))), counts{Unsupported: 1}},
		{"l2tp length beyond datagram", viaUDP(1701, cat(be16(0x4002), be16(200), be16(1), be16(2), inner4)), counts{TunnelMalformed: 1}},
		{"l2tp ppp lcp", viaUDP(1701, l2tpHdr(make([]byte, 8), 0xc021)), counts{Unsupported: 1}},
		// Not tunnels at all: delivered as the UDP they are.
		{"rtcp on the vxlan port", viaUDP(4789, []byte{0x81, 0xc8, 0, 6, 1, 2, 3, 4}), counts{Datagrams: 1}},
		{"no vxlan I flag", viaUDP(4789, make([]byte, 30)), counts{Datagrams: 1}},
		{"l2tp version 3", viaUDP(1701, cat(be16(0x0003), make([]byte, 10))), counts{Datagrams: 1}},
		{"tzsp version 2", viaUDP(37008, []byte{2, 0, 0, 1, 1}), counts{Datagrams: 1}},
		{"rtp pt 2 on the l2tp port", viaUDP(1701, cat([]byte{0x80, 0x02}, be16(1), be32(160), be32(7), make([]byte, 160))), counts{Datagrams: 1}},
		// Depth: eight tunnels are decoded, a ninth is too deep.
		{"8 ipip", deep(8), counts{Datagrams: 1}},
		{"9 ipip", deep(9), counts{TooDeep: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var c collector
			d.Decode(frame(capture.LinkTypeEthernet, tt.data), &c)
			st := d.Stats()
			got := counts{st.TunnelMalformed, st.Unsupported, st.Malformed, st.TunnelTooDeep, uint64(len(c.got))}
			if got != tt.want {
				t.Errorf("counts %+v, want %+v (Stats() %+v)", got, tt.want, st)
			}
		})
	}
}

func TestDecodeTunnelConfig(t *testing.T) {
	inner := cat(vxlanHdr(1), ether(0x0800), ipv4(17, udpHdr(5060, 5062, []byte("x"))))
	f := frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4From(outerA, outerB, 17, udpHdr(40000, 8472, inner))))
	tests := []struct {
		name string
		cfg  Config
		want netip.AddrPort // destination of the delivered datagram
	}{
		{"default port: plain udp", Config{}, netip.AddrPortFrom(outerB, 8472)},
		{"vxlan on 8472", Config{VXLANPort: 8472}, netip.AddrPortFrom(addrB, 5062)},
		{"tunnels off", Config{VXLANPort: 8472, NoTunnels: true}, netip.AddrPortFrom(outerB, 8472)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			NewDecoder(tt.cfg).Decode(f, &c)
			if len(c.got) != 1 || c.got[0].Flow.Dst != tt.want {
				t.Errorf("datagrams %+v, want one to %v", c.got, tt.want)
			}
		})
	}
}

// TestDecodeTunnelFragments checks an outer and an inner fragmented IP
// datagram reassembled in one frame: the fragment buffers must both come
// back to the pool (FragmentQueues 0 afterwards, buffer accounting intact).
func TestDecodeTunnelFragments(t *testing.T) {
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	innerIP := ipv4Opts(addrA, addrB, 17, 99, 0, nil, udpHdr(5060, 5062, payload))
	// Inner datagram in two fragments of the inner IP header's payload.
	ip := innerIP[20:]
	if1 := ipv4Opts(addrA, addrB, 17, 99, 0x2000, nil, ip[:40])
	if2 := ipv4Opts(addrA, addrB, 17, 99, 5, nil, ip[40:])
	d := NewDecoder(Config{})
	var c collector
	d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4From(outerA, outerB, 4, if1))), &c)
	// The second inner fragment arrives in a fragmented outer packet.
	o := if2
	of1 := ipv4Opts(outerA, outerB, 4, 5, 0x2000, nil, o[:16])
	of2 := ipv4Opts(outerA, outerB, 4, 5, 2, nil, o[16:])
	d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), of1)), &c)
	d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), of2)), &c)
	st := d.Stats()
	if len(c.got) != 1 || string(c.got[0].Payload) != string(payload) || st.Reassembled != 2 || st.FragmentQueues != 0 || d.frag.bytes != 0 {
		t.Errorf("%d datagrams, Stats() %+v, fragment bytes held %d; want 1 datagram, 2 reassembled, nothing held",
			len(c.got), st, d.frag.bytes)
	}
}

// tunnelFrames are one 172-byte-payload UDP datagram in every encapsulation,
// for the allocation test and the benchmarks.
func tunnelFrames() map[string][]byte {
	u := udpHdr(40000, 20000, make([]byte, 172))
	inner4 := ipv4(17, u)
	outer := func(proto byte, p []byte) []byte { return cat(ether(0x0800), ipv4From(outerA, outerB, proto, p)) }
	return map[string][]byte{
		"plain":        cat(ether(0x0800), inner4),
		"gre":          outer(47, cat(greHdr(0x0800, false, true, false), inner4)),
		"gre-teb":      outer(47, cat(greHdr(0x6558, false, false, false), ether(0x0800), inner4)),
		"erspan2":      outer(47, cat(greHdr(0x88be, false, false, true), erspan2Hdr(), ether(0x0800), inner4)),
		"erspan3":      outer(47, cat(greHdr(0x22eb, false, false, true), erspan3Hdr(0, false), ether(0x0800), inner4)),
		"vxlan":        outer(17, udpHdr(40000, 4789, cat(vxlanHdr(1), ether(0x0800), inner4))),
		"ipip":         outer(4, inner4),
		"ip6ip":        cat(ether(0x86dd), ipv6(4, inner4)),
		"pppoe":        cat(ether(0x8864), pppoeHdr(0x0021, inner4)),
		"mpls":         cat(ether(0x8847), mplsStack(16, 17), inner4),
		"tzsp":         outer(17, udpHdr(40000, 37008, cat(tzspHdr(), ether(0x0800), inner4))),
		"l2tp":         outer(17, udpHdr(1701, 1701, l2tpHdr(inner4, 0x0021))),
		"nested-vxlan": outer(17, udpHdr(40000, 4789, cat(vxlanHdr(1), ether(0x86dd), ipv6(47, cat(greHdr(0x88be, false, false, true), erspan2Hdr(), ether(0x0800, 0x8100, 77), inner4))))),
	}
}

func TestDecodeTunnelAllocs(t *testing.T) {
	for name, data := range tunnelFrames() {
		f := frame(capture.LinkTypeEthernet, data)
		d := NewDecoder(Config{})
		var h nopHandler
		allocs := testing.AllocsPerRun(1000, func() {
			f.Time = f.Time.Add(20e6)
			d.Decode(f, &h)
		})
		if allocs != 0 || h.n == 0 {
			t.Errorf("%s: Decode allocates %.1f times per frame (delivered %d bytes), want 0", name, allocs, h.n)
		}
	}
}

// BenchmarkDecodeTunnel measures the decode cost of each encapsulation
// against plain Ethernet/IPv4/UDP (sub-benchmark "plain").
func BenchmarkDecodeTunnel(b *testing.B) {
	frames := tunnelFrames()
	for _, name := range []string{"plain", "gre", "gre-teb", "erspan2", "erspan3", "vxlan", "ipip", "ip6ip", "pppoe", "mpls", "tzsp", "l2tp", "nested-vxlan"} {
		b.Run(name, func(b *testing.B) {
			f := frame(capture.LinkTypeEthernet, frames[name])
			d := NewDecoder(Config{})
			var h nopHandler
			b.ReportAllocs()
			for b.Loop() {
				d.Decode(f, &h)
			}
			if h.n == 0 {
				b.Fatal("nothing delivered")
			}
		})
	}
}
