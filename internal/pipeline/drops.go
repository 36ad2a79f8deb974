package pipeline

import (
	"sync"
	"time"
)

// DropLog remembers when the sensor lost frames (in the kernel ring or its
// packet buffer), so that a call whose time span saw such a loss can say
// so: its "lost" packets may then be the sensor's, not the network's. It
// is fed once a second with the cumulative drop counters and keeps the
// intervals in which they grew, merged when consecutive, for a horizon
// (older ones are forgotten). Safe for concurrent use; its lock is a leaf.
type DropLog struct {
	mu       sync.Mutex
	horizon  time.Duration
	last     uint64    // the counters' total at the last Observe
	lastAt   time.Time // when
	spans    []dropSpan
	maxSpans int
}

type dropSpan struct{ from, to time.Time }

// NewDropLog returns a log that remembers drops for horizon (at most one
// span per second of it).
func NewDropLog(horizon time.Duration) *DropLog {
	return &DropLog{horizon: horizon, maxSpans: max(int(horizon/time.Second), 1)}
}

// Observe records the cumulative drop total at now. A total that grew
// since the last call marks the interval between the two as lossy,
// widened by a second before it: a frame the packet buffer drops was
// stamped by the kernel a little earlier, when it entered the ring.
func (l *DropLog) Observe(now time.Time, total uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if total > l.last && !l.lastAt.IsZero() {
		if n := len(l.spans); n > 0 && !l.spans[n-1].to.Before(l.lastAt) {
			l.spans[n-1].to = now
		} else {
			l.spans = append(l.spans, dropSpan{l.lastAt.Add(-time.Second), now})
		}
	}
	l.last, l.lastAt = total, now
	cut := 0
	for cut < len(l.spans) && (now.Sub(l.spans[cut].to) > l.horizon || len(l.spans)-cut > l.maxSpans) {
		cut++
	}
	l.spans = l.spans[cut:]
}

// Dropped reports whether the sensor lost frames between from and to
// (within the horizon).
func (l *DropLog) Dropped(from, to time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.spans {
		if !s.to.Before(from) && !s.from.After(to) {
			return true
		}
	}
	return false
}
