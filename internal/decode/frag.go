package decode

import (
	"net/netip"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// maxIPDatagram is the largest reassembled IP payload: the 16-bit length
// field bounds IPv4, and IPv6 without jumbograms.
const maxIPDatagram = 65535

// maxFreeQueues bounds the recycled fragment queues kept for reuse.
const maxFreeQueues = 64

// fragKey identifies the datagram a fragment belongs to (RFC 791: source,
// destination, protocol, identification; RFC 8200: source, destination,
// identification).
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
	v6       bool
}

// span is a received byte range [lo, hi) of a datagram.
type span struct{ lo, hi int }

// fragQueue collects the fragments of one datagram. buf holds the payload
// at its final offsets; have lists the received ranges, sorted and merged,
// so completeness is have == [{0, total}] (a hole list in the spirit of
// RFC 815).
type fragQueue struct {
	key   fragKey
	first time.Time // arrival of the first fragment, for FragmentTimeout
	buf   []byte
	have  []span
	total int // payload length once the last fragment arrived, else -1
	frags int // fragments accepted
	// held are copies of the fragments' frames (Config.KeepFragments);
	// their Data buffers are reused when the queue is.
	held []capture.Frame
}

// maxHeldFrames bounds the frames a queue keeps for Datagram.Held: a
// 64 KiB datagram in 1500-byte frames takes 45.
const maxHeldFrames = 64

// hold keeps a copy of f in q.held.
func (q *fragQueue) hold(f *capture.Frame) {
	n := len(q.held)
	if n >= maxHeldFrames {
		return
	}
	if n < cap(q.held) {
		q.held = q.held[:n+1]
	} else {
		q.held = append(q.held, capture.Frame{})
	}
	h := &q.held[n]
	data := append(h.Data[:0], f.Data...)
	*h = *f
	h.Data = data
}

type fragTable struct {
	queues map[fragKey]*fragQueue
	free   []*fragQueue
	bytes  int // buffer capacity held by open queues
}

// recycle resets q and keeps it for reuse.
func (t *fragTable) recycle(q *fragQueue) {
	t.bytes -= cap(q.buf)
	if len(t.free) >= maxFreeQueues {
		return
	}
	q.buf = q.buf[:0]
	q.have = q.have[:0]
	q.frags = 0
	q.total = -1
	q.held = q.held[:0]
	t.free = append(t.free, q)
}

// dropQueue removes q, counting its fragments as dropped.
func (d *Decoder) dropQueue(q *fragQueue) {
	d.stats.FragmentsDropped += uint64(q.frags)
	delete(d.frag.queues, q.key)
	d.frag.recycle(q)
}

// dropOldestQueue drops the queue whose first fragment is oldest, except
// keep. It reports whether one was dropped.
func (d *Decoder) dropOldestQueue(keep *fragQueue) bool {
	var old *fragQueue
	for _, q := range d.frag.queues {
		if q != keep && (old == nil || q.first.Before(old.first)) {
			old = q
		}
	}
	if old == nil {
		return false
	}
	d.dropQueue(old)
	return true
}

func (d *Decoder) expireFragments(now time.Time) {
	for _, q := range d.frag.queues {
		if now.Sub(q.first) > d.cfg.FragmentTimeout {
			d.dropQueue(q)
		}
	}
}

// fragment adds one fragment: data at byte offset off of the datagram key,
// more when further fragments follow. When the datagram is complete it
// returns the reassembled payload, valid until Decode returns, and true.
//
// Overlaps keep the bytes that arrived first, so an exact duplicate changes
// nothing and a conflicting overlap cannot rewrite data already checked.
// Lengths that contradict each other drop the whole queue.
func (d *Decoder) fragment(key fragKey, off int, more bool, data []byte) ([]byte, bool) {
	d.stats.Fragments++
	end := off + len(data)
	if end > maxIPDatagram || (more && (len(data) == 0 || len(data)%8 != 0)) {
		d.stats.Malformed++
		d.stats.FragmentsDropped++
		return nil, false
	}
	q := d.frag.queues[key]
	if q == nil {
		if len(d.frag.queues) >= d.cfg.MaxFragmentQueues {
			d.dropOldestQueue(nil)
		}
		if n := len(d.frag.free); n > 0 {
			q = d.frag.free[n-1]
			d.frag.free = d.frag.free[:n-1]
		} else {
			q = &fragQueue{total: -1}
		}
		q.key = key
		q.first = d.dg.Time
		d.frag.bytes += cap(q.buf)
		d.frag.queues[key] = q
	}

	// Check the lengths agree with what the queue already knows.
	if !more {
		if (q.total >= 0 && q.total != end) || (len(q.have) > 0 && q.have[len(q.have)-1].hi > end) {
			d.stats.FragmentsDropped++
			d.dropQueue(q)
			return nil, false
		}
		q.total = end
	} else if q.total >= 0 && end > q.total {
		d.stats.FragmentsDropped++
		d.dropQueue(q)
		return nil, false
	}

	if end > len(q.buf) {
		if end > cap(q.buf) {
			grow := min(max(end, 2*cap(q.buf), 1500), maxIPDatagram)
			if d.frag.bytes+grow-cap(q.buf) > d.cfg.MaxFragmentBytes {
				grow = end // no room to grow ahead
			}
			for d.frag.bytes+grow-cap(q.buf) > d.cfg.MaxFragmentBytes {
				if !d.dropOldestQueue(q) {
					d.stats.FragmentsDropped++
					d.dropQueue(q)
					return nil, false
				}
			}
			nb := make([]byte, len(q.buf), grow)
			copy(nb, q.buf)
			d.frag.bytes += grow - cap(q.buf)
			q.buf = nb
		}
		q.buf = q.buf[:end]
	}

	// Copy only into the gaps between received spans (first copy wins).
	pos := off
	for _, s := range q.have {
		if s.hi <= pos {
			continue
		}
		if s.lo >= end {
			break
		}
		if s.lo > pos {
			copy(q.buf[pos:s.lo], data[pos-off:])
		}
		pos = max(pos, s.hi)
		if pos >= end {
			break
		}
	}
	if pos < end {
		copy(q.buf[pos:end], data[pos-off:])
	}
	q.have = addSpan(q.have, span{off, end})
	q.frags++
	if d.cfg.KeepFragments && d.cur != nil && !(q.total >= 0 && len(q.have) == 1 && q.have[0] == (span{0, q.total})) {
		q.hold(d.cur)
	}

	if q.total >= 0 && len(q.have) == 1 && q.have[0] == (span{0, q.total}) {
		delete(d.frag.queues, key)
		d.stats.Reassembled++
		if d.cfg.KeepFragments {
			if d.dg.Held == nil {
				d.dg.Held = q.held
			} else { // nested reassembly (a tunnel's): a copy, never another queue's slots
				d.dg.Held = append(d.dg.Held[:len(d.dg.Held):len(d.dg.Held)], q.held...)
			}
		}
		if d.nrel < len(d.release) {
			d.release[d.nrel] = q
			d.nrel++
		}
		return q.buf[:q.total], true
	}
	return nil, false
}

// addSpan inserts s into the sorted, non-overlapping list have, merging
// spans that overlap or touch it.
func addSpan(have []span, s span) []span {
	i := 0
	for i < len(have) && have[i].hi < s.lo {
		i++
	}
	j := i
	for j < len(have) && have[j].lo <= s.hi {
		s.lo = min(s.lo, have[j].lo)
		s.hi = max(s.hi, have[j].hi)
		j++
	}
	if j == i { // nothing to merge: insert at i
		have = append(have, span{})
		copy(have[i+1:], have[i:])
		have[i] = s
		return have
	}
	have[i] = s
	n := copy(have[i+1:], have[j:])
	return have[:i+1+n]
}
