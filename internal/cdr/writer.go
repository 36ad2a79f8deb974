package cdr

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Spill file names inside [WriterOptions.SpillDir].
const (
	spillPrefix  = "cdr-spill-"
	spillSuffix  = ".jsonl"
	rejectedFile = "cdr-rejected.jsonl"
	// maxSpillLine bounds one spilled item when reading it back.
	maxSpillLine = 1 << 20
)

// WriterOptions configure a [Writer]. Zero values take the defaults shown.
type WriterOptions struct {
	BatchSize     int           // items per store call; default 500
	BatchInterval time.Duration // longest wait before a flush; default and maximum 1 s
	QueueSize     int           // items held in memory; default 100000
	// SpillDir receives JSON-lines files for items that do not fit in the
	// queue, or are still unwritten at Close. They are replayed by Run once
	// the queue is empty, also after a restart. Empty means overflow is
	// dropped and counted as Failed.
	SpillDir   string
	MinBackoff time.Duration // first retry delay after a store error; default 100 ms
	MaxBackoff time.Duration // default 5 s
	// OnStoreError, when set, is told about each failed store call
	// (before the retry) and about the first success after failures
	// (err nil), so the caller can log the outage once and its end. It
	// is called from Run's goroutine and must not block.
	OnStoreError func(err error, retrying bool)
}

// WriterStats are a [Writer]'s counters, for the status line. Items are
// Records and Registrations alike.
type WriterStats struct {
	Queued     uint64 // accepted into the in-memory queue
	Written    uint64 // stored (including Replayed)
	Spilled    uint64 // written to a spill file
	Replayed   uint64 // read back from a spill file and stored
	Retried    uint64 // store calls that failed and will be retried
	Failed     uint64 // lost: overflow without SpillDir, spill I/O errors, corrupt spill lines, rejected by the store
	Pending    int    // in memory now, queued or being written
	SpillFiles int    // spill files waiting to be replayed
}

// item is one queued object; exactly one field is set. It is also the JSON
// form of a spill line.
type item struct {
	Rec *Record       `json:"r,omitempty"`
	Reg *Registration `json:"g,omitempty"`
}

// Writer batches Records and Registrations into a [Store]. Add never
// blocks on the store: items wait in a bounded queue, overflow goes to
// spill files, and Run flushes at least every BatchInterval, retrying with
// backoff while the store fails. Delivery is at least once: a crash during
// replay can store a spilled item twice.
//
// A Writer is safe for concurrent use. It does not own the Store: close the
// Store after [Writer.Close] returns.
type Writer struct {
	store Store
	opt   WriterOptions

	mu       sync.Mutex // guards the fields below it
	queue    []item
	inflight int // len of the flusher's batch, for Stats
	spill    *os.File
	stats    WriterStats
	running  bool
	closed   bool
	spillSeq int

	kick     chan struct{} // a full batch is waiting
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	runDone  chan struct{}

	// Owned by the flusher (Run, then Close); flushMu serialises them.
	flushMu    sync.Mutex
	batch      []item
	fromSpill  bool   // batch came from replayFile
	replayFile string // spill file being replayed
	replayOff  int64  // offset of the first line not yet stored
	nextOff    int64  // offset after batch
	replayEOF  bool   // batch ends at the end of replayFile
	backoff    time.Duration
}

// NewWriter returns a Writer over store. It starts no goroutine: call
// [Writer.Run].
func NewWriter(store Store, opt WriterOptions) *Writer {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.BatchInterval <= 0 || opt.BatchInterval > time.Second {
		opt.BatchInterval = time.Second
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 100000
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff < opt.MinBackoff {
		opt.MaxBackoff = max(5*time.Second, opt.MinBackoff)
	}
	return &Writer{
		store:   store,
		opt:     opt,
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		runDone: make(chan struct{}),
	}
}

// Add queues a Record. It never blocks on the store: when the queue is full
// the record is appended to a spill file.
func (w *Writer) Add(r Record) { w.add(item{Rec: &r}) }

// AddRegistration queues a Registration, like [Writer.Add].
func (w *Writer) AddRegistration(g Registration) { w.add(item{Reg: &g}) }

func (w *Writer) add(it item) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || len(w.queue) >= w.opt.QueueSize {
		w.spillLocked([]item{it})
		return
	}
	w.queue = append(w.queue, it)
	w.stats.Queued++
	if len(w.queue) >= w.opt.BatchSize {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// spillLocked appends items to the current spill file. w.mu must be held.
func (w *Writer) spillLocked(items []item) {
	if len(items) == 0 {
		return
	}
	if w.opt.SpillDir == "" {
		w.stats.Failed += uint64(len(items))
		return
	}
	if w.spill == nil {
		if err := os.MkdirAll(w.opt.SpillDir, 0o750); err != nil {
			w.stats.Failed += uint64(len(items))
			return
		}
		w.spillSeq++
		name := filepath.Join(w.opt.SpillDir, fmt.Sprintf("%s%d-%03d%s", spillPrefix, time.Now().UnixNano(), w.spillSeq, spillSuffix))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			w.stats.Failed += uint64(len(items))
			return
		}
		w.spill = f
	}
	var buf []byte
	for i := range items {
		b, err := json.Marshal(&items[i])
		if err != nil {
			w.stats.Failed++
			continue
		}
		buf = append(append(buf, b...), '\n')
		w.stats.Spilled++
	}
	// One write per call: the lines are in the kernel when Add returns, so
	// they survive the process being killed.
	if _, err := w.spill.Write(buf); err != nil {
		n := uint64(strings.Count(string(buf), "\n"))
		w.stats.Spilled -= n
		w.stats.Failed += n
	}
}

// Stats returns a copy of the counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	s := w.stats
	s.Pending = len(w.queue) + w.inflight
	w.mu.Unlock()
	s.SpillFiles = len(w.spillFiles())
	return s
}

// Run flushes until ctx is done or [Writer.Close] is called: every
// BatchInterval, and as soon as a full batch is queued. While the store
// fails, Run keeps the batch and retries with exponential backoff. When the
// queue is empty it replays spill files. Run returns nil.
func (w *Writer) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running || w.closed {
		w.mu.Unlock()
		return errors.New("cdr: Writer.Run called twice or after Close")
	}
	w.running = true
	w.mu.Unlock()
	defer close(w.runDone)

	t := time.NewTicker(w.opt.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.stop:
			return nil
		case <-t.C:
		case <-w.kick:
		}
		w.flush(ctx, w.stop, true)
	}
}

// Close stops Run, then writes everything still queued, retrying until ctx
// is done. Whatever the store has not accepted by then is spilled (when
// SpillDir is set) and Close returns an error saying how many items were
// spilled or lost. Items added after Close go straight to a spill file.
func (w *Writer) Close(ctx context.Context) error {
	first := false
	w.stopOnce.Do(func() { close(w.stop); first = true })
	if !first {
		return ErrClosed
	}
	w.mu.Lock()
	running := w.running
	w.mu.Unlock()
	if running {
		select {
		case <-w.runDone:
		case <-ctx.Done():
			// Run is stuck in a store call; do not race it for the batch.
			return w.finish(ctx.Err(), false)
		}
	}
	err := w.flush(ctx, nil, false)
	return w.finish(err, true)
}

// finish spills what is left and marks w closed.
func (w *Writer) finish(err error, ownBatch bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	left := len(w.queue)
	if ownBatch {
		left += len(w.batch)
		if !w.fromSpill {
			w.spillLocked(w.batch)
		}
		w.batch = nil
		w.inflight = 0
	}
	before := w.stats.Failed
	w.spillLocked(w.queue)
	w.queue = nil
	w.closed = true
	if w.spill != nil {
		w.spill.Close()
		w.spill = nil
	}
	if err == nil && left == 0 {
		return nil
	}
	lost := w.stats.Failed - before
	if err == nil {
		err = errors.New("store did not accept all items")
	}
	return fmt.Errorf("cdr: close: %d items not stored (%d lost, rest spilled to %q): %w", left, lost, w.opt.SpillDir, err)
}

// flush writes batches until the queue (and, with replay, the spill files)
// are empty, or until ctx is done or stop is closed while waiting to retry.
func (w *Writer) flush(ctx context.Context, stop <-chan struct{}, replay bool) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	for {
		if stop != nil {
			select {
			case <-stop:
				return nil
			default:
			}
		}
		if len(w.batch) == 0 && !w.take() {
			if !replay || !w.loadReplay() {
				return nil
			}
		}
		err := w.write(ctx)
		if err == nil {
			if w.backoff != 0 && w.opt.OnStoreError != nil {
				w.opt.OnStoreError(nil, false)
			}
			w.backoff = 0
			if w.fromSpill {
				w.replayOff = w.nextOff
				w.fromSpill = false
				if w.replayEOF {
					// Done with the file: remove it now, so that a stop
					// before the next flush cannot replay it again.
					os.Remove(w.replayFile)
					w.replayFile = ""
				}
			}
			continue
		}
		w.mu.Lock()
		w.stats.Retried++
		w.mu.Unlock()
		if w.opt.OnStoreError != nil {
			w.opt.OnStoreError(err, true)
		}
		if w.backoff == 0 {
			w.backoff = w.opt.MinBackoff
		} else {
			w.backoff = min(2*w.backoff, w.opt.MaxBackoff)
		}
		t := time.NewTimer(w.backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-stop:
			t.Stop()
			return nil
		}
	}
}

// take moves up to BatchSize items from the queue into w.batch. Must hold
// w.flushMu (take itself takes w.mu).
func (w *Writer) take() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.queue), w.opt.BatchSize)
	if n == 0 {
		return false
	}
	w.batch = append(w.batch[:0], w.queue[:n]...)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	w.inflight = n
	w.fromSpill = false
	return true
}

// write stores w.batch, removing from it whatever was stored. Must hold
// w.flushMu.
func (w *Writer) write(ctx context.Context) error {
	var recs []Record
	var regs []Registration
	for _, it := range w.batch {
		if it.Rec != nil {
			recs = append(recs, *it.Rec)
		} else if it.Reg != nil {
			regs = append(regs, *it.Reg)
		}
	}
	if len(recs) > 0 {
		err := w.store.WriteRecords(ctx, recs)
		if errors.Is(err, ErrRejected) {
			err = w.writeEach(ctx, true)
		} else if err == nil {
			w.stored(len(recs))
			w.keep(func(it item) bool { return it.Rec == nil })
		}
		if err != nil {
			return err
		}
	}
	if len(regs) > 0 {
		err := w.store.WriteRegistrations(ctx, regs)
		if errors.Is(err, ErrRejected) {
			err = w.writeEach(ctx, false)
		} else if err == nil {
			w.stored(len(regs))
			w.keep(func(it item) bool { return it.Reg == nil })
		}
		if err != nil {
			return err
		}
	}
	w.keep(func(it item) bool { return it.Rec != nil || it.Reg != nil })
	return nil
}

// writeEach stores the batch's records (or registrations) one at a time,
// setting aside those the store rejects, so that one bad item cannot block
// the queue. Must hold w.flushMu.
func (w *Writer) writeEach(ctx context.Context, records bool) error {
	for i := 0; i < len(w.batch); {
		it := w.batch[i]
		if (it.Rec != nil) != records {
			i++
			continue
		}
		var err error
		if records {
			err = w.store.WriteRecords(ctx, []Record{*it.Rec})
		} else {
			err = w.store.WriteRegistrations(ctx, []Registration{*it.Reg})
		}
		switch {
		case err == nil:
			w.stored(1)
		case errors.Is(err, ErrRejected):
			w.reject(it)
		default:
			return err
		}
		w.batch = append(w.batch[:i], w.batch[i+1:]...)
		w.setInflight()
	}
	return nil
}

func (w *Writer) stored(n int) {
	w.mu.Lock()
	w.stats.Written += uint64(n)
	if w.fromSpill {
		w.stats.Replayed += uint64(n)
	}
	w.mu.Unlock()
}

// reject appends an item the store refused to cdr-rejected.jsonl.
func (w *Writer) reject(it item) {
	w.mu.Lock()
	w.stats.Failed++
	w.mu.Unlock()
	if w.opt.SpillDir == "" {
		return
	}
	b, err := json.Marshal(&it)
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(w.opt.SpillDir, rejectedFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// keep filters w.batch in place.
func (w *Writer) keep(f func(item) bool) {
	out := w.batch[:0]
	for _, it := range w.batch {
		if f(it) {
			out = append(out, it)
		}
	}
	clear(w.batch[len(out):])
	w.batch = out
	w.setInflight()
}

func (w *Writer) setInflight() {
	w.mu.Lock()
	if w.fromSpill {
		w.inflight = 0
	} else {
		w.inflight = len(w.batch)
	}
	w.mu.Unlock()
}

// spillFiles lists spill files in replay order (oldest first).
func (w *Writer) spillFiles() []string {
	if w.opt.SpillDir == "" {
		return nil
	}
	ents, err := os.ReadDir(w.opt.SpillDir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, spillPrefix) && strings.HasSuffix(n, spillSuffix) {
			names = append(names, filepath.Join(w.opt.SpillDir, n))
		}
	}
	sort.Strings(names)
	return names
}

// loadReplay fills w.batch from the oldest spill file, rotating the file
// being written so it can be replayed too. It returns false when there is
// nothing to replay. Must hold w.flushMu.
func (w *Writer) loadReplay() bool {
	for {
		if w.replayFile == "" {
			w.mu.Lock()
			current := ""
			if w.spill != nil {
				current = w.spill.Name()
			}
			files := w.spillFiles()
			if len(files) == 1 && files[0] == current && len(w.queue) == 0 {
				// Rotate: new overflow goes to a new file.
				w.spill.Close()
				w.spill = nil
				current = ""
			}
			w.mu.Unlock()
			for _, f := range files {
				if f != current {
					w.replayFile, w.replayOff = f, 0
					break
				}
			}
			if w.replayFile == "" {
				return false
			}
		}
		n, err := w.readSpill()
		if err == nil && n > 0 {
			return true
		}
		// Exhausted or unreadable: remove it and try the next.
		os.Remove(w.replayFile)
		w.replayFile = ""
	}
}

// readSpill reads up to BatchSize items from w.replayFile at w.replayOff.
// Must hold w.flushMu.
func (w *Writer) readSpill() (int, error) {
	f, err := os.Open(w.replayFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(w.replayOff, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	off := w.replayOff
	w.batch = w.batch[:0]
	corrupt := 0
	w.replayEOF = false
	for len(w.batch) < w.opt.BatchSize {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than the reader's buffer: read the rest of it.
			rest, err2 := r.ReadBytes('\n')
			line = append(append([]byte(nil), line...), rest...)
			err = err2
		}
		if err != nil {
			// EOF: a line without '\n' is a torn write from a crash.
			if len(line) > 0 {
				corrupt++
				off += int64(len(line))
			}
			w.replayEOF = true
			break
		}
		off += int64(len(line))
		var it item
		if len(line) > maxSpillLine || json.Unmarshal(line, &it) != nil || (it.Rec == nil && it.Reg == nil) {
			corrupt++
			continue
		}
		w.batch = append(w.batch, it)
	}
	if !w.replayEOF {
		if _, err := r.Peek(1); errors.Is(err, io.EOF) {
			w.replayEOF = true
		}
	}
	if corrupt > 0 {
		w.mu.Lock()
		w.stats.Failed += uint64(corrupt)
		w.mu.Unlock()
	}
	w.nextOff = off
	w.fromSpill = len(w.batch) > 0
	if len(w.batch) == 0 {
		return 0, nil
	}
	return len(w.batch), nil
}

// String returns the counters as a status-line fragment.
func (s WriterStats) String() string {
	return "cdr[q=" + strconv.Itoa(s.Pending) +
		" w=" + strconv.FormatUint(s.Written, 10) +
		" spill=" + strconv.FormatUint(s.Spilled, 10) + "/" + strconv.Itoa(s.SpillFiles) +
		" retry=" + strconv.FormatUint(s.Retried, 10) +
		" fail=" + strconv.FormatUint(s.Failed, 10) + "]"
}
