package rtp

// jbSlots is the size of the ring of playout slots a simulated buffer can
// hold: 256 slots cover delay+resync (≤ 1 s) for any ptime ≥ 4 ms.
const jbSlots = 256

// maxCountedBurst is VoIPmonitor's
// ignore_mos_degradation_for_contiguous_packet_loss_greater_than: longer
// gaps are treated as a stream interruption, not as loss.
const maxCountedBurst = 1024

// jbuf simulates one Asterisk fixed jitter buffer (main/fixedjitterbuf.c)
// the way VoIPmonitor drives it: every arriving frame is put with its
// arrival time, and before that every playout tick (one per ptime) whose
// time has come is taken. A tick finds its frame (delivered), or finds none
// (interpolated, including frames that were late or lost); a run of
// interpolated ticks ending at a delivered frame is one loss burst.
//
// Frames are kept as bits in a ring of playout slots, slot = frame
// timestamp / ptime + shift, which is exact for streams whose timestamps
// advance in whole packets, and compact enough to keep [Stream] small.
//
// Asterisk's rules kept here: the first frame (and any frame put while the
// buffer is empty and the frame is late) sets delivery = arrival + delay
// (put_first); a frame whose slot has passed is dropped unless its offset
// from the buffer's tail is at least the resync threshold, in which case the
// buffer is re-anchored on it (resynch_jb); so is a frame more than
// delay+resync ahead.
type jbuf struct {
	delayNs  int64
	resyncMS int64
	started  bool
	anchorNs int64 // playout time of slot 0
	shift    int64 // slot = extTS/ptimeTS + shift
	next     int64 // next slot to play
	tail     int64 // highest slot queued
	pending  int32
	interp   int32 // ticks without a frame since the last delivered one
	lost     int32 // interval counters
	bursts   int32
	present  [jbSlots / 64]uint64
	noCount  [jbSlots / 64]uint64
}

func (b *jbuf) init(delayMS, resyncMS int64) {
	*b = jbuf{delayNs: delayMS * 1e6, resyncMS: resyncMS}
}

func bit(r *[jbSlots / 64]uint64, k int64) bool {
	i := uint64(k) % jbSlots
	return r[i/64]&(1<<(i%64)) != 0
}

func setBit(r *[jbSlots / 64]uint64, k int64, v bool) {
	i := uint64(k) % jbSlots
	if v {
		r[i/64] |= 1 << (i % 64)
	} else {
		r[i/64] &^= 1 << (i % 64)
	}
}

// put takes due ticks up to now and then queues the frame with extended
// timestamp ts (ticks of ptimeTS each, ptimeNs long).
func (b *jbuf) put(ts, now, ptimeTS, ptimeNs int64, noCount bool) {
	slot := floorDiv(ts, ptimeTS)
	if !b.started {
		b.started = true
		b.first(slot, now, ptimeNs, noCount)
		return
	}
	b.advance(now, ptimeNs)
	k := slot + b.shift
	late := k < b.next
	ahead := (k-b.next)*ptimeNs > b.delayNs+b.resyncMS*1e6 || k-b.next >= jbSlots
	if late || ahead {
		if b.pending == 0 {
			b.first(slot, now, ptimeNs, noCount)
			return
		}
		offMS := (k - b.tail - 1) * ptimeNs / 1e6
		if offMS > -b.resyncMS && offMS < b.resyncMS {
			return // dropped: its tick was (or will be) interpolated
		}
		b.shift += b.tail + 1 - k
		k = b.tail + 1
		if k-b.next >= jbSlots {
			return
		}
	}
	if bit(&b.present, k) {
		return
	}
	setBit(&b.present, k, true)
	setBit(&b.noCount, k, noCount)
	b.pending++
	b.tail = max(b.tail, k)
}

// first is Asterisk's fixed_jb_put_first: the frame plays one delay after
// its arrival, at slot next.
func (b *jbuf) first(slot, now, ptimeNs int64, noCount bool) {
	b.shift = b.next - slot
	b.anchorNs = now + b.delayNs - b.next*ptimeNs
	b.tail = b.next
	setBit(&b.present, b.next, true)
	setBit(&b.noCount, b.next, noCount)
	b.pending = 1
}

// advance plays every tick whose playout time is ≤ now.
func (b *jbuf) advance(now, ptimeNs int64) {
	if now < b.anchorNs {
		return
	}
	last := (now - b.anchorNs) / ptimeNs // last due slot
	for b.next <= last {
		if b.pending == 0 {
			n := last - b.next + 1
			b.interp = int32(min(int64(b.interp)+n, maxCountedBurst))
			b.next = last + 1
			return
		}
		b.play(b.next)
		b.next++
	}
}

func (b *jbuf) play(k int64) {
	if !bit(&b.present, k) {
		if b.interp < maxCountedBurst {
			b.interp++
		}
		return
	}
	setBit(&b.present, k, false)
	b.pending--
	if b.interp > 0 && !bit(&b.noCount, k) && b.interp < maxCountedBurst {
		b.lost += b.interp
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
