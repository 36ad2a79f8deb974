package hep

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"time"
)

// Errors returned by [Packet.Unmarshal], [Packet.MarshalTo] and
// [SplitStream].
var (
	// ErrNotHEP: the bytes start neither with "HEP3" nor with a HEPv1/v2
	// header.
	ErrNotHEP = errors.New("hep: not a HEP packet")
	// ErrTruncated: the packet ends before its header's total length, or a
	// chunk runs past the end of the packet (the chunks after it cannot be
	// found).
	ErrTruncated = errors.New("hep: truncated packet")
	// ErrBadLength: a total length or chunk length smaller than its own
	// header.
	ErrBadLength = errors.New("hep: bad length")
	// ErrIncomplete: the packet lacks a payload or the addresses of the
	// packet it carries.
	ErrIncomplete = errors.New("hep: packet lacks payload or addresses")
	// ErrTooLarge: the encoded packet would exceed [MaxPacketSize].
	ErrTooLarge = errors.New("hep: packet too large")
	// ErrShortBuffer: MarshalTo's buffer is smaller than MarshalSize.
	ErrShortBuffer = errors.New("hep: buffer too short")
)

// MaxPacketSize is the largest HEPv3 packet: its total length is 16 bits.
const MaxPacketSize = 65535

// ProtoType is the HEP protocol type (chunk 0x000b): what the payload is.
type ProtoType uint8

// Protocol types of the HEPv3 specification that the sensor uses or names.
const (
	TypeSIP      ProtoType = 0x01
	TypeXMPP     ProtoType = 0x02
	TypeSDP      ProtoType = 0x03
	TypeRTP      ProtoType = 0x04
	TypeRTCP     ProtoType = 0x05 // RTCP, binary or as JSON (heplify, rtpengine)
	TypeMGCP     ProtoType = 0x06
	TypeMEGACO   ProtoType = 0x07
	TypeMOSFull  ProtoType = 0x22 // quality report, JSON
	TypeMOSShort ProtoType = 0x23
	TypeSIPJSON  ProtoType = 0x32
	TypeDNSJSON  ProtoType = 0x35
	TypeLog      ProtoType = 0x64 // logs and other JSON
)

// String returns "sip", "rtp", "rtcp", … or the number.
func (t ProtoType) String() string {
	switch t {
	case TypeSIP:
		return "sip"
	case TypeXMPP:
		return "xmpp"
	case TypeSDP:
		return "sdp"
	case TypeRTP:
		return "rtp"
	case TypeRTCP:
		return "rtcp"
	case TypeMGCP:
		return "mgcp"
	case TypeMEGACO:
		return "megaco"
	case TypeMOSFull, TypeMOSShort:
		return "mos"
	case TypeSIPJSON:
		return "sip-json"
	case TypeDNSJSON:
		return "dns-json"
	case TypeLog:
		return "log"
	}
	return strconv.Itoa(int(t))
}

// Address families as HEP carries them (the BSD values: AF_INET,
// Linux's AF_INET6).
const (
	familyIPv4 = 2
	familyIPv6 = 10
)

// Generic chunk types (vendor 0x0000) of HEPv3.
const (
	chunkFamily        = 0x0001 // uint8: IP protocol family
	chunkIPProto       = 0x0002 // uint8: IP protocol number
	chunkSrcIPv4       = 0x0003 // 4 bytes
	chunkDstIPv4       = 0x0004
	chunkSrcIPv6       = 0x0005 // 16 bytes
	chunkDstIPv6       = 0x0006
	chunkSrcPort       = 0x0007 // uint16
	chunkDstPort       = 0x0008
	chunkTimeSec       = 0x0009 // uint32: seconds since the epoch
	chunkTimeUsec      = 0x000a // uint32: microseconds within the second
	chunkProtoType     = 0x000b // uint8: ProtoType
	chunkCaptureID     = 0x000c // uint32: capture agent id
	chunkKeepAlive     = 0x000d // uint16: keep-alive timer
	chunkAuthKey       = 0x000e // octets: authentication key (password)
	chunkPayload       = 0x000f // octets: the captured payload
	chunkCompressed    = 0x0010 // octets: the payload, compressed
	chunkCorrelationID = 0x0011 // octets: correlation id
	chunkVLAN          = 0x0012 // uint16: VLAN id
	chunkNodeName      = 0x0013 // octets: group id / node name
)

const (
	headerLen      = 6 // "HEP3" + total length
	chunkHeaderLen = 6 // vendor, type, length
)

// Packet is one HEP packet: the captured payload and what the agent knew
// about it. [Packet.Unmarshal] fills it; its byte slices alias the buffer
// it was given and are valid only as long as that buffer is.
type Packet struct {
	// Version is 3 for HEPv3, 1 or 2 for the old fixed layout.
	Version uint8
	// IPProto is the IP protocol number of the captured packet: 17 UDP,
	// 6 TCP, 132 SCTP.
	IPProto uint8
	// Src and Dst are the captured packet's addresses and ports.
	Src, Dst netip.AddrPort
	// Time is the capture time (microsecond precision); zero when the
	// packet had none (HEPv1, or a HEPv3 packet without chunk 0x0009).
	Time time.Time
	// Type says what Payload is (HEPv1/v2 carry no type: SIP is assumed).
	Type ProtoType
	// CaptureID identifies the capture agent (HEPv2: 16 bits).
	CaptureID uint32
	// AuthKey is the agent's authentication key (chunk 0x000e), nil if
	// none.
	AuthKey []byte
	// Payload is the captured payload.
	Payload []byte
	// Compressed tells that Payload came in chunk 0x0010 and is
	// compressed (not inflated here).
	Compressed bool
	// CorrelationID is chunk 0x0011, nil if none.
	CorrelationID []byte
	// NodeName is chunk 0x0013 (group id or node name), nil if none.
	NodeName []byte
	// VLAN is the 802.1Q VLAN id of chunk 0x0012; HasVLAN tells it was
	// present.
	VLAN    uint16
	HasVLAN bool
	// BadChunks counts the known chunks Unmarshal skipped because their
	// length was wrong for their type (a 3-byte IPv4 address, a 1-byte
	// port) or their value impossible (a microsecond count of a million or
	// more, in HEPv3 or HEPv2). Unknown and vendor chunks are skipped
	// without counting.
	BadChunks int
}

// Unmarshal decodes the HEP packet at the start of b into p, replacing
// every field. A HEPv3 packet ends where its total length says (bytes after
// it are ignored); a HEPv1/v2 payload runs to the end of b. p's slices
// alias b and no memory is allocated.
//
// HEPv3 (https://github.com/sipcapture/HEP, HEP3_Network_Protocol_
// Specification), all integers big-endian:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      'H'      |      'E'      |      'P'      |      '3'      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  total length (incl. header)  |   chunk vendor id (0 generic) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        chunk type id          |  chunk length (incl. 6 bytes) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  chunk payload ...            |  next chunk ...
//
// HEPv1/v2 (Kamailio's struct hep_hdr): version, header length, family,
// protocol, source and destination port (big-endian), source and
// destination address (4 or 16 bytes each); v2 then has the time header in
// the sender's byte order, little-endian on every agent in use (seconds,
// microseconds, 16-bit capture id, 2 bytes padding); the payload follows.
//
// A known chunk whose length is wrong for its type is skipped and counted
// in p.BadChunks; a chunk that runs past the end is [ErrTruncated]. The
// packet must carry a payload and both addresses ([ErrIncomplete]).
func (p *Packet) Unmarshal(b []byte) error {
	*p = Packet{}
	if len(b) >= 4 && string(b[:4]) == "HEP3" {
		return p.unmarshalV3(b)
	}
	if len(b) >= 8 && (b[0] == 1 || b[0] == 2) {
		return p.unmarshalV2(b)
	}
	return ErrNotHEP
}

func (p *Packet) unmarshalV3(b []byte) error {
	if len(b) < headerLen {
		return ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n < headerLen {
		return ErrBadLength
	}
	if n > len(b) {
		return ErrTruncated
	}
	b = b[:n]
	p.Version = 3
	var (
		family                 uint8
		src4, dst4, src6, dst6 []byte
		sport, dport           uint16
		sec, usec              uint32
		haveSec                bool
		havePayload            bool
	)
	for off := headerLen; off < len(b); {
		if len(b)-off < chunkHeaderLen {
			return ErrTruncated
		}
		vendor := binary.BigEndian.Uint16(b[off:])
		typ := binary.BigEndian.Uint16(b[off+2:])
		cl := int(binary.BigEndian.Uint16(b[off+4:]))
		if cl < chunkHeaderLen {
			return ErrBadLength
		}
		if cl > len(b)-off {
			return ErrTruncated
		}
		body := b[off+chunkHeaderLen : off+cl]
		off += cl
		if vendor != 0 {
			continue
		}
		ok := true
		switch typ {
		case chunkFamily:
			if ok = len(body) == 1; ok {
				family = body[0]
			}
		case chunkIPProto:
			if ok = len(body) == 1; ok {
				p.IPProto = body[0]
			}
		case chunkSrcIPv4:
			if ok = len(body) == 4; ok {
				src4 = body
			}
		case chunkDstIPv4:
			if ok = len(body) == 4; ok {
				dst4 = body
			}
		case chunkSrcIPv6:
			if ok = len(body) == 16; ok {
				src6 = body
			}
		case chunkDstIPv6:
			if ok = len(body) == 16; ok {
				dst6 = body
			}
		case chunkSrcPort:
			if ok = len(body) == 2; ok {
				sport = binary.BigEndian.Uint16(body)
			}
		case chunkDstPort:
			if ok = len(body) == 2; ok {
				dport = binary.BigEndian.Uint16(body)
			}
		case chunkTimeSec:
			if ok = len(body) == 4; ok {
				sec, haveSec = binary.BigEndian.Uint32(body), true
			}
		case chunkTimeUsec:
			if ok = len(body) == 4 && binary.BigEndian.Uint32(body) < 1e6; ok {
				usec = binary.BigEndian.Uint32(body)
			}
		case chunkProtoType:
			if ok = len(body) == 1; ok {
				p.Type = ProtoType(body[0])
			}
		case chunkCaptureID:
			if ok = len(body) == 4; ok {
				p.CaptureID = binary.BigEndian.Uint32(body)
			}
		case chunkKeepAlive:
			ok = len(body) == 2
		case chunkAuthKey:
			p.AuthKey = body
		case chunkPayload, chunkCompressed:
			if !havePayload || p.Compressed { // the plain payload wins
				p.Payload, p.Compressed, havePayload = body, typ == chunkCompressed, true
			}
		case chunkCorrelationID:
			p.CorrelationID = body
		case chunkVLAN:
			if ok = len(body) == 2; ok {
				p.VLAN, p.HasVLAN = binary.BigEndian.Uint16(body)&0x0fff, true
			}
		case chunkNodeName:
			p.NodeName = body
		}
		if !ok {
			p.BadChunks++
		}
	}
	// The family chunk chooses between address pairs; without it (or with
	// a pair missing), whichever pair is complete.
	var src, dst netip.Addr
	switch {
	case family != familyIPv6 && src4 != nil && dst4 != nil:
		src, dst = netip.AddrFrom4([4]byte(src4)), netip.AddrFrom4([4]byte(dst4))
	case src6 != nil && dst6 != nil:
		src, dst = netip.AddrFrom16([16]byte(src6)), netip.AddrFrom16([16]byte(dst6))
	case src4 != nil && dst4 != nil:
		src, dst = netip.AddrFrom4([4]byte(src4)), netip.AddrFrom4([4]byte(dst4))
	default:
		return ErrIncomplete
	}
	if !havePayload {
		return ErrIncomplete
	}
	p.Src, p.Dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	if haveSec {
		p.Time = time.Unix(int64(sec), int64(usec)*1000)
	}
	return nil
}

// v2TimeLen is the size of HEPv2's time header: seconds, microseconds,
// capture id, padding.
const v2TimeLen = 12

func (p *Packet) unmarshalV2(b []byte) error {
	p.Version = b[0]
	p.IPProto = b[3]
	sport := binary.BigEndian.Uint16(b[4:6])
	dport := binary.BigEndian.Uint16(b[6:8])
	var src, dst netip.Addr
	off := 8
	switch b[2] {
	case familyIPv4:
		if len(b) < off+8 {
			return ErrTruncated
		}
		src, dst = netip.AddrFrom4([4]byte(b[off:off+4])), netip.AddrFrom4([4]byte(b[off+4:off+8]))
		off += 8
	case familyIPv6:
		if len(b) < off+32 {
			return ErrTruncated
		}
		src, dst = netip.AddrFrom16([16]byte(b[off:off+16])), netip.AddrFrom16([16]byte(b[off+16:off+32]))
		off += 32
	default:
		return ErrNotHEP
	}
	if p.Version == 2 {
		if len(b) < off+v2TimeLen {
			return ErrTruncated
		}
		t := b[off : off+v2TimeLen]
		sec, usec := binary.LittleEndian.Uint32(t), binary.LittleEndian.Uint32(t[4:])
		if usec < 1e6 {
			p.Time = time.Unix(int64(sec), int64(usec)*1000)
		} else {
			p.BadChunks++
		}
		p.CaptureID = uint32(binary.LittleEndian.Uint16(t[8:]))
		off += v2TimeLen
	}
	if off >= len(b) {
		return ErrIncomplete
	}
	p.Type = TypeSIP
	p.Src, p.Dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	p.Payload = b[off:]
	return nil
}

// MarshalSize returns the length of p encoded as HEPv3 by
// [Packet.MarshalTo]. It may exceed [MaxPacketSize], which MarshalTo then
// refuses.
func (p *Packet) MarshalSize() int {
	ip := 4
	if p.is6() {
		ip = 16
	}
	n := headerLen +
		2*(chunkHeaderLen+1) + // family, protocol
		2*(chunkHeaderLen+ip) + // addresses
		2*(chunkHeaderLen+2) + // ports
		chunkHeaderLen + 1 + // protocol type
		chunkHeaderLen + 4 + // capture id
		chunkHeaderLen + len(p.Payload)
	if !p.Time.IsZero() {
		n += 2 * (chunkHeaderLen + 4) // seconds, microseconds
	}
	if p.AuthKey != nil {
		n += chunkHeaderLen + len(p.AuthKey)
	}
	if p.CorrelationID != nil {
		n += chunkHeaderLen + len(p.CorrelationID)
	}
	if p.NodeName != nil {
		n += chunkHeaderLen + len(p.NodeName)
	}
	if p.HasVLAN {
		n += chunkHeaderLen + 2
	}
	return n
}

// is6 reports whether p is encoded with IPv6 address chunks: either
// address is IPv6 (an IPv4 one is then sent IPv4-mapped).
func (p *Packet) is6() bool {
	return p.Src.Addr().Is6() || p.Dst.Addr().Is6()
}

// MarshalTo encodes p as HEPv3 into b, which must hold
// [Packet.MarshalSize] bytes, and returns the length written. Chunks come
// in the specification's order: family, protocol, addresses, ports, time,
// protocol type, capture id, then the optional authentication key,
// correlation id, VLAN and node name, and the payload last (as chunk
// 0x0010 when Compressed). A zero Time sends no time chunks (the
// collector then uses its arrival time). Version is ignored: the output is
// always v3. It allocates nothing.
func (p *Packet) MarshalTo(b []byte) (int, error) {
	n := p.MarshalSize()
	if n > MaxPacketSize {
		return 0, ErrTooLarge
	}
	if len(b) < n {
		return 0, ErrShortBuffer
	}
	copy(b, "HEP3")
	binary.BigEndian.PutUint16(b[4:], uint16(n))
	off := headerLen
	chunk := func(typ uint16, size int) []byte {
		binary.BigEndian.PutUint16(b[off:], 0)
		binary.BigEndian.PutUint16(b[off+2:], typ)
		binary.BigEndian.PutUint16(b[off+4:], uint16(chunkHeaderLen+size))
		body := b[off+chunkHeaderLen : off+chunkHeaderLen+size]
		off += chunkHeaderLen + size
		return body
	}
	src, dst := p.Src.Addr(), p.Dst.Addr()
	if p.is6() {
		chunk(chunkFamily, 1)[0] = familyIPv6
		chunk(chunkIPProto, 1)[0] = p.IPProto
		var a, c [16]byte
		if src.IsValid() {
			a = src.As16()
		}
		if dst.IsValid() {
			c = dst.As16()
		}
		copy(chunk(chunkSrcIPv6, 16), a[:])
		copy(chunk(chunkDstIPv6, 16), c[:])
	} else {
		chunk(chunkFamily, 1)[0] = familyIPv4
		chunk(chunkIPProto, 1)[0] = p.IPProto
		var a, c [4]byte // an invalid (zero) address is sent as 0.0.0.0
		if src.IsValid() {
			a = src.Unmap().As4()
		}
		if dst.IsValid() {
			c = dst.Unmap().As4()
		}
		copy(chunk(chunkSrcIPv4, 4), a[:])
		copy(chunk(chunkDstIPv4, 4), c[:])
	}
	binary.BigEndian.PutUint16(chunk(chunkSrcPort, 2), p.Src.Port())
	binary.BigEndian.PutUint16(chunk(chunkDstPort, 2), p.Dst.Port())
	if !p.Time.IsZero() {
		binary.BigEndian.PutUint32(chunk(chunkTimeSec, 4), uint32(p.Time.Unix()))
		binary.BigEndian.PutUint32(chunk(chunkTimeUsec, 4), uint32(p.Time.Nanosecond()/1000))
	}
	chunk(chunkProtoType, 1)[0] = byte(p.Type)
	binary.BigEndian.PutUint32(chunk(chunkCaptureID, 4), p.CaptureID)
	if p.AuthKey != nil {
		copy(chunk(chunkAuthKey, len(p.AuthKey)), p.AuthKey)
	}
	if p.CorrelationID != nil {
		copy(chunk(chunkCorrelationID, len(p.CorrelationID)), p.CorrelationID)
	}
	if p.HasVLAN {
		binary.BigEndian.PutUint16(chunk(chunkVLAN, 2), p.VLAN)
	}
	if p.NodeName != nil {
		copy(chunk(chunkNodeName, len(p.NodeName)), p.NodeName)
	}
	typ := uint16(chunkPayload)
	if p.Compressed {
		typ = chunkCompressed
	}
	copy(chunk(typ, len(p.Payload)), p.Payload)
	return off, nil
}

// AppendBinary appends p encoded as HEPv3 to b (encoding.BinaryAppender).
func (p *Packet) AppendBinary(b []byte) ([]byte, error) {
	n := p.MarshalSize()
	if n > MaxPacketSize {
		return b, ErrTooLarge
	}
	off := len(b)
	if cap(b)-off < n {
		nb := make([]byte, off, off+n)
		copy(nb, b)
		b = nb
	}
	b = b[:off+n]
	if _, err := p.MarshalTo(b[off:]); err != nil {
		return b[:off], err
	}
	return b, nil
}

// SplitStream is a [bufio.SplitFunc] that cuts a TCP stream into HEPv3
// packets by their total length (HEPv1/v2 carry no total length and cannot
// be framed on a stream). A stream that does not start with "HEP3" where a
// packet should begin is [ErrNotHEP]; one that ends inside a packet is
// [ErrTruncated]. Tokens are at most [MaxPacketSize] bytes.
func SplitStream(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) < headerLen {
		if atEOF && len(data) > 0 {
			return 0, nil, ErrTruncated
		}
		return 0, nil, nil
	}
	if string(data[:4]) != "HEP3" {
		return 0, nil, ErrNotHEP
	}
	n := int(binary.BigEndian.Uint16(data[4:6]))
	if n < headerLen {
		return 0, nil, ErrBadLength
	}
	if len(data) < n {
		if atEOF {
			return 0, nil, ErrTruncated
		}
		return 0, nil, nil
	}
	return n, data[:n], nil
}
