package gen

import (
	"encoding/binary"
	"slices"
)

// Encapsulations [Config.Encap] can wrap every generated frame in. Each
// wraps the Ethernet/IPv4 frame the generator builds (or its IPv4 packet)
// as a sniffer on a tunnel or a mirror port would capture it; the inner
// addresses, and so the calls and streams, stay the same.
var Encaps = []string{"vlan", "qinq", "pppoe", "mpls", "ipip", "ip4in6", "gre", "gre-teb", "erspan1", "erspan2", "erspan3", "vxlan", "tzsp", "l2tp"}

// Tunnel endpoints of the outer IP headers (RFC 5737 TEST-NET-1, RFC 3849
// documentation prefix).
var (
	tunnelSrc  = [4]byte{192, 0, 2, 1}
	tunnelDst  = [4]byte{192, 0, 2, 2}
	tunnelSrc6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	tunnelDst6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

// encapsulate returns f (an Ethernet II frame carrying IPv4) wrapped in the
// encapsulation kind, appended to dst[:0]. seq numbers the frame (GRE and
// ERSPAN sequence numbers).
func encapsulate(dst, f []byte, kind string, seq uint32) []byte {
	eth, ip := f[:ethHeaderLen], f[ethHeaderLen:]
	b := dst[:0]
	// outerEth writes the frame's MAC addresses with EtherType et.
	outerEth := func(et uint16) {
		b = append(b, eth[:12]...)
		b = binary.BigEndian.AppendUint16(b, et)
	}
	be16 := func(v uint16) { b = binary.BigEndian.AppendUint16(b, v) }
	be32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	switch kind {
	case "vlan": // 802.1Q, VID 100, PCP 5
		outerEth(0x8100)
		be16(5<<13 | 100)
		be16(0x0800)
		return append(b, ip...)
	case "qinq": // 802.1ad service tag 200 around customer tag 100
		outerEth(0x88a8)
		be16(200)
		be16(0x8100)
		be16(100)
		be16(0x0800)
		return append(b, ip...)
	case "pppoe": // RFC 2516 session: ver/type 0x11, code 0, session 0x1234, length, PPP IPv4
		outerEth(0x8864)
		b = append(b, 0x11, 0)
		be16(0x1234)
		be16(uint16(2 + len(ip)))
		be16(0x0021)
		return append(b, ip...)
	case "mpls": // RFC 3032: two labels (1000, 2000), bottom of stack on the second
		outerEth(0x8847)
		be32(1000<<12 | 64)
		be32(2000<<12 | 1<<8 | 64)
		return append(b, ip...)
	case "ip4in6": // RFC 2473: IPv4 inside IPv6, next header 4
		outerEth(0x86dd)
		b = append(b, 0x60, 0, 0, 0)
		be16(uint16(len(ip)))
		b = append(b, 4, 64)
		b = append(b, tunnelSrc6[:]...)
		b = append(b, tunnelDst6[:]...)
		return append(b, ip...)
	}
	// The rest ride on an outer IPv4 header.
	outerEth(0x0800)
	start := len(b)
	b = append(b, make([]byte, ipHeaderLen)...)
	var proto byte
	switch kind {
	case "ipip": // RFC 2003
		proto = 4
		b = append(b, ip...)
	case "gre": // RFC 2784/2890: key present, IPv4 payload
		proto = 47
		be16(0x2000)
		be16(0x0800)
		be32(0x00000042)
		b = append(b, ip...)
	case "gre-teb": // GRE carrying the whole Ethernet frame (0x6558)
		proto = 47
		be16(0)
		be16(0x6558)
		b = append(b, f...)
	case "erspan1": // ERSPAN type I: GRE 0x88BE without a sequence number, no ERSPAN header
		proto = 47
		be16(0)
		be16(0x88be)
		b = append(b, f...)
	case "erspan2": // GRE with sequence number, 0x88BE, ERSPAN II header: ver 1, VLAN 0, session 7
		proto = 47
		be16(0x1000)
		be16(0x88be)
		be32(seq)
		be16(1 << 12)
		be16(7)
		be32(0)
		b = append(b, f...)
	case "erspan3": // GRE 0x22EB, ERSPAN III header: ver 2, session 7, timestamp, FT 0 (Ethernet)
		proto = 47
		be16(0x1000)
		be16(0x22eb)
		be32(seq)
		be16(2 << 12)
		be16(7)
		be32(seq * 1000)
		be32(0)
		b = append(b, f...)
	case "vxlan", "tzsp", "l2tp":
		proto = 17
		u := len(b)
		b = append(b, make([]byte, udpHeaderLen)...)
		switch kind {
		case "vxlan": // RFC 7348: I flag, VNI 5000
			binary.BigEndian.PutUint16(b[u:], 49152)
			binary.BigEndian.PutUint16(b[u+2:], 4789)
			b = append(b, 0x08, 0, 0, 0)
			be32(5000 << 8)
			b = append(b, f...)
		case "tzsp": // version 1, type 0 (received), Ethernet, END tag
			binary.BigEndian.PutUint16(b[u:], 49153)
			binary.BigEndian.PutUint16(b[u+2:], 37008)
			b = append(b, 1, 0, 0, 1, 1)
			b = append(b, f...)
		case "l2tp": // RFC 2661 data message with length, tunnel 1, session 2, PPP IPv4
			binary.BigEndian.PutUint16(b[u:], 1701)
			binary.BigEndian.PutUint16(b[u+2:], 1701)
			be16(0x4002)
			be16(uint16(8 + 4 + len(ip)))
			be16(1)
			be16(2)
			b = append(b, 0xff, 0x03, 0x00, 0x21)
			b = append(b, ip...)
		}
		binary.BigEndian.PutUint16(b[u+4:], uint16(len(b)-u)) // checksum 0: none (RFC 768)
	}
	h := b[start : start+ipHeaderLen]
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(len(b)-start))
	binary.BigEndian.PutUint16(h[6:], 0x4000) // DF
	copy(h[12:], tunnelSrc[:])
	copy(h[16:], tunnelDst[:])
	binary.BigEndian.PutUint16(h[10:], ^foldSum(sum16(h, 0)))
	return b
}

func validEncap(kind string) bool { return kind == "" || slices.Contains(Encaps, kind) }
