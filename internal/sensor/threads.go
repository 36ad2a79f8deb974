package sensor

import "github.com/voipsensor/voipsensor/internal/command/system"

// threadList implements system.Threads: the capture thread by name.
type threadList struct{ s *Sensor }

func (tl threadList) Threads() []system.Thread {
	if tid := tl.s.loop.ThreadID(); tid != 0 {
		return []system.Thread{{Name: "t0 capture+analysis", TID: int(tid)}}
	}
	return nil
}
