package calltable

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// loadCalls puts n answered calls, each with one RTP stream per direction,
// into tab.
func loadCalls(tab *Table, n int) {
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		b := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		sa, sb := netip.AddrPortFrom(a, 5060), netip.AddrPortFrom(b, 5060)
		ma, mb := netip.AddrPortFrom(a, uint16(10000+i%20000*2)), netip.AddrPortFrom(b, uint16(40000+i%10000*2))
		id := fmt.Sprintf("%08x-%d@bench.example", i*2654435761, i)
		at := time.Duration(i) * time.Microsecond
		steps := []step{
			{at, sa, sb, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a1", "", 1, "INVITE", "User-Agent: bench-phone/1.0\r\n", sdpBody(ma))},
			{at, sb, sa, sipMsg("SIP/2.0 200 OK", id, "a1", "b1", 1, "INVITE", "Server: bench-pbx/2.0\r\n", sdpBody(mb))},
			{at, ma, mb, rtpPacket(1, 160, uint32(i), 0)},
			{at, mb, ma, rtpPacket(1, 160, uint32(i)+1, 0)},
		}
		feed(tab, steps)
	}
}

// BenchmarkCallMemory holds 100,000 concurrent calls with two streams each
// and reports the heap they take per call (target: at most 4 KiB), as the
// table is by default and with the records of each call's SIP packets
// (Config.SIPPackets, the sniffer's active_call_info; two per call here).
func BenchmarkCallMemory(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchCallMemory(b, Config{}) })
	b.Run("sip_packets", func(b *testing.B) { benchCallMemory(b, Config{SIPPackets: true}) })
}

func benchCallMemory(b *testing.B, cfg Config) {
	const calls = 100000
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab := New(cfg, nil)
		loadCalls(tab, calls)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st := tab.Stats(); st.Calls != calls || st.RTPPackets != 2*calls {
			b.Fatalf("calls %d rtp %d, want %d %d", st.Calls, st.RTPPackets, calls, 2*calls)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/calls, "bytes/call")
		runtime.KeepAlive(tab)
	}
}

// TestCallMemoryBound keeps the per-call footprint from regressing: 20,000
// calls with two streams must fit in 3 KiB each (the target is
// 4 KiB; about 2.8 KiB measured).
func TestCallMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	const calls = 20000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := New(Config{}, nil)
	loadCalls(tab, calls)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / calls
	t.Logf("%.0f bytes per call with two streams", per)
	if per > 3072 {
		t.Errorf("%.0f bytes per call, want <= 3072", per)
	}
	runtime.KeepAlive(tab)
}
