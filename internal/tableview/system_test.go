package tableview

import (
	"testing"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// The packet buffer's figures reach sniffer_stat: its fill as heap's
// percentage, its drops as drop's H, memory_is_full when it is full.
func TestSystemStatsBuffer(t *testing.T) {
	tests := []struct {
		name     string
		capture  capture.Stats
		wantPct  float64
		wantFull bool
	}{
		{"no buffer", capture.Stats{KernelDropped: 3}, 0, false},
		{"quarter", capture.Stats{BufferCapacity: 400, BufferUsed: 100, BufferDropped: 0}, 25, false},
		{"full", capture.Stats{BufferCapacity: 400, BufferUsed: 399, BufferDropped: 7}, 99.75, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := &SystemStats{Source: "lo", Counters: func() Counters { return Counters{Capture: tt.capture} }, CPU: func() float64 { return 0 }}
			got := ss.Snapshot()
			if got.BufferUsedPct != tt.wantPct || got.MemoryFull != tt.wantFull || got.BufferDrops != tt.capture.BufferDropped || got.Drops != tt.capture.KernelDropped {
				t.Errorf("Snapshot = pct %v full %v buffer drops %d drops %d; want %v %v %d %d", got.BufferUsedPct, got.MemoryFull,
					got.BufferDrops, got.Drops, tt.wantPct, tt.wantFull, tt.capture.BufferDropped, tt.capture.KernelDropped)
			}
		})
	}
}
