package gen

import (
	"encoding/binary"
	"net/netip"
)

// Classic pcap file format (the libpcap "savefile"): a 24-byte global header
// followed by records of a 16-byte header and the frame bytes. Everything is
// written little-endian; the magic tells readers the byte order and whether
// the sub-second field holds microseconds or nanoseconds.
const (
	pcapMagicMicro = 0xa1b2c3d4
	pcapMagicNano  = 0xa1b23c4d
	linkEthernet   = 1
	snapLen        = 65535

	ethHeaderLen = 14
	ipHeaderLen  = 20
	udpHeaderLen = 8
	l2l4Len      = ethHeaderLen + ipHeaderLen + udpHeaderLen // UDP payload offset in a frame
	mtu          = 1500
)

func pcapFileHeader(nano bool) []byte {
	h := make([]byte, 24)
	magic := uint32(pcapMagicMicro)
	if nano {
		magic = pcapMagicNano
	}
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	// thiszone and sigfigs stay 0
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkEthernet)
	return h
}

// endpoint is one UDP address (IPv4 only).
type endpoint struct {
	ip   [4]byte
	port uint16
}

func (e endpoint) String() string {
	return netip.AddrPortFrom(netip.AddrFrom4(e.ip), e.port).String()
}

func (e endpoint) host() string { return netip.AddrFrom4(e.ip).String() }

// putEthIPv4 writes the Ethernet II and IPv4 headers for an IP payload of
// ipPayloadLen bytes into f[:34]. fragOff is the fragment offset in bytes
// (a multiple of 8) and more the MF flag. MAC addresses are derived from the
// IP addresses (02:00:a.b.c.d, locally administered).
func putEthIPv4(f []byte, src, dst [4]byte, ipPayloadLen int, id uint16, fragOff int, more bool) {
	f[0], f[1] = 0x02, 0x00
	copy(f[2:6], dst[:])
	f[6], f[7] = 0x02, 0x00
	copy(f[8:12], src[:])
	f[12], f[13] = 0x08, 0x00 // EtherType IPv4

	ip := f[ethHeaderLen : ethHeaderLen+ipHeaderLen]
	ip[0] = 0x45 // version 4, IHL 5 words
	ip[1] = 0xb8 // DSCP EF (46), as VoIP equipment marks it
	binary.BigEndian.PutUint16(ip[2:], uint16(ipHeaderLen+ipPayloadLen))
	binary.BigEndian.PutUint16(ip[4:], id)
	flagsFrag := uint16(fragOff / 8)
	if more {
		flagsFrag |= 0x2000
	}
	binary.BigEndian.PutUint16(ip[6:], flagsFrag)
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^foldSum(sum16(ip, 0)))
}

// putUDP writes the UDP header into f[34:42] for the payload in f[42:],
// including the checksum over the IPv4 pseudo-header (RFC 768).
func putUDP(f []byte, src, dst endpoint) {
	u := f[ethHeaderLen+ipHeaderLen:]
	n := len(u)
	binary.BigEndian.PutUint16(u[0:], src.port)
	binary.BigEndian.PutUint16(u[2:], dst.port)
	binary.BigEndian.PutUint16(u[4:], uint16(n))
	u[6], u[7] = 0, 0
	s := sum16(src.ip[:], 0)
	s = sum16(dst.ip[:], s)
	s += 17 + uint32(n)
	s = sum16(u, s)
	c := ^foldSum(s)
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(u[6:], c)
}

// sum16 adds b as big-endian 16-bit words (odd length padded with zero) to s.
func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 8 {
		s += uint32(b[0])<<8 | uint32(b[1])
		s += uint32(b[2])<<8 | uint32(b[3])
		s += uint32(b[4])<<8 | uint32(b[5])
		s += uint32(b[6])<<8 | uint32(b[7])
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func foldSum(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
