package calltable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// Ladder defaults. The ladder log is one table-wide, byte-bounded log of SIP
// messages rather than a per-call list, so a call costs nothing beyond the
// bytes of its own records, and the table's memory for ladders never
// exceeds the configured budget however many calls there are.
const (
	// DefaultLadderBytes is the log budget when Config.LadderBytes is 0:
	// about 3,500 records of start lines alone, a few hundred with their
	// text. The sensor sets its own budget ([Table.SetLadder]).
	DefaultLadderBytes = 256 << 10
	// MaxLadderRaw caps the text kept per message, whatever
	// Config.LadderRawBytes says: the record holds its length in 16 bits.
	MaxLadderRaw = 1<<16 - 1
	// MaxLadderMessages caps the messages a [Ladder] holds per call: the
	// first half and the last half of what is still known.
	MaxLadderMessages = 1000

	ladderChunk   = 16 << 10 // the log grows and is trimmed in chunks of this size
	maxLadderLine = 200      // start lines are cut to this many bytes
	maxLadderID   = 255      // Call-IDs are cut to this many bytes
)

// LadderMessage is one SIP message of a call, for a ladder diagram.
type LadderMessage struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	// Line is the start line ("INVITE sip:bob@example.com SIP/2.0",
	// "SIP/2.0 180 Ringing"), at most 200 bytes.
	Line string
	// Raw is the message itself, headers and body, cut to
	// Config.LadderRawBytes (or the builder's cap); empty when no text is
	// kept. Size > len(Raw) tells that it was cut.
	Raw string
	// Size is the full message length in bytes.
	Size int
}

// Ladder is what [Table.Ladder] and [LadderBuilder.Ladder] return.
type Ladder struct {
	// CallID is the call's Call-ID (at most 255 bytes).
	CallID   string
	Messages []LadderMessage
	// Omitted counts messages of the call that were known but left out
	// to keep at most MaxLadderMessages.
	Omitted int
	// Truncated is true when older records of the log were discarded to stay
	// in budget, so the call's first messages may be missing.
	Truncated bool
}

// Complete reports whether l holds every message of its call that was
// seen: nothing omitted, nothing lost to the budget, no text cut.
func (l *Ladder) Complete() bool {
	if l.Omitted > 0 || l.Truncated || len(l.Messages) == 0 {
		return false
	}
	for _, m := range l.Messages {
		if len(m.Raw) < m.Size {
			return false
		}
	}
	return true
}

// ladderLog is a FIFO of chunks holding encoded records:
//
//	ref u64 | time i64 | src addrport | dst addrport | size u32 |
//	callid len u8+bytes | line len u8+bytes | raw len u16+bytes
//
// with each addrport as len u8 (4 or 16) + address + port u16. Guarded by
// the table lock.
type ladderLog struct {
	chunks  [][]byte
	size    int // bytes in chunks
	dropped bool
}

// SetLadder changes the ladder log's budget and the text kept per message,
// with the meanings of Config.LadderBytes and Config.LadderRawBytes; a
// smaller budget drops the oldest records at once. It takes the table
// lock.
func (t *Table) SetLadder(budget, rawMax int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.LadderBytes, t.cfg.LadderRawBytes = budget, rawMax
	l := &t.ladder
	if budget < 0 {
		*l = ladderLog{}
		return
	}
	if budget == 0 {
		budget = DefaultLadderBytes
	}
	l.trim(budget)
}

// trim drops the oldest chunks while the log is over budget, keeping the
// newest one.
func (l *ladderLog) trim(budget int) {
	for l.size > budget && len(l.chunks) > 1 {
		l.size -= cap(l.chunks[0])
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
		l.dropped = true
	}
}

// startLine returns the first line of a SIP message without its line end,
// cut to maxLadderLine bytes.
func startLine(p []byte) []byte {
	line := p
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, "\r")
	return line[:min(len(line), maxLadderLine)]
}

// addLadder records dg, a SIP message of call ref. Lock must be held.
func (t *Table) addLadder(ref uint64, dg *decode.Datagram) {
	budget, rawMax := t.cfg.LadderBytes, t.cfg.LadderRawBytes
	if budget < 0 {
		return
	}
	if budget == 0 {
		budget = DefaultLadderBytes
	}
	rawMax = min(max(rawMax, 0), MaxLadderRaw)
	var callID string
	if c := t.byRef[ref]; c != nil {
		callID = c.CallID[:min(len(c.CallID), maxLadderID)]
	}
	l := &t.ladder
	p := dg.Payload
	line := startLine(p)
	raw := p[:min(len(p), rawMax)]
	need := 8 + 8 + 2*19 + 4 + 1 + len(callID) + 1 + len(line) + 2 + len(raw)
	if n := len(l.chunks); n == 0 || cap(l.chunks[n-1])-len(l.chunks[n-1]) < need {
		c := make([]byte, 0, max(ladderChunk, need))
		l.chunks = append(l.chunks, c)
		l.size += cap(c)
		l.trim(budget)
	}
	b := l.chunks[len(l.chunks)-1]
	b = binary.LittleEndian.AppendUint64(b, ref)
	b = binary.LittleEndian.AppendUint64(b, uint64(dg.Time.UnixNano()))
	b = appendAddrPort(b, dg.Flow.Src)
	b = appendAddrPort(b, dg.Flow.Dst)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	b = append(b, byte(len(callID)))
	b = append(b, callID...)
	b = append(b, byte(len(line)))
	b = append(b, line...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(raw)))
	b = append(b, raw...)
	l.chunks[len(l.chunks)-1] = b
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	if a.Is4() {
		v := a.As4()
		b = append(b, 4)
		b = append(b, v[:]...)
	} else {
		v := a.As16()
		b = append(b, 16)
		b = append(b, v[:]...)
	}
	return binary.LittleEndian.AppendUint16(b, ap.Port())
}

func readAddrPort(b []byte) (netip.AddrPort, []byte) {
	n := int(b[0])
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte(b[1:5]))
	} else {
		a = netip.AddrFrom16([16]byte(b[1:17]))
	}
	return netip.AddrPortFrom(a, binary.LittleEndian.Uint16(b[1+n:])), b[3+n:]
}

// ladderRecord is one decoded record; its slices alias the chunk.
type ladderRecord struct {
	ref       uint64
	callID    []byte
	line, raw []byte
	msg       LadderMessage // without Line and Raw
}

// next decodes the record at the start of b and returns the rest.
func (r *ladderRecord) next(b []byte) []byte {
	r.ref = binary.LittleEndian.Uint64(b)
	r.msg.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[8:])))
	b = b[16:]
	r.msg.Src, b = readAddrPort(b)
	r.msg.Dst, b = readAddrPort(b)
	r.msg.Size = int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	n := int(b[0])
	r.callID = b[1 : 1+n]
	b = b[1+n:]
	n = int(b[0])
	r.line = b[1 : 1+n]
	b = b[1+n:]
	n = int(binary.LittleEndian.Uint16(b))
	r.raw = b[2 : 2+n]
	return b[2+n:]
}

// scanLadder collects the records that match, oldest first. It takes the
// table lock to copy the log's chunk list and decodes outside it. With
// newest set, only the records of the newest call (the highest
// reference) among those that match are kept.
func (t *Table) scanLadder(newest bool, match func(ref uint64, callID []byte) bool) (Ladder, bool) {
	t.mu.Lock()
	chunks := make([][]byte, len(t.ladder.chunks))
	copy(chunks, t.ladder.chunks) // records are append-only: the prefix stays valid
	dropped := t.ladder.dropped
	t.mu.Unlock()

	var out Ladder
	var r ladderRecord
	var top uint64
	if newest {
		for _, b := range chunks {
			for len(b) > 0 {
				if b = r.next(b); r.ref > top && match(r.ref, r.callID) {
					top = r.ref
				}
			}
		}
		if top == 0 {
			return Ladder{}, false
		}
	}
	for _, b := range chunks {
		for len(b) > 0 {
			b = r.next(b)
			if (newest && r.ref != top) || !match(r.ref, r.callID) {
				continue
			}
			m := r.msg
			m.Line, m.Raw = string(r.line), string(r.raw)
			if out.CallID == "" {
				out.CallID = string(r.callID)
			}
			out.Messages = append(out.Messages, m)
		}
	}
	if len(out.Messages) == 0 {
		return Ladder{}, false
	}
	out.Truncated = dropped && !strings.HasPrefix(out.Messages[0].Line, "INVITE ")
	out.cap()
	return out, true
}

// cap keeps the first and the last MaxLadderMessages/2 messages.
func (l *Ladder) cap() {
	if len(l.Messages) <= MaxLadderMessages {
		return
	}
	h := MaxLadderMessages / 2
	l.Omitted += len(l.Messages) - MaxLadderMessages
	l.Messages = append(l.Messages[:h:h], l.Messages[len(l.Messages)-h:]...)
}

// Ladder returns the SIP messages still held for the call with reference
// ref, oldest first, whether or not the call is still in the table; ok is
// false when the log holds nothing for ref.
func (t *Table) Ladder(ref uint64) (Ladder, bool) {
	return t.scanLadder(false, func(r uint64, _ []byte) bool { return r == ref })
}

// LadderByCallID is [Table.Ladder] for the newest call with this Call-ID
// (a Call-ID longer than 255 bytes is compared by its first 255): a
// Call-ID reused by a later call names that one, as the CDR store's
// newest row does.
func (t *Table) LadderByCallID(callID string) (Ladder, bool) {
	callID = callID[:min(len(callID), maxLadderID)]
	return t.scanLadder(true, func(_ uint64, id []byte) bool { return string(id) == callID })
}

// LadderBuilder builds the ladder of one Call-ID from SIP datagrams outside
// any table: a call's SIP pcap read back from the spool through a
// [decode.Decoder]. It keeps at most rawMax bytes of each message's text
// and budget bytes of text in all (past it messages keep their start line
// only), and of a call longer than MaxLadderMessages its first and last
// halves: its memory is bounded whatever it reads. It is a
// [decode.Handler]. Not safe for concurrent use.
type LadderBuilder struct {
	callID         string
	rawMax, budget int
	used           int // bytes of text held
	msg            sip.Message
	head           []LadderMessage // the first MaxLadderMessages/2
	tail           []LadderMessage // a ring of the last MaxLadderMessages/2
	next           int             // the ring's oldest entry once it is full
	omitted        int
}

// NewLadderBuilder returns a builder for the messages of callID.
func NewLadderBuilder(callID string, rawMax, budget int) *LadderBuilder {
	return &LadderBuilder{callID: callID, rawMax: min(max(rawMax, 0), MaxLadderRaw), budget: budget}
}

// HandleDatagram adds dg when it is a SIP message of the builder's Call-ID.
func (b *LadderBuilder) HandleDatagram(dg *decode.Datagram) {
	p := dg.Payload
	err := b.msg.Unmarshal(p)
	match := !errors.Is(err, sip.ErrNotSIP) && string(b.msg.CallID) == b.callID
	b.msg = sip.Message{} // it aliases p
	if !match {
		return
	}
	m := LadderMessage{Time: dg.Time, Src: dg.Flow.Src, Dst: dg.Flow.Dst, Line: string(startLine(p)), Size: len(p)}
	const h = MaxLadderMessages / 2
	var slot *LadderMessage
	switch {
	case len(b.head) < h:
		b.head = append(b.head, m)
		slot = &b.head[len(b.head)-1]
	case len(b.tail) < h:
		b.tail = append(b.tail, m)
		slot = &b.tail[len(b.tail)-1]
	default:
		slot = &b.tail[b.next]
		b.used -= len(slot.Raw)
		*slot = m
		b.next = (b.next + 1) % h
		b.omitted++
	}
	if n := min(len(p), b.rawMax); b.used+n <= b.budget {
		slot.Raw = string(p[:n])
		b.used += n
	}
}

// Ladder returns the messages collected, in the order they came; ok is
// false when there are none.
func (b *LadderBuilder) Ladder() (Ladder, bool) {
	if len(b.head) == 0 {
		return Ladder{}, false
	}
	l := Ladder{CallID: b.callID[:min(len(b.callID), maxLadderID)], Omitted: b.omitted,
		Messages: make([]LadderMessage, 0, len(b.head)+len(b.tail))}
	l.Messages = append(l.Messages, b.head...)
	l.Messages = append(l.Messages, b.tail[b.next:]...)
	l.Messages = append(l.Messages, b.tail[:b.next]...)
	return l, true
}

var _ decode.Handler = (*LadderBuilder)(nil)
