package rtp

import "testing"

// summaryOf projects a full Stats onto the StreamSummary fields: the
// independent reference Summary must agree with.
func summaryOf(st StreamStats) StreamSummary {
	sm := StreamSummary{
		PayloadType: st.PayloadType, Received: st.Received, Lost: st.Lost, Events: st.Events, CN: st.CN,
		JitterMeanMS: st.JitterMeanMS, JitterMaxMS: st.JitterMaxMS,
		MOSF1: st.MOSF1, MOSF2: st.MOSF2, MOSAdapt: st.MOSAdapt,
		MOSF1Min: st.MOSF1Min, MOSF2Min: st.MOSF2Min, MOSAdaptMin: st.MOSAdaptMin,
		VMJitterAvgMS: st.VM.AvgJitterMS, VMJitterMaxMS: st.VM.MaxJitterMS, VMLive: st.VM.Live,
	}
	if !st.First.IsZero() {
		sm.Started = true
		sm.FirstNs, sm.LastNs = st.First.UnixNano(), st.Last.UnixNano()
	}
	return sm
}

// TestSummaryMatchesStats checks Summary against Stats on an unstarted
// stream, on sequence patterns with loss, duplicates, wrap and restart,
// and on real captures (loss, jitter and MOS from the loss-5 fixture).
func TestSummaryMatchesStats(t *testing.T) {
	var empty Stream
	empty.Init(StreamConfig{EventPT: -1, CNPT: -1})
	if got, want := empty.Summary(), summaryOf(empty.Stats()); got != want {
		t.Errorf("unstarted: Summary = %+v, want %+v", got, want)
	}
	for name, seqs := range map[string][]uint16{
		"gap":             {10, 11, 13, 17, 18},
		"wrap with loss":  {65534, 1, 2},
		"dup hides loss":  {1, 2, 2, 4},
		"restart":         {100, 101, 102, 20000, 20001, 20002},
		"duplicate older": {1, 2, 3, 2},
	} {
		var s Stream
		s.Init(StreamConfig{EventPT: -1, CNPT: -1})
		feed(&s, seqs)
		if got, want := s.Summary(), summaryOf(s.Stats()); got != want {
			t.Errorf("%s: Summary = %+v, want %+v", name, got, want)
		}
	}
	for _, fx := range []string{"sipp_rtpstream_loss5", "baresip_rtcp"} {
		for k, s := range runFixture(t, fx, StreamConfig{EventPT: -1, CNPT: -1}) {
			if got, want := s.Summary(), summaryOf(s.Stats()); got != want {
				t.Errorf("%s %s: Summary = %+v, want %+v", fx, k, got, want)
			}
		}
	}
}

// TestSummaryAllocs: Summary must not allocate (it runs per stream of
// every call in a 100,000-call listing).
func TestSummaryAllocs(t *testing.T) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	feed(&s, []uint16{1, 2, 4})
	if n := testing.AllocsPerRun(100, func() { _ = s.Summary() }); n != 0 {
		t.Errorf("Summary allocates %v times, want 0", n)
	}
}

// BenchmarkStreamSummary measures one Summary call.
func BenchmarkStreamSummary(b *testing.B) {
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1})
	feed(&s, []uint16{1, 2, 4})
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Summary()
	}
}
