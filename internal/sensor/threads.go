package sensor

import (
	"sync/atomic"
	"syscall"

	"github.com/voipsensor/voipsensor/internal/command/system"
)

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
