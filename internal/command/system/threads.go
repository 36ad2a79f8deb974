package system

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// slotTTL is how long an unused sniffer_threads measurement slot is kept.
const slotTTL = 10 * time.Minute

// ThreadInfo is one sniffer_threads row (legacy JSON member names).
type ThreadInfo struct {
	Description string   `json:"description"`
	TID         int      `json:"tid"`
	CPU         float64  `json:"cpu_perc"`
	SchedType   string   `json:"sched_type"`
	SchedPrio   int      `json:"sched_priority"`
	Nice        *int     `json:"nice,omitempty"`
	CSNonVol    uint64   `json:"cs_non_voluntary"`
	CSVol       uint64   `json:"cs_voluntary"`
	CSRatio     *float64 `json:"cs_ratio,omitempty"`
}

// ThreadsReport is the sniffer_threads reply (legacy json form).
type ThreadsReport struct {
	CPUAll   float64      `json:"cpu_all"`
	CPUCount int          `json:"cpu_count"`
	CPUHT    int          `json:"cpu_ht"`
	LA1      float64      `json:"la_1"`
	LA5      float64      `json:"la_5"`
	LA15     float64      `json:"la_15"`
	Threads  []ThreadInfo `json:"threads"`
}

// monitor keeps the per-slot previous samples. Safe for concurrent use.
type monitor struct {
	proc string
	now  func() time.Time

	mu    sync.Mutex
	slots map[int]*slot
}

type slot struct {
	at    time.Time
	ticks map[int]uint64
}

func newMonitor(proc string, now func() time.Time) *monitor {
	return &monitor{proc: proc, now: now, slots: map[int]*slot{}}
}

type sample struct {
	ThreadInfo
	ticks uint64
}

var schedNames = map[int]string{0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH", 5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}

// readTask reads /proc/self/task/<tid>/{stat,status}.
func readTask(dir string, tid int) (sample, bool) {
	b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(tid), "stat"))
	if err != nil {
		return sample{}, false
	}
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return sample{}, false
	}
	f := strings.Fields(s[close+1:]) // f[0] is field 3 (state)
	if len(f) < 39 {
		return sample{}, false
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	sm := sample{ThreadInfo: ThreadInfo{Description: s[open+1 : close], TID: tid}}
	sm.ticks = uint64(num(11) + num(12)) // utime + stime (fields 14, 15)
	nice := int(num(16))                 // field 19
	sm.SchedPrio = int(num(37))          // rt_priority, field 40
	policy := int(num(38))               // field 41
	sm.SchedType = schedNames[policy]
	if sm.SchedType == "" {
		sm.SchedType = "SCHED_" + strconv.Itoa(policy)
	}
	sm.Nice = &nice
	if st, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(tid), "status")); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch k {
			case "voluntary_ctxt_switches":
				sm.CSVol = n
			case "nonvoluntary_ctxt_switches":
				sm.CSNonVol = n
			}
		}
	}
	if sm.CSVol > 0 {
		r := float64(sm.CSNonVol) / float64(sm.CSVol)
		sm.CSRatio = &r
	}
	return sm, true
}

// measure samples every thread of the process and computes CPU% against
// the previous sample of slot uid (0 for the first call in a slot).
func (m *monitor) measure(uid int, names map[int]string) ([]ThreadInfo, float64) {
	dir := filepath.Join(m.proc, "self", "task")
	ents, _ := os.ReadDir(dir)
	var samples []sample
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if sm, ok := readTask(dir, tid); ok {
			if n := names[tid]; n != "" {
				sm.Description = n
			}
			samples = append(samples, sm)
		}
	}
	now := m.now()
	m.mu.Lock()
	for id, s := range m.slots {
		if now.Sub(s.at) > slotTTL {
			delete(m.slots, id)
		}
	}
	prev := m.slots[uid]
	cur := &slot{at: now, ticks: make(map[int]uint64, len(samples))}
	for _, s := range samples {
		cur.ticks[s.TID] = s.ticks
	}
	m.slots[uid] = cur
	m.mu.Unlock()

	out := make([]ThreadInfo, len(samples))
	var sum float64
	for i, s := range samples {
		out[i] = s.ThreadInfo
		if prev == nil {
			continue
		}
		el := now.Sub(prev.at).Seconds()
		p, ok := prev.ticks[s.TID]
		if el <= 0 || !ok || s.ticks < p {
			continue
		}
		out[i].CPU = float64(s.ticks-p) / clockTicks / el * 100
		sum += out[i].CPU
	}
	return out, sum
}

func (g *group) snifferThreads(_ context.Context, req *command.Request) (command.Result, error) {
	// Options are substrings anywhere in the arguments, as in the legacy server.
	opts := strings.Join(req.Args, " ")
	uid := 1
	if i := strings.Index(opts, "uid="); i >= 0 {
		v := opts[i+4:]
		if j := strings.IndexAny(v, " \t"); j >= 0 {
			v = v[:j]
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, command.BadParam("uid", err)
		}
		uid = n + 2 // keep clear of the shared slot
	}
	names := map[int]string{}
	traffic := map[int]bool{}
	if g.d.Threads != nil {
		for _, t := range g.d.Threads.Threads() {
			names[t.TID] = t.Name
			traffic[t.TID] = t.Packets > 0
		}
	}
	threads, sum := g.mon.measure(uid, names)
	if strings.Contains(opts, "only_traffic") {
		// Only the threads that counted packets (legacy: the
		// SNIFFER_THREADS_EXT packet counters); sum stays the process's.
		kept := threads[:0]
		for _, t := range threads {
			if traffic[t.TID] {
				kept = append(kept, t)
			}
		}
		threads = kept
	}
	if !strings.Contains(opts, "all") {
		kept := threads[:0]
		for _, t := range threads {
			if t.CPU > 0 {
				kept = append(kept, t)
			}
		}
		threads = kept
	}
	if !strings.Contains(opts, "no_sort") {
		sort.SliceStable(threads, func(i, j int) bool { return threads[i].CPU > threads[j].CPU })
	}
	la := readLoad(g.d.Proc)
	return command.Value{V: ThreadsReport{
		CPUAll: sum, CPUCount: la.NCPU, LA1: la.Avg[0], LA5: la.Avg[1], LA15: la.Avg[2],
		Threads: append([]ThreadInfo{}, threads...),
	}}, nil
}
