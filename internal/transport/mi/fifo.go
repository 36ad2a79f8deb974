package mi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// FIFO timing and limits.
const (
	// fifoQuiet is how long an incomplete request may wait for its tail
	// before the Framer drops it (resync after garbage).
	fifoQuiet = 2 * time.Second
	// replyOpenTries and replyOpenGap retry opening a reply FIFO whose
	// reader is not there yet (ENXIO), as OpenSIPS does (4 × 80 ms).
	replyOpenTries = 4
	replyOpenGap   = 80 * time.Millisecond
	// replyWriteTimeout bounds writing one reply to a slow reader.
	replyWriteTimeout = 5 * time.Second
	// maxReplyPath is OpenSIPS's bound on reply_dir + name.
	maxReplyPath = 128
	// fifoWorkers bounds the requests running at once.
	fifoWorkers = 32
)

// FIFOConfig configures a [FIFO] listener.
type FIFOConfig struct {
	Path     string      // the server FIFO; created (mode Mode) and removed on close
	Mode     fs.FileMode // 0 means 0600
	ReplyDir string      // directory of reply FIFOs; "" means /tmp/
	ReadOnly bool
	Logger   *slog.Logger
}

// FIFO is the MI named-pipe listener. It keeps its own read-write handle
// on the pipe so that it never sees EOF between writers. Requests run
// concurrently (bounded); each reply goes to its own reply FIFO and ends
// with EOF (no trailing newline). Create it with [NewFIFO], make the pipe
// with [FIFO.Listen], serve with [FIFO.Run].
type FIFO struct {
	cfg     FIFOConfig
	d       *Dispatcher
	f       *os.File
	log     *slog.Logger
	once    sync.Once
	workers *conn.Workers
	warn    conn.Throttle // garbage on the pipe is logged at most once a second
}

// NewFIFO returns the listener for cfg.Path over d. It creates nothing.
func NewFIFO(d *Dispatcher, cfg FIFOConfig) *FIFO {
	if cfg.Mode == 0 {
		cfg.Mode = 0o600
	}
	if cfg.ReplyDir == "" {
		cfg.ReplyDir = "/tmp/"
	}
	if !strings.HasSuffix(cfg.ReplyDir, "/") {
		cfg.ReplyDir += "/"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &FIFO{cfg: cfg, d: d, log: cfg.Logger, workers: conn.NewWorkers("mi fifo", fifoWorkers, cfg.Logger)}
}

// Listen creates the FIFO at cfg.Path (replacing a stale FIFO, never
// another kind of file) and opens it. It starts nothing.
func (x *FIFO) Listen() error {
	path, mode := x.cfg.Path, x.cfg.Mode.Perm()
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeNamedPipe == 0 {
			return fmt.Errorf("mi: %s exists and is not a FIFO", path)
		}
		os.Remove(path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("mi: %w", err)
	}
	if err := syscall.Mkfifo(path, uint32(mode)); err != nil {
		return fmt.Errorf("mi: mkfifo %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil { // undo the umask
		os.Remove(path)
		return fmt.Errorf("mi: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("mi: open %s: %w", path, err)
	}
	x.f = f
	return nil
}

// Path returns the FIFO's path.
func (x *FIFO) Path() string { return x.cfg.Path }

// Close closes and removes the FIFO Listen made (nothing before Listen).
// Safe to call more than once.
func (x *FIFO) Close() error {
	if x.f == nil {
		return nil
	}
	x.once.Do(func() {
		x.f.Close()
		os.Remove(x.cfg.Path)
	})
	return nil
}

// Run reads requests until ctx is done, then closes the FIFO and waits for
// the requests in flight. Requests run on a bounded pool of workers; one
// that panics is answered with JSON-RPC's internal error.
func (x *FIFO) Run(ctx context.Context) error {
	if x.f == nil {
		return errors.New("mi: FIFO Run before Listen")
	}
	return serveUntil(ctx, x.Close, x.workers, func() error { return x.read(ctx) })
}

// read cuts requests out of the pipe and hands them to the workers until
// a read fails (Close, when ctx is done).
func (x *FIFO) read(ctx context.Context) error {
	fr := NewFramer(MaxRequest)
	buf := make([]byte, 4096)
	perm := ListenerPerm(x.cfg.ReadOnly)
	for {
		if fr.Pending() > 0 {
			x.f.SetReadDeadline(time.Now().Add(fifoQuiet))
		} else {
			x.f.SetReadDeadline(time.Time{})
		}
		n, err := x.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				x.warnf("incomplete request dropped", "bytes", fr.Pending())
				fr.Reset()
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("mi: read %s: %w", x.cfg.Path, err)
		}
		fr.Write(buf[:n])
		for {
			frame, ok := fr.Next()
			if !ok {
				break
			}
			if frame.Err != nil {
				x.warnf("bad request on FIFO", "err", frame.Err)
				continue
			}
			x.workers.Go(func() { x.handle(ctx, frame, perm) }, func() {
				if frame.ReplyName != "" {
					WriteReply(x.cfg.ReplyDir, frame.ReplyName, internalErrorReply)
				}
			})
		}
	}
}

// serveUntil runs loop, the read loop of a FIFO or datagram listener,
// until it returns: when ctx is done, closeFn wakes its blocked read.
// Then it waits for the requests in flight on w and closes the listener.
func serveUntil(ctx context.Context, closeFn func() error, w *conn.Workers, loop func() error) error {
	stop := context.AfterFunc(ctx, func() { closeFn() })
	defer stop()
	defer closeFn() // waits for a Close in progress (sync.Once)
	defer w.Wait()
	return loop()
}

// warnf logs a warning about bad input at most once a second, with the
// count of the ones held back.
func (x *FIFO) warnf(msg string, args ...any) {
	if ok, n := x.warn.Allow(time.Now()); ok {
		if n > 0 {
			args = append(args, "repeated", n)
		}
		x.log.Warn(msg, args...)
	}
}

// Panics counts the requests whose command panicked.
func (x *FIFO) Panics() uint64 { return x.workers.Panics() }

func (x *FIFO) handle(ctx context.Context, fr Frame, perm command.Perm) {
	reply, _ := x.d.Serve(ctx, fr.Body, perm, "mi-fifo")
	if fr.ReplyName == "" {
		return // "::" or no reply_name: execute, never reply
	}
	if err := WriteReply(x.cfg.ReplyDir, fr.ReplyName, reply); err != nil {
		x.warnf("reply not delivered", "reply_name", fr.ReplyName, "err", err)
	}
}

// CheckReplyName validates a reply name as OpenSIPS does: non-empty, no
// '.', '/' or '\', and dir+name shorter than 128 bytes.
func CheckReplyName(dir, name string) error {
	if name == "" || strings.ContainsAny(name, "./\\\x00") || len(dir)+len(name) >= maxReplyPath {
		return fmt.Errorf("%w: %q", ErrReplyName, name)
	}
	return nil
}

// WriteReply delivers reply to the reply FIFO dir+name: open write-only
// and non-blocking (retrying while no reader is there), refuse anything
// but a FIFO with one link that is no symlink and is the file lstat saw,
// write with a deadline, close. A nil reply opens and closes (0 bytes).
func WriteReply(dir, name string, reply []byte) error {
	if err := CheckReplyName(dir, name); err != nil {
		return err
	}
	path := dir + name
	var fd int
	var err error
	for i := 0; ; i++ {
		fd, err = syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		if err == nil {
			break
		}
		if err != syscall.ENXIO || i == replyOpenTries-1 {
			return fmt.Errorf("%w: open %s: %v", ErrReplyFIFO, path, err)
		}
		time.Sleep(replyOpenGap)
	}
	f := os.NewFile(uintptr(fd), path) // non-blocking: uses the poller, deadlines work
	defer f.Close()
	var st, lst syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%w: %v", ErrReplyFIFO, err)
	}
	if err := syscall.Lstat(path, &lst); err != nil {
		return fmt.Errorf("%w: %v", ErrReplyFIFO, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFIFO:
		return fmt.Errorf("%w: %s is not a FIFO", ErrReplyFIFO, path)
	case st.Nlink != 1:
		return fmt.Errorf("%w: %s has %d links", ErrReplyFIFO, path, st.Nlink)
	case lst.Mode&syscall.S_IFMT == syscall.S_IFLNK:
		return fmt.Errorf("%w: %s is a symlink", ErrReplyFIFO, path)
	case lst.Dev != st.Dev || lst.Ino != st.Ino:
		return fmt.Errorf("%w: %s changed under us", ErrReplyFIFO, path)
	}
	f.SetWriteDeadline(time.Now().Add(replyWriteTimeout))
	for len(reply) > 0 {
		n := min(len(reply), 4096)
		if _, err := f.Write(reply[:n]); err != nil {
			return fmt.Errorf("mi: write %s: %w", path, err)
		}
		reply = reply[n:]
	}
	return nil
}
