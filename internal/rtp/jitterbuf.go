package rtp

// jbSlots bounds how far ahead of the next playout tick a simulated buffer
// queues a frame: 256 slots cover delay+resync (≤ 1 s) for any ptime ≥ 4 ms.
const jbSlots = 256

// smallSlots is the size of the ring kept inline in a [jbuf]. Frames more
// than smallSlots ahead of the next tick (the 500 ms buffer at ptime below
// 16 ms, resyncs in a burst of late frames) move the buffer to a ring of
// jbSlots allocated once.
const smallSlots = 64

// maxCountedBurst is VoIPmonitor's
// ignore_mos_degradation_for_contiguous_packet_loss_greater_than: longer
// gaps are treated as a stream interruption, not as loss.
const maxCountedBurst = 1024

// The simulated buffers: fixed 50 ms (resync 100 ms), fixed 200 ms (resync
// 200 ms) and the adaptive one, simulated as fixed at its 500 ms maximum.
var jbParams = [3]struct{ delayNs, windowNs, resyncMS int64 }{
	{50e6, 50e6 + 100e6, 100},
	{200e6, 200e6 + 200e6, 200},
	{500e6, 500e6 + 500e6, 500},
}

// jbuf simulates one Asterisk fixed jitter buffer (main/fixedjitterbuf.c)
// the way VoIPmonitor drives it: every arriving frame is put with its
// arrival time, and before that every playout tick (one per ptime) whose
// time has come is taken. A tick finds its frame (delivered), or finds none
// (interpolated, including frames that were late or lost); a run of
// interpolated ticks ending at a delivered frame is one loss burst.
//
// Frames are kept as bits in a ring of playout slots, slot = frame
// timestamp / ptime + shift, which is exact for streams whose timestamps
// advance in whole packets. The ring is 64 slots inline, enough for every
// buffer at ptime ≥ 16 ms; a frame further ahead grows it to jbSlots.
//
// Asterisk's rules kept here: the first frame (and any frame put while the
// buffer is empty and the frame is late) sets delivery = arrival + delay
// (put_first); a frame whose slot has passed is dropped unless its offset
// from the buffer's tail is at least the resync threshold, in which case the
// buffer is re-anchored on it (resynch_jb); so is a frame more than
// delay+resync ahead.
//
// The zero value is an empty buffer. Its delay and resync threshold are
// passed to put (they are the same for every stream).
type jbuf struct {
	due     int64 // playout time (ns) of slot next
	shift   int64 // slot = extTS/ptimeTS + shift
	next    int64 // next slot to play
	tail    int64 // highest slot queued
	lost    int32 // interval counters
	bursts  int32
	pending int16 // frames queued; at most jbSlots
	interp  int16 // ticks without a frame since the last delivered one; ≤ maxCountedBurst
	started bool
	present uint64 // inline ring: slot k is bit k % smallSlots
	noCount uint64
	big     *bigRing // the jbSlots ring, once needed; then the inline one is unused
}

// bigRing holds the presence and no-count bits of jbSlots slots.
type bigRing struct {
	present, noCount [jbSlots / 64]uint64
}

// has reports whether slot k holds a frame.
func (b *jbuf) has(k int64) bool {
	if r := b.big; r != nil {
		i := uint64(k) % jbSlots
		return r.present[i/64]&(1<<(i%64)) != 0
	}
	return b.present&(1<<(uint64(k)%smallSlots)) != 0
}

// noCountAt reports the no-count mark of the frame in slot k.
func (b *jbuf) noCountAt(k int64) bool {
	if r := b.big; r != nil {
		i := uint64(k) % jbSlots
		return r.noCount[i/64]&(1<<(i%64)) != 0
	}
	return b.noCount&(1<<(uint64(k)%smallSlots)) != 0
}

// set queues a frame in slot k: next ≤ k < next+smallSlots, or
// next ≤ k < next+jbSlots once the ring has grown.
func (b *jbuf) set(k int64, noCount bool) {
	if r := b.big; r != nil {
		i := uint64(k) % jbSlots
		m := uint64(1) << (i % 64)
		r.present[i/64] |= m
		if noCount {
			r.noCount[i/64] |= m
		} else {
			r.noCount[i/64] &^= m
		}
		return
	}
	m := uint64(1) << (uint64(k) % smallSlots)
	b.present |= m
	if noCount {
		b.noCount |= m
	} else {
		b.noCount &^= m
	}
}

// clear empties slot k.
func (b *jbuf) clear(k int64) {
	if r := b.big; r != nil {
		i := uint64(k) % jbSlots
		r.present[i/64] &^= 1 << (i % 64)
		return
	}
	b.present &^= 1 << (uint64(k) % smallSlots)
}

// grow moves the queued frames, all in slots next..next+smallSlots-1, to a
// ring of jbSlots.
func (b *jbuf) grow() {
	r := new(bigRing)
	for k := b.next; k < b.next+smallSlots; k++ {
		m := uint64(1) << (uint64(k) % smallSlots)
		if b.present&m == 0 {
			continue
		}
		i := uint64(k) % jbSlots
		r.present[i/64] |= 1 << (i % 64)
		if b.noCount&m != 0 {
			r.noCount[i/64] |= 1 << (i % 64)
		}
	}
	b.big = r
	b.present, b.noCount = 0, 0
}

// put takes due ticks up to now and then queues the frame of playout slot
// slot (its extended timestamp / ptimeTS), each tick ptimeNs long. delayNs,
// windowNs (delay + resync) and resyncMS are the buffer's parameters.
func (b *jbuf) put(slot, now, ptimeNs, delayNs, windowNs, resyncMS int64, noCount bool) {
	if !b.started {
		b.started = true
		b.first(slot, now, delayNs, noCount)
		return
	}
	if b.due <= now {
		b.advance(now, ptimeNs)
	}
	k := slot + b.shift
	late := k < b.next
	ahead := (k-b.next)*ptimeNs > windowNs || k-b.next >= jbSlots
	if late || ahead {
		if b.pending == 0 {
			b.first(slot, now, delayNs, noCount)
			return
		}
		offMS := (k - b.tail - 1) * ptimeNs / 1e6
		if offMS > -resyncMS && offMS < resyncMS {
			return // dropped: its tick was (or will be) interpolated
		}
		b.shift += b.tail + 1 - k
		k = b.tail + 1
		if k-b.next >= jbSlots {
			return
		}
	}
	if b.big == nil && k-b.next >= smallSlots {
		b.grow()
	}
	if b.has(k) {
		return
	}
	b.set(k, noCount)
	b.pending++
	b.tail = max(b.tail, k)
}

// first is Asterisk's fixed_jb_put_first: the frame plays one delay after
// its arrival, at slot next. The buffer is empty.
func (b *jbuf) first(slot, now, delayNs int64, noCount bool) {
	b.shift = b.next - slot
	b.due = now + delayNs
	b.tail = b.next
	b.set(b.next, noCount)
	b.pending = 1
}

// advance plays every tick whose playout time is ≤ now.
func (b *jbuf) advance(now, ptimeNs int64) {
	for b.due <= now {
		if b.pending == 0 {
			n := (now-b.due)/ptimeNs + 1
			b.interp = int16(min(int64(b.interp)+n, maxCountedBurst))
			b.next += n
			b.due += n * ptimeNs
			return
		}
		b.play(b.next)
		b.next++
		b.due += ptimeNs
	}
}

func (b *jbuf) play(k int64) {
	if !b.has(k) {
		if b.interp < maxCountedBurst {
			b.interp++
		}
		return
	}
	b.clear(k)
	b.pending--
	if b.interp > 0 && !b.noCountAt(k) && b.interp < maxCountedBurst {
		b.lost += int32(b.interp)
		b.bursts++
	}
	b.interp = 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
