package spool

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// A file's write buffer is written when it holds flushAt bytes, or
// FlushEvery after its first record. flushAt is the half of the memory
// bound shared out among the open files, between these two sizes: with
// many calls at once the writes get smaller, not the memory larger.
const (
	maxFileFlush = 64 << 10
	minFileFlush = 4 << 10
)

// houseEvery is how often the writer looks at every open file for
// buffers to write and files to close.
const houseEvery = 100 * time.Millisecond

// retryEvery is how often a recorder stopped by a full disk tries again.
const retryEvery = time.Second

// errorLogEvery bounds the log lines of errors other than a full disk.
const errorLogEvery = time.Minute

const (
	dirMode  = 0o750
	fileMode = 0o640
)

// fileKey names the file of one call (or registration binding) and type.
type fileKey struct {
	ref uint64
	typ Type
}

// file is one open pcap. size is what is on disk and whole: a failed
// write is cut back to it, so the file always ends with a complete record.
type file struct {
	path    string // relative to the spool
	f       *os.File
	link    capture.LinkType
	size    int64
	pending []byte // whole records (and the header of a new file) not yet written
	records int    // frames in pending
	since   time.Time
	lastUse time.Time
	closeAt time.Time // the call ended: close then (zero: not ended)
	keys    []fileKey
}

// writer is the state of the writer goroutine; nothing else touches it.
type writer struct {
	r          *Recorder
	files      map[string]*file // by spool-relative path
	byKey      map[fileKey]*file
	dirs       map[string]bool // directories known to exist
	torn       map[string]bool // files a failed write may have left with a partial record
	pending    int             // bytes in every file's pending
	maxPending int
	flushAt    int // a file's share of maxPending (see maxFileFlush)

	paused    bool      // a write failed for lack of space
	retryAt   time.Time // when a paused recorder tries again
	pauseLost uint64    // frames discarded during the current pause
	errAt     time.Time // last error log line
	errMuted  int       // errors since then, not logged
	houseAt   time.Time // last full housekeeping scan
	closing   bool      // a file is due to close: scan at the next cycle

	maxFiles int          // pcap files open at most (MaxOpenFiles less the WAV files' share)
	audio    *audioWriter // saveaudio; nil without it
}

func (w *writer) init(r *Recorder) {
	w.r = r
	w.files = make(map[string]*file)
	w.byKey = make(map[fileKey]*file)
	w.dirs = make(map[string]bool)
	w.torn = make(map[string]bool)
	w.maxPending = r.opt.BufferBytes / 2
	w.maxFiles = r.opt.MaxOpenFiles
	if r.opt.Audio {
		w.audio = newAudioWriter(w)
		w.maxFiles = max(r.opt.MaxOpenFiles-w.audio.maxOpen, 1)
	}
	w.share()
}

// share sets flushAt for the files open now.
func (w *writer) share() {
	w.flushAt = min(max(w.maxPending/max(len(w.files), 1), minFileFlush), maxFileFlush)
}

// take turns a batch's frames into records in their files' buffers.
func (w *writer) take(b *batch, now time.Time) {
	r := w.r
	for i := range b.recs {
		rc := &b.recs[i]
		if rc.end {
			w.ended(rc.ref, now)
			continue
		}
		if rc.typ == TypeAUDIO {
			w.audio.take(rc, b.data[rc.off:rc.off+rc.n], now)
			continue
		}
		if w.paused && now.Before(w.retryAt) {
			w.lose(1)
			continue
		}
		f := w.fileFor(rc, now)
		if f == nil {
			continue
		}
		if rc.link != f.link {
			r.linkMismatch.Add(1)
			continue
		}
		before := len(f.pending)
		if f.size == 0 && before == 0 {
			f.pending = appendFileHeader(f.pending, f.link)
		}
		f.pending = appendRecord(f.pending, rc.tsNs, int(rc.orig), b.data[rc.off:rc.off+rc.n])
		w.pending += len(f.pending) - before
		f.records++
		f.lastUse = now
		if f.since.IsZero() {
			f.since = now
		}
		if len(f.pending) >= w.flushAt {
			w.flush(f, now)
		}
	}
}

// housekeep writes the buffers that waited FlushEvery (all of them when
// their total is over its bound) and closes the files that are due.
// The full scan runs at most every houseEvery (tens of thousands of files
// may be open); over the memory bound it runs at once.
func (w *writer) housekeep(now time.Time) {
	all := w.pending > w.maxPending
	if !all && now.Sub(w.houseAt) < houseEvery && !w.closing {
		return
	}
	w.houseAt, w.closing = now, false
	for _, f := range w.files {
		if len(f.pending) > 0 && (all || now.Sub(f.since) >= w.r.opt.FlushEvery) {
			w.flush(f, now)
		}
		if !f.closeAt.IsZero() && !now.Before(f.closeAt) || now.Sub(f.lastUse) >= w.r.opt.IdleClose {
			w.close(f, now)
		}
	}
	if w.audio != nil {
		w.audio.housekeep(now)
	}
}

// ended starts the linger of the call's files and completes its WAV.
func (w *writer) ended(ref uint64, now time.Time) {
	if w.audio != nil {
		w.audio.ended(ref, now)
	}
	for _, typ := range []Type{TypeSIP, TypeRTP} {
		k := fileKey{ref, typ}
		if f := w.byKey[k]; f != nil {
			delete(w.byKey, k)
			f.closeAt = now.Add(w.r.opt.Linger)
		}
	}
}

// fileFor returns the open file of rc's call and type, opening it on its
// first frame; nil when it cannot be opened (counted).
func (w *writer) fileFor(rc *rec, now time.Time) *file {
	k := fileKey{rc.ref, rc.typ}
	if f := w.byKey[k]; f != nil {
		return f
	}
	var p string
	start := time.Unix(0, rc.startNs)
	if rc.typ == TypeREG {
		p = RegisterPath(rc.ref, start, w.r.opt.Location)
	} else {
		p = CallPath(rc.typ, rc.callID, start, w.r.opt.Location)
	}
	f := w.files[p]
	if f == nil {
		if f = w.open(p, rc.link, now); f == nil {
			return nil
		}
	}
	f.closeAt = time.Time{} // a call with this path is (still) sending
	f.keys = append(f.keys, k)
	w.byKey[k] = f
	return f
}

// open opens (creating it and its directories when needed) the pcap at
// the spool-relative path p for appending; a new file is for link.
func (w *writer) open(p string, link capture.LinkType, now time.Time) *file {
	r := w.r
	if len(w.files) >= w.maxFiles {
		w.evict(now)
	}
	fd, err := w.openFile(p, os.O_APPEND)
	if err != nil {
		w.fail(err, now)
		w.lose(1)
		return nil
	}
	f := &file{path: p, f: fd, link: link, lastUse: now}
	if st, err := fd.Stat(); err == nil {
		f.size = st.Size()
	}
	switch {
	case f.size == 0:
		r.created.Add(1)
	case f.size < fileHeaderLen:
		// A header cut short: start the file over.
		if err := fd.Truncate(0); err != nil {
			fd.Close()
			w.fail(err, now)
			return nil
		}
		f.size = 0
	default:
		lt, err := readLinkType(fd)
		if err == nil && w.torn[p] {
			f.size, err = cutTorn(fd, f.size)
		}
		if err != nil {
			fd.Close()
			w.fail(err, now)
			return nil
		}
		delete(w.torn, p)
		f.link = lt
	}
	w.files[p] = f
	r.open.Add(1)
	w.share()
	return f
}

// openFile opens the file at the spool-relative path p for reading and
// writing with flag added, creating it and its directories when needed.
func (w *writer) openFile(p string, flag int) (*os.File, error) {
	full := filepath.Join(w.r.opt.Dir, filepath.FromSlash(p))
	dir := filepath.Dir(full)
	var fd *os.File
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if !w.dirs[dir] {
			if err = os.MkdirAll(dir, dirMode); err != nil {
				break
			}
			if len(w.dirs) > 10000 {
				clear(w.dirs)
			}
			w.dirs[dir] = true
		}
		fd, err = os.OpenFile(full, os.O_RDWR|os.O_CREATE|flag, fileMode)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		delete(w.dirs, dir) // the cleaner removed it meanwhile
	}
	return fd, err
}

// evict closes the least recently written eighth of the open files to
// make room: one scan for many opens, when far more calls send than files
// may be open.
func (w *writer) evict(now time.Time) {
	old := make([]*file, 0, len(w.files))
	for _, f := range w.files {
		old = append(old, f)
	}
	slices.SortFunc(old, func(a, b *file) int { return a.lastUse.Compare(b.lastUse) })
	for _, f := range old[:max(1, len(old)/8)] {
		w.close(f, now)
	}
}

// flush writes f's buffer in one write. A failed or short write is cut
// back so that the file still ends with a whole record; its frames are
// lost and counted.
func (w *writer) flush(f *file, now time.Time) {
	if len(f.pending) == 0 {
		return
	}
	r := w.r
	n, err := f.f.Write(f.pending)
	w.pending -= len(f.pending)
	if err == nil {
		f.size += int64(n)
		r.frames.Add(uint64(f.records))
		r.bytes.Add(uint64(n))
		w.resume()
	} else {
		if n > 0 {
			if f.f.Truncate(f.size) != nil {
				w.torn[f.path] = true // cut when it is reopened
			}
		}
		w.fail(err, now)
		w.lose(f.records)
		f.closeAt = now // reopened (and checked) by the call's next frame
		w.closing = true
	}
	f.pending, f.records, f.since = f.pending[:0], 0, time.Time{}
	if cap(f.pending) > 2*w.flushAt {
		f.pending = nil // grown beyond this file's share
	}
}

// close writes f's buffer and closes it.
func (w *writer) close(f *file, now time.Time) {
	w.flush(f, now)
	if err := f.f.Close(); err != nil {
		w.fail(err, now)
	}
	for _, k := range f.keys {
		if w.byKey[k] == f {
			delete(w.byKey, k)
		}
	}
	delete(w.files, f.path)
	w.r.open.Add(-1)
	w.share()
}

// closeAll writes and closes every file (the end of Run).
func (w *writer) closeAll() {
	now := time.Now()
	for _, f := range w.files {
		w.close(f, now)
	}
	if w.audio != nil {
		w.audio.closeAll(now)
	}
}

// lose counts frames discarded by a failure: while the disk is full they
// are the pause's, otherwise an error's.
func (w *writer) lose(n int) {
	if n <= 0 {
		return
	}
	if w.paused {
		w.pauseLost += uint64(n)
		w.r.diskFull.Add(uint64(n))
		return
	}
	w.r.lost.Add(uint64(n))
}

// fail counts an error. A full disk stops recording (logged once) until a
// write succeeds, which is tried again every retryEvery; other errors are
// logged at most once a minute.
func (w *writer) fail(err error, now time.Time) {
	r := w.r
	r.errors.Add(1)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		w.retryAt = now.Add(retryEvery)
		if !w.paused {
			w.paused, w.pauseLost = true, 0
			r.paused.Store(true)
			r.opt.Logger.Warn("recording stopped: disk full; capture and CDRs go on, recording resumes when a write succeeds",
				"dir", r.opt.Dir, "err", err)
		}
		return
	}
	if now.Sub(w.errAt) < errorLogEvery {
		w.errMuted++
		return
	}
	r.opt.Logger.Error("recording error", "err", err, "errors_not_logged", w.errMuted)
	w.errAt, w.errMuted = now, 0
}

// resume ends a pause after a successful write.
func (w *writer) resume() {
	if !w.paused {
		return
	}
	w.paused = false
	w.r.paused.Store(false)
	w.r.opt.Logger.Info("recording resumed", "dir", w.r.opt.Dir, "frames_lost", w.pauseLost)
}
