package tableview

import (
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

func endedCall(code int, answered bool, mos10 int, received, lost int) *calltable.CallInfo {
	c := &calltable.CallInfo{LastCode: code}
	if answered {
		c.AnswerTime = time.Unix(100, 0)
	}
	var st rtp.StreamStats
	st.Received, st.Lost, st.JitterMeanMS = int64(received), int64(lost), 12
	st.VM.MOSF1Mult10, st.VM.MOSF2Mult10 = mos10, mos10
	c.Streams = []calltable.StreamInfo{{Stats: st}}
	return c
}

// withDTMF adds a stream of telephone events with half its packets lost:
// not voice, so it changes neither the MOS nor the loss figures.
func withDTMF(c *calltable.CallInfo) *calltable.CallInfo {
	var st rtp.StreamStats
	st.Received, st.Lost, st.Events, st.VM.MOSF1Mult10, st.VM.MOSF2Mult10 = 10, 10, 10, 10, 10
	c.Streams = append(c.Streams, calltable.StreamInfo{Kind: calltable.KindDTMF, Stats: st})
	return c
}

func TestMOSBands(t *testing.T) {
	for _, tt := range []struct {
		mos  float64
		band int
	}{{1, 0}, {1.9, 0}, {2, 1}, {2.9, 2}, {3.1, 3}, {3.5, 4}, {3.6, 5}, {3.7, 5}, {3.8, 6}, {3.9, 6}, {4, 7}, {4.2, 7}, {4.3, 8}, {4.5, 8}} {
		if got := mosBand(tt.mos); got != tt.band {
			t.Errorf("mosBand(%v) = %d, want %d", tt.mos, got, tt.band)
		}
	}
}

func TestQualityAccumulates(t *testing.T) {
	q := NewQuality()
	t0 := time.Date(2026, 12, 2, 10, 0, 30, 0, time.UTC)
	q.Tick(t0, 1, 0)                                         // one call started before the first tick
	q.CallEnded(withDTMF(endedCall(200, true, 44, 980, 20))) // MOS 4.4, 2% loss
	q.CallEnded(endedCall(486, false, -1, 0, 0))             // busy: no media, counts for NER
	q.CallEnded(endedCall(503, false, -1, 0, 0))             // a network failure
	q.Tick(t0.Add(20*time.Second), 3, 2)
	q.Tick(t0.Add(65*time.Second), 5, 1) // the next minute
	q.CallEnded(endedCall(200, true, 31, 900, 100))

	h := q.History()
	if len(h) != 2 {
		t.Fatalf("history of %d minutes, want 2: %+v", len(h), h)
	}
	m0, m1 := h[0], h[1]
	if m0.Start != t0.Truncate(time.Minute).Unix() || m0.Attempts != 3 || m0.InProgress != 2 || m0.Ended != 3 || m0.Answered != 1 || m0.NetworkOK != 2 {
		t.Errorf("first minute %+v: want 3 attempts, 2 in progress, 3 ended, 1 answered, 2 network-OK", m0)
	}
	if m0.MOS != [9]int{8: 1} || m0.LossPct != 2 {
		t.Errorf("first minute MOS bands %v, loss %v%%: want one call in the ≥ 4.3 band, 2%%", m0.MOS, m0.LossPct)
	}
	if m1.Attempts != 2 || m1.Ended != 1 || m1.MOS != [9]int{3: 1} || m1.LossPct != 10 {
		t.Errorf("second minute %+v", m1)
	}
	if q.mos.n != 2 || q.loss.n != 2 || q.classes["2xx"] != 2 || q.classes["4xx"] != 1 || q.classes["5xx"] != 1 {
		t.Errorf("histograms and classes: mos %d loss %d classes %v", q.mos.n, q.loss.n, q.classes)
	}
	// Cumulative buckets: 3.1 is ≤ 3.5, 4.4 ≤ 4.5 only.
	s := q.mos.sample(nil)
	for _, b := range s.Buckets {
		want := uint64(0)
		if b.UpperBound >= 3.1 {
			want = 1
		}
		if b.UpperBound >= 4.4 {
			want = 2
		}
		if b.Count != want {
			t.Errorf("MOS bucket le=%v: %d, want %d", b.UpperBound, b.Count, want)
		}
	}
	// Hours later only the last 60 minutes are kept, one per minute.
	q.Tick(t0.Add(3*time.Hour), 100, 0)
	h = q.History()
	if len(h) != historyMinutes || h[len(h)-1].Start != t0.Add(3*time.Hour).Truncate(time.Minute).Unix() {
		t.Fatalf("after 3 h: %d minutes, last %+v", len(h), h[len(h)-1])
	}
	for i := 1; i < len(h); i++ {
		if h[i].Start != h[i-1].Start+60 {
			t.Fatalf("minutes %d and %d are not consecutive: %d, %d", i-1, i, h[i-1].Start, h[i].Start)
		}
	}
}
