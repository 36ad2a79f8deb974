package pipeline

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestAlive: waiting for a frame is alive, progress is alive, and the
// analysis of one frame stuck for 30 s is not (the systemd watchdog then
// stops pinging).
func TestAlive(t *testing.T) {
	var s Loop
	if !s.Alive() {
		t.Fatal("a loop waiting in ReadFrame is alive")
	}
	s.analysing.Store(true)
	s.frames.Store(10)
	if !s.Alive() {
		t.Fatal("a loop that made progress is alive")
	}
	s.aliveAt = time.Now().Add(-29 * time.Second)
	if !s.Alive() {
		t.Fatal("29 s on one frame is still within the bound")
	}
	s.aliveAt = time.Now().Add(-31 * time.Second)
	if s.Alive() {
		t.Fatal("31 s on one frame: not alive")
	}
	s.frames.Store(11)
	if !s.Alive() {
		t.Fatal("progress again: alive")
	}
}

// chanSource hands out the frames sent on its channel; Close makes a
// waiting ReadFrame return capture.ErrClosed, and a closed channel is the
// end of a file.
type chanSource struct {
	frames chan capture.Frame
	closed chan struct{}
	once   sync.Once
}

func newChanSource(n int) *chanSource {
	return &chanSource{frames: make(chan capture.Frame, n), closed: make(chan struct{})}
}

func (c *chanSource) ReadFrame(f *capture.Frame) error {
	select {
	case fr, ok := <-c.frames:
		if !ok {
			return io.EOF
		}
		*f = fr
		return nil
	case <-c.closed:
		return capture.ErrClosed
	}
}
func (c *chanSource) Stats() capture.Stats { return capture.Stats{} }
func (c *chanSource) Close() error         { c.once.Do(func() { close(c.closed) }); return nil }

func frameAt(t time.Time) capture.Frame {
	return capture.Frame{Time: t, Data: make([]byte, 60), LinkType: capture.LinkTypeEthernet}
}

// TestLoopEndOfFile: a file source's end ends the loop without an error,
// every frame counted.
func TestLoopEndOfFile(t *testing.T) {
	src := newChanSource(3)
	for range 3 {
		src.frames <- frameAt(time.Now())
	}
	close(src.frames)
	l := New(src, decode.NewDecoder(decode.Config{}), decode.HandlerFunc(func(*decode.Datagram) {}))
	l.Start()
	<-l.Done()
	if l.Err() != nil || l.Frames() != 3 || l.Bytes() != 180 {
		t.Fatalf("err %v, frames %d, bytes %d; want nil, 3, 180", l.Err(), l.Frames(), l.Bytes())
	}
}

// TestLoopDrainedStop: a drained stop analyses every frame stamped before
// the stop and none after it, and returns once the source is closed.
func TestLoopDrainedStop(t *testing.T) {
	src := newChanSource(8)
	before := time.Now().Add(-time.Second)
	for range 5 {
		src.frames <- frameAt(before)
	}
	l := New(src, decode.NewDecoder(decode.Config{}), decode.HandlerFunc(func(*decode.Datagram) {}))
	l.Start()
	sharedtest.Eventually(t, 10*time.Second, "5 frames analysed", func() bool { return l.Frames() == 5 })
	type result struct {
		cut time.Time
		err error
	}
	done := make(chan result, 1)
	go func() {
		cut, err := l.Stop(time.Hour) // ends at the first frame after the cut, not by this timeout
		done <- result{cut, err}
	}()
	sharedtest.Eventually(t, 10*time.Second, "the cut set", func() bool { return l.cutAt.Load() != 0 })
	src.frames <- frameAt(before)                    // stamped before the stop, read after it: analysed
	src.frames <- frameAt(time.Now().Add(time.Hour)) // after the cut: ends the drain, not analysed
	r := <-done
	if !errors.Is(r.err, capture.ErrClosed) || r.cut.IsZero() {
		t.Fatalf("Stop = %v, %v; want a cut time and capture.ErrClosed", r.cut, r.err)
	}
	if got := l.Frames(); got != 6 {
		t.Errorf("%d frames analysed, want the 6 stamped before the stop", got)
	}
}
