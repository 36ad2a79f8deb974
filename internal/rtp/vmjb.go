package rtp

// This file simulates the two jitter buffers the VoIPmonitor sniffer
// (2026.04.0, jitterbuffer/) runs per RTP stream to score MOS: Asterisk's
// fixed buffer (fixedjitterbuf.c with VoIPmonitor's RESYNCH_V1 changes) and
// Asterisk's adaptive one (jitterbuf.c by Steve Kann), both driven through
// abstract_jb.c. The rules are restated from that source as facts; times are
// in milliseconds of the sniffer's clock, frame timestamps in RTP timestamp
// units divided by clock/1000, as the sniffer feeds them.

// vmFrame is one queued frame. jbts is the buffer's own timestamp (shifted
// by resyncs in the fixed buffer; the resync-relative ts in the adaptive
// one); ts, seq, marker and afterDTMF are the frame as the sniffer built it
// (ast_frame ts, seqno, marker, lastframetype != VOICE).
type vmFrame struct {
	jbts      int32
	delivery  int32 // fixed buffer: playout time
	ts        int32
	seq       uint16
	ms        int16
	marker    bool
	afterDTMF bool
}

// vmQueue is a ring of frames kept in the order the buffer wants (delivery
// time, or resync ts); its size is a power of two, and it grows by doubling
// when full, which a buffer of 500 ms at 20 ms packets never needs.
type vmQueue struct {
	buf     []vmFrame
	head, n int
}

func (q *vmQueue) at(i int) *vmFrame { return &q.buf[(q.head+i)&(len(q.buf)-1)] }

// vmQueueMax bounds a queue. The sniffer's lists are unbounded, but a
// buffer holds at most its delay window of frames unless a stream floods it
// with frames of one timestamp; the excess is dropped here.
const vmQueueMax = 1024

// insert puts f at position i (0 ≤ i ≤ n), moving the frames after it.
func (q *vmQueue) insert(i int, f vmFrame) {
	if q.n == vmQueueMax {
		return
	}
	if q.n == len(q.buf) {
		nb := make([]vmFrame, max(2*len(q.buf), 8))
		for k := 0; k < q.n; k++ {
			nb[k] = *q.at(k)
		}
		q.buf, q.head = nb, 0
	}
	for k := q.n; k > i; k-- {
		*q.at(k) = *q.at(k - 1)
	}
	*q.at(i) = f
	q.n++
}

func (q *vmQueue) popFront() vmFrame {
	f := q.buf[q.head]
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return f
}

func (q *vmQueue) clear() { q.head, q.n = 0, 0 }

// Results of a buffer's put and get, abstract_jb.c's JB_IMPL_* codes.
const (
	vmOK = iota
	vmDrop
	vmInterp
	vmNoFrame
)

// vmLongMax is JB_LONGMAX: the adaptive buffer's "next" when it is empty in
// silence mode.
const vmLongMax = 2147483647

// vmFixed is fixedjitterbuf.c's fixed_jb: frames sorted by delivery time
// (rxcore + delay + ts), played one per tick; a frame too late or too far
// ahead makes resynch_jb decide between dropping it and re-anchoring the
// buffer on it.
type vmFixed struct {
	q                vmQueue
	rxcore, next     int64 // receiver-time base, next_delivery
	delay, threshold int64 // jbsize and resync_threshold (50/100 and 200/200)
	skewSum          int64
	skewCount        int64
	force            bool // force_resynch, set by a marked frame
}

// putFirst is fixed_jb_put_first: the frame plays one delay from now.
func (b *vmFixed) putFirst(c *vmChan, f vmFrame, now int64, marker bool) int {
	b.rxcore = now - int64(f.jbts)
	b.next = now + b.delay
	return b.put(c, f, now, marker)
}

// flush is jb_fixed_flush_deliver: every queued frame leaves, unplayed and
// uncounted; next_delivery follows the last one.
func (b *vmFixed) flush() {
	for b.q.n > 0 {
		h := b.q.popFront()
		b.next = int64(h.delivery) + int64(h.ms)
	}
}

// put is fixed_jb_put as VoIPmonitor changed it: a late frame also counts
// one more frame of the current loss burst unless it is marked, and the
// 10 ms tolerance and the marker rule (a marked frame more than two
// frame lengths off the tail forces a resync) are VoIPmonitor's.
func (b *vmFixed) put(c *vmChan, f vmFrame, now int64, marker bool) int {
	ts, ms := int64(f.jbts), int64(f.ms)
	delivery := b.rxcore + b.delay + ts
	b.skewSum += ts - (now - b.rxcore)
	b.skewCount++
	if delivery < b.next {
		if !marker {
			c.burst++
		}
		r := b.resynch(c, f, now)
		if marker {
			b.rxcore = now - ts
		}
		return r
	}
	if marker && b.q.n > 0 && b.offTail(ts) {
		b.force = true
		return b.resynch(c, f, now)
	} else if delivery > b.next+b.delay+b.threshold {
		return b.resynch(c, f, now)
	}
	p := b.q.n - 1
	for p >= 0 && int64(b.q.at(p).delivery) > delivery {
		p--
	}
	if b.force || (p >= 0 && b.covered(p, delivery, ms)) {
		r := b.resynch(c, f, now)
		b.force = false
		return r
	}
	b.force = false
	f.delivery = int32(delivery)
	b.q.insert(p+1, f)
	return vmOK
}

// offTail reports whether ts is more than two frame lengths away from
// where the frame after the tail would start. (The sniffer widens this to
// four after a DTMF frame in the buffer; only G.729/AMR comfort-noise
// frames are such frames, and they are not simulated here.)
func (b *vmFixed) offTail(ts int64) bool {
	t := b.q.at(b.q.n - 1)
	tt, tm := int64(t.jbts), int64(t.ms)
	return ts > tt+tm+2*tm || ts < tt+tm-2*tm
}

// covered reports whether a frame delivered at delivery for ms would
// overlap the queued frame p or the one after it.
func (b *vmFixed) covered(p int, delivery, ms int64) bool {
	fp := b.q.at(p)
	if int64(fp.delivery) == delivery || delivery+10 < int64(fp.delivery)+int64(fp.ms) {
		return true
	}
	return p+1 < b.q.n && delivery+ms > int64(b.q.at(p+1).delivery)
}

// resynch is resynch_jb (RESYNCH_V1). The offset is how far the frame's
// timestamp is from just after the tail. Within ±threshold the frame is
// dropped when it is behind (or, unforced, when it arrived before its
// rxcore allowed), else the buffer is flushed and restarted on it; a steady
// skew of more than half the delay restarts it too. Beyond the threshold the
// buffer shifts by the offset and queues the frame at its end.
func (b *vmFixed) resynch(c *vmChan, f vmFrame, now int64) int {
	if b.q.n == 0 {
		b.force = false
		return b.putFirst(c, f, now, false)
	}
	t := b.q.at(b.q.n - 1)
	ts := int64(f.jbts)
	offset := ts - int64(t.jbts) - int64(t.ms)
	if offset < b.threshold && offset > -b.threshold {
		if !b.force {
			if b.skewCount > 10 && abs64(b.skewSum/b.skewCount) > b.delay/2 {
				b.skewSum, b.skewCount = 0, 0
				b.flush()
				return b.putFirst(c, f, now, false)
			}
			if offset < 0 || now-ts < b.rxcore-b.delay {
				return vmDrop
			}
			b.flush()
			return b.putFirst(c, f, now, false)
		}
		b.force = false
		if offset < 0 {
			return vmDrop
		}
		b.flush()
		return b.putFirst(c, f, now, false)
	}
	b.force = false
	b.rxcore -= offset
	for i := 0; i < b.q.n; i++ {
		b.q.at(i).jbts += int32(offset)
	}
	return b.put(c, f, now, false)
}

// get is fixed_jb_get for the tick at now with interpolation length interp.
func (b *vmFixed) get(now, interp int64) (int, vmFrame) {
	if now < b.next {
		return vmNoFrame, vmFrame{}
	}
	if b.q.n == 0 {
		b.next += interp
		return vmInterp, vmFrame{}
	}
	h := b.q.at(0)
	end := int64(h.delivery) + int64(h.ms)
	if now > end {
		b.next = end
		return vmDrop, b.q.popFront()
	}
	if now < int64(h.delivery) {
		b.next += interp
		return vmInterp, vmFrame{}
	}
	b.next = end
	return vmOK, b.q.popFront()
}

// Adaptive buffer constants (jitterbuf.h) and VoIPmonitor's configuration of
// it (abstract_jb.c jb_create_adaptive, rtp.cpp): 500 ms maximum, 500 ms
// resync threshold, at most 10 interpolated frames in a row.
const (
	jbHistorySz     = 500
	jbHistoryDrop   = 3 // JB_HISTORY_DROPPCT
	jbMaxbufSz      = jbHistorySz * 4 / 100
	jbTargetExtra   = 40
	jbAdjustDelay   = 40
	adMaxJitterbuf  = 500
	adResync        = 500
	adMaxContInterp = 10
)

// vmAdaptive is jitterbuf.c's jitterbuf. Its delay follows the spread of
// the last 500 arrival delays (the 3 % highest and lowest dropped) plus
// 40 ms, at most 500 ms; it starts, and returns after 10 interpolations in
// a row, in "silence" mode, where it waits for the next frame.
type vmAdaptive struct {
	q vmQueue // sorted by jbts (ts − resync_offset)

	jitter, min, current, target   int64
	nextVoiceTS, lastVoiceMS       int64
	silenceBeginTS, lastAdjustment int64
	lastDelay, cntDelayDiscont     int64
	resyncOffset, cntContigInterp  int64
	framesIn                       int64

	histPtr  int
	maxValid bool              // maxbuf matches the history window
	minValid bool              // minbuf matches the history window
	maxbuf   [jbMaxbufSz]int32 // highest delays, highest first
	minbuf   [jbMaxbufSz]int32 // lowest delays, lowest first
	history  [jbHistorySz]int32
}

// reset is jb_reset: everything but the configuration is cleared; current
// and target start at JB_TARGET_EXTRA, in silence mode.
func (j *vmAdaptive) reset() {
	q := j.q
	q.clear()
	*j = vmAdaptive{q: q}
	j.current, j.target = jbTargetExtra, jbTargetExtra
	j.silenceBeginTS = -1
}

// historyPut is history_put: a delay far (2·jitter + 500 ms) from the last
// one is refused, and the fourth in a row resyncs the buffer on it.
func (j *vmAdaptive) historyPut(ts, now int64) bool {
	delay := now - (ts - j.resyncOffset)
	threshold := 2*j.jitter + adResync
	if ts <= 0 {
		return true
	}
	if j.framesIn == 0 {
		j.cntDelayDiscont, j.histPtr, j.maxValid, j.minValid = 0, 0, false, false
		j.resyncOffset = ts - now
		j.lastDelay, delay = 0, 0
	} else if abs64(delay-j.lastDelay) > threshold {
		j.cntDelayDiscont++
		if j.cntDelayDiscont <= 3 {
			return false
		}
		j.cntDelayDiscont, j.histPtr, j.maxValid, j.minValid = 0, 0, false, false
		j.resyncOffset = ts - now
		j.lastDelay, delay = 0, 0
	} else {
		j.lastDelay = delay
		j.cntDelayDiscont = 0
	}
	fresh := j.histPtr < jbHistorySz // no older delay is pushed out
	kicked := int64(j.history[j.histPtr%jbHistorySz])
	j.history[j.histPtr%jbHistorySz] = int32(delay)
	j.histPtr++
	// jitterbuf.c recomputes both buffers from the window whenever the new
	// or the pushed-out delay could change them. Each buffer depends only on
	// the window's values, so it is updated here by inserting the new delay
	// when that gives the same result: while the window fills (nothing is
	// pushed out), or when the pushed-out delay lies strictly beyond the
	// buffer's last entry (so it was not in it). Otherwise that buffer is
	// recomputed at the next historyGet.
	last := jbMaxbufSz - 1
	if j.maxValid {
		if fresh || kicked < int64(j.maxbuf[last]) {
			j.insertMax(delay)
		} else {
			j.maxValid = false
		}
	}
	if j.minValid {
		if fresh || kicked > int64(j.minbuf[last]) {
			j.insertMin(delay)
		} else {
			j.minValid = false
		}
	}
	return true
}

// insertMax puts v into the sorted maxbuf when it beats its last entry,
// after the entries that are ≥ v (history_calc_maxbuf's insertion sort).
func (j *vmAdaptive) insertMax(v int64) {
	b := &j.maxbuf
	if v <= int64(b[jbMaxbufSz-1]) {
		return
	}
	k := jbMaxbufSz - 1
	for k > 0 && int64(b[k-1]) < v {
		b[k] = b[k-1]
		k--
	}
	b[k] = int32(v)
}

// insertMin is insertMax for minbuf (ascending).
func (j *vmAdaptive) insertMin(v int64) {
	b := &j.minbuf
	if v >= int64(b[jbMaxbufSz-1]) {
		return
	}
	k := jbMaxbufSz - 1
	for k > 0 && int64(b[k-1]) > v {
		b[k] = b[k-1]
		k--
	}
	b[k] = int32(v)
}

// calcMaxbuf is history_calc_maxbuf: the 20 highest and lowest delays of
// the history window (only the buffers that are out of date).
func (j *vmAdaptive) calcMaxbuf() {
	if j.histPtr == 0 {
		return
	}
	doMax, doMin := !j.maxValid, !j.minValid
	for i := range jbMaxbufSz {
		if doMax {
			j.maxbuf[i] = -1 << 31
		}
		if doMin {
			j.minbuf[i] = 1<<31 - 1
		}
	}
	// The window is the first histPtr slots, or all of them once the ring
	// has wrapped; the buffers do not depend on the order of the scan.
	win := j.history[:min(j.histPtr, jbHistorySz)]
	if doMax {
		lo := int32(-1 << 31)
		for _, v := range win {
			if v > lo {
				j.insertMax(int64(v))
				lo = j.maxbuf[jbMaxbufSz-1]
			}
		}
	}
	if doMin {
		hi := int32(1<<31 - 1)
		for _, v := range win {
			if v < hi {
				j.insertMin(int64(v))
				hi = j.minbuf[jbMaxbufSz-1]
			}
		}
	}
	j.maxValid, j.minValid = true, true
}

// historyGet is history_get: jitter is the spread between the 3rd-percentile
// highest and lowest delays, min the lowest.
func (j *vmAdaptive) historyGet() {
	if !j.maxValid || !j.minValid {
		j.calcMaxbuf()
	}
	count := min(j.histPtr, jbHistorySz)
	idx := min(count*jbHistoryDrop/100, jbMaxbufSz-1)
	j.min = int64(j.minbuf[idx])
	j.jitter = int64(j.maxbuf[idx]) - j.min
}

// put is jb_put: a frame is refused when the queue already spans 500 ms or
// its delay is refused; otherwise it is queued in ts order (duplicates too).
func (j *vmAdaptive) put(f vmFrame, now int64) int {
	if j.q.n > 0 && int64(j.q.at(j.q.n-1).jbts)-int64(j.q.at(0).jbts) >= adMaxJitterbuf {
		return vmDrop
	}
	ts := int64(f.ts)
	if !j.historyPut(ts, now) {
		return vmDrop
	}
	j.framesIn++
	rts := ts - j.resyncOffset
	f.jbts = int32(rts)
	i := j.q.n
	if i > 0 && rts < int64(j.q.at(0).jbts) {
		i = 0
	} else {
		for i > 1 && rts < int64(j.q.at(i-1).jbts) {
			i--
		}
	}
	j.q.insert(i, f)
	return vmOK
}

// queueGet is queue_get: the head frame if its ts ≤ ts.
func (j *vmAdaptive) queueGet(ts int64) (vmFrame, bool) {
	if j.q.n == 0 || ts < int64(j.q.at(0).jbts) {
		return vmFrame{}, false
	}
	return j.q.popFront(), true
}

// get is _jb_get for now; interp is the packetization. Results are mapped
// as abstract_jb.c maps them (JB_NOFRAME and JB_EMPTY → no frame).
func (j *vmAdaptive) get(now, interp int64) (int, vmFrame) {
	j.historyGet()
	j.target = j.jitter + j.min + jbTargetExtra
	if j.target-j.min > adMaxJitterbuf {
		j.target = j.min + adMaxJitterbuf
	}
	diff := j.target - j.current
	if j.silenceBeginTS == 0 {
		span := int64(0)
		if j.q.n > 0 {
			span = int64(j.q.at(j.q.n-1).jbts) - int64(j.q.at(0).jbts)
		}
		if diff > 0 && (j.lastAdjustment+jbAdjustDelay < now || diff > span) {
			j.current += interp
			j.nextVoiceTS += interp
			j.lastVoiceMS = interp
			j.lastAdjustment = now
			j.countInterp()
			return vmInterp, vmFrame{}
		}
		f, ok := j.queueGet(j.nextVoiceTS - j.current)
		if ok && int64(f.jbts)+j.current < j.nextVoiceTS {
			if int64(f.jbts)+j.current > j.nextVoiceTS-j.lastVoiceMS {
				j.nextVoiceTS = int64(f.jbts) + j.current + int64(f.ms)
				j.cntContigInterp = 0
				return vmOK, f
			}
			return vmDrop, f
		}
		if ok && f.ms > 0 {
			j.lastVoiceMS = int64(f.ms)
		}
		if diff < -jbTargetExtra && ((!ok && j.lastAdjustment+80 < now) || j.lastAdjustment+500 < now) {
			j.lastAdjustment = now
			j.cntContigInterp = 0
			if ok {
				j.current -= int64(f.ms)
				return vmDrop, f
			}
			j.current -= j.lastVoiceMS
			return vmNoFrame, vmFrame{}
		}
		if !ok {
			j.nextVoiceTS += interp
			j.lastVoiceMS = interp
			j.countInterp()
			return vmInterp, vmFrame{}
		}
		j.nextVoiceTS += int64(f.ms)
		j.cntContigInterp = 0
		return vmOK, f
	}
	if diff < -jbTargetExtra && j.lastAdjustment+10 <= now {
		j.current -= interp
		j.lastAdjustment = now
	}
	f, ok := j.queueGet(now - j.current)
	if !ok {
		return vmNoFrame, vmFrame{}
	}
	if int64(f.jbts) < j.silenceBeginTS {
		return vmDrop, f
	}
	j.current = j.target
	j.silenceBeginTS = 0
	j.nextVoiceTS = int64(f.jbts) + j.current + int64(f.ms)
	j.lastVoiceMS = int64(f.ms)
	return vmOK, f
}

// countInterp counts an interpolated frame; the tenth in a row enters
// silence mode.
func (j *vmAdaptive) countInterp() {
	j.cntContigInterp++
	if j.cntContigInterp >= adMaxContInterp {
		j.silenceBeginTS = j.nextVoiceTS - j.current
	}
}

// next is jb_next: when the next get is due.
func (j *vmAdaptive) next() int64 {
	if j.silenceBeginTS != 0 {
		if j.q.n == 0 {
			return vmLongMax
		}
		n := int64(j.q.at(0).jbts)
		j.historyGet()
		if j.target-j.current < -jbTargetExtra {
			return j.lastAdjustment + 10
		}
		return n + j.target
	}
	return j.nextVoiceTS
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
