package decode

import (
	"encoding/binary"
	"net/netip"
)

// SCTP chunk types and DATA chunk flags (RFC 9260 section 3.3.1).
const (
	sctpData      = 0
	sctpFlagEnd   = 0x01
	sctpFlagBegin = 0x02
)

// sctpPPIDUnspecified is the payload protocol identifier SIP over SCTP
// uses: RFC 4168 assigns none, so senders leave it 0.
const sctpPPIDUnspecified = 0

// maxSCTPFragmented bounds the user messages being reassembled from
// fragments at once; a new one evicts the oldest.
const maxSCTPFragmented = 16

// sctpKey is one SCTP stream in one direction of an association.
type sctpKey struct {
	flow Flow
	sid  uint16
}

// sctpPartial is a user message being reassembled from DATA fragments.
type sctpPartial struct {
	key     sctpKey
	nextTSN uint32 // TSN the next fragment must carry
	buf     []byte
	used    bool
	age     uint64 // for eviction
}

// sctpTable holds the fragmented user messages in reassembly.
type sctpTable struct {
	parts [maxSCTPFragmented]sctpPartial
	clock uint64
}

// sctpPacket decodes an SCTP packet (RFC 9260 section 3):
//
//	|     Source Port Number        |     Destination Port Number   |
//	|                      Verification Tag                         |
//	|                           Checksum                            |
//	|   Chunk Type  | Chunk  Flags  |        Chunk Length           |
//	\                          Chunk Value                          \
//
// and delivers the user data of every DATA chunk whose PPID is 0, one
// [Datagram] per user message. DATA chunks:
//
//	|   Type = 0    | Reserved|U|B|E|          Length               |
//	|                              TSN                              |
//	|      Stream Identifier S      |   Stream Sequence Number n    |
//	|                  Payload Protocol Identifier                  |
//	\                 User Data (seq n of Stream S)                 \
//
// Fragments (B and E not both set) are joined by TSN per stream; a gap in
// the TSNs drops the message. The checksum is not verified.
func (d *Decoder) sctpPacket(src, dst netip.Addr, p []byte, h Handler) {
	if len(p) < 12 {
		d.short()
		return
	}
	flow := Flow{
		Src:   netip.AddrPortFrom(src, binary.BigEndian.Uint16(p[0:])),
		Dst:   netip.AddrPortFrom(dst, binary.BigEndian.Uint16(p[2:])),
		Proto: ProtoSCTP,
	}
	p = p[12:]
	for len(p) > 0 {
		if len(p) < 4 {
			d.stats.Malformed++
			return
		}
		typ, flags := p[0], p[1]
		n := int(binary.BigEndian.Uint16(p[2:]))
		if n < 4 || n > len(p) {
			if n > len(p) {
				d.short()
			} else {
				d.stats.Malformed++
			}
			return
		}
		chunk := p[:n]
		p = p[min((n+3)&^3, len(p)):]
		if typ != sctpData {
			continue
		}
		if n < 16 {
			d.stats.Malformed++
			return
		}
		if binary.BigEndian.Uint32(chunk[12:]) != sctpPPIDUnspecified {
			d.stats.SCTPNonSIP++
			continue
		}
		tsn := binary.BigEndian.Uint32(chunk[4:])
		key := sctpKey{flow: flow, sid: binary.BigEndian.Uint16(chunk[8:])}
		d.sctpData(key, tsn, flags, chunk[16:], h)
	}
}

// sctpData delivers or collects the user data of one DATA chunk.
func (d *Decoder) sctpData(key sctpKey, tsn uint32, flags byte, data []byte, h Handler) {
	begin, end := flags&sctpFlagBegin != 0, flags&sctpFlagEnd != 0
	if begin && end {
		d.dg.Flow = key.flow
		d.dg.Payload = data
		d.stats.SCTPMessages++
		d.deliver(h)
		return
	}
	t := &d.sctp
	t.clock++
	var part *sctpPartial
	for i := range t.parts {
		if t.parts[i].used && t.parts[i].key == key {
			part = &t.parts[i]
			break
		}
	}
	if begin {
		if part != nil {
			d.stats.SCTPDropped++ // a new message before the last one ended
		} else {
			part = t.slot(d)
		}
		part.key, part.used, part.buf = key, true, append(part.buf[:0], data...)
		part.nextTSN, part.age = tsn+1, t.clock
		return
	}
	if part == nil {
		d.stats.SCTPDropped++ // middle or end without its beginning
		return
	}
	if tsn != part.nextTSN || len(part.buf)+len(data) > d.cfg.MaxTCPBuffer {
		d.stats.SCTPDropped++
		part.release()
		return
	}
	part.buf = append(part.buf, data...)
	part.nextTSN++
	part.age = t.clock
	if end {
		d.dg.Flow = key.flow
		d.dg.Payload = part.buf
		d.stats.SCTPMessages++
		d.deliver(h)
		part.release()
	}
}

// slot returns a free reassembly slot, evicting the oldest if none is.
func (t *sctpTable) slot(d *Decoder) *sctpPartial {
	old := &t.parts[0]
	for i := range t.parts {
		p := &t.parts[i]
		if !p.used {
			return p
		}
		if p.age < old.age {
			old = p
		}
	}
	d.stats.SCTPDropped++
	old.release()
	return old
}

// release frees the slot, keeping a modest buffer for reuse.
func (p *sctpPartial) release() {
	p.used = false
	p.key = sctpKey{}
	if cap(p.buf) > 64<<10 {
		p.buf = nil
	} else {
		p.buf = p.buf[:0]
	}
}
