package system

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

type fakeStats SensorStats

func (f fakeStats) Snapshot() SensorStats { return SensorStats(f) }

type fakeLife struct{ reloads, terms int }

func (f *fakeLife) Reload(context.Context) error { f.reloads++; return nil }
func (f *fakeLife) Terminate()                   { f.terms++ }

type fakeSockets struct{ path string }

func (f *fakeSockets) StartSocket(p string) (string, error) {
	if p == "" {
		p = "/tmp/x.sock"
	}
	f.path = p
	return p, nil
}
func (f *fakeSockets) StopSocket() error {
	if f.path == "" {
		return errors.New("not running")
	}
	f.path = ""
	return nil
}

func run(t *testing.T, reg *command.Registry, name string, args ...string) command.Result {
	t.Helper()
	res, err := reg.Run(context.Background(), &command.Request{Name: name, Args: args, Perm: command.PermAll})
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return res
}

func TestCommands(t *testing.T) {
	life := &fakeLife{}
	socks := &fakeSockets{}
	reg := command.NewRegistry()
	Register(reg, Deps{Version: "1.2.3", Build: "abc", Lifecycle: life, Sockets: socks})
	tests := []struct {
		cmd  string
		args []string
		want command.Result
	}{
		{"getversion", nil, command.Text("1.2.3")},
		{"sniffer_version", nil, command.Text("1.2.3")},
		{"getverbuild", nil, command.Text("1.2.3 (abc)")},
		{"reload", nil, command.Text("reload ok")},
		{"terminating", nil, command.Empty{}},
		{"support_aes", nil, command.Text("no")},
		{"exists_aes_key", nil, command.Text("no")},
		{"manager_file", []string{"start", "/tmp/a.sock"}, command.Text("OK (/tmp/a.sock)\n")},
		{"manager_file", []string{"stop"}, command.Text("OK\n")},
	}
	for _, tt := range tests {
		if got := run(t, reg, tt.cmd, tt.args...); got != tt.want {
			t.Errorf("%s %v = %#v, want %#v", tt.cmd, tt.args, got, tt.want)
		}
	}
	if life.reloads != 1 || life.terms != 1 {
		t.Errorf("lifecycle calls = %+v, want one reload and one terminate", life)
	}
	help := string(run(t, reg, "help").(command.Text))
	if !strings.HasPrefix(help, "List of commands:\n\nexists_aes_key ... ") || !strings.Contains(help, "\n\ngetversion ... sensor version.\n\n") ||
		strings.Index(help, "exists_aes_key") > strings.Index(help, "getversion") {
		t.Errorf("help is not the sniffer's sorted `name ... doc.` list:\n%s", help)
	}
	if one := string(run(t, reg, "help", "getversion").(command.Text)); one != "getversion ... sensor version.\n\n" {
		t.Errorf("help getversion = %q", one)
	}
	if one := string(run(t, reg, "help", "nosuch").(command.Text)); one != "Command nosuch not found.\n\n" {
		t.Errorf("help nosuch = %q", one)
	}
	_, err := reg.Run(context.Background(), &command.Request{Name: "manager_file", Args: []string{"restart"}, Perm: command.PermAll})
	if !errors.Is(err, command.ErrBadParam) {
		t.Errorf("manager_file restart: err = %v, want ErrBadParam", err)
	}
	_, err = reg.Run(context.Background(), &command.Request{Name: "sniffer_stat", Perm: command.PermAll})
	if !errors.Is(err, command.ErrUnavailable) {
		t.Errorf("sniffer_stat without stats: err = %v, want ErrUnavailable", err)
	}
}

func TestStatString(t *testing.T) {
	st := SensorStats{ActiveCalls: 3, RegisterDialogs: 1, CallsInMemory: 5, Registrations: 7,
		NewCallsPerSec: 2, ClosedCallsPerSec: 1, SIPPerSec: 40, RTPPerSec: 1500.4, PacketsPerSec: 1600,
		CDRQueue: 4, BufferUsedPct: 12, Drops: 9, InterfaceDrops: []InterfaceDrops{{"eth0", 9}},
		MbitPerSec: 2.5, CaptureCPU: 3.25, RTPCPU: []float64{1, 2.5}}
	heap := HeapMem{Size: 131 << 20, Allocated: 115 << 20, Free: 15<<20 + 1<<19, Unmapped: 1 << 18}
	got := StatString(st, "0.1", ProcMem{RSS: 30, VSZ: 900}, heap, Load{Avg: [3]float64{0.5, 0.25, 0.1}, NCPU: 2})
	// The sniffer's tokens in its order, each followed by a space; a heap
	// figure that rounds to 0 MB is left out, as the sniffer leaves out
	// tcmalloc's.
	want := "calls[3,r:1][5,r:1] PS[C:2/-1 r:-/- S:40/- SR:0 SM:- R:1500/- A:1600] SQLq[C1:4] heap[u12|t0] drop[H:0 I-eth0:9] " +
		"[2.5Mb/s] tarQ[0] tarB[0.0MB] fileB[0.0MB] t0CPU[3.2%] tRTP_CPU[3.5%/2.5m/2t] RSS/VSZ[30|900]MB " +
		"TCM[h:131/a:115/f:16]MB HEAP_HASHTABLE[0/0]MB LA[0.50 0.25 0.10|2] v0.1 "
	if got != want {
		t.Errorf("StatString =\n%s\nwant\n%s", got, want)
	}
	// Packets the full packet buffer dropped are drop's H figure, shown
	// even when the kernel dropped none.
	got = StatString(SensorStats{BufferUsedPct: 99.6, BufferDrops: 1234}, "0.1", ProcMem{}, HeapMem{}, Load{})
	if !strings.Contains(got, " heap[u100|t0] drop[H:1234] ") {
		t.Errorf("StatString with buffer drops = %q", got)
	}
	// Load over ¾ of the CPUs with hyper-threading: marked, and "h".
	got = StatString(SensorStats{}, "0.1", ProcMem{}, HeapMem{}, Load{Avg: [3]float64{0.58, 2.25, 4.18}, NCPU: 2, HT: true})
	if !strings.Contains(got, " RSS/VSZ[]MB TCM[]MB HEAP_HASHTABLE[0/0]MB *LA[0.58 2.25 4.18|2h] v0.1 ") {
		t.Errorf("StatString = %q", got)
	}
}

func TestSnifferStat(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := command.NewRegistry()
	Register(reg, Deps{Version: "9", Stats: fakeStats{Start: start, Drops: 4},
		Now: func() time.Time { return start.Add(90 * time.Second) }})
	s := run(t, reg, "sniffer_stat").(command.Value).V.(Stat)
	if s.Uptime != "90" || s.PBCountPacketDrop != "4" || !strings.HasPrefix(s.PBStatString, "calls[0,r:0][0,r:0] ") || s.DiskIO != nil {
		t.Errorf("sniffer_stat = %+v", s)
	}
}

// TestSnifferThreads reads this test process's own /proc/self/task: the
// first call in a slot reports 0% everywhere (legacy), a second call after
// burning CPU reports a positive share for the busy thread.
func TestSnifferThreads(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	reg := command.NewRegistry()
	Register(reg, Deps{})
	first := run(t, reg, "sniffer_threads", "all", "uid=7").(command.Value).V.(ThreadsReport)
	if len(first.Threads) == 0 || first.CPUAll != 0 {
		t.Fatalf("first call: %d threads, cpu_all %v; want threads at 0%%", len(first.Threads), first.CPUAll)
	}
	for _, th := range first.Threads {
		if th.CPU != 0 || th.TID <= 0 || th.Description == "" || th.SchedType == "" {
			t.Errorf("first call thread %+v", th)
		}
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = filepath.Join("a", "b") // burn CPU
	}
	second := run(t, reg, "sniffer_threads", "uid=7").(command.Value).V.(ThreadsReport)
	if second.CPUAll <= 0 || len(second.Threads) == 0 {
		t.Fatalf("second call: cpu_all %v with %d threads; want > 0", second.CPUAll, len(second.Threads))
	}
	for i := 1; i < len(second.Threads); i++ {
		if second.Threads[i].CPU > second.Threads[i-1].CPU {
			t.Errorf("threads not sorted by CPU desc: %v", second.Threads)
		}
	}
	// The shared slot is independent of uid=7: its first call is 0%.
	shared := run(t, reg, "sniffer_threads").(command.Value).V.(ThreadsReport)
	if len(shared.Threads) != 0 {
		t.Errorf("shared slot first call without 'all' listed %d threads, want 0", len(shared.Threads))
	}
}

type fakeThreads []Thread

func (f fakeThreads) Threads() []Thread { return f }

// TestSnifferThreadsOnlyTraffic pins this goroutine to its OS thread and
// names it as the packet thread: with only_traffic it is the one thread
// listed while it has counted packets, and none is listed while it has not.
func TestSnifferThreadsOnlyTraffic(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := syscall.Gettid()
	for _, tt := range []struct {
		packets uint64
		want    []int
	}{{0, nil}, {1234, []int{tid}}} {
		reg := command.NewRegistry()
		Register(reg, Deps{Threads: fakeThreads{{Name: "t0 capture", TID: tid, Packets: tt.packets}}})
		rep := run(t, reg, "sniffer_threads", "all", "only_traffic").(command.Value).V.(ThreadsReport)
		var got []int
		for _, th := range rep.Threads {
			got = append(got, th.TID)
			if th.Description != "t0 capture" {
				t.Errorf("thread %d described %q, want the given name", th.TID, th.Description)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("packets %d: only_traffic listed %v, want %v", tt.packets, got, tt.want)
		}
	}
}

func TestThreadCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := int64(syscall.Gettid())
	var m ThreadCPU
	if p := m.Percent(tid); p != 0 {
		t.Fatalf("first reading = %v, want 0 (no interval yet)", p)
	}
	// Burn this thread until it has used 100 ms of CPU (whatever the
	// machine's load), then read again: the share must be positive and at
	// most 100% of one CPU (plus rounding of the 10 ms ticks).
	dir := "/proc/self/task"
	s0, _ := readTask(dir, int(tid))
	start := time.Now()
	for x := 0; ; x++ {
		_ = x * x
		if x%100000 == 0 && time.Since(start) > 150*time.Millisecond { // the meter's interval is ≥ 100 ms
			if s, ok := readTask(dir, int(tid)); ok && s.ticks >= s0.ticks+10 {
				break
			}
		}
	}
	if p := m.Percent(tid); p <= 0 || p > 110 {
		t.Errorf("busy thread at %v%%, want (0, 100]", p)
	}
	if m.Percent(0) != 0 {
		t.Error("tid 0 must read 0")
	}
}
