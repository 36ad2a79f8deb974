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

// TestMOSG711 checks the VoIPmonitor formula against hand calculations.
func TestMOSG711(t *testing.T) {
	tests := []struct {
		name                   string
		lost, bursts, received int64
		want                   float64
	}{
		{"no loss", 0, 0, 500, 4.5},
		{"under 5 lost is perfect", 4, 4, 500, 4.5},
		{"under 100 received", 10, 2, 99, 4.5},
		{"over half lost", 300, 3, 500, 1},
		// Spec §2.6: 5 lost in 3 bursts over 245 received: Ppl = 2.04 %,
		// BurstR = 5/3·(1−0.0204) = 1.633, R = 93.2062 − 95·2.0408/(2.0408/1.633+17.2647)
		// = 82.735, MOS = 2.06405 + 2.62584 − 2.44124 + 1.66013 = 3.909.
		{"loss5 fixture", 5, 3, 245, 3.909},
		// Spec §2.5 table, "VoIPmonitor formula" column, random loss (BurstR
		// clamps to 1): 1 % → 4.09, 2 % → 3.93, 5 % → 3.59, 10 % → 3.28, 20 % → 2.99.
		{"1% random", 10, 10, 1000, 4.09},
		{"2% random", 20, 20, 1000, 3.93},
		{"5% random", 50, 50, 1000, 3.59},
		{"10% random", 100, 100, 1000, 3.28},
		{"20% random", 200, 200, 1000, 2.99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MOSG711(tt.lost, tt.bursts, tt.received)
			if math.Abs(got-tt.want) > 0.005 {
				t.Errorf("MOSG711(%d, %d, %d) = %.4f, want %.3f", tt.lost, tt.bursts, tt.received, got, tt.want)
			}
		})
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
	// Jitter is below 1 ms, so no buffer adds late drops: all three see the
	// network loss only, MOS 3.909 (TestMOSG711).
	for _, m := range []float64{st.MOSF1, st.MOSF2, st.MOSAdapt, st.MOSF1Min, st.MOSF2Min, st.MOSAdaptMin} {
		if math.Abs(m-3.909) > 0.005 {
			t.Errorf("MOS = %.4f, want 3.909 (stats %+v)", m, st)
		}
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
// ends (one burst of 3–4 frames per stall, 15 stalls); a 200 ms buffer
// rides it out.
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
	if st.MOSF2 != 4.5 || st.MOSAdapt != 4.5 {
		t.Errorf("MOSF2, MOSAdapt = %.3f, %.3f; want 4.5", st.MOSF2, st.MOSAdapt)
	}
	// Each 10 s interval has 500 packets and 5 stalls of 3–4 lost ticks:
	// Ppl ≈ 3.5 %, BurstR ≈ 3.4 → MOS between MOSG711(15,5,500) and
	// MOSG711(20,5,500).
	lo, hi := MOSG711(20, 5, 500), MOSG711(15, 5, 500)
	if st.MOSF1 < lo-0.01 || st.MOSF1 > hi+0.01 || st.MOSF1Min > st.MOSF1+1e-9 {
		t.Errorf("MOSF1 = %.3f (min %.3f), want in [%.3f, %.3f]", st.MOSF1, st.MOSF1Min, lo, hi)
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
