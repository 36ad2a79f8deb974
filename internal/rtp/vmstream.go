package rtp

import (
	"math"
	"time"
)

// This file replays, per RTP stream, what the VoIPmonitor sniffer
// (2026.04.0, rtp.cpp RTP::read, RTP::jitterbuffer, RTP::update_seq,
// RTP::update_stats, RTP::save_mos_graph, calculate_mos_fromrtp,
// burstr_calculate; calltable.cpp for the CDR columns) does to compute the
// MOS of its three simulated jitter buffers and its jitter figures, with
// its default settings. Facts restated from that source are named in the
// comments; none of its code is copied.

// vmChanKind selects a simulated buffer: fixed 50 ms (resync 100 ms), fixed
// 200 ms (resync 200 ms), adaptive up to 500 ms (resync 500 ms).
const (
	vmF1 = iota
	vmF2
	vmAD
)

// ignoreBurstAbove is ignore_mos_degradation_for_contiguous_packet_loss_greater_than
// (default 1024): a run of that many or more missing frames is a pause,
// not loss. rtpPause is ignore_mos_degradation_in_rtp_pause_without_seq_gap
// (default 1000 ms).
const (
	ignoreBurstAbove = 1024
	rtpPauseMS       = 1000
)

// vmChan is the part of the sniffer's ast_channel a simulated buffer uses:
// its tick clock (last_ts), the buffer's time base, the current run of
// missing frames (last_loss_burst) and the loss histogram summed as
// burstr_calculate sums it (lost frames and bursts, with the snapshot taken
// at the last MOS interval).
type vmChan struct {
	created, tbInit, reseted bool
	timebase, lastTick       int64 // µs
	burst                    int64
	lastSeqno                uint32
	lastMS                   int64
	lost, bursts             int64
	ivLost, ivBursts         int64
	lastReceived             uint32

	fixed    vmFixed
	adaptive *vmAdaptive // nil for the fixed buffers
}

// nowMS is get_now / ast_tvdiff_ms: whole ms since the time base, floored.
func (c *vmChan) nowMS(us int64) int64 { return floorDiv(us-c.timebase, 1000) }

// destroy is ast_jb_empty_and_reset + ast_jb_destroy: the buffer and its time
// base go; the loss run and histogram stay.
func (c *vmChan) destroy() {
	c.created, c.tbInit = false, false
	c.fixed.q.clear()
	if c.adaptive != nil {
		c.adaptive.reset()
	}
}

// put is ast_jb_put for a voice frame arriving at us (µs).
func (c *vmChan) put(f vmFrame, us int64) {
	if f.marker && c.created {
		// chan->resync is 1 for the MOS buffers: a marked frame forces a
		// resync (the adaptive buffer is emptied and reset).
		if c.adaptive != nil {
			c.adaptive.reset()
		} else {
			c.fixed.force = true
		}
	}
	if f.ms < 2 || f.ts < 0 {
		return
	}
	now := c.nowMS(us)
	if !c.created {
		c.created = true
		if c.adaptive != nil {
			c.adaptive.reset()
			c.adaptive.put(f, now)
			return
		}
		q := c.fixed.q
		q.clear()
		c.fixed = vmFixed{q: q, delay: c.fixed.delay, threshold: c.fixed.threshold}
		c.fixed.putFirst(c, f, now, f.marker)
		return
	}
	if c.adaptive != nil {
		c.adaptive.put(f, now)
		return
	}
	c.fixed.put(c, f, now, f.marker)
}

// next is the buffer's jb_next.
func (c *vmChan) next() int64 {
	if c.adaptive != nil {
		return c.adaptive.next()
	}
	return c.fixed.next
}

// getAndDeliver is jb_get_and_deliver for the tick at us: every frame due
// is taken; an interpolated, dropped or missing frame lengthens the loss
// run, and a delivered frame closes it into the histogram unless the frame
// is marked, follows a DTMF frame, continues the sequence after a timestamp
// jump (silence suppression), or the run is a pause (≥ 1024).
func (c *vmChan) getAndDeliver(us, ptime int64) {
	if !c.created || us < c.timebase {
		return
	}
	now := c.nowMS(us)
	next := c.next()
	if next == vmLongMax {
		c.burst++
		return
	}
	if now < next {
		return
	}
	for now >= next {
		var res int
		var f vmFrame
		if c.adaptive != nil {
			res, f = c.adaptive.get(now, ptime)
		} else {
			res, f = c.fixed.get(now, ptime)
		}
		switch res {
		case vmOK:
			silence := uint32(int64(f.seq))-c.lastSeqno == 1 && abs64(int64(f.ts)-c.lastMS) > ptime
			if !silence && !f.marker && c.burst > 0 && c.burst < ignoreBurstAbove && !f.afterDTMF {
				c.addBurst(c.burst)
			}
			c.burst = 0
			c.lastSeqno = uint32(f.seq)
			c.lastMS = int64(f.ts)
		case vmDrop, vmInterp:
			c.burst++
		default:
			c.burst++
			return
		}
		next = c.next()
	}
}

// addBurst files a run of n missing frames into the loss histogram:
// loss[n]++, a run over 128 adding loss[127] per 128 frames first.
func (c *vmChan) addBurst(n int64) {
	for n > 128 {
		c.lost += 127
		c.bursts++
		n -= 128
	}
	c.lost += n
	c.bursts++
}

// vmState is a stream's sniffer emulation, allocated at its second packet.
type vmState struct {
	ch [3]vmChan
	ad vmAdaptive

	// RTP::read state
	lastSeq       int32 // -1 before the first packet
	lastMarkbit   bool
	lastRTPTS     uint32 // last_ts: 0 after a marked packet
	lastDTMF      bool   // lastframetype == AST_FRAME_DTMF
	lastCNG       bool
	prevEvent     bool // prev_codec was telephone-event
	codecSet      bool
	packetization int64
	defaultPtime  int64
	lastPtime     int64
	ptIter        int
	changeIter    int
	prevPlen      int
	firstUS       int64
	lastUS        int64

	// update_seq (RFC 3550 A.1 with probation 2) and update_stats
	seqFirst     bool
	probation    int
	baseSeq      uint32
	maxSeq       uint16
	badSeq       uint32
	cycles       int64
	sReceived    uint32
	received     uint32 // stats.received
	lastLost     int64
	lastTimeStmp uint32 // s->lastTimeStamp
	lastTimeRecJ int64  // µs
	lastVoiceUS  int64  // last_voice_frame_ts, 0 unset
	lastVoiceTS  uint32
	prevJitter   float64
	jitter       float64 // rtp->jitter: the last J computed (prevJitter is reset by a restart, this is not)
	avgJitter    float64
	maxJitter    float64

	// save_mos_graph
	lastSaveMS int64
	saveWait   int
	mosTimeMS  int64
	intervals  int
	mosAvg     [3]float32
	mosMin     [3]uint8
	mosLast    [3]uint8
	// last_stat_lost and last_stat_received at the last interval mark, and
	// the loss percentage of the interval it closed
	ivStatLost int64
	ivStatRecv uint32
	lossLast   float64

	// The jitter J of the voice packets since the last interval closed
	// (sum, count, maximum), and the newest closed intervals: hist[(n-1) %
	// MaxIntervals] is interval n (intervals counts them).
	ivJSum float64
	ivJN   int64
	ivJMax float64
	hist   [MaxIntervals]intervalRec
}

// MaxIntervals is how many closed MOS intervals a [Stream] keeps, the
// newest: 32 of about 10 s each, five minutes and a half of a stream's
// history in 384 bytes.
const MaxIntervals = 32

// intervalRec is one closed interval, packed (12 bytes): the stream time
// it closed at in whole seconds, the MOS×10 of each buffer, the loss in
// percent ×100 and the jitter's mean and maximum in ms ×10, saturated.
type intervalRec struct {
	endS                 uint16
	mos                  [3]uint8
	lossX100             uint16
	jitAvgX10, jitMaxX10 uint16
}

// sat16 is v rounded and clamped to [0, 65535].
func sat16(v float64) uint16 {
	switch {
	case !(v > 0):
		return 0
	case v >= 65535:
		return 65535
	}
	return uint16(math.Round(v))
}

// Interval is one closed 10 s MOS interval of a stream, with the
// sniffer's figures for it.
type Interval struct {
	// End is when the interval closed, from the stream's first packet, in
	// whole seconds.
	End time.Duration
	// MOSMult10 is the interval's MOS×10 per buffer (f1, f2, adaptive):
	// the values the stream's average and minimum are made of.
	MOSMult10 [3]int
	// LossPct is the interval's loss in percent (src_loss_last10sec
	// while it is the last one), to 0.01.
	LossPct float64
	// JitterAvgMS and JitterMaxMS are the mean and the maximum of the
	// sniffer's jitter J over the interval's voice packets, to 0.1 ms.
	JitterAvgMS, JitterMaxMS float64
}

// record files the interval saveMOS just closed. Its jitter figures start
// over.
func (v *vmState) record() {
	r := &v.hist[(v.intervals-1)%MaxIntervals]
	r.endS = sat16(float64(v.lastUS-v.firstUS) / 1e6)
	r.mos = v.mosLast
	r.lossX100 = sat16(v.lossLast * 100)
	r.jitAvgX10, r.jitMaxX10 = 0, sat16(v.ivJMax*10)
	if v.ivJN > 0 {
		r.jitAvgX10 = sat16(v.ivJSum / float64(v.ivJN) * 10)
	}
	v.ivJSum, v.ivJN, v.ivJMax = 0, 0, 0
}

// intervals appends the kept intervals to dst, oldest first.
func (v *vmState) appendIntervals(dst []Interval) []Interval {
	n := min(v.intervals, MaxIntervals)
	for i := v.intervals - n; i < v.intervals; i++ {
		r := &v.hist[i%MaxIntervals]
		dst = append(dst, Interval{
			End:         time.Duration(r.endS) * time.Second,
			MOSMult10:   [3]int{int(r.mos[0]), int(r.mos[1]), int(r.mos[2])},
			LossPct:     float64(r.lossX100) / 100,
			JitterAvgMS: float64(r.jitAvgX10) / 10, JitterMaxMS: float64(r.jitMaxX10) / 10,
		})
	}
	return dst
}

// vmParams are the buffers' jbsize and resync_threshold (rtp.cpp RTP::RTP).
var vmParams = [3]struct{ delay, threshold int64 }{{50, 100}, {200, 200}, {500, 500}}

func newVMState() *vmState {
	v := &vmState{lastSeq: -1, seqFirst: true, defaultPtime: 20}
	for i := range v.ch {
		c := &v.ch[i]
		c.fixed.delay, c.fixed.threshold = vmParams[i].delay, vmParams[i].threshold
	}
	v.ch[vmF1].fixed.q.buf = make([]vmFrame, 16)
	v.ch[vmF2].fixed.q.buf = make([]vmFrame, 32)
	v.ad.q.buf = make([]vmFrame, 32)
	v.ad.reset()
	v.ch[vmAD].adaptive = &v.ad
	v.mosMin = [3]uint8{45, 45, 45}
	v.mosLast = [3]uint8{45, 45, 45}
	return v
}

// vmPacket is what the emulation needs of one packet.
type vmPacket struct {
	us     int64
	ts     uint32
	seq    uint16
	plen   int
	pt     uint8
	marker bool
	event  bool // RFC 4733 telephone-event
	cn     bool // comfort noise
	rate   uint32
}

func (v *vmState) destroyAll() {
	for i := range v.ch {
		v.ch[i].destroy()
	}
}

// read is RTP::read for one packet, in the sniffer's order of steps.
func (v *vmState) read(p *vmPacket) {
	if v.firstUS == 0 {
		v.firstUS = p.us
	}
	v.lastUS = p.us
	seq := int32(p.seq)
	// A copy of the previous packet is dropped, unless it adds a marker.
	if seq == v.lastSeq && !(!v.lastMarkbit && p.marker) {
		return
	}
	v.lastMarkbit = p.marker
	if !p.event && !p.cn && p.rate == 0 && !v.codecSet {
		return // codec cannot be determined: ignored
	}
	rate := p.rate
	if rate < 1000 {
		rate = 8000
	}
	sr := int64(rate)
	if v.lastSeq != -1 && uint16(v.lastSeq+1) != p.seq {
		// A sequence gap whose timestamp shows none: the buffers restart.
		if v.lastTimeStmp == p.ts-uint32(sr/1000*v.packetization) {
			v.destroyAll()
		} else {
			v.lastTimeStmp = p.ts - uint32(sr/1000*v.packetization)
		}
	}
	if p.marker {
		v.cycles = v.cycles - int64(v.baseSeq) + int64(v.maxSeq)
		v.baseSeq = uint32(p.seq)
		v.maxSeq = p.seq
	}
	if v.lastDTMF && !p.event {
		v.destroyAll()
	}
	if p.cn || p.event {
		v.lastSeq = seq
		if v.updateSeq(p) {
			v.updateStats(p, sr)
		}
		v.prevEvent = p.event
		v.lastDTMF = p.event
		v.lastCNG = p.cn
		return
	}
	v.codecSet = true
	v.ptimeStep(p, sr)
	v.prevPlen = p.plen
	v.prevEvent = false
	if p.marker {
		v.lastRTPTS = 0
	} else {
		v.lastRTPTS = p.ts
	}
	if v.updateSeq(p) {
		v.updateStats(p, sr)
	}
	v.lastDTMF = false
	v.lastSeq = seq
	v.lastCNG = false
	v.mosStep()
}

// payloadPtime is the packetization the sniffer reads from the payload
// length of the codecs where it does so (0: use timestamps).
func payloadPtime(pt uint8, plen int) int64 {
	switch pt {
	case PTPCMU, PTPCMA, PTG722:
		return int64(plen / 8)
	case 3: // GSM
		return int64(plen / 33 * 20)
	case 4: // G.723.1
		switch plen {
		case 24:
			return 30
		case 48:
			return 60
		case 72:
			return 90
		}
	}
	return 0
}

func payloadPtimeCodec(pt uint8) bool {
	return pt == PTPCMU || pt == PTPCMA || pt == PTG722 || pt == 3 || pt == 4
}

// tsPtime is the packetization from the timestamp step, as the sniffer
// computes it (unsigned difference; G.729 from its payload length).
func (v *vmState) tsPtime(p *vmPacket, sr int64) int64 {
	if p.pt == PTG729 && p.plen%10 == 0 && p.plen >= 10 && p.plen <= 60 {
		return int64(p.plen)
	}
	return int64((p.ts - v.lastRTPTS) / uint32(sr/1000))
}

// ptimeStep is the packetization part of RTP::read and its calls of
// RTP::jitterbuffer for the three MOS buffers: G.711/G.722/GSM/G.723 take it
// from the first packet's length, other codecs from two timestamp steps;
// later a change needs two packets in a row.
func (v *vmState) ptimeStep(p *vmPacket, sr int64) {
	consecutive := v.lastRTPTS != 0 && v.lastSeq != -1 && uint16(v.lastSeq+1) == p.seq
	if v.ptIter <= 1 {
		v.defaultPtime = 20
		if p.pt == 4 {
			v.defaultPtime = 30
		}
	}
	switch v.ptIter {
	case 0:
		if consecutive && !v.prevEvent {
			if pz := v.tsPtime(p, sr); pz > 0 {
				v.packetization, v.lastPtime = pz, pz
				v.ptIter = 1
			} else {
				v.packetization = pz
			}
		}
		if payloadPtimeCodec(p.pt) {
			a := payloadPtime(p.pt, p.plen)
			v.packetization, v.defaultPtime = a, a
			if a >= 10 {
				v.ptIter = 10
				v.jitterbuffers(p, sr)
			}
		}
		return
	case 1:
		if consecutive && !v.prevEvent {
			pz := (v.tsPtime(p, sr) + v.lastPtime) / 2
			v.packetization = pz
			if pz <= 0 || p.marker {
				v.ptIter = 0
			} else {
				v.ptIter = 2
				v.jitterbuffers(p, sr)
			}
		} else {
			v.ptIter = 0
		}
		return
	}
	if consecutive && !p.marker && v.prevPlen > 8 {
		var cur int64
		switch {
		case p.pt == PTPCMU || p.pt == PTPCMA || p.pt == PTG722:
			if p.plen/8 >= 20 {
				cur = int64(p.plen / 8)
			}
		case payloadPtimeCodec(p.pt):
			cur = payloadPtime(p.pt, p.plen)
		default:
			cur = v.tsPtime(p, sr)
		}
		if cur < 10 {
			cur = v.defaultPtime
		}
		if cur != v.packetization && cur%10 == 0 && cur >= 10 && cur <= 120 {
			v.changeIter++
		} else {
			v.changeIter = 0
		}
		if v.changeIter > 1 {
			v.packetization, v.lastPtime = cur, cur
			v.changeIter = 0
		}
	}
	if p.pt == 4 {
		if a := payloadPtime(p.pt, p.plen); a > 0 {
			v.packetization = a
		}
	}
	v.jitterbuffers(p, sr)
}

// jitterbuffers is RTP::jitterbuffer for each MOS buffer: the ticks due
// (one per packetization, starting one packetization after the previous
// tick) are played before the frame is put.
func (v *vmState) jitterbuffers(p *vmPacket, sr int64) {
	pz := v.packetization
	if pz <= 1 {
		return
	}
	div := uint32(max(sr/1000, 1))
	f := vmFrame{
		ts:        int32(p.ts / div),
		seq:       p.seq,
		ms:        int16(min(pz, 1<<15-1)),
		marker:    p.marker || v.lastCNG || v.lastDTMF,
		afterDTMF: v.lastDTMF,
	}
	f.jbts = f.ts
	lastTS := int64(v.lastRTPTS / div)
	for i := range v.ch {
		c := &v.ch[i]
		fr := f
		if !c.tbInit {
			c.timebase, c.tbInit = p.us, true
		}
		if c.timebase == p.us {
			c.lastTick = p.us
		}
		if !c.reseted {
			if c.created {
				c.fixed.q.clear()
				if c.adaptive != nil {
					c.adaptive.reset()
				}
			}
			c.reseted = true
			c.lastTick = p.us
			c.put(fr, p.us)
			continue
		}
		msdiff := floorDiv(p.us-(c.lastTick+pz*1000), 1000)
		if msdiff > pz*10000 {
			c.lastTick = p.us
			c.put(fr, p.us)
			continue
		}
		// A pause of ≥ 1 s with the next seq and the next timestamp is
		// not loss (ignore_mos_degradation_in_rtp_pause_without_seq_gap).
		if msdiff >= rtpPauseMS && v.lastSeq != -1 && uint16(v.lastSeq+1) == p.seq &&
			int64(fr.ts) > lastTS && int64(fr.ts)-lastTS == pz {
			fr.marker = true
		}
		for msdiff >= pz {
			if fr.marker || v.lastDTMF {
				c.burst = 0
			}
			c.getAndDeliver(c.lastTick, pz)
			c.lastTick += int64(fr.ms) * 1000
			msdiff -= pz
		}
		c.put(fr, p.us)
	}
}

// updateSeq is RTP::update_seq: RFC 3550 A.1 with two packets of probation,
// so stats.received starts at the third packet, and a loss of more than
// 200 within a second taken as an unmarked sequence reset.
func (v *vmState) updateSeq(p *vmPacket) bool {
	seq := p.seq
	lost := v.cycles + int64(seq) - int64(v.baseSeq+1) - int64(v.sReceived)
	if lost-v.lastLost > 200 && cIntAbs(float64(p.us-v.lastTimeRecJ)/1000) < 1000 {
		v.cycles = v.cycles - int64(v.baseSeq) + int64(v.maxSeq)
		v.baseSeq = uint32(seq)
		v.maxSeq = seq
	}
	if v.seqFirst {
		v.seqFirst = false
		v.initSeq(seq)
		v.maxSeq = seq - 1
		v.probation = 2
		v.lastTimeRecJ = p.us
		v.lastTimeStmp = p.ts
		return false
	}
	udelta := seq - v.maxSeq
	switch {
	case v.probation > 0:
		if int(seq) == int(v.maxSeq)+1 {
			v.probation--
			v.maxSeq = seq
			if v.probation == 0 {
				v.initSeq(seq)
				v.sReceived++
				v.received++
				return true
			}
		} else {
			v.probation = 1
			v.maxSeq = seq
		}
		return false
	case udelta < maxDropout:
		if seq < v.maxSeq {
			v.cycles += seqMod
		}
		v.maxSeq = seq
	case int(udelta) <= seqMod-maxMisorder:
		if uint32(seq) != v.badSeq {
			v.badSeq = uint32(seq+1) & (seqMod - 1)
			return false
		}
		v.initSeq(seq)
	}
	v.received++
	v.sReceived++
	return true
}

// cIntAbs is abs((int)x) as the sniffer's x86-64 build computes it: a value
// outside int's range converts to INT_MIN, whose abs stays negative.
func cIntAbs(x float64) int64 {
	if x >= 1<<31 || x <= -(1<<31) || x != x {
		return math.MinInt32
	}
	return abs64(int64(x))
}

func (v *vmState) initSeq(seq uint16) {
	v.baseSeq = uint32(seq)
	v.maxSeq = seq
	v.badSeq = seqMod + 1
	v.cycles = 0
	v.sReceived = 0
	v.prevJitter = 0
}

// updateStats is the jitter part of RTP::update_stats: D is the arrival
// step minus the timestamp step of consecutive voice packets (any order),
// J += (|D| − J)/16, a |D| over 5 s counting as 0; avgjitter is the running
// mean of J over stats.received, maxjitter its maximum. Telephone events,
// the voice packet right after one, and the first voice packet add nothing.
func (v *vmState) updateStats(p *vmPacket, sr int64) {
	lost := v.cycles + int64(v.maxSeq) - int64(v.baseSeq+1) - int64(v.sReceived)
	if lost < 0 {
		v.cycles -= lost
		lost = 0
	}
	if p.event || v.lastDTMF {
		if !p.event && v.lastVoiceUS == 0 {
			v.lastVoiceUS, v.lastVoiceTS = p.us, p.ts
		}
		return
	}
	transit := float64(p.us-v.lastVoiceUS)/1000 - (float64(p.ts)-float64(v.lastVoiceTS))/(float64(sr)/1000)
	if cIntAbs(transit) > 5000 {
		transit = 0
	}
	if v.lastVoiceUS == 0 {
		v.lastVoiceUS, v.lastVoiceTS = p.us, p.ts
		return
	}
	v.lastVoiceUS, v.lastVoiceTS = p.us, p.ts
	j := v.prevJitter + (math.Abs(transit)-v.prevJitter)/16
	v.prevJitter, v.jitter = j, j
	v.ivJSum += j
	v.ivJN++
	v.ivJMax = max(v.ivJMax, j)
	r := float64(v.received)
	v.avgJitter = (v.avgJitter*(r-1) + j) / r
	if v.maxJitter < j {
		v.maxJitter = j
	}
	v.lastTimeRecJ = p.us
	v.lastTimeStmp = p.ts
	v.lastLost = lost
}

// mosStep is the interval rule at the end of RTP::read: once more than 10 s
// (in whole ms) passed since the last interval mark (the first packet at
// first), the mark moves to now and 20 voice packets later the interval MOS
// of each buffer is computed. Without graph files nothing closes the last,
// partial interval.
func (v *vmState) mosStep() {
	mark := v.lastSaveMS
	if mark == 0 {
		mark = v.firstUS / 1000
	}
	if mark+10000 >= v.lastUS/1000 && v.saveWait == 0 {
		return
	}
	if v.saveWait == 0 {
		v.saveWait = 20
		v.lastSaveMS = v.lastUS / 1000
		return
	}
	v.saveWait--
	if v.saveWait == 0 {
		v.saveMOS()
	}
}

// saveMOS is the MOS part of RTP::save_mos_graph: each buffer's interval
// MOS×10 (an integer), its minimum, and the time-weighted average kept as a
// C float weighted by whole ms since the first packet.
func (v *vmState) saveMOS() {
	newT := (v.lastUS - v.firstUS) / 1000
	diff := int64(0)
	if v.mosTimeMS != 0 {
		diff = newT - v.mosTimeMS
	}
	for i := range v.ch {
		m := v.intervalMOS(&v.ch[i])
		v.mosLast[i] = m
		if m < v.mosMin[i] {
			v.mosMin[i] = m
		}
		if v.mosTimeMS != 0 && newT != 0 {
			// avg·time + interval·diff, fused into one single-precision
			// multiply-add as the sniffer's x86-64 build (-march=native,
			// GCC's default contraction) computes it; float64 holds the
			// exact sum, so rounding it to float32 is fmaf's result.
			a := math.FMA(float64(v.mosAvg[i]), float64(float32(uint64(v.mosTimeMS))), float64(float32(uint64(m)*uint64(diff))))
			v.mosAvg[i] = float32(a) / float32(uint64(newT))
		} else {
			v.mosAvg[i] = float32(m)
		}
	}
	v.mosTimeMS = newT
	v.intervals++
	// last_stat_loss_perc_mult10: despite its name a plain percentage, of
	// the packets expected since the previous mark.
	lost, recv := v.lastLost-v.ivStatLost, int64(v.received)-int64(v.ivStatRecv)
	v.ivStatLost, v.ivStatRecv = v.lastLost, v.received
	v.lossLast = 0
	if lost+recv > 0 {
		v.lossLast = float64(lost) / float64(recv+lost) * 100
	}
	v.record()
}

// intervalMOS is calculate_mos_fromrtp with burstr_calculate over the
// interval: fewer than 5 lost frames give 45; otherwise ppl = lost/received
// and BurstR = (lost/bursts)·(1 − ppl) (made positive, at least 1) go to
// VoIPmonitor's G.711 E-model, rounded to MOS×10. received counts the
// packets of the interval (stats.received), not the buffer's frames.
func (v *vmState) intervalMOS(c *vmChan) uint8 {
	lost := c.lost - c.ivLost
	bursts := c.bursts - c.ivBursts
	c.ivLost, c.ivBursts = c.lost, c.bursts
	recv := v.received - c.lastReceived
	c.lastReceived = v.received
	if lost < 5 {
		return 45
	}
	var burstr, ppl float64
	if v.received > 0 && bursts > 0 {
		burstr = float64(lost) / float64(bursts) / (1 / (1 - float64(lost)/float64(recv)))
		if burstr < 0 {
			burstr = -burstr
		} else if burstr < 1 {
			burstr = 1
		}
	}
	if v.received > 0 {
		ppl = float64(lost) / float64(recv)
	}
	return uint8(math.Round(mosG711(ppl, burstr) * 10))
}

// c3 is 2.93143·pow(10, −6) as a double product (not the decimal 2.93143e-6).
var c3 = func() float64 { a, b := 2.93143, 1e-6; return a * b }()

// mosG711 is calculate_mos_g711 (version 2, G.711 with PLC): 4.5 without
// loss, 1 above 50 % loss, else R = 93.2062077233 − 95·(100·ppl /
// (100·ppl/BurstR + 17.2647)) and MOS = 2.06405 + 0.031738·R −
// 0.000356641·R² + 2.93143·10⁻⁶·R³ within [1, 4.5]. The sniffer uses it for
// every codec with its default mos_g729 = no.
func mosG711(ppl, burstr float64) float64 {
	if ppl == 0 || burstr == 0 {
		return 4.5
	}
	if ppl > 0.5 {
		return 1
	}
	p := ppl * 100
	q := p / (p/burstr + 17.2647)
	// The sniffer's build fuses the multiply-adds (x86-64 FMA): the same
	// order of operations and roundings here.
	r := math.FMA(-q, 95, 93.2062077233)
	m := math.FMA(r, 0.031738, 2.06405)
	m = math.FMA(-(r * 0.000356641), r, m)
	m = math.FMA(r, c3*r*r, m)
	if m < 1 {
		return 1
	}
	return min(m, 4.5)
}

// VMStats are a stream's figures computed the VoIPmonitor sniffer's way
// (2026.04.0 with default settings), as it stores them in its cdr table.
// MOS values are ×10 integers; -1 means the sniffer stores NULL (no MOS
// interval closed: streams shorter than about 10 s).
type VMStats struct {
	// MOSF1Mult10 is a_/b_mos_f1_mult10: the time-weighted average of the
	// interval MOS of the fixed 50 ms buffer, truncated (the sniffer does
	// not round this one). MOSF2Mult10 (fixed 200 ms) and MOSAdaptMult10
	// (adaptive ≤ 500 ms) are rounded.
	MOSF1Mult10, MOSF2Mult10, MOSAdaptMult10 int
	// MOSF1MinMult10, MOSF2MinMult10 and MOSAdaptMinMult10 are the lowest
	// interval MOS×10 (…_min_mult10).
	MOSF1MinMult10, MOSF2MinMult10, MOSAdaptMinMult10 int
	// MOSMinMult10 is a_/b_mos_min_mult10: with the default mosmin_f2 = yes
	// it is the f2 figure.
	MOSMinMult10 int
	// Intervals counts the MOS intervals closed.
	Intervals int
	// AvgJitterMS and MaxJitterMS are the sniffer's stats.avgjitter and
	// stats.maxjitter (see updateStats); AvgJitterMult10 = ceil(avg·10) and
	// MaxJitter = ceil(max) are its a_avgjitter_mult10 and a_maxjitter.
	AvgJitterMS, MaxJitterMS float64
	AvgJitterMult10          int
	MaxJitter                int
	// Live are the figures the sniffer's listcalls shows while the
	// stream runs.
	Live VMLive
}

// VMLive are a stream's figures as the sniffer's listcalls and
// active_call_info show them while it runs (calltable.cpp Call::getValue):
// the current interval's, not the CDR's.
type VMLive struct {
	// JitterMS is the current jitter J (rtp->jitter, listcalls src_jitter).
	JitterMS float64
	// MOSMult10 is the MOS×10 of the last closed 10 s interval per buffer
	// (f1, f2, adaptive: src_mosf1, src_mosf2, src_mosAD), 45 before the
	// first closes.
	MOSMult10 [3]int
	// MOSAvgMult10 is the time-weighted average of the interval MOS×10,
	// truncated as listcalls casts it (src_mosf1_avg…): 0 before the first
	// interval closes.
	MOSAvgMult10 [3]int
	// MOSMinMult10 is the lowest interval MOS×10 (src_mosf1_min…), 45
	// before the first interval closes.
	MOSMinMult10 [3]int
	// LossLastPct is the loss of the last closed interval in percent
	// (src_loss_last10sec), 0 before the first closes.
	LossLastPct float64
}

// noVMLive is the VMLive of a stream the emulation has not started.
var noVMLive = VMLive{MOSMult10: [3]int{45, 45, 45}, MOSMinMult10: [3]int{45, 45, 45}}

// vmStats fills the VMStats of v (nil: a stream of at most one packet).
func (v *vmState) stats() VMStats {
	st := VMStats{
		MOSF1Mult10: -1, MOSF2Mult10: -1, MOSAdaptMult10: -1,
		MOSF1MinMult10: 45, MOSF2MinMult10: 45, MOSAdaptMinMult10: 45, MOSMinMult10: -1,
		Live: noVMLive,
	}
	if v == nil {
		return st
	}
	st.Live.JitterMS, st.Live.LossLastPct = v.jitter, v.lossLast
	for i := range v.mosLast {
		st.Live.MOSMult10[i] = int(v.mosLast[i])
		st.Live.MOSAvgMult10[i] = int(v.mosAvg[i])
		if m := v.mosMin[i]; m > 0 && m != 255 {
			st.Live.MOSMinMult10[i] = int(m)
		}
	}
	st.AvgJitterMS, st.MaxJitterMS = v.avgJitter, v.maxJitter
	st.AvgJitterMult10 = int(math.Ceil(v.avgJitter * 10))
	st.MaxJitter = int(math.Ceil(v.maxJitter))
	st.Intervals = v.intervals
	avg := [3]*int{&st.MOSF1Mult10, &st.MOSF2Mult10, &st.MOSAdaptMult10}
	mins := [3]*int{&st.MOSF1MinMult10, &st.MOSF2MinMult10, &st.MOSAdaptMinMult10}
	for i := range avg {
		if a := v.mosAvg[i]; a > 0 {
			if i == vmF1 {
				*avg[i] = int(a)
			} else {
				*avg[i] = int(math.Round(float64(a)))
			}
		}
		if m := v.mosMin[i]; m > 0 && m != 255 {
			*mins[i] = int(m)
		}
	}
	st.MOSMinMult10 = st.MOSF2Mult10
	if st.MOSMinMult10 < 0 {
		for _, p := range avg {
			if *p >= 0 && (st.MOSMinMult10 < 0 || *p < st.MOSMinMult10) {
				st.MOSMinMult10 = *p
			}
		}
	}
	return st
}

// floorDiv is a/b rounded toward −∞ (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
