package rtp

// This file keeps the Stream implementation as it was before the
// performance and memory work (as of commit cccdd7a), renamed refStream, as the
// oracle of TestStreamMatchesReference: the optimised Stream must produce
// exactly the same StreamStats on any packet sequence.

import (
	"math"
	"time"
)

// RFC 3550 A.1 constants.
const (
	refMaxDropout  = 3000
	refMaxMisorder = 100
	refSeqMod      = 1 << 16
)

// refSeenBits is the width of the duplicate-detection window in extended seqs.
const refSeenBits = 128

// refMosInterval is the stream time after which an interval MOS is computed
// (VoIPmonitor computes one every 10 s).
const refMosInterval = 10 * time.Second

// refStream accumulates the statistics of one RTP stream: one SSRC on one Flow.
// The zero value is unusable; call [refStream.Init] first. A refStream is a plain
// value of fixed size that never allocates; it is not safe for concurrent
// use.
type refStream struct {
	cfg      StreamConfig
	pt       uint8
	started  bool
	voiceSet bool // first voice packet seen

	// RFC 3550 A.1 sequence state.
	maxSeq      uint16
	badSeq      uint32 // RTP_SEQ_MOD+1 when unset
	cycles      int64
	base        int64 // extended seq of the first packet of the current run
	priorExp    int64 // expected in runs before a restart
	received    int64
	dups        int64
	reordered   int64
	seen        [refSeenBits / 64]uint64
	lastExt     int64 // extended seq of the previous voice packet
	lastVoiceTS uint32

	events  uint32
	cn      uint32 // comfort-noise packets
	ptimeTS uint32 // timestamp units per packet

	// Wireshark tap-rtp-analysis state (times in ms relative to firstNs).
	firstNs  int64
	lastNs   int64
	tsFirst  uint32
	lastTime float64
	lastNom  float64
	jitter   float64
	meanJ    float64
	maxJ     float64
	maxDelta float64
	voiceN   int64 // voice packets analysed, Wireshark's total_nr
	prevPT   uint8
	resume   bool // next voice frame follows a DTMF event

	lossBursts [10]uint32
	delay      [7]uint32

	// extended timestamp for the jitter-buffer simulation
	extTS  int64
	lastTS uint32

	jb      [3]refJbuf
	ivStart int64 // start of the current MOS interval (ns)
	ivRecv  int32
	mosSum  [3]float64
	mosMin  [3]float64
	mosDur  float64

	srs  [4]refSrEntry
	srN  uint8
	rtcp refRtcpAcc
}

// Init resets s for a new stream described by cfg.
func (s *refStream) Init(cfg StreamConfig) {
	*s = refStream{cfg: cfg, badSeq: refSeqMod + 1}
	s.jb[0].init(50, 100)
	s.jb[1].init(200, 200)
	s.jb[2].init(500, 500)
	for i := range s.mosMin {
		s.mosMin[i] = 4.5
	}
}

func (s *refStream) isEvent(pt uint8) bool { return s.cfg.EventPT >= 0 && int(pt) == s.cfg.EventPT }
func (s *refStream) isCN(pt uint8) bool {
	return pt == PTCN || pt == PTCNOld || (s.cfg.CNPT >= 0 && int(pt) == s.cfg.CNPT)
}

// Add accounts one received RTP packet of this stream (same Flow and SSRC),
// captured at arrival. It allocates nothing.
func (s *refStream) Add(h *Header, arrival time.Time) {
	now := arrival.UnixNano()
	if !s.started {
		s.started = true
		s.firstNs = now
		s.initSeq(h.Seq)
		s.received = 1
		s.markSeen(s.base)
		s.lastNs = now
		s.voice(h, now, s.base, false)
		return
	}
	s.lastNs = now
	ext, dup, ok := s.updateSeq(h.Seq)
	s.received++
	if !ok {
		return
	}
	s.voice(h, now, ext, dup)
}

// initSeq starts a new run at seq (RFC 3550 A.1 init_seq).
func (s *refStream) initSeq(seq uint16) {
	s.maxSeq = seq
	s.badSeq = refSeqMod + 1
	s.base = s.cycles + int64(seq)
	s.seen = [refSeenBits / 64]uint64{}
}

// updateSeq is RFC 3550 A.1 update_seq without probation. It returns the
// packet's extended seq, whether it is a duplicate, and false when the packet
// is the first after a huge jump (kept out of the statistics until the next
// packet confirms the restart).
func (s *refStream) updateSeq(seq uint16) (ext int64, dup, ok bool) {
	udelta := seq - s.maxSeq
	switch {
	case udelta == 0:
		// A copy of the highest packet (e.g. RFC 4733 end-of-event resends).
		ext = s.cycles + int64(seq)
		s.badSeq = refSeqMod + 1
		if s.isSeen(ext) {
			s.dups++
			return ext, true, true
		}
		s.markSeen(ext)
		return ext, false, true
	case udelta < refMaxDropout:
		high := s.cycles + int64(s.maxSeq)
		if seq < s.maxSeq {
			s.cycles += refSeqMod
		}
		ext = s.cycles + int64(seq)
		s.advanceSeen(high, ext)
		s.maxSeq = seq
		s.badSeq = refSeqMod + 1
		return ext, false, true
	case int(udelta) <= refSeqMod-refMaxMisorder:
		if uint32(seq) == s.badSeq {
			// Two sequential packets after a big jump: the source restarted.
			// Keep what was expected so far and start a new run whose base
			// includes the packet that announced the jump.
			s.priorExp += s.cycles + int64(s.maxSeq) - s.base + 1
			s.cycles = 0
			s.maxSeq = seq
			s.badSeq = refSeqMod + 1
			s.base = int64(seq) - 1
			s.seen = [refSeenBits / 64]uint64{}
			s.markSeen(s.base)
			s.markSeen(int64(seq))
			s.lastExt = int64(seq) - 1
			return int64(seq), false, true
		}
		s.badSeq = uint32(seq+1) & (refSeqMod - 1)
		return 0, false, false
	default:
		// Duplicate or reordered: behind maxSeq by < MAX_MISORDER.
		ext = s.cycles + int64(seq)
		if seq > s.maxSeq {
			ext -= refSeqMod
		}
		high := s.cycles + int64(s.maxSeq)
		if high-ext < refSeenBits && s.isSeen(ext) {
			s.dups++
			return ext, true, true
		}
		if ext != high {
			s.reordered++
		}
		s.markSeen(ext)
		return ext, false, true
	}
}

func (s *refStream) isSeen(ext int64) bool {
	i := uint64(ext) % refSeenBits
	return s.seen[i/64]&(1<<(i%64)) != 0
}

func (s *refStream) markSeen(ext int64) {
	i := uint64(ext) % refSeenBits
	s.seen[i/64] |= 1 << (i % 64)
}

// advanceSeen moves the window from the previous highest extended seq high
// to ext, clearing the entries of the seqs that were skipped, and counts a
// loss burst for them.
func (s *refStream) advanceSeen(high, ext int64) {
	gap := ext - high - 1
	if gap > 0 {
		s.lossBursts[min(gap, 10)-1]++
	}
	if gap >= refSeenBits {
		s.seen = [refSeenBits / 64]uint64{}
	} else {
		for e := high + 1; e < ext; e++ {
			i := uint64(e) % refSeenBits
			s.seen[i/64] &^= 1 << (i % 64)
		}
	}
	s.markSeen(ext)
}

// voice runs the per-packet jitter, delay and MOS analysis.
func (s *refStream) voice(h *Header, now, ext int64, dup bool) {
	pt := h.PayloadType
	if s.isEvent(pt) {
		s.events++
		s.resume = true
		return
	}
	if s.isCN(pt) {
		s.cn++
	}
	rate := s.cfg.ClockRate
	if !s.voiceSet {
		s.voiceSet = true
		s.pt = pt
		if rate == 0 {
			if _, r, ok := ClockRate(pt); ok {
				s.cfg.ClockRate, rate = r, r
			}
		}
		if s.cfg.Codec == "" {
			s.cfg.Codec, _, _ = ClockRate(pt)
		}
		s.tsFirst = h.Timestamp
		s.lastTime = float64(now-s.firstNs) / 1e6
		s.prevPT = pt
		s.voiceN = 1
		s.lastExt = ext
		s.lastVoiceTS = h.Timestamp
		s.lastTS = h.Timestamp
		s.ivStart = now
		s.ivRecv = 1
		s.resume = false
		return
	}
	s.jitterStep(h, now, rate)
	if dup {
		return
	}
	// Packetization from consecutive seqs; remember a ts gap with
	// consecutive seqs (silence suppression) so the buffer does not count it.
	silence := false
	if ext == s.lastExt+1 && !s.isCN(pt) {
		d := h.Timestamp - s.lastVoiceTS
		if d > 0 && d < 1<<16 {
			if s.ptimeTS == 0 {
				s.ptimeTS = d
			} else if d > s.ptimeTS {
				silence = true
			}
		}
	}
	if ext > s.lastExt {
		s.lastExt = ext
		s.lastVoiceTS = h.Timestamp
	}
	s.extTS += int64(int32(h.Timestamp - s.lastTS))
	s.lastTS = h.Timestamp

	if s.ptimeTS != 0 && rate != 0 && !s.isCN(pt) {
		if now-s.ivStart >= int64(refMosInterval) {
			s.closeInterval(now)
		}
		s.ivRecv++
		noCount := silence || h.Marker || s.resume
		s.resume = false
		ptimeNs := int64(s.ptimeTS) * 1e9 / int64(rate)
		for i := range s.jb {
			s.jb[i].put(s.extTS, now, int64(s.ptimeTS), ptimeNs, noCount)
		}
	} else if !s.isCN(pt) {
		s.ivRecv++
	}
}

// jitterStep replicates tshark 4.0's rtppacket_analyse for jitter and delta
// (ui/tap-rtp-analysis.c): J = (15·J + |D|)/16 in ms, where D compares the
// arrival and timestamp differences to the last in-time packet. The first
// packet, marker packets, CN packets and the packet after CN, and packets
// whose timestamp is before the first one are left out of max and mean;
// the mean is Wireshark's running mean over the packet count.
func (s *refStream) jitterStep(h *Header, now int64, rate uint32) {
	cur := float64(now-s.firstNs) / 1e6
	d := h.Timestamp - s.tsFirst
	inTime := d < 0x80000000
	var delta, diff float64
	computed := false
	if inTime {
		delta = cur - s.lastTime
		if rate != 0 {
			// Wireshark divides by the integer clock_rate/1000.
			nom := float64(d) / float64(rate/1000)
			diff = math.Abs(cur - (s.lastTime + nom - s.lastNom))
			s.jitter = (15*s.jitter + diff) / 16
			s.lastNom = nom
			computed = true
		}
	}
	pt := h.PayloadType
	regular := inTime && !h.Marker && !s.isCN(pt) && !s.isCN(s.prevPT)
	s.prevPT = pt
	if regular {
		if delta > s.maxDelta {
			s.maxDelta = delta
		}
		if computed {
			if s.jitter > s.maxJ {
				s.maxJ = s.jitter
			}
			s.meanJ = (s.meanJ*float64(s.voiceN-1) + s.jitter) / float64(s.voiceN)
		}
	}
	if computed && !s.isCN(pt) {
		s.addDelay(diff)
	}
	if inTime {
		s.lastTime = cur
	}
	s.voiceN++
}

// addDelay files |D| into the VoIPmonitor delay buckets.
func (s *refStream) addDelay(ms float64) {
	if ms > 5000 { // VoIPmonitor: timestamp skew, not delay
		return
	}
	var i int
	switch {
	case ms < 50:
		return
	case ms < 70:
		i = 0
	case ms < 90:
		i = 1
	case ms < 120:
		i = 2
	case ms < 150:
		i = 3
	case ms < 200:
		i = 4
	case ms < 300:
		i = 5
	default:
		i = 6
	}
	s.delay[i]++
}

// closeInterval turns each buffer's loss counters into an interval MOS and
// folds it into the time-weighted average and the minimum.
func (s *refStream) closeInterval(now int64) {
	dur := float64(now - s.ivStart)
	if dur <= 0 {
		dur = 1
	}
	for i := range s.jb {
		b := &s.jb[i]
		m := refMOSG711(int64(b.lost), int64(b.bursts), int64(s.ivRecv))
		s.mosSum[i] += m * dur
		if m < s.mosMin[i] {
			s.mosMin[i] = m
		}
		b.lost, b.bursts = 0, 0
	}
	s.mosDur += dur
	s.ivStart = now
	s.ivRecv = 0
}

// Finish closes the last MOS interval. Call it once when the stream ends;
// Add after Finish starts a new interval.
func (s *refStream) Finish() {
	if !s.voiceSet || s.ivRecv == 0 {
		return
	}
	s.closeInterval(s.lastNs)
}

// Stats returns a copy of the statistics so far. MOS values cover the
// intervals closed so far (all of them after [refStream.Finish]); a stream with
// no closed interval reports 4.5.
func (s *refStream) Stats() StreamStats {
	pt := s.pt
	if !s.voiceSet && s.events > 0 {
		pt = uint8(s.cfg.EventPT) // a stream of telephone events only
	}
	st := StreamStats{
		PayloadType:  pt,
		Codec:        s.cfg.Codec,
		Received:     s.received,
		Duplicates:   s.dups,
		Reordered:    s.reordered,
		JitterMeanMS: s.meanJ,
		JitterMaxMS:  s.maxJ,
		MaxDeltaMS:   s.maxDelta,
		LossBursts:   s.lossBursts,
		Delay:        s.delay,
		Events:       s.events,
		CN:           s.cn,
		RTCP:         s.rtcp.stats(s.cfg.ClockRate),
	}
	if !s.started {
		return st
	}
	st.First = time.Unix(0, s.firstNs)
	st.Last = time.Unix(0, s.lastNs)
	st.Expected = s.priorExp + s.cycles + int64(s.maxSeq) - s.base + 1
	st.LostRFC = st.Expected - st.Received
	st.Lost = max(0, st.LostRFC+st.Duplicates)
	if r := s.cfg.ClockRate / 1000; r != 0 {
		st.PtimeMS = int(s.ptimeTS / r)
	}
	mos := [3]float64{4.5, 4.5, 4.5}
	if s.mosDur > 0 {
		for i := range mos {
			mos[i] = s.mosSum[i] / s.mosDur
		}
	}
	st.MOSF1, st.MOSF2, st.MOSAdapt = mos[0], mos[1], mos[2]
	st.MOSF1Min, st.MOSF2Min, st.MOSAdaptMin = s.mosMin[0], s.mosMin[1], s.mosMin[2]
	return st
}

// ClockRate returns the stream's RTP clock in Hz, 0 when unknown.
func (s *refStream) ClockRate() uint32 { return s.cfg.ClockRate }

// refJbSlots is the size of the ring of playout slots a simulated buffer can
// hold: 256 slots cover delay+resync (≤ 1 s) for any ptime ≥ 4 ms.
const refJbSlots = 256

// refMaxCountedBurst is VoIPmonitor's
// ignore_mos_degradation_for_contiguous_packet_loss_greater_than: longer
// gaps are treated as a stream interruption, not as loss.
const refMaxCountedBurst = 1024

// refJbuf simulates one Asterisk fixed jitter buffer (main/fixedjitterbuf.c)
// the way VoIPmonitor drives it: every arriving frame is put with its
// arrival time, and before that every playout tick (one per ptime) whose
// time has come is taken. A tick finds its frame (delivered), or finds none
// (interpolated, including frames that were late or lost); a run of
// interpolated ticks ending at a delivered frame is one loss burst.
//
// Frames are kept as bits in a ring of playout slots, slot = frame
// timestamp / ptime + shift, which is exact for streams whose timestamps
// advance in whole packets, and compact enough to keep [refStream] small.
//
// Asterisk's rules kept here: the first frame (and any frame put while the
// buffer is empty and the frame is late) sets delivery = arrival + delay
// (put_first); a frame whose slot has passed is dropped unless its offset
// from the buffer's tail is at least the resync threshold, in which case the
// buffer is re-anchored on it (resynch_jb); so is a frame more than
// delay+resync ahead.
type refJbuf struct {
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
	present  [refJbSlots / 64]uint64
	noCount  [refJbSlots / 64]uint64
}

func (b *refJbuf) init(delayMS, resyncMS int64) {
	*b = refJbuf{delayNs: delayMS * 1e6, resyncMS: resyncMS}
}

func refBit(r *[refJbSlots / 64]uint64, k int64) bool {
	i := uint64(k) % refJbSlots
	return r[i/64]&(1<<(i%64)) != 0
}

func refSetBit(r *[refJbSlots / 64]uint64, k int64, v bool) {
	i := uint64(k) % refJbSlots
	if v {
		r[i/64] |= 1 << (i % 64)
	} else {
		r[i/64] &^= 1 << (i % 64)
	}
}

// put takes due ticks up to now and then queues the frame with extended
// timestamp ts (ticks of ptimeTS each, ptimeNs long).
func (b *refJbuf) put(ts, now, ptimeTS, ptimeNs int64, noCount bool) {
	slot := refFloorDiv(ts, ptimeTS)
	if !b.started {
		b.started = true
		b.first(slot, now, ptimeNs, noCount)
		return
	}
	b.advance(now, ptimeNs)
	k := slot + b.shift
	late := k < b.next
	ahead := (k-b.next)*ptimeNs > b.delayNs+b.resyncMS*1e6 || k-b.next >= refJbSlots
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
		if k-b.next >= refJbSlots {
			return
		}
	}
	if refBit(&b.present, k) {
		return
	}
	refSetBit(&b.present, k, true)
	refSetBit(&b.noCount, k, noCount)
	b.pending++
	b.tail = max(b.tail, k)
}

// first is Asterisk's fixed_jb_put_first: the frame plays one delay after
// its arrival, at slot next.
func (b *refJbuf) first(slot, now, ptimeNs int64, noCount bool) {
	b.shift = b.next - slot
	b.anchorNs = now + b.delayNs - b.next*ptimeNs
	b.tail = b.next
	refSetBit(&b.present, b.next, true)
	refSetBit(&b.noCount, b.next, noCount)
	b.pending = 1
}

// advance plays every tick whose playout time is ≤ now.
func (b *refJbuf) advance(now, ptimeNs int64) {
	if now < b.anchorNs {
		return
	}
	last := (now - b.anchorNs) / ptimeNs // last due slot
	for b.next <= last {
		if b.pending == 0 {
			n := last - b.next + 1
			b.interp = int32(min(int64(b.interp)+n, refMaxCountedBurst))
			b.next = last + 1
			return
		}
		b.play(b.next)
		b.next++
	}
}

func (b *refJbuf) play(k int64) {
	if !refBit(&b.present, k) {
		if b.interp < refMaxCountedBurst {
			b.interp++
		}
		return
	}
	refSetBit(&b.present, k, false)
	b.pending--
	if b.interp > 0 && !refBit(&b.noCount, k) && b.interp < refMaxCountedBurst {
		b.lost += b.interp
		b.bursts++
	}
	b.interp = 0
}

func refFloorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

type refSrEntry struct {
	mid uint32
	at  int64
}

type refRtcpAcc struct {
	reports uint32
	fracN   uint32
	fracMax uint8
	mosLQ   uint8
	cumLost int32
	rttN    uint32
	fracSum uint64
	jitMax  uint32
	jitSum  uint64
	rttSum  float64
	rttMax  float64
}

func (a *refRtcpAcc) stats(rate uint32) RTCPStats {
	st := RTCPStats{
		Reports:             a.reports,
		FractionLostMax:     a.fracMax,
		FractionLostReports: a.fracN,
		CumulativeLost:      a.cumLost,
		RTTMaxMS:            a.rttMax,
		RTTCount:            a.rttN,
		XRMOSLQ:             float64(a.mosLQ) / 10,
	}
	if a.reports > 0 {
		st.FractionLostAvg = float64(a.fracSum) / float64(a.reports)
		if r := float64(rate) / 1000; r > 0 {
			st.JitterMaxMS = float64(a.jitMax) / r
			st.JitterAvgMS = float64(a.jitSum) / float64(a.reports) / r
		}
	}
	if a.rttN > 0 {
		st.RTTAvgMS = a.rttSum / float64(a.rttN)
	}
	return st
}

// AddSR records a sender report that this stream's sender sent, by the
// middle 32 bits of its NTP time and its capture time. The last four are
// kept for matching LSR in later reports.
func (s *refStream) AddSR(ntpMid32 uint32, arrival time.Time) {
	s.srs[s.srN%uint8(len(s.srs))] = refSrEntry{mid: ntpMid32, at: arrival.UnixNano()}
	s.srN++
}

// AddReport accounts a report block about this stream (rb.SSRC is this
// stream's SSRC) captured at arrival.
func (s *refStream) AddReport(rb ReportBlock, arrival time.Time) {
	a := &s.rtcp
	a.reports++
	a.fracMax = max(a.fracMax, rb.FractionLost)
	a.fracSum += uint64(rb.FractionLost)
	if rb.FractionLost != 0 {
		a.fracN++
	}
	a.cumLost = rb.CumulativeLost
	a.jitMax = max(a.jitMax, rb.Jitter)
	a.jitSum += uint64(rb.Jitter)
	if rb.LSR == 0 {
		return
	}
	for _, sr := range s.srs {
		if sr.at == 0 || sr.mid != rb.LSR {
			continue
		}
		rtt := float64(arrival.UnixNano()-sr.at)/1e6 - float64(rb.DLSR)*1000/65536
		if rtt < 0 {
			// The reporter's DLSR is longer than the loop the probe saw
			// (its clock or its DLSR rounding disagrees): not a measurement.
			return
		}
		a.rttSum += rtt
		a.rttMax = max(a.rttMax, rtt)
		a.rttN++
		return
	}
}

// AddXR accounts an RTCP-XR VoIP Metrics block about this stream.
func (s *refStream) AddXR(m XRVoIPMetrics) {
	if m.MOSLQ != 0 && m.MOSLQ != 127 {
		s.rtcp.mosLQ = m.MOSLQ
	}
}

// refMOSG711 is the interval MOS the reference used (VoIPmonitor's G.711
// E-model with "fewer than 5 lost or 100 received is perfect"). The
// optimised Stream now scores MOS the sniffer's way (vmstream.go), so the
// MOS fields are not compared (streamPair.check masks them).
func refMOSG711(lost, bursts, received int64) float64 {
	if lost < 5 || received < 100 || bursts <= 0 {
		return 4.5
	}
	ppl := float64(lost) / float64(received)
	if ppl > 0.5 {
		return 1
	}
	burstR := max(float64(lost)/float64(bursts)*(1-ppl), 1)
	r := 93.2062077233 - 95*(100*ppl/(100*ppl/burstR+17.2647))
	return min(max(2.06405+0.031738*r-0.000356641*r*r+2.93143e-6*r*r*r, 1), 4.5)
}
