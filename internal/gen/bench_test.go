package gen

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// millionConfig yields a little over one million packets: about 340 calls
// of 30 s with 300 concurrent, impairments and RTCP on.
func millionConfig() Config {
	cfg := DefaultConfig()
	cfg.Calls = 340
	cfg.Concurrency = 300
	cfg.TalkTime = 30 * time.Second
	cfg.Payload = "speech"
	cfg.Loss, cfg.Duplicates, cfg.Reorder = 0.01, 0.005, 0.005
	cfg.Jitter = 40 * time.Millisecond
	cfg.RTCP = true
	cfg.Registrations = 200
	return cfg
}

// BenchmarkGenerate measures packets per second for a ~1 M packet run
// written to io.Discard, and the allocation rate per packet.
func BenchmarkGenerate(b *testing.B) {
	cfg := millionConfig()
	b.ReportAllocs()
	var pkts int
	for b.Loop() {
		s, err := Generate(cfg, io.Discard, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		pkts += s.Packets
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(pkts)/float64(b.N), "packets/op")
}

// heapSampler is an io.Writer that records the peak live heap each time the
// generator flushes its output buffer.
type heapSampler struct {
	peak   uint64
	writes int
}

func (h *heapSampler) Write(p []byte) (int, error) {
	h.writes++
	if h.writes%8 == 0 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapAlloc)
	}
	return len(p), nil
}
