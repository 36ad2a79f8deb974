package cdr

import (
	"context"
	"errors"
	"fmt"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// memStore is a Store that can be switched down, and rejects call IDs
// starting with "bad".
type memStore struct {
	mu    sync.Mutex
	down  bool
	recs  []Record
	regs  []Registration
	calls int
}

var errDown = errors.New("memstore: connection refused")

func (s *memStore) WriteRecords(ctx context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.down {
		return errDown
	}
	for _, r := range recs {
		if len(r.CallID) >= 3 && r.CallID[:3] == "bad" {
			return fmt.Errorf("memstore: %w: bad call-id", ErrRejected)
		}
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *memStore) WriteRegistrations(ctx context.Context, regs []Registration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	s.regs = append(s.regs, regs...)
	return nil
}

func (s *memStore) Close() error { return nil }

func (s *memStore) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *memStore) callIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, r := range s.recs {
		ids = append(ids, r.CallID)
	}
	sort.Strings(ids)
	return ids
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriterFlushesWithinInterval(t *testing.T) {
	st := &memStore{}
	w := NewWriter(st, WriterOptions{BatchSize: 100, BatchInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	w.Add(Record{CallID: "one"})
	w.AddRegistration(Registration{User: "alice", State: RegOK})
	// Neither a full batch nor Close: only the interval ticker flushes.
	sharedtest.Eventually(t, 10*time.Second, "flush", func() bool { return len(st.callIDs()) == 1 })
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := w.Stats()
	if s.Queued != 2 || s.Written != 2 || s.Pending != 0 || s.Failed != 0 {
		t.Errorf("Stats = %+v, want 2 queued, 2 written", s)
	}
	if len(st.regs) != 1 || st.regs[0].User != "alice" {
		t.Errorf("registrations = %+v", st.regs)
	}
}

// TestWriterOutage: the store goes down, the queue fills and spills to
// disk, the store comes back, and every record lands exactly once. It
// asserts what the writer promises, whatever the flusher's timing: nothing
// is stored while the store is down, every record is either in memory or
// in the one spill file, memory never holds more than the queue plus one
// batch, and after recovery each record is stored exactly once.
func TestWriterOutage(t *testing.T) {
	const (
		n         = 300
		queueSize = 50
		batchSize = 10
	)
	dir := t.TempDir()
	st := &memStore{}
	w := NewWriter(st, WriterOptions{BatchSize: batchSize, BatchInterval: 10 * time.Millisecond, QueueSize: queueSize,
		SpillDir: dir, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	st.setDown(true)
	want := ids("c", n)
	for i, id := range want {
		w.Add(Record{CallID: id})
		if s := w.Stats(); s.Pending > queueSize+batchSize {
			t.Fatalf("after %d adds Pending = %d, over the queue bound %d + one batch %d", i+1, s.Pending, queueSize, batchSize)
		}
	}
	sharedtest.Eventually(t, 10*time.Second, "retries", func() bool { return w.Stats().Retried >= 2 })
	s := w.Stats()
	if s.Written != 0 || s.Failed != 0 {
		t.Errorf("during outage Written = %d, Failed = %d; want 0 and 0", s.Written, s.Failed)
	}
	if s.Spilled+uint64(s.Pending) != n {
		t.Errorf("during outage Spilled %d + Pending %d = %d, want every one of the %d records", s.Spilled, s.Pending, s.Spilled+uint64(s.Pending), n)
	}
	if s.Pending < queueSize || s.Pending > queueSize+batchSize {
		t.Errorf("during outage Pending = %d, want the full queue (%d) plus at most one batch (%d)", s.Pending, queueSize, batchSize)
	}
	if s.Queued != uint64(s.Pending) {
		t.Errorf("during outage Queued = %d, want Pending (%d): nothing left memory but to a spill file", s.Queued, s.Pending)
	}
	if s.SpillFiles != 1 {
		t.Errorf("during outage SpillFiles = %d, want 1", s.SpillFiles)
	}
	st.setDown(false)
	sharedtest.Eventually(t, 10*time.Second, "all records", func() bool { return len(st.callIDs()) >= n })
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.callIDs(); !equalStrings(got, want) {
		t.Errorf("stored %d records, want the %d added exactly once", len(got), n)
	}
	s = w.Stats()
	if s.Written != n || s.Replayed != s.Spilled || s.Failed != 0 || s.SpillFiles != 0 || s.Pending != 0 {
		t.Errorf("after recovery Stats = %#v", s)
	}
}

// TestWriterCloseSpillsAndReplaysOnRestart: Close while the store is down
// spills the queue; a new Writer over the same directory stores it.
func TestWriterCloseSpillsAndReplaysOnRestart(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{down: true}
	w := NewWriter(st, WriterOptions{BatchSize: 5, SpillDir: dir, MinBackoff: time.Millisecond})
	want := ids("r", 23)
	for _, id := range want {
		w.Add(Record{CallID: id})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close with the store down = nil, want an error")
	}
	if s := w.Stats(); s.Spilled != 23 || s.Written != 0 {
		t.Fatalf("Stats after Close = %+v", s)
	}
	if err := w.Close(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}

	st.setDown(false)
	w2 := NewWriter(st, WriterOptions{BatchSize: 5, BatchInterval: 10 * time.Millisecond, SpillDir: dir})
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go w2.Run(ctx2)
	sharedtest.Eventually(t, 3*time.Second, "replay", func() bool { return len(st.callIDs()) == 23 })
	if err := w2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.callIDs(); !equalStrings(got, want) {
		t.Errorf("replayed %v, want %v", got, want)
	}
	if s := w2.Stats(); s.Replayed != 23 || s.SpillFiles != 0 {
		t.Errorf("w2 Stats = %#v", s)
	}
}

func TestWriterRejectedRecordDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{}
	w := NewWriter(st, WriterOptions{BatchSize: 10, SpillDir: dir})
	for _, id := range []string{"a", "bad1", "b", "c"} {
		w.Add(Record{CallID: id})
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.callIDs(); !equalStrings(got, []string{"a", "b", "c"}) {
		t.Errorf("stored %v", got)
	}
	if s := w.Stats(); s.Failed != 1 || s.Written != 3 {
		t.Errorf("Stats = %+v, want 1 failed, 3 written", s)
	}
	if b, err := os.ReadFile(filepath.Join(dir, rejectedFile)); err != nil || len(b) == 0 {
		t.Errorf("rejected file: %v, %d bytes", err, len(b))
	}
}

func TestWriterTornSpillLine(t *testing.T) {
	dir := t.TempDir()
	content := `{"r":{"CallID":"x1"}}` + "\n" + `not json` + "\n" + `{"r":{"CallID":"x2"}}` + "\n" + `{"r":{"Cal`
	if err := os.WriteFile(filepath.Join(dir, spillPrefix+"1-001"+spillSuffix), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &memStore{}
	w := NewWriter(st, WriterOptions{BatchInterval: 10 * time.Millisecond, SpillDir: dir})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	sharedtest.Eventually(t, 3*time.Second, "replay", func() bool { return w.Stats().SpillFiles == 0 })
	w.Close(context.Background())
	if got := st.callIDs(); !equalStrings(got, []string{"x1", "x2"}) {
		t.Errorf("stored %v, want [x1 x2]", got)
	}
	if s := w.Stats(); s.Failed != 2 {
		t.Errorf("Failed = %d, want 2 (one bad line, one torn line)", s.Failed)
	}
}

func TestWriterOverflowWithoutSpillDir(t *testing.T) {
	st := &memStore{}
	w := NewWriter(st, WriterOptions{QueueSize: 3})
	for i := 0; i < 5; i++ {
		w.Add(Record{CallID: fmt.Sprint(i)})
	}
	if s := w.Stats(); s.Queued != 3 || s.Failed != 2 || s.Pending != 3 {
		t.Errorf("Stats = %+v, want 3 queued, 2 failed", s)
	}
	w.Close(context.Background())
	if n := len(st.callIDs()); n != 3 {
		t.Errorf("stored %d, want 3", n)
	}
}

func TestRecordSummary(t *testing.T) {
	r := Record{A: &Stream{AvgJitterMult10: 12, LossPercMult1000: 500, MOSF2Mult10: 41},
		B: &Stream{AvgJitterMult10: 30, LossPercMult1000: 100, MOSF2Mult10: 39}}
	mos, ok := r.MOSMinMult10()
	if got := [4]int{r.JitterMult10(), r.LossPercMult1000(), mos, btoi(ok)}; got != [4]int{30, 500, 39, 1} {
		t.Errorf("summary = %v, want [30 500 39 1]", got)
	}
	if _, ok := (&Record{}).MOSMinMult10(); ok {
		t.Error("MOSMinMult10 without streams reported ok")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func BenchmarkWriterAdd(b *testing.B) {
	w := NewWriter(&memStore{}, WriterOptions{QueueSize: b.N + 1})
	r := Record{CallID: "bench", A: &Stream{}}
	b.ReportAllocs()
	for b.Loop() {
		w.Add(r)
	}
}
