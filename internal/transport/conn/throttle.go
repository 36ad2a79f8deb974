package conn

import (
	"sync"
	"time"
)

// Throttle lets a repeated warning through at most once per interval, so
// that a client sending garbage cannot fill the log; the lines held back
// are counted and reported with the next one let through. Safe for
// concurrent use; the zero value lets one line through per second.
type Throttle struct {
	Every time.Duration // 0 means one second

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log now, and how many lines were held back
// since the last one logged.
func (t *Throttle) Allow(now time.Time) (ok bool, suppressed int) {
	every := t.Every
	if every <= 0 {
		every = time.Second
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < every {
		t.suppressed++
		return false, 0
	}
	t.last = now
	n := t.suppressed
	t.suppressed = 0
	return true, n
}
