// Package pipeline is a sensor's packet path: one goroutine that reads
// frames from a capture source, decodes them and hands their datagrams to
// a handler (the call table), with the counters, the liveness check and
// the drained stop around it.
package pipeline

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// Loop reads, decodes and hands over frames until its source ends or Stop
// is called. Its goroutine is the only one that touches the decoder; every
// other method is safe for concurrent use.
type Loop struct {
	src capture.Source
	dec *decode.Decoder
	h   decode.Handler

	frames    atomic.Uint64
	bytes     atomic.Uint64
	cutAt     atomic.Int64 // stop requested: frames stamped at or after it (Unix ns) are not analysed
	analysing atomic.Bool  // between ReadFrame and the next one
	tid       atomic.Int64 // OS thread of the loop, 0 before it starts

	cutReached chan struct{} // closed by the loop at the first frame after cutAt
	done       chan struct{} // closed when the loop has returned; err is then set
	err        error

	aliveMu     sync.Mutex // guards aliveFrames, aliveAt (Alive)
	aliveFrames uint64
	aliveAt     time.Time

	statMu  sync.Mutex
	decStat decode.Stats // copied out of the loop now and then

	stallAfter uint64 // a test hook: the loop sleeps stallFor after this frame
	stallFor   time.Duration
}

// New returns a loop over src that decodes with dec and hands the
// datagrams to h. Start runs it.
func New(src capture.Source, dec *decode.Decoder, h decode.Handler) *Loop {
	return &Loop{src: src, dec: dec, h: h, cutReached: make(chan struct{}), done: make(chan struct{})}
}

// Stall makes the loop sleep for d after decoding frame number after (from
// 1): a stalled analysis, for tests of what buffers it. Call before Start.
func (l *Loop) Stall(after uint64, d time.Duration) { l.stallAfter, l.stallFor = after, d }

// Start runs the loop on its own goroutine, locked to one OS thread so that
// its CPU can be read per thread (sniffer_threads).
func (l *Loop) Start() {
	go func() {
		runtime.LockOSThread()
		l.tid.Store(int64(syscall.Gettid()))
		l.err = l.run()
		close(l.done)
	}()
}

// Done is closed when the loop has returned: the source ended (a file
// without loop) or failed, or Stop closed it.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Err is the loop's result once Done is closed: nil at the end of a file.
func (l *Loop) Err() error { return l.err }

func (l *Loop) run() error {
	var (
		fr         capture.Frame
		lastExpire time.Time
		pastCut    bool
	)
	for n := uint64(1); ; n++ {
		l.analysing.Store(false)
		if err := l.src.ReadFrame(&fr); err != nil {
			l.publishStats()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if cut := l.cutAt.Load(); cut != 0 && fr.Time.UnixNano() >= cut {
			// After the stop: not analysed. The loop keeps reading (and
			// discarding) until the source is closed, so that it never
			// leaves with a frame of the source in hand.
			if !pastCut {
				pastCut = true
				l.publishStats()
				close(l.cutReached)
			}
			continue
		}
		l.analysing.Store(true)
		l.frames.Add(1)
		l.bytes.Add(uint64(len(fr.Data)))
		l.dec.Decode(&fr, l.h)
		if n == l.stallAfter && l.stallFor > 0 {
			time.Sleep(l.stallFor)
		}
		if n&1023 == 0 {
			l.publishStats()
			if fr.Time.Sub(lastExpire) >= time.Second {
				l.dec.Expire(fr.Time)
				lastExpire = fr.Time
			}
		}
	}
}

func (l *Loop) publishStats() {
	st := l.dec.Stats()
	l.statMu.Lock()
	l.decStat = st
	l.statMu.Unlock()
}

// Stop ends the loop and returns its result (capture.ErrClosed when the
// source was closed under it). With a drain, a live source is first
// drained: every frame stamped before the stop is still analysed (the
// kernel may hold them in its ring), and the drain ends at the first frame
// stamped after the stop, or after drain when the wire is quiet. So the
// calls closed at the stop count exactly the packets sent before it. Only
// then is the source closed, while the loop is back in ReadFrame or
// discarding frames after the cut: it is never decoding a frame of a ring
// that Close releases (capture.Live's lease guarantees it too). cut is the
// stop's time, zero without a drain.
func (l *Loop) Stop(drain time.Duration) (cut time.Time, err error) {
	if drain > 0 {
		cut = time.Now()
		l.cutAt.Store(cut.UnixNano())
		t := time.NewTimer(drain)
		select {
		case <-l.done: // the source ended by itself
		case <-l.cutReached:
		case <-t.C:
		}
		t.Stop()
	}
	l.src.Close()
	<-l.done
	return cut, l.err
}

// Alive reports whether the loop is making progress: it is waiting for the
// next frame (a quiet interface is alive), or it has finished a frame
// within the last 30 s; a loop wedged in the analysis of one frame is not.
// For the systemd watchdog, which calls it every few seconds.
func (l *Loop) Alive() bool {
	l.aliveMu.Lock()
	defer l.aliveMu.Unlock()
	now, fr := time.Now(), l.frames.Load()
	if !l.analysing.Load() || fr != l.aliveFrames {
		l.aliveFrames, l.aliveAt = fr, now
		return true
	}
	return now.Sub(l.aliveAt) < 30*time.Second
}

// Frames and Bytes count the frames analysed (before the cut of a stop).
func (l *Loop) Frames() uint64 { return l.frames.Load() }

// Bytes counts the bytes of the frames analysed.
func (l *Loop) Bytes() uint64 { return l.bytes.Load() }

// ThreadID is the OS thread of the loop, 0 before it starts.
func (l *Loop) ThreadID() int64 { return l.tid.Load() }

// DecodeStats are the decoder's counters as the loop last published them
// (every 1,024 frames, at the cut and at the end).
func (l *Loop) DecodeStats() decode.Stats {
	l.statMu.Lock()
	defer l.statMu.Unlock()
	return l.decStat
}
