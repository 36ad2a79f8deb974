package sensor

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voipsensor/voipsensor/internal/command/system"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/.../stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuMeter turns a thread's cumulative CPU time (/proc/self/task/TID/stat)
// into a percentage between two readings. Safe for concurrent use.
type cpuMeter struct {
	mu    sync.Mutex
	ticks uint64
	at    time.Time
	last  float64
}

// percent returns the thread's CPU use since the previous call (the
// previous value when called again within 100 ms), or 0 for tid 0.
func (m *cpuMeter) percent(tid int64) float64 {
	if tid == 0 {
		return 0
	}
	ticks, ok := threadTicks(int(tid))
	if !ok {
		return 0
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if dt := now.Sub(m.at); !m.at.IsZero() && dt >= 100*time.Millisecond {
		m.last = float64(ticks-m.ticks) / clockTicks / dt.Seconds() * 100
	} else if !m.at.IsZero() {
		return m.last
	}
	m.ticks, m.at = ticks, now
	return m.last
}

// threadTicks reads utime+stime of one thread of this process.
func threadTicks(tid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name is in parentheses and may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	return u + st, err1 == nil && err2 == nil
}

// gettid returns the calling OS thread's id.
func gettid() int64 { return int64(syscall.Gettid()) }

// threadList implements system.Threads: the capture thread by name.
type threadList struct{ tid *atomic.Int64 }

func (tl threadList) Threads() []system.Thread {
	if tid := tl.tid.Load(); tid != 0 {
		return []system.Thread{{Name: "t0 capture+analysis", TID: int(tid)}}
	}
	return nil
}
