package system

import (
	"path/filepath"
	"sync"
	"time"
)

// ThreadCPU turns one thread's cumulative CPU time (utime + stime of
// /proc/self/task/TID/stat, read as sniffer_threads reads it) into a
// percentage between two readings, for the status line and sniffer_stat's
// capture CPU. Safe for concurrent use; the zero value reads /proc.
type ThreadCPU struct {
	Proc string // the proc mount, "" for /proc

	mu    sync.Mutex
	ticks uint64
	at    time.Time
	last  float64
}

// Percent returns the thread's CPU use since the previous call (the
// previous value when called again within 100 ms), or 0 for tid 0 or a
// thread that cannot be read.
func (m *ThreadCPU) Percent(tid int64) float64 {
	if tid == 0 {
		return 0
	}
	proc := m.Proc
	if proc == "" {
		proc = "/proc"
	}
	sm, ok := readTask(filepath.Join(proc, "self", "task"), int(tid))
	if !ok {
		return 0
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if dt := now.Sub(m.at); !m.at.IsZero() && dt >= 100*time.Millisecond {
		m.last = float64(sm.ticks-m.ticks) / clockTicks / dt.Seconds() * 100
	} else if !m.at.IsZero() {
		return m.last
	}
	m.ticks, m.at = sm.ticks, now
	return m.last
}
