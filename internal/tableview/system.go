package tableview

import (
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/command/system"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// Counters is a point-in-time view of the sensor's counters.
type Counters struct {
	Uptime   time.Duration
	Frames   uint64
	Bytes    uint64
	Capture  capture.Stats
	Decode   decode.Stats
	Table    calltable.Stats
	CDR      cdr.WriterStats
	HeapByte uint64
}

// SystemStats presents the sensor's counters to sniffer_stat and friends
// (system.Stats), with per-second rates computed between two snapshots.
// Use a pointer; safe for concurrent use.
type SystemStats struct {
	Start    time.Time
	Source   string          // the capture source's name
	Counters func() Counters // the sensor's counters now
	CPU      func() float64  // the capture thread's CPU use, percent

	mu   sync.Mutex
	last struct {
		at                        time.Time
		frames, sip, rtp, started uint64
		ended, regs               uint64
	}
}

// Snapshot implements system.Stats.
func (ss *SystemStats) Snapshot() system.SensorStats {
	st := ss.Counters()
	now := time.Now()
	out := system.SensorStats{
		Start:         ss.Start,
		ActiveCalls:   st.Table.Calls,
		CallsInMemory: st.Table.Calls,
		Registrations: st.Table.Registrations,
		CDRQueue:      st.CDR.Pending,
		Packets:       st.Frames,
		Drops:         st.Capture.KernelDropped,
		BufferDrops:   st.Capture.BufferDropped,
		MemoryFull:    st.Capture.BufferCapacity > 0 && st.Capture.BufferUsed*100 >= st.Capture.BufferCapacity*99,
		InterfaceDrops: []system.InterfaceDrops{
			{Name: ss.Source, Drops: st.Capture.KernelDropped},
		},
		CaptureCPU: ss.CPU(),
	}
	if c := st.Capture.BufferCapacity; c > 0 {
		out.BufferUsedPct = 100 * float64(st.Capture.BufferUsed) / float64(c)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if dt := now.Sub(ss.last.at).Seconds(); !ss.last.at.IsZero() && dt > 0 {
		rate := func(cur, prev uint64) float64 { return float64(cur-prev) / dt }
		out.PacketsPerSec = rate(st.Frames, ss.last.frames)
		out.SIPPerSec = rate(st.Table.SIPMessages, ss.last.sip)
		out.RTPPerSec = rate(st.Table.RTPPackets, ss.last.rtp)
		out.NewCallsPerSec = rate(st.Table.CallsStarted, ss.last.started)
		out.ClosedCallsPerSec = rate(st.Table.CallsEnded, ss.last.ended)
		out.MbitPerSec = 0
	}
	ss.last.at = now
	ss.last.frames, ss.last.sip, ss.last.rtp = st.Frames, st.Table.SIPMessages, st.Table.RTPPackets
	ss.last.started, ss.last.ended = st.Table.CallsStarted, st.Table.CallsEnded
	return out
}
