package system

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Stat is the sniffer_stat object. Field order is the legacy key order;
// every value except DiskIO is a string, as in the legacy reply.
type Stat struct {
	Version               string `json:"version"`
	Build                 string `json:"build"`
	RRDVersion            string `json:"rrd_version"`
	Initializing          bool   `json:"initializing,omitempty"`
	StoringCDRLastWriteAt string `json:"storingCdrLastWriteAt"`
	PBStatString          string `json:"pbStatString"`
	PBCountPacketDrop     string `json:"pbCountPacketDrop"`
	Uptime                string `json:"uptime"`
	MemoryIsFull          string `json:"memory_is_full"`
	CountLiveSniffers     string `json:"count_live_sniffers"`
	UpgradeByGit          string `json:"upgrade_by_git"`
	UseNewConfig          string `json:"use_new_config"`
	TerminatingError      string `json:"terminating_error"`
	DiskIO                any    `json:"disk_io"`
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (g *group) snifferStat(context.Context, *command.Request) (command.Result, error) {
	if g.d.Stats == nil {
		return nil, unavailable("stats")
	}
	st := g.d.Stats.Snapshot()
	now := g.d.Now()
	s := Stat{
		Version:           g.d.Version,
		Build:             g.d.Build,
		RRDVersion:        "0",
		Initializing:      st.Initializing,
		PBCountPacketDrop: strconv.FormatUint(st.Drops, 10),
		MemoryIsFull:      b01(st.MemoryFull),
		CountLiveSniffers: strconv.Itoa(st.LiveSniffers),
		UpgradeByGit:      "0",
		UseNewConfig:      "1",
		TerminatingError:  st.TerminatingError,
	}
	if !st.CDRLastWrite.IsZero() {
		s.StoringCDRLastWriteAt = st.CDRLastWrite.Local().Format("2006-01-02 15:04:05")
	}
	if !st.Start.IsZero() {
		s.Uptime = strconv.FormatInt(int64(now.Sub(st.Start).Seconds()), 10)
	}
	if !st.Initializing {
		heap := g.d.Heap
		if heap == nil {
			heap = readHeap
		}
		s.PBStatString = StatString(st, g.d.Version, readProcMem(g.d.Proc), heap(), readLoad(g.d.Proc))
	}
	return command.Value{V: s}, nil
}

// ProcMem is the process memory in MB (RSS/VSZ token).
type ProcMem struct{ RSS, VSZ uint64 }

// HeapMem is the Go heap in bytes, reported in the sniffer's TCM token
// (its tcmalloc figures): h the heap's size, a the bytes allocated, f the
// free pages still mapped, u the pages returned to the system.
type HeapMem struct{ Size, Allocated, Free, Unmapped uint64 }

// readHeap reads the Go runtime's heap figures.
func readHeap() HeapMem {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return HeapMem{Size: ms.HeapSys, Allocated: ms.HeapAlloc, Free: ms.HeapIdle - ms.HeapReleased, Unmapped: ms.HeapReleased}
}

// Load is the load average and CPU count (LA token); HT tells that the
// CPU flags include ht (the sniffer's "h" after the count).
type Load struct {
	Avg  [3]float64
	NCPU int
	HT   bool
}

// StatString renders the sniffer's pbStatString status line from st, in
// its token order (PcapQueue::pcapStat): calls, PS rates, SQLq, heap (the
// packet buffer's fill, percent), drop (H: packets the full buffer
// dropped, I-<interface>: the kernel's; only when non-zero), throughput,
// the tar queue and buffers
// (tarQ, tarB, fileB: 0, voipsensor writes no tar files), t0CPU,
// tRTP_CPU, RSS/VSZ, TCM (the Go heap in tcmalloc's slots),
// HEAP_HASHTABLE (0/0: voipsensor has no separate hash-table heap), LA
// (with * when a load figure exceeds the CPUs, ¾ of them with
// hyper-threading) and v<version>, each token followed by a space.
// Figures voipsensor does not keep are written "-", as the sniffer writes
// a figure it has no previous sample of.
func StatString(st SensorStats, version string, mem ProcMem, heap HeapMem, la Load) string {
	var b strings.Builder
	fmt.Fprintf(&b, "calls[%d,r:%d][%d,r:%d] ", st.ActiveCalls, st.RegisterDialogs, st.CallsInMemory, st.RegisterDialogs)
	r := func(f float64) int64 { return int64(f + 0.5) }
	fmt.Fprintf(&b, "PS[C:%d/-%d r:-/- S:%d/- SR:%d SM:- R:%d/- A:%d] ", r(st.NewCallsPerSec), r(st.ClosedCallsPerSec),
		r(st.SIPPerSec), r(st.RegisterPerSec), r(st.RTPPerSec), r(st.PacketsPerSec))
	fmt.Fprintf(&b, "SQLq[C1:%d] ", st.CDRQueue)
	fmt.Fprintf(&b, "heap[u%.0f|t0] ", st.BufferUsedPct)
	if st.Drops > 0 || st.BufferDrops > 0 || len(st.InterfaceDrops) > 0 {
		fmt.Fprintf(&b, "drop[H:%d", st.BufferDrops) // H: the packet buffer ("heap")
		for _, d := range st.InterfaceDrops {
			fmt.Fprintf(&b, " I-%s:%d", d.Name, d.Drops)
		}
		b.WriteString("] ")
	}
	fmt.Fprintf(&b, "[%.1fMb/s] ", st.MbitPerSec)
	b.WriteString("tarQ[0] tarB[0.0MB] fileB[0.0MB] ")
	fmt.Fprintf(&b, "t0CPU[%.1f%%] ", st.CaptureCPU)
	if len(st.RTPCPU) > 0 {
		var sum, mx float64
		for _, c := range st.RTPCPU {
			sum += c
			mx = max(mx, c)
		}
		fmt.Fprintf(&b, "tRTP_CPU[%.1f%%/%.1fm/%dt] ", sum, mx, len(st.RTPCPU))
	}
	b.WriteString("RSS/VSZ[")
	if mem.RSS > 0 {
		fmt.Fprintf(&b, "%d", mem.RSS)
	}
	if mem.VSZ > 0 {
		if mem.RSS > 0 {
			b.WriteByte('|')
		}
		fmt.Fprintf(&b, "%d", mem.VSZ)
	}
	b.WriteString("]MB ")
	b.WriteString("TCM[")
	n := 0
	for _, f := range []struct {
		name  string
		bytes uint64
	}{{"h", heap.Size}, {"a", heap.Allocated}, {"f", heap.Free}, {"u", heap.Unmapped}} {
		mb := float64(f.bytes) / (1 << 20)
		if math.Round(mb) > 0 {
			if n > 0 {
				b.WriteByte('/')
			}
			fmt.Fprintf(&b, "%s:%.0f", f.name, mb)
			n++
		}
	}
	b.WriteString("]MB HEAP_HASHTABLE[0/0]MB ")
	if la.NCPU > 0 {
		limit := float64(la.NCPU)
		if la.HT {
			limit *= 3. / 4
		}
		if la.Avg[0] > limit || la.Avg[1] > limit || la.Avg[2] > limit {
			b.WriteByte('*')
		}
		h := ""
		if la.HT {
			h = "h"
		}
		fmt.Fprintf(&b, "LA[%.2f %.2f %.2f|%d%s] ", la.Avg[0], la.Avg[1], la.Avg[2], la.NCPU, h)
	}
	b.WriteString("v" + version + " ")
	return b.String()
}

// readProcMem reads /proc/self/statm (pages) into MB; zero on error.
func readProcMem(proc string) ProcMem {
	b, err := os.ReadFile(filepath.Join(proc, "self", "statm"))
	if err != nil {
		return ProcMem{}
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return ProcMem{}
	}
	vsz, _ := strconv.ParseUint(f[0], 10, 64)
	rss, _ := strconv.ParseUint(f[1], 10, 64)
	page := uint64(os.Getpagesize())
	return ProcMem{RSS: rss * page >> 20, VSZ: vsz * page >> 20}
}

// readLoad reads /proc/loadavg and counts CPUs in /proc/stat.
func readLoad(proc string) Load {
	var la Load
	if b, err := os.ReadFile(filepath.Join(proc, "loadavg")); err == nil {
		f := strings.Fields(string(b))
		for i := 0; i < 3 && i < len(f); i++ {
			la.Avg[i], _ = strconv.ParseFloat(f[i], 64)
		}
	}
	if b, err := os.ReadFile(filepath.Join(proc, "cpuinfo")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			// The sniffer's test (get_cpu_ht): "ht" anywhere in a flags line.
			if strings.HasPrefix(l, "flags") && strings.Contains(l, "ht") {
				la.HT = true
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(proc, "stat")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
				la.NCPU++
			}
		}
	}
	return la
}
