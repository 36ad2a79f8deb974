package capture

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrReplayNoOpen is returned by [Replay.ReadFrame] when Loop is set but
// [ReplayOptions.Open] is nil.
var ErrReplayNoOpen = errors.New("capture: replay: Loop needs Open")

// singleFrameGap is the gap assumed between passes of a one-frame source.
const singleFrameGap = time.Second

// ReplayOptions configures a [Replay].
type ReplayOptions struct {
	// Realtime paces frames: each is returned when as much wall-clock time
	// has passed since the first frame as capture time has (divided by
	// Speed).
	Realtime bool
	// Speed replays F times faster than recorded (0.5 is half speed).
	// Speed > 0 implies Realtime; 0 means 1.
	Speed float64
	// Loop reopens the source with Open at io.EOF and goes on. Each pass's
	// timestamps are shifted forward by the previous pass's span (last −
	// first frame) plus one typical gap (the pass's mean inter-frame gap;
	// 1 s for a one-frame pass), so time never goes backwards.
	Loop bool
	// Open reopens the inner source for Loop.
	Open func() (Source, error)
	// ShiftToNow rebases timestamps so that the first frame is stamped with
	// the wall-clock time at which it is read; later frames keep their
	// spacing (divided by Speed when pacing), so a replayed call looks live.
	ShiftToNow bool

	// Now and Sleep replace the clock, for tests. Sleep waits d, or until
	// stop is closed, and reports whether the full d elapsed. Nil means
	// time.Now and a timer.
	Now   func() time.Time
	Sleep func(d time.Duration, stop <-chan struct{}) bool
}

// Replay is a [Source] that wraps another one, typically a capture file, and
// paces, loops and re-stamps its frames.
//
// Frames alias the inner source's buffer, as [Frame] documents. ReadFrame is
// for one goroutine; Stats and Close are safe for concurrent use, and Close
// interrupts a ReadFrame waiting to pace a frame.
type Replay struct {
	opts  ReplayOptions
	paced bool
	speed float64

	mu  sync.Mutex // guards src
	src Source

	stop      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// Reader state.
	started   bool
	wallStart time.Time     // wall clock when the first frame was read
	virtStart time.Time     // shifted capture time of the first frame
	offset    time.Duration // shift applied to the current pass
	passFirst time.Time     // first and latest capture time of the current pass
	passLast  time.Time
	passCount int

	frames, bytes atomic.Uint64
}

// NewReplay wraps src. It starts no goroutine.
func NewReplay(src Source, opts ReplayOptions) *Replay {
	r := &Replay{opts: opts, src: src, stop: make(chan struct{}), speed: 1}
	if opts.Speed > 0 {
		r.speed = opts.Speed
		r.paced = true
	}
	if opts.Realtime {
		r.paced = true
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	if r.opts.Sleep == nil {
		r.opts.Sleep = sleepOrStop
	}
	return r
}

func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

func (r *Replay) inner() Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.src
}

// ReadFrame returns the next frame, waiting first when pacing. It returns
// io.EOF at the end of a non-looping source and [ErrClosed] after Close.
func (r *Replay) ReadFrame(f *Frame) error {
	for {
		if r.closed.Load() {
			return ErrClosed
		}
		err := r.inner().ReadFrame(f)
		if err == nil {
			break
		}
		if r.closed.Load() {
			return ErrClosed
		}
		if !errors.Is(err, io.EOF) || !r.opts.Loop {
			return err
		}
		if err := r.nextPass(); err != nil {
			return err
		}
	}

	orig := f.Time
	if r.passCount == 0 {
		r.passFirst, r.passLast = orig, orig
	} else if orig.After(r.passLast) {
		r.passLast = orig
	}
	r.passCount++

	v := orig.Add(r.offset)
	if !r.started {
		r.started = true
		r.wallStart = r.opts.Now()
		r.virtStart = v
	}
	scale := 1.0
	if r.paced {
		scale = r.speed
	}
	since := time.Duration(float64(v.Sub(r.virtStart)) / scale)
	if r.paced {
		if d := r.wallStart.Add(since).Sub(r.opts.Now()); d > 0 {
			if !r.opts.Sleep(d, r.stop) {
				return ErrClosed
			}
		}
	}
	if r.opts.ShiftToNow {
		f.Time = r.wallStart.Add(since).Round(0)
	} else {
		f.Time = v
	}
	r.frames.Add(1)
	r.bytes.Add(uint64(len(f.Data)))
	return nil
}

// nextPass closes the exhausted source, opens the next one and moves the
// timestamp offset forward.
func (r *Replay) nextPass() error {
	if r.opts.Open == nil {
		return ErrReplayNoOpen
	}
	if r.passCount == 0 {
		return io.EOF // an empty pass would loop forever
	}
	gap := singleFrameGap
	span := r.passLast.Sub(r.passFirst)
	if r.passCount > 1 {
		gap = span / time.Duration(r.passCount-1)
	}
	src, err := r.opts.Open()
	if err != nil {
		return fmt.Errorf("capture: replay: reopen: %w", err)
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		src.Close()
		return ErrClosed
	}
	old := r.src
	r.src = src
	r.mu.Unlock()
	old.Close()
	r.offset += span + gap
	r.passCount = 0
	return nil
}

// Stats returns the frames and bytes this Replay delivered, with the drop
// counters of the current inner source. Safe for concurrent use.
func (r *Replay) Stats() Stats {
	s := r.inner().Stats()
	s.Frames = r.frames.Load()
	s.Bytes = r.bytes.Load()
	return s
}

// Close closes the inner source and interrupts a pacing wait; a blocked
// ReadFrame returns [ErrClosed]. Safe for concurrent use.
func (r *Replay) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.stop)
		r.closeErr = r.inner().Close()
	})
	return r.closeErr
}

var _ Source = (*Replay)(nil)
