package calltable

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// Bounds of the per-call SIP packet records kept with [Config.SIPPackets].
// The sniffer keeps every packet of a call (its SIPpacketInfoList has no
// limit); the table keeps a call's records within a byte budget instead, so
// a call flooded with in-dialog requests cannot grow without bound.
const (
	// MaxSIPPacketBytes bounds one call's encoded records: about 800
	// packets with first lines of typical length (a call of INVITE, 100,
	// 180, 200, ACK, BYE and 200 takes about 600 bytes). Packets past it
	// are counted ([SIPPackets].Omitted, Stats.SIPPacketsOmitted), not kept.
	MaxSIPPacketBytes = 64 << 10
	// MaxSIPPacketLine cuts a first line kept longer than this many bytes.
	MaxSIPPacketLine = 1024
)

// SIPPacket is one SIP packet of a call, as the sniffer's active_call_info
// lists it (its sSipPacketInfo).
type SIPPacket struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	// Line is the message's first line, without its line end
	// ("INVITE sip:bob@example.com SIP/2.0", "SIP/2.0 180 Ringing"), at
	// most MaxSIPPacketLine bytes.
	Line string
	// Size is the SIP message's length in bytes, FrameLen the wire length
	// of the frame that carried it (for a datagram that came without a
	// frame, HEP: the message behind Ethernet, IP and transport headers).
	Size, FrameLen int
	// CSeqMethod and CSeq are the CSeq header's method and number.
	CSeqMethod sip.Method
	CSeq       uint32
}

// SIPPackets is what [Table.SIPPackets] returns.
type SIPPackets struct {
	Packets []SIPPacket // oldest first
	// Omitted counts the call's packets left out past MaxSIPPacketBytes,
	// all newer than the last one in Packets.
	Omitted int
}

// sipPacketFixed is a record's size without its addresses and first line:
// time i64 | size u32 | frame u32 | cseq method u8 | cseq u32 | line len u16.
const sipPacketFixed = 8 + 4 + 4 + 1 + 4 + 2

// addSIPPacket records m, carried by dg, on c when the table keeps SIP
// packets. A record is
//
//	time i64 | src addrport | dst addrport | size u32 | frame u32 | cseq method u8 | cseq u32 | line len u16+bytes
//
// with each addrport as in the ladder log; c.sipPackets only grows, so a
// reader may decode a prefix of it after the lock is released. Lock must
// be held.
func (t *Table) addSIPPacket(c *Call, m *sip.Message, dg *decode.Datagram) {
	if !t.cfg.SIPPackets {
		return
	}
	p := dg.Payload
	line := p
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if len(line) > MaxSIPPacketLine {
		line = line[:MaxSIPPacketLine]
	}
	need := sipPacketFixed + addrPortSize(dg.Flow.Src) + addrPortSize(dg.Flow.Dst) + len(line)
	if len(c.sipPackets)+need > MaxSIPPacketBytes {
		c.sipOmitted++
		t.stats.SIPPacketsOmitted++
		return
	}
	frame := dg.FrameLen
	if frame <= 0 {
		frame = estimateFrameLen(dg)
	}
	b := c.sipPackets
	if b == nil {
		// Room for a call's first three packets (INVITE, 100, 180).
		b = make([]byte, 0, 256)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(dg.Time.UnixNano()))
	b = appendAddrPort(b, dg.Flow.Src)
	b = appendAddrPort(b, dg.Flow.Dst)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	b = binary.LittleEndian.AppendUint32(b, uint32(frame))
	b = append(b, byte(m.CSeqMethod))
	b = binary.LittleEndian.AppendUint32(b, m.CSeq)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(line)))
	c.sipPackets = append(b, line...)
}

func addrPortSize(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return 1 + 4 + 2
	}
	return 1 + 16 + 2
}

// estimateFrameLen is the length of an Ethernet frame carrying dg's
// payload with plain IP and transport headers.
func estimateFrameLen(dg *decode.Datagram) int {
	n := 14 + len(dg.Payload)
	if dg.Flow.Src.Addr().Is4() {
		n += 20
	} else {
		n += 40
	}
	switch dg.Flow.Proto {
	case decode.ProtoTCP:
		n += 20
	case decode.ProtoSCTP:
		n += 12 + 16
	default:
		n += 8
	}
	return n
}

// KeepsSIPPackets reports whether the table keeps the SIP packets of its
// calls ([Config.SIPPackets]).
func (t *Table) KeepsSIPPackets() bool { return t.cfg.SIPPackets }

// SIPPackets returns the SIP packets kept for the call with reference ref,
// oldest first. ok is false when the table keeps none (see
// [Config.SIPPackets]) or ref is not in the table. It takes the table lock
// only to read the call's record buffer and decodes after releasing it.
func (t *Table) SIPPackets(ref uint64) (p SIPPackets, ok bool) {
	if !t.cfg.SIPPackets {
		return p, false
	}
	t.mu.Lock()
	c := t.byRef[ref]
	var b []byte
	if c != nil {
		b = c.sipPackets // append-only: this prefix stays as it is
		p.Omitted = int(c.sipOmitted)
	}
	t.mu.Unlock()
	if c == nil {
		return p, false
	}
	n := 0
	for r := b; len(r) > 0; n++ {
		r = skipSIPPacket(r)
	}
	p.Packets = make([]SIPPacket, 0, n)
	for len(b) > 0 {
		var s SIPPacket
		s.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b)))
		s.Src, b = readAddrPort(b[8:])
		s.Dst, b = readAddrPort(b)
		s.Size = int(binary.LittleEndian.Uint32(b))
		s.FrameLen = int(binary.LittleEndian.Uint32(b[4:]))
		s.CSeqMethod = sip.Method(b[8])
		s.CSeq = binary.LittleEndian.Uint32(b[9:])
		l := int(binary.LittleEndian.Uint16(b[13:]))
		s.Line = string(b[15 : 15+l])
		b = b[15+l:]
		p.Packets = append(p.Packets, s)
	}
	return p, true
}

// skipSIPPacket returns b after its first record.
func skipSIPPacket(b []byte) []byte {
	b = b[8:]
	b = b[1+int(b[0])+2:]
	b = b[1+int(b[0])+2:]
	l := int(binary.LittleEndian.Uint16(b[13:]))
	return b[15+l:]
}
