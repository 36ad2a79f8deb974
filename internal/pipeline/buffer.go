package pipeline

import (
	"log/slog"
	"syscall"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// BufferMB is the packet buffer's size for max_buffer_mem = mb: at most
// half the machine's memory, so that a sensor left far behind by its
// analysis drops packets (and says so) before the kernel kills it.
func BufferMB(mb int) int {
	var si syscall.Sysinfo_t
	if mb <= 0 || syscall.Sysinfo(&si) != nil {
		return max(mb, 0)
	}
	half := int(uint64(si.Totalram) * uint64(si.Unit) >> 21)
	return max(min(mb, half), 1)
}

// BufferPct is a percentage of the packet buffer, 0 without one.
func BufferPct(n, capacity uint64) float64 {
	if capacity == 0 {
		return 0
	}
	return float64(int(1000*float64(n)/float64(capacity))) / 10
}

// BufferWatch remembers whether the packet buffer was dropping packets.
type BufferWatch struct {
	dropped  uint64 // drops at the last look
	full     bool   // dropping since the last look, or before it
	fullFrom uint64 // drops when it started dropping
}

// Check logs once when the packet buffer starts dropping and once when it
// has recovered (a whole look without a drop). The sensor calls it every
// second and at the stop, from one goroutine; the capture goroutine only
// counts.
func (w *BufferWatch) Check(st capture.Stats, log *slog.Logger) {
	if st.BufferCapacity == 0 {
		return
	}
	switch d := st.BufferDropped; {
	case d > w.dropped && !w.full:
		w.full, w.fullFrom = true, w.dropped
		log.Warn("packet buffer full: the analysis is behind, packets dropped (max_buffer_mem)",
			"dropped", d-w.dropped, "max_buffer_mem_mb", st.BufferCapacity>>20)
	case d == w.dropped && w.full:
		w.full = false
		log.Info("packet buffer recovered", "dropped", d-w.fullFrom, "used_pct", BufferPct(st.BufferUsed, st.BufferCapacity))
	}
	w.dropped = st.BufferDropped
}
