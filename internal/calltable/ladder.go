package calltable

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// Ladder defaults. The ladder log is one table-wide, byte-bounded log of SIP
// message summaries rather than a per-call list, so a call costs nothing
// beyond the bytes of its own records, and the table's memory for ladders
// never exceeds the configured budget however many calls there are.
const (
	// DefaultLadderBytes is the log budget when Config.LadderBytes is 0:
	// about 3,500 summaries of typical first lines.
	DefaultLadderBytes = 256 << 10
	// MaxLadderRaw caps the raw message kept per record.
	MaxLadderRaw = 2048
	// MaxLadderMessages caps the messages [Table.Ladder] returns per call:
	// the first half and the last half of what is still in the log.
	MaxLadderMessages = 32

	ladderChunk   = 16 << 10 // the log grows and is trimmed in chunks of this size
	maxLadderLine = 200      // first lines are cut to this many bytes
)

// LadderMessage is a summary of one SIP message of a call, for a ladder
// diagram.
type LadderMessage struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	// Line is the start line ("INVITE sip:bob@example.com SIP/2.0",
	// "SIP/2.0 180 Ringing"), at most 200 bytes.
	Line string
	// Raw is the message itself, cut to Config.LadderRawBytes; empty unless
	// that option is set.
	Raw string
	// Size is the full message length in bytes.
	Size int
}

// Ladder is what [Table.Ladder] returns.
type Ladder struct {
	Messages []LadderMessage
	// Omitted counts messages of the call that were in the log but left out
	// to keep at most MaxLadderMessages.
	Omitted int
	// Truncated is true when older records of the log were discarded to stay
	// in budget, so the call's first messages may be missing.
	Truncated bool
}

// ladderLog is a FIFO of chunks holding encoded records:
//
//	ref u64 | time i64 | src addrport | dst addrport | size u32 | line len u8+bytes | raw len u16+bytes
//
// with each addrport as len u8 (4 or 16) + address + port u16. Guarded by
// the table lock.
type ladderLog struct {
	chunks  [][]byte
	size    int // bytes in chunks
	dropped bool
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
	l := &t.ladder
	p := dg.Payload
	line := p
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, "\r")
	if len(line) > maxLadderLine {
		line = line[:maxLadderLine]
	}
	raw := p[:min(len(p), rawMax)]
	need := 8 + 8 + 2*19 + 4 + 1 + len(line) + 2 + len(raw)
	if n := len(l.chunks); n == 0 || cap(l.chunks[n-1])-len(l.chunks[n-1]) < need {
		c := make([]byte, 0, max(ladderChunk, need))
		l.chunks = append(l.chunks, c)
		l.size += cap(c)
		for l.size > budget && len(l.chunks) > 1 {
			l.size -= cap(l.chunks[0])
			l.chunks[0] = nil
			l.chunks = l.chunks[1:]
			l.dropped = true
		}
	}
	b := l.chunks[len(l.chunks)-1]
	b = binary.LittleEndian.AppendUint64(b, ref)
	b = binary.LittleEndian.AppendUint64(b, uint64(dg.Time.UnixNano()))
	b = appendAddrPort(b, dg.Flow.Src)
	b = appendAddrPort(b, dg.Flow.Dst)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
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

// Ladder returns the SIP message summaries still held for the call with
// reference ref, oldest first, whether or not the call is still in the
// table. It takes the table lock to copy the log's chunk list and decodes
// outside it; ok is false when the log holds nothing for ref.
func (t *Table) Ladder(ref uint64) (Ladder, bool) {
	t.mu.Lock()
	chunks := make([][]byte, len(t.ladder.chunks))
	copy(chunks, t.ladder.chunks) // records are append-only: the prefix stays valid
	dropped := t.ladder.dropped
	t.mu.Unlock()

	var all []LadderMessage
	for _, b := range chunks {
		for len(b) > 0 {
			r := binary.LittleEndian.Uint64(b)
			var m LadderMessage
			m.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b[8:])))
			b = b[16:]
			m.Src, b = readAddrPort(b)
			m.Dst, b = readAddrPort(b)
			m.Size = int(binary.LittleEndian.Uint32(b))
			n := int(b[4])
			line := b[5 : 5+n]
			b = b[5+n:]
			rn := int(binary.LittleEndian.Uint16(b))
			raw := b[2 : 2+rn]
			b = b[2+rn:]
			if r != ref {
				continue
			}
			m.Line, m.Raw = string(line), string(raw)
			all = append(all, m)
		}
	}
	if len(all) == 0 {
		return Ladder{}, false
	}
	out := Ladder{Messages: all, Truncated: dropped && !strings.HasPrefix(all[0].Line, "INVITE ")}
	if len(all) > MaxLadderMessages {
		h := MaxLadderMessages / 2
		out.Omitted = len(all) - MaxLadderMessages
		out.Messages = append(all[:h:h], all[len(all)-h:]...)
	}
	return out, true
}
