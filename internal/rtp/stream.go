package rtp

import (
	"math"
	"time"
)

// RFC 3550 A.1 constants.
const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
)

// seenBits is the width of the duplicate-detection window in extended seqs.
const seenBits = 128

// StreamConfig describes what signalling (SDP) says about a [Stream].
type StreamConfig struct {
	// ClockRate is the RTP clock of the voice payload in Hz. Zero means
	// "derive it from the first static payload type"; if that fails jitter is
	// not computed (tshark does the same).
	ClockRate uint32
	// Codec names the voice payload; empty means "from the static table".
	Codec string
	// EventPT is the dynamic RFC 4733 telephone-event payload type, -1 none.
	EventPT int
	// CNPT is a dynamic comfort-noise payload type, -1 none. The static CN
	// types 13 and 19 are always recognised.
	CNPT int
}

// Stream accumulates the statistics of one RTP stream: one SSRC on one Flow.
// The zero value is unusable; call [Stream.Init] first. A Stream is a plain
// value of about 450 bytes; it allocates RTCP state on the first RTCP report
// about it, and at its second packet the state of the VoIPmonitor sniffer's
// MOS and jitter computation ([VMStats], about 4.4 KB: three simulated
// jitter buffers, the adaptive one with its 500-delay history, and the
// last [MaxIntervals] closed MOS intervals in 384 bytes). It is not safe for
// concurrent use, and a copy shares those allocations with the original.
type Stream struct {
	// Fields every packet touches come first, so that a packet touches as
	// few cache lines as it can: with thousands of streams, these misses
	// are most of the cost of Add.
	started  bool
	voiceSet bool // first voice packet seen
	prevPT   uint8
	maxSeq   uint16 // RFC 3550 A.1 sequence state, with badSeq, cycles, seen, ...
	eventPT  int16  // dynamic telephone-event payload type, -1 none
	cnPT     int16  // dynamic comfort-noise payload type, -1 none

	badSeq      uint32 // RTP_SEQ_MOD+1 when unset
	lastVoiceTS uint32
	ptimeTS     uint32 // timestamp units per packet
	tsFirst     uint32
	clockRate   uint32
	cycles      int64
	received    int64
	lastExt     int64 // extended seq of the previous voice packet
	seen        [seenBits / 64]uint64

	// Wireshark tap-rtp-analysis state (times in ms relative to firstNs).
	firstNs  int64
	lastNs   int64
	voiceN   int64 // voice packets analysed, Wireshark's total_nr
	lastTime float64
	lastNom  float64
	jitter   float64
	meanJ    float64
	maxJ     float64
	maxDelta float64

	// The sniffer's MOS and jitter (nil before the second packet, whose
	// arrival replays the first from vmFirst).
	vm      *vmState
	vmFirst vmPacket
	vmEnd   int64 // ns; packets after it are not the sniffer's (0: none)

	// Fields touched now and then.
	base       int64 // extended seq of the first packet of the current run
	priorExp   int64 // expected in runs before a restart
	dups       int64
	reordered  int64
	events     uint32
	cn         uint32
	pt         uint8
	codec      string
	lossBursts [10]uint32
	delay      [7]uint32

	rtcp *rtcpState // nil until the first RTCP about this stream
}

// StreamStats is a snapshot of a [Stream]'s statistics.
type StreamStats struct {
	PayloadType uint8
	Codec       string
	// PtimeMS is the packetization time derived from timestamp deltas
	// between consecutive voice packets.
	PtimeMS int
	// Received counts every RTP packet of the stream, duplicates and
	// telephone events included, like tshark's "Pkts" column.
	Received int64
	// Expected is ext_max − base + 1 (RFC 3550 A.1), summed over restarts.
	Expected int64
	// LostRFC is Expected − Received; negative with duplicates. It equals
	// tshark's "Lost" column.
	LostRFC int64
	// Lost is max(0, LostRFC+Duplicates): packets never seen.
	Lost int64
	// Duplicates counts packets whose extended seq was already seen.
	Duplicates int64
	// Reordered counts packets that arrived below the highest seq and were
	// not duplicates.
	Reordered int64
	// JitterMeanMS, JitterMaxMS and MaxDeltaMS follow tshark 4.0's
	// "-z rtp,streams" Mean Jitter, Max Jitter and Max Delta.
	JitterMeanMS, JitterMaxMS, MaxDeltaMS float64
	// MOS of the simulated fixed 50 ms (F1), fixed 200 ms (F2) and adaptive
	// (≤500 ms) jitter buffers, average and minimum, as the VoIPmonitor
	// sniffer stores them: VM's ×10 figures divided by 10, 4.5 while no
	// 10 s interval has closed (the sniffer stores NULL then).
	MOSF1, MOSF2, MOSAdapt, MOSF1Min, MOSF2Min, MOSAdaptMin float64
	// VM holds the sniffer's figures exactly as its CDR stores them.
	VM VMStats
	// LossBursts counts sequence-gap bursts by length: [0] is one packet,
	// [9] ten or more (VoIPmonitor sl1..sl10).
	LossBursts [10]uint32
	// Delay counts voice packets by |D| (ms) in the VoIPmonitor buckets
	// [50,70) [70,90) [90,120) [120,150) [150,200) [200,300) ≥300.
	Delay [7]uint32
	// Events counts RFC 4733 telephone-event packets; they are part of
	// Received and of sequence accounting but not of jitter or MOS. CN
	// counts comfort-noise packets (RFC 3389), which are.
	Events, CN  uint32
	First, Last time.Time
	// RTCP is what receivers reported about this stream.
	RTCP RTCPStats
}

// Init resets s for a new stream described by cfg.
func (s *Stream) Init(cfg StreamConfig) {
	*s = Stream{
		codec:     cfg.Codec,
		clockRate: cfg.ClockRate,
		eventPT:   ptOrNone(cfg.EventPT),
		cnPT:      ptOrNone(cfg.CNPT),
		badSeq:    seqMod + 1,
	}
}

// ptOrNone keeps a payload type that a packet can carry, -1 otherwise.
func ptOrNone(pt int) int16 {
	if pt < 0 || pt > 255 {
		return -1
	}
	return int16(pt)
}

func (s *Stream) isEvent(pt uint8) bool { return int16(pt) == s.eventPT }
func (s *Stream) isCN(pt uint8) bool {
	return pt == PTCN || pt == PTCNOld || int16(pt) == s.cnPT
}

// Add accounts one received RTP packet of this stream (same Flow and SSRC),
// captured at arrival. It allocates nothing, except once in the life of a
// stream whose packetization time is below 16 ms (a larger playout ring).
func (s *Stream) Add(h *Header, arrival time.Time) {
	now := arrival.UnixNano()
	s.vmAdd(h, now)
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
func (s *Stream) initSeq(seq uint16) {
	s.maxSeq = seq
	s.badSeq = seqMod + 1
	s.base = s.cycles + int64(seq)
	s.seen = [seenBits / 64]uint64{}
}

// updateSeq is RFC 3550 A.1 update_seq without probation. It returns the
// packet's extended seq, whether it is a duplicate, and false when the packet
// is the first after a huge jump (kept out of the statistics until the next
// packet confirms the restart).
func (s *Stream) updateSeq(seq uint16) (ext int64, dup, ok bool) {
	udelta := seq - s.maxSeq
	switch {
	case udelta == 0:
		// A copy of the highest packet (e.g. RFC 4733 end-of-event resends).
		ext = s.cycles + int64(seq)
		s.badSeq = seqMod + 1
		if s.isSeen(ext) {
			s.dups++
			return ext, true, true
		}
		s.markSeen(ext)
		return ext, false, true
	case udelta < maxDropout:
		high := s.cycles + int64(s.maxSeq)
		if seq < s.maxSeq {
			s.cycles += seqMod
		}
		ext = s.cycles + int64(seq)
		s.advanceSeen(high, ext)
		s.maxSeq = seq
		s.badSeq = seqMod + 1
		return ext, false, true
	case int(udelta) <= seqMod-maxMisorder:
		if uint32(seq) == s.badSeq {
			// Two sequential packets after a big jump: the source restarted.
			// Keep what was expected so far and start a new run whose base
			// includes the packet that announced the jump.
			s.priorExp += s.cycles + int64(s.maxSeq) - s.base + 1
			s.cycles = 0
			s.maxSeq = seq
			s.badSeq = seqMod + 1
			s.base = int64(seq) - 1
			s.seen = [seenBits / 64]uint64{}
			s.markSeen(s.base)
			s.markSeen(int64(seq))
			s.lastExt = int64(seq) - 1
			return int64(seq), false, true
		}
		s.badSeq = uint32(seq+1) & (seqMod - 1)
		return 0, false, false
	default:
		// Duplicate or reordered: behind maxSeq by < MAX_MISORDER.
		ext = s.cycles + int64(seq)
		if seq > s.maxSeq {
			ext -= seqMod
		}
		high := s.cycles + int64(s.maxSeq)
		if high-ext < seenBits && s.isSeen(ext) {
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

func (s *Stream) isSeen(ext int64) bool {
	i := uint64(ext) % seenBits
	return s.seen[i/64]&(1<<(i%64)) != 0
}

func (s *Stream) markSeen(ext int64) {
	i := uint64(ext) % seenBits
	s.seen[i/64] |= 1 << (i % 64)
}

// advanceSeen moves the window from the previous highest extended seq high
// to ext, clearing the entries of the seqs that were skipped, and counts a
// loss burst for them.
func (s *Stream) advanceSeen(high, ext int64) {
	gap := ext - high - 1
	if gap > 0 {
		s.lossBursts[min(gap, 10)-1]++
	}
	if gap >= seenBits {
		s.seen = [seenBits / 64]uint64{}
	} else {
		for e := high + 1; e < ext; e++ {
			i := uint64(e) % seenBits
			s.seen[i/64] &^= 1 << (i % 64)
		}
	}
	s.markSeen(ext)
}

// voice runs the per-packet jitter, delay and MOS analysis.
func (s *Stream) voice(h *Header, now, ext int64, dup bool) {
	pt := h.PayloadType
	if s.isEvent(pt) {
		s.events++
		return
	}
	cn := s.isCN(pt)
	if cn {
		s.cn++
	}
	rate := s.clockRate
	if !s.voiceSet {
		s.voiceSet = true
		s.pt = pt
		if rate == 0 {
			if _, r, ok := ClockRate(pt); ok {
				s.clockRate, rate = r, r
			}
		}
		if s.codec == "" {
			s.codec, _, _ = ClockRate(pt)
		}
		s.tsFirst = h.Timestamp
		s.lastTime = float64(now-s.firstNs) / 1e6
		s.prevPT = pt
		s.voiceN = 1
		s.lastExt = ext
		s.lastVoiceTS = h.Timestamp
		return
	}
	s.jitterStep(h, now, rate, cn)
	if dup {
		return
	}
	// Packetization from the timestamp step of consecutive seqs.
	if ext == s.lastExt+1 && !cn && s.ptimeTS == 0 {
		if d := h.Timestamp - s.lastVoiceTS; d > 0 && d < 1<<16 {
			s.ptimeTS = d
		}
	}
	if ext > s.lastExt {
		s.lastExt = ext
		s.lastVoiceTS = h.Timestamp
	}
}

// jitterStep replicates tshark 4.0's rtppacket_analyse for jitter and delta
// (ui/tap-rtp-analysis.c): J = (15·J + |D|)/16 in ms, where D compares the
// arrival and timestamp differences to the last in-time packet. The first
// packet, marker packets, CN packets and the packet after CN, and packets
// whose timestamp is before the first one are left out of max and mean;
// the mean is Wireshark's running mean over the packet count.
//
// cn tells whether h is comfort noise.
func (s *Stream) jitterStep(h *Header, now int64, rate uint32, cn bool) {
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
	regular := inTime && !h.Marker && !cn && !s.isCN(s.prevPT)
	s.prevPT = h.PayloadType
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
	if computed && !cn {
		s.addDelay(diff)
	}
	if inTime {
		s.lastTime = cur
	}
	s.voiceN++
}

// addDelay files |D| into the VoIPmonitor delay buckets.
func (s *Stream) addDelay(ms float64) {
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

// Finish marks the end of the stream. It changes nothing: the sniffer
// closes no partial MOS interval when a call ends (it does only when it
// writes graph files), so neither does [Stream].
func (s *Stream) Finish() {}

// Stats returns a copy of the statistics so far. MOS values cover the
// 10 s intervals closed so far; a stream with none reports 4.5.
func (s *Stream) Stats() StreamStats {
	st := StreamStats{
		PayloadType:  s.payloadType(),
		Codec:        s.codec,
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
		RTCP:         s.rtcp.stats(s.clockRate),
		VM:           s.vm.stats(),
	}
	if !s.started {
		return st
	}
	st.First = time.Unix(0, s.firstNs)
	st.Last = time.Unix(0, s.lastNs)
	st.Expected = s.priorExp + s.cycles + int64(s.maxSeq) - s.base + 1
	st.LostRFC = st.Expected - st.Received
	st.Lost = max(0, st.LostRFC+st.Duplicates)
	if r := s.clockRate / 1000; r != 0 {
		st.PtimeMS = int(s.ptimeTS / r)
	}
	st.MOSF1, st.MOSF2, st.MOSAdapt = mosOf(st.VM.MOSF1Mult10), mosOf(st.VM.MOSF2Mult10), mosOf(st.VM.MOSAdaptMult10)
	st.MOSF1Min, st.MOSF2Min, st.MOSAdaptMin = mosOf(st.VM.MOSF1MinMult10), mosOf(st.VM.MOSF2MinMult10), mosOf(st.VM.MOSAdaptMinMult10)
	return st
}

// payloadType is the payload type of the first packet that was not a
// telephone event, or the event type of a stream of nothing else.
func (s *Stream) payloadType() uint8 {
	if !s.voiceSet && s.events > 0 {
		return uint8(s.eventPT)
	}
	return s.pt
}

// Intervals appends the closed 10 s MOS intervals the stream keeps (the
// newest [MaxIntervals]) to dst, oldest first, and returns it with the
// number of intervals closed in all.
func (s *Stream) Intervals(dst []Interval) ([]Interval, int) {
	if s.vm == nil {
		return dst, 0
	}
	return s.vm.appendIntervals(dst), s.vm.intervals
}

// mosOf turns a sniffer MOS×10 into a MOS, 4.5 for none (-1).
func mosOf(mult10 int) float64 {
	if mult10 < 0 {
		return 4.5
	}
	return float64(mult10) / 10
}

// ClockRate returns the stream's RTP clock in Hz, 0 when unknown.
func (s *Stream) ClockRate() uint32 { return s.clockRate }

// StreamSummary is the handful of [StreamStats] numbers a call listing
// shows per stream, without the histograms, RTCP and codec name a full
// Stats copies. Every field equals the StreamStats field of the same
// name; Started is false before the first packet, and FirstNs and LastNs
// are then 0, else First and Last in Unix nanoseconds.
type StreamSummary struct {
	Started                                                 bool
	PayloadType                                             uint8
	Received, Lost                                          int64
	Events, CN                                              uint32
	JitterMeanMS, JitterMaxMS                               float64
	MOSF1, MOSF2, MOSAdapt, MOSF1Min, MOSF2Min, MOSAdaptMin float64
	FirstNs, LastNs                                         int64
	// VMJitterAvgMS and VMJitterMaxMS are VMStats.AvgJitterMS and
	// MaxJitterMS (the sniffer's avgjitter and maxjitter).
	VMJitterAvgMS, VMJitterMaxMS float64
	// VMLive is VMStats.Live: the sniffer's listcalls figures.
	VMLive VMLive
}

// Summary returns the listing numbers of s: the same values as the
// matching fields of [Stream.Stats], computed without allocating or
// copying the rest.
func (s *Stream) Summary() StreamSummary {
	sm := StreamSummary{
		PayloadType:  s.payloadType(),
		Received:     s.received,
		Events:       s.events,
		CN:           s.cn,
		JitterMeanMS: s.meanJ,
		JitterMaxMS:  s.maxJ,
		VMLive:       noVMLive,
	}
	if !s.started {
		return sm
	}
	sm.Started, sm.FirstNs, sm.LastNs = true, s.firstNs, s.lastNs
	expected := s.priorExp + s.cycles + int64(s.maxSeq) - s.base + 1
	sm.Lost = max(0, expected-s.received+s.dups)
	vm := s.vm.stats()
	sm.MOSF1, sm.MOSF2, sm.MOSAdapt = mosOf(vm.MOSF1Mult10), mosOf(vm.MOSF2Mult10), mosOf(vm.MOSAdaptMult10)
	sm.MOSF1Min, sm.MOSF2Min, sm.MOSAdaptMin = mosOf(vm.MOSF1MinMult10), mosOf(vm.MOSF2MinMult10), mosOf(vm.MOSAdaptMinMult10)
	sm.VMJitterAvgMS, sm.VMJitterMaxMS, sm.VMLive = vm.AvgJitterMS, vm.MaxJitterMS, vm.Live
	return sm
}

// EndVM tells the stream that its call's BYE was confirmed (its 2xx seen) at
// at: the sniffer processes no RTP of the call captured after that moment
// (ignore_rtp_after_bye_confirmed, on by default), so the [VMStats] leave
// such packets out. The other statistics keep counting them. Only the first
// call counts.
func (s *Stream) EndVM(at time.Time) {
	if s.vmEnd == 0 {
		s.vmEnd = at.UnixNano()
	}
}

// vmAdd feeds the packet to the sniffer emulation: the first packet waits
// in vmFirst, and the second allocates the emulation and replays it.
func (s *Stream) vmAdd(h *Header, now int64) {
	if s.vmEnd != 0 && now > s.vmEnd {
		return
	}
	p := vmPacket{
		us: floorDiv(now, 1000), ts: h.Timestamp, seq: h.Seq, plen: len(h.Payload),
		pt: h.PayloadType, marker: h.Marker,
		event: s.isEvent(h.PayloadType) || (s.eventPT < 0 && h.PayloadType == 101),
		cn:    s.isCN(h.PayloadType),
		rate:  s.clockRate,
	}
	if p.rate == 0 && !p.event && !p.cn {
		if _, r, ok := ClockRate(h.PayloadType); ok {
			p.rate = r
		}
	}
	if s.vm == nil {
		if !s.started {
			s.vmFirst = p
			return
		}
		s.vm = newVMState()
		s.vm.read(&s.vmFirst)
	}
	s.vm.read(&p)
}
