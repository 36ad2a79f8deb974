package pipeline

import (
	"testing"
	"time"
)

// TestDropLog: a call overlapping a second in which the drop counters
// grew (or the second before it) is flagged, one before or after it is not, consecutive lossy
// seconds merge into one span, and spans beyond the horizon are forgotten.
func TestDropLog(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	l := NewDropLog(time.Hour)
	for s, total := range []uint64{0, 0, 0, 5, 9, 9, 9, 9} { // drops in (2,3] and (3,4]
		l.Observe(at(s), total)
	}
	if n := len(l.spans); n != 1 {
		t.Fatalf("%d spans, want the two lossy seconds merged into 1", n)
	}
	for _, tt := range []struct {
		from, to int
		want     bool
	}{
		// The span is (2 s, 4 s], widened by a second before it: [1 s, 4 s].
		{0, 0, false}, {0, 1, true}, {3, 3, true}, {2, 10, true}, {5, 7, false}, {-10, 10, true},
	} {
		if got := l.Dropped(at(tt.from), at(tt.to)); got != tt.want {
			t.Errorf("Dropped(%d s, %d s) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
	l.Observe(at(2*3600), 9) // two hours later: the span is past the horizon
	if l.Dropped(at(0), at(10)) {
		t.Error("a span beyond the horizon is still reported")
	}
	if NewDropLog(time.Hour).Dropped(at(0), at(10)) {
		t.Error("an empty log reports drops")
	}
}
