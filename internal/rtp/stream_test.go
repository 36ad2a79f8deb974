package rtp

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

// feed adds packets with the given seqs at 20 ms PCMU spacing, timestamp
// following seq, arrival following list position.
func feed(s *Stream, seqs []uint16) {
	for i, q := range seqs {
		h := Header{Version: 2, PayloadType: PTPCMU, Seq: q, Timestamp: uint32(q) * 160, SSRC: 1}
		s.Add(&h, t0.Add(time.Duration(i)*20*time.Millisecond))
	}
}

func TestSequenceAccounting(t *testing.T) {
	tests := []struct {
		name                              string
		seqs                              []uint16
		received, expected, lostRFC, lost int64
		dups, reordered                   int64
		bursts                            [10]uint32
	}{
		{name: "clean", seqs: []uint16{1, 2, 3, 4}, received: 4, expected: 4},
		// RFC 3550 A.1: 65535→0 increments cycles; 65530..5 is 12 packets.
		{name: "wrap", seqs: []uint16{65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5},
			received: 12, expected: 12},
		{name: "wrap with loss", seqs: []uint16{65534, 1, 2}, received: 3, expected: 5, lostRFC: 2, lost: 2,
			bursts: [10]uint32{1: 1}},
		{name: "gap", seqs: []uint16{10, 11, 13, 17, 18}, received: 5, expected: 9, lostRFC: 4, lost: 4,
			bursts: [10]uint32{0: 1, 2: 1}},
		{name: "long gap", seqs: []uint16{10, 30}, received: 2, expected: 21, lostRFC: 19, lost: 19,
			bursts: [10]uint32{9: 1}},
		// A duplicate is received twice: LostRFC goes negative like tshark's.
		{name: "duplicate last", seqs: []uint16{1, 2, 3, 3}, received: 4, expected: 3, lostRFC: -1, dups: 1},
		{name: "duplicate older", seqs: []uint16{1, 2, 3, 2}, received: 4, expected: 3, lostRFC: -1, dups: 1},
		{name: "reordered", seqs: []uint16{1, 3, 2, 4}, received: 4, expected: 4, reordered: 1,
			bursts: [10]uint32{0: 1}},
		{name: "reordered then dup", seqs: []uint16{1, 3, 2, 2, 4}, received: 5, expected: 4, lostRFC: -1,
			dups: 1, reordered: 1, bursts: [10]uint32{0: 1}},
		// Duplicate and loss cancel in LostRFC but not in Lost.
		{name: "dup hides loss", seqs: []uint16{1, 2, 2, 4}, received: 4, expected: 4, lostRFC: 0, lost: 1,
			dups: 1, bursts: [10]uint32{0: 1}},
		{name: "reorder across wrap", seqs: []uint16{65534, 0, 65535, 1}, received: 4, expected: 4,
			reordered: 1, bursts: [10]uint32{0: 1}},
		// A jump ≥ MAX_DROPOUT is held back once, then confirmed by the next
		// sequential packet: a restart. Both runs are expected in full.
		{name: "restart", seqs: []uint16{100, 101, 102, 20000, 20001, 20002}, received: 6, expected: 6},
		// A lone stray packet far away is not a restart: it is left out of
		// expected (RFC 3550 drops it from the stats) but still counted as
		// received, so LostRFC drops by one.
		{name: "stray", seqs: []uint16{100, 101, 40000, 102, 103}, received: 5, expected: 4, lostRFC: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Stream
			s.Init(StreamConfig{EventPT: -1, CNPT: -1})
			feed(&s, tt.seqs)
			st := s.Stats()
			got := [6]int64{st.Received, st.Expected, st.LostRFC, st.Lost, st.Duplicates, st.Reordered}
			want := [6]int64{tt.received, tt.expected, tt.lostRFC, tt.lost, tt.dups, tt.reordered}
			if got != want {
				t.Errorf("received, expected, lostRFC, lost, dups, reordered = %v, want %v", got, want)
			}
			if st.LossBursts != tt.bursts {
				t.Errorf("LossBursts = %v, want %v", st.LossBursts, tt.bursts)
			}
		})
	}
}

// TestMOSG711 checks the sniffer's E-model (calculate_mos_g711) against
// hand calculations.
func TestMOSG711(t *testing.T) {
	tests := []struct {
		name        string
		ppl, burstr float64
		want        float64
	}{
		{"no loss", 0, 0, 4.5},
		{"over half lost", 0.6, 1, 1},
		// Spec §2.6: 5 lost in 3 bursts over 245 received: Ppl = 2.04 %,
		// BurstR = 5/3·(1−0.0204) = 1.633, R = 93.2062 − 95·2.0408/(2.0408/1.633+17.2647)
		// = 82.735, MOS = 2.06405 + 2.62584 − 2.44124 + 1.66013 = 3.909.
		{"loss5 fixture", 5.0 / 245, 5.0 / 3 * (1 - 5.0/245), 3.909},
		// Spec §2.5 table, "VoIPmonitor formula" column, random loss (BurstR
		// clamps to 1): 1 % → 4.09, 2 % → 3.93, 5 % → 3.59, 10 % → 3.28, 20 % → 2.99.
		{"1% random", 0.01, 1, 4.09},
		{"2% random", 0.02, 1, 3.93},
		{"5% random", 0.05, 1, 3.59},
		{"10% random", 0.10, 1, 3.28},
		{"20% random", 0.20, 1, 2.99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mosG711(tt.ppl, tt.burstr)
			if math.Abs(got-tt.want) > 0.005 {
				t.Errorf("mosG711(%v, %v) = %.4f, want %.3f", tt.ppl, tt.burstr, got, tt.want)
			}
		})
	}
}

// TestVMIntervals: 30 s of clean 20 ms PCMU with every 50th packet lost
// (i ≡ 25 mod 50). The sniffer marks an interval at the first packet more
// than 10 s after the first (i = 501, t = 10.02 s) and scores it 20 packets
// later (i = 521, t = 10.42 s); the next mark is the first packet more than
// 10 s after i = 501 (i = 1002), scored at i = 1022 (20.44 s); the rest is
// never scored. Interval 1 has 10 losses among 510 counted packets (522
// sent, 10 lost, 2 of probation), interval 2 has 10 among 491; bursts of
// one frame give BurstR = 1. The averages weigh the intervals by 10420 and
// 10020 ms; f1 is truncated, f2 and adaptive rounded.
func TestVMIntervals(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	payload := make([]byte, 160)
	for i := 0; i < 1500; i++ {
		if i%50 == 25 {
			continue
		}
		h := Header{Version: 2, PayloadType: PTPCMU, Seq: uint16(i), Timestamp: uint32(i) * 160, SSRC: 7, Payload: payload}
		s.Add(&h, t0.Add(time.Duration(i)*20*time.Millisecond))
	}
	st := s.Stats()
	m1 := math.Round(mosG711(10.0/510, 1) * 10)
	m2 := math.Round(mosG711(10.0/491, 1) * 10)
	avg := float64(float32(float32(m1*10420)+float32(m2*10020)) / 20440)
	want := VMStats{
		MOSF1Mult10: int(avg), MOSF2Mult10: int(math.Round(avg)), MOSAdaptMult10: int(math.Round(avg)),
		MOSF1MinMult10: int(min(m1, m2)), MOSF2MinMult10: int(min(m1, m2)), MOSAdaptMinMult10: int(min(m1, m2)),
		MOSMinMult10: int(math.Round(avg)), Intervals: 2,
		// What listcalls shows: the last interval's MOS, the average
		// truncated for every buffer, the minimum, and the last
		// interval's loss: 10 of 501 expected.
		Live: VMLive{
			MOSMult10:    [3]int{int(m2), int(m2), int(m2)},
			MOSAvgMult10: [3]int{int(avg), int(avg), int(avg)},
			MOSMinMult10: [3]int{int(min(m1, m2)), int(min(m1, m2)), int(min(m1, m2))},
			LossLastPct:  float64(10) / float64(491+10) * 100,
		},
	}
	got := st.VM
	got.AvgJitterMS, got.MaxJitterMS, got.AvgJitterMult10, got.MaxJitter = 0, 0, 0, 0
	if got != want {
		t.Errorf("VM = %+v\nwant %+v (m1 %v, m2 %v, avg %v)", got, want, m1, m2, avg)
	}
	if st.VM.AvgJitterMS != 0 || st.VM.MaxJitter != 0 {
		t.Errorf("jitter avg, max = %v, %v; want 0 on a perfectly paced stream", st.VM.AvgJitterMS, st.VM.MaxJitter)
	}
	if st.MOSF2 != float64(want.MOSF2Mult10)/10 {
		t.Errorf("MOSF2 = %v, want %v", st.MOSF2, float64(want.MOSF2Mult10)/10)
	}
	// The two intervals as the console charts them: closed at 10.42 s and
	// 20.44 s, the first with 10 lost of 520 expected (2 of probation).
	ivs, n := s.Intervals(nil)
	wantIvs := []Interval{
		{End: 10 * time.Second, MOSMult10: [3]int{int(m1), int(m1), int(m1)}, LossPct: 1.92},
		{End: 20 * time.Second, MOSMult10: [3]int{int(m2), int(m2), int(m2)}, LossPct: 2},
	}
	if n != 2 || len(ivs) != 2 || ivs[0] != wantIvs[0] || ivs[1] != wantIvs[1] {
		t.Errorf("Intervals = %+v, %d; want %+v, 2", ivs, n, wantIvs)
	}
}

// TestVMIntervalHistory: 400 s of 20 ms PCMU close 39 intervals (one about every 10.02 s), of which
// the newest 32 are kept, in order, each with its own MOS and loss, the
// last one equal to what listcalls shows, and no jitter before packets
// arrived unevenly, in the interval that holds them.
func TestVMIntervalHistory(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	payload := make([]byte, 160)
	const n = 20000 // 400 s
	for i := 0; i < n; i++ {
		// Loss grows with the minute: every 100th, then 50th, … packet.
		if every := 100 >> (i / 3000 % 4); i%every == every/2 {
			continue
		}
		at := time.Duration(i) * 20 * time.Millisecond
		if i >= 12000 && i < 12100 && i%2 == 1 { // 240–242 s: every other packet 10 ms late
			at += 10 * time.Millisecond
		}
		h := Header{Version: 2, PayloadType: PTPCMU, Seq: uint16(i), Timestamp: uint32(i) * 160, SSRC: 7, Payload: payload}
		s.Add(&h, t0.Add(at))
	}
	ivs, total := s.Intervals(nil)
	live := s.Stats().VM.Live
	if total != 39 || len(ivs) != MaxIntervals {
		t.Fatalf("%d intervals closed, %d kept; want 39 and %d", total, len(ivs), MaxIntervals)
	}
	for i := 1; i < len(ivs); i++ {
		if d := ivs[i].End - ivs[i-1].End; d < 10*time.Second || d > 11*time.Second {
			t.Errorf("interval %d ends %v after the one before, want about 10 s", i, d)
		}
	}
	last := ivs[len(ivs)-1]
	if last.MOSMult10 != live.MOSMult10 || math.Abs(last.LossPct-live.LossLastPct) > 0.005 {
		t.Errorf("last interval %+v, listcalls shows MOS %v loss %v", last, live.MOSMult10, live.LossLastPct)
	}
	worst, jittery := 45, false
	for _, iv := range ivs {
		worst = min(worst, iv.MOSMult10[0])
		// Before 240 s no jitter; the interval that closes first after
		// it holds the uneven packets (J then decays slowly).
		wantJitter := iv.End > 240*time.Second && !jittery
		if iv.End <= 240*time.Second && iv.JitterMaxMS != 0 || wantJitter && iv.JitterMaxMS < 5 || iv.JitterAvgMS > iv.JitterMaxMS {
			t.Errorf("interval ending %v: jitter avg %v max %v", iv.End, iv.JitterAvgMS, iv.JitterMaxMS)
		}
		jittery = jittery || wantJitter
	}
	if worst < live.MOSMinMult10[0] || ivs[0].LossPct >= last.LossPct {
		t.Errorf("kept intervals: worst MOS %d below the stream's minimum %d, or loss not growing: %+v", worst, live.MOSMinMult10[0], ivs)
	}
}

// TestVMJitterHand: the sniffer's jitter of a tiny stream. Packets 0 and 1
// are probation (stats.received counts from packet 2); packet 2 is the
// first voice packet of update_stats and adds nothing; packet 3 arrives
// 8 ms late (D = 8, J = 0.5), packet 4 on time (D = −8, J = 0.5 + 7.5/16 =
// 0.96875). avgjitter is the running mean over stats.received = 2, 3:
// (0·1 + 0.5)/2 = 0.25, then (0.25·2 + 0.96875)/3 = 0.489583.
func TestVMJitterHand(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	payload := make([]byte, 160)
	late := map[int]time.Duration{3: 8 * time.Millisecond}
	for i := 0; i < 5; i++ {
		h := Header{Version: 2, PayloadType: PTPCMU, Seq: uint16(100 + i), Timestamp: uint32(i) * 160, SSRC: 7, Payload: payload}
		s.Add(&h, t0.Add(time.Duration(i)*20*time.Millisecond+late[i]))
	}
	vm := s.Stats().VM
	if math.Abs(vm.MaxJitterMS-0.96875) > 1e-9 || math.Abs(vm.AvgJitterMS-(0.25*2+0.96875)/3) > 1e-9 {
		t.Errorf("max, avg = %v, %v; want 0.96875, %v", vm.MaxJitterMS, vm.AvgJitterMS, (0.25*2+0.96875)/3)
	}
	if vm.AvgJitterMult10 != 5 || vm.MaxJitter != 1 || vm.MOSF1Mult10 != -1 || vm.MOSF1MinMult10 != 45 {
		t.Errorf("VM = %+v; want avg×10 5, max 1, no MOS, min 45", vm)
	}
}

// TestLoss5Fixture: the 7000→6000 stream of the loss-5 capture has one
// 3-packet and two 1-packet gaps (editcap deleted 5 frames; spec §2.6).
func TestLoss5Fixture(t *testing.T) {
	s := runFixture(t, "sipp_rtpstream_loss5", StreamConfig{EventPT: -1, CNPT: -1})["127.0.0.1 7000 127.0.0.1 6000 0xCA110000"]
	if s == nil {
		t.Fatal("stream missing")
	}
	st := s.Stats()
	if st.Lost != 5 || st.Received != 245 {
		t.Errorf("Lost, Received = %d, %d; want 5, 245", st.Lost, st.Received)
	}
	if want := [10]uint32{0: 2, 2: 1}; st.LossBursts != want {
		t.Errorf("LossBursts = %v, want %v", st.LossBursts, want)
	}
	// 5 s of media: the sniffer closes no 10 s interval, stores no MOS
	// average and 45 as the minimum.
	if st.VM.MOSF1Mult10 != -1 || st.VM.MOSF2Mult10 != -1 || st.VM.MOSF1MinMult10 != 45 || st.MOSF1 != 4.5 {
		t.Errorf("VM = %+v, MOSF1 %v; want no MOS average, min 45", st.VM, st.MOSF1)
	}
	if st.PtimeMS != 20 || st.Codec != "PCMU" {
		t.Errorf("PtimeMS, Codec = %d, %q; want 20, PCMU", st.PtimeMS, st.Codec)
	}
}

// TestCleanStreamsMOS: the clean lab streams are perfect.
func TestCleanStreamsMOS(t *testing.T) {
	for k, s := range runFixture(t, "baresip_rtcp", StreamConfig{EventPT: -1, CNPT: -1}) {
		st := s.Stats()
		if st.MOSF1 != 4.5 || st.MOSF2 != 4.5 || st.MOSAdapt != 4.5 || st.MOSF1Min != 4.5 {
			t.Errorf("%s: MOS f1/f2/adapt/f1min = %v/%v/%v/%v, want 4.5", k, st.MOSF1, st.MOSF2, st.MOSAdapt, st.MOSF1Min)
		}
	}
}

// TestJitterBufferMOS feeds 30 s of 20 ms PCMU where, every 2 s, the
// network stalls for 120 ms: the 6 packets due in the stall arrive
// together when it ends (the first of them 120 ms late). A 50 ms buffer
// runs dry after 50 ms and interpolates the remaining ticks until the stall
// ends; a 200 ms buffer rides it out.
func TestJitterBufferMOS(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	const n = 1500
	for i := 0; i < n; i++ {
		at := time.Duration(i) * 20 * time.Millisecond
		if i%100 >= 50 && i%100 < 56 {
			at = time.Duration(i-i%100+50)*20*time.Millisecond + 120*time.Millisecond
		}
		h := Header{Version: 2, PayloadType: PTPCMU, Seq: uint16(i), Timestamp: uint32(i) * 160, SSRC: 7}
		s.Add(&h, t0.Add(at))
	}
	s.Finish()
	st := s.Stats()
	if st.Lost != 0 {
		t.Errorf("Lost = %d, want 0 (no network loss)", st.Lost)
	}
	// The 200 ms buffer rides every stall out; the 50 ms one loses frames
	// in every stall; the adaptive one starts at 40 ms, loses in the first
	// interval, then has learnt the delay spread and loses nothing.
	vm := st.VM
	if vm.MOSF2Mult10 != 45 || vm.MOSF2MinMult10 != 45 {
		t.Errorf("f2 MOS, min = %d, %d; want 45", vm.MOSF2Mult10, vm.MOSF2MinMult10)
	}
	if vm.MOSF1Mult10 >= 45 || vm.MOSF1MinMult10 >= 45 {
		t.Errorf("f1 MOS, min = %d, %d; want below 45", vm.MOSF1Mult10, vm.MOSF1MinMult10)
	}
	if vm.Intervals != 2 || vm.MOSAdaptMinMult10 >= 45 || vm.MOSAdaptMult10 <= vm.MOSAdaptMinMult10 {
		t.Errorf("adaptive MOS, min = %d, %d over %d intervals; want a lower first interval and a better average",
			vm.MOSAdaptMult10, vm.MOSAdaptMinMult10, vm.Intervals)
	}
	if st.Delay[2] == 0 { // the 120 ms-late packet has |D| in [90,120) or [120,150)
		if st.Delay[3] == 0 {
			t.Errorf("Delay = %v, want the stall counted in d90 or d120", st.Delay)
		}
	}
}

// TestEventsAndSilence: DTMF in a voice stream and a silence gap with
// consecutive seqs do not count as loss in any buffer.
func TestEventsAndSilence(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: 101, CNPT: -1})
	seq, ts := uint16(0), uint32(0)
	at := time.Duration(0)
	add := func(pt uint8, tsStep uint32, marker bool) {
		h := Header{Version: 2, PayloadType: pt, Seq: seq, Timestamp: ts, SSRC: 9, Marker: marker}
		s.Add(&h, t0.Add(at))
		seq++
		ts += tsStep
		at += 20 * time.Millisecond
	}
	for i := 0; i < 300; i++ {
		add(PTPCMU, 160, false)
	}
	for i := 0; i < 10; i++ { // 200 ms of DTMF, voice timestamps stand still
		add(101, 0, i == 0)
	}
	ts += 10 * 160
	for i := 0; i < 300; i++ {
		add(PTPCMU, 160, i == 0)
	}
	ts += 100 * 160 // 2 s of silence suppression: seq continues, ts jumps
	at += 2 * time.Second
	for i := 0; i < 300; i++ {
		add(PTPCMU, 160, false)
	}
	s.Finish()
	st := s.Stats()
	if st.Events != 10 || st.Lost != 0 || st.Received != 910 {
		t.Errorf("Events, Lost, Received = %d, %d, %d; want 10, 0, 910", st.Events, st.Lost, st.Received)
	}
	if st.MOSF1Min != 4.5 || st.MOSF2Min != 4.5 || st.MOSAdaptMin != 4.5 {
		t.Errorf("MOS min f1/f2/adapt = %.3f/%.3f/%.3f, want 4.5", st.MOSF1Min, st.MOSF2Min, st.MOSAdaptMin)
	}
}

// TestJitterHandComputed checks the tshark jitter rules on a tiny stream:
// packet 2 arrives 8 ms late (D = 8, J = 0.5), packet 3 on time
// (D = 8 against packet 2, J = (15·0.5+8)/16 = 0.96875), packet 4 has the
// marker bit (J updated, left out of max and mean).
func TestJitterHandComputed(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	arr := []time.Duration{0, 28, 40, 90}
	for i, a := range arr {
		h := Header{Version: 2, PayloadType: PTPCMA, Seq: uint16(i), Timestamp: uint32(i) * 160, SSRC: 3, Marker: i == 3}
		s.Add(&h, t0.Add(a*time.Millisecond))
	}
	st := s.Stats()
	// mean: packet 2 → (0·0 + 0.5)/1 = 0.5; packet 3 → (0.5·1 + 0.96875)/2.
	wantMean := (0.5 + 0.96875) / 2
	if math.Abs(st.JitterMaxMS-0.96875) > 1e-9 || math.Abs(st.JitterMeanMS-wantMean) > 1e-9 || math.Abs(st.MaxDeltaMS-28) > 1e-9 {
		t.Errorf("max, mean jitter, max delta = %v, %v, %v; want 0.96875, %v, 28", st.JitterMaxMS, st.JitterMeanMS, st.MaxDeltaMS, wantMean)
	}
}

func TestStreamAddAllocs(t *testing.T) {
	pkts := readRTPFixture(t, "sipp_rtpstream")
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		p := &pkts[i%len(pkts)]
		s.Add(&p.h, p.arrival)
		i++
	})
	if allocs != 0 {
		t.Errorf("Stream.Add allocates %v times per packet, want 0", allocs)
	}
}

func BenchmarkStreamAdd(b *testing.B) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	h := Header{Version: 2, PayloadType: PTPCMU, SSRC: 1}
	at := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Seq = uint16(i)
		h.Timestamp = uint32(i) * 160
		at = at.Add(20*time.Millisecond + time.Duration(i%7)*time.Millisecond)
		s.Add(&h, at)
	}
}

// BenchmarkStreamAddJitter is BenchmarkStreamAdd without clock drift: 20 ms
// packets delayed by 0–30 ms each (the three simulated jitter buffers then
// work as on a real stream; BenchmarkStreamAdd's arrival clock runs 15 %
// slow, which makes the adaptive buffer recompute its delay history on
// every packet, as the sniffer's does).
func BenchmarkStreamAddJitter(b *testing.B) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	h := Header{Version: 2, PayloadType: PTPCMU, SSRC: 1, Payload: make([]byte, 160)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Seq = uint16(i)
		h.Timestamp = uint32(i) * 160
		jit := time.Duration((i*7919)%31) * time.Millisecond
		s.Add(&h, t0.Add(time.Duration(i)*20*time.Millisecond+jit))
	}
}
