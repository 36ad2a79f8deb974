package capture

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// genSource delivers n frames whose Data encodes their index, each of
// size(i) bytes, reusing one buffer as a ring would. After the n-th frame
// it returns io.EOF, or, with hold set, blocks until Close.
type genSource struct {
	n     int
	size  func(i int) int
	hold  bool
	fill  bool // write the index pattern into every frame
	buf   []byte
	i     int
	reads atomic.Int64 // frames delivered
	ended atomic.Bool  // the source returned its last error

	closeOnce sync.Once
	closing   chan struct{}
}

func newGenSource(n int, size func(int) int, hold bool) *genSource {
	return &genSource{n: n, size: size, hold: hold, fill: true, buf: make([]byte, 1<<16), closing: make(chan struct{})}
}

func (g *genSource) ReadFrame(f *Frame) error {
	if g.i == g.n {
		if g.hold {
			<-g.closing
			g.ended.Store(true)
			return ErrClosed
		}
		g.ended.Store(true)
		return io.EOF
	}
	n := g.size(g.i)
	d := g.buf[:n]
	if g.fill {
		for j := range d {
			d[j] = byte(g.i + j)
		}
		binary.BigEndian.PutUint32(d, uint32(g.i))
	}
	f.Data, f.Length, f.LinkType, f.Interface = d, n+1, LinkTypeEthernet, g.i%3
	f.Time = time.Unix(1700000000, int64(g.i)*1000)
	g.i++
	g.reads.Add(1)
	return nil
}

func (g *genSource) Stats() Stats { return Stats{Frames: uint64(g.reads.Load())} }

func (g *genSource) Close() error {
	g.closeOnce.Do(func() { close(g.closing) })
	return nil
}

// checkFrame reports whether f is genSource's frame i, intact.
func checkFrame(t *testing.T, f *Frame, i, size int) {
	t.Helper()
	if len(f.Data) != size || f.Length != size+1 || f.Interface != i%3 || f.LinkType != LinkTypeEthernet ||
		!f.Time.Equal(time.Unix(1700000000, int64(i)*1000)) {
		t.Fatalf("frame %d: len %d length %d interface %d time %v; want %d, %d, %d", i, len(f.Data), f.Length, f.Interface, f.Time, size, size+1, i%3)
	}
	if got := int(binary.BigEndian.Uint32(f.Data)); got != i {
		t.Fatalf("frame %d carries index %d", i, got)
	}
	for j := 4; j < size; j++ {
		if f.Data[j] != byte(i+j) {
			t.Fatalf("frame %d byte %d = %d, want %d: overwritten", i, j, f.Data[j], byte(i+j))
		}
	}
}

func TestBufferedDeliversInOrder(t *testing.T) {
	const n = 50000
	size := func(i int) int { return 4 + i*7919%1500 }     // 4…1503 bytes: every padding
	b := NewBuffered(newGenSource(n, size, false), 64<<20) // holds them all: no drop
	var f Frame
	for i := range n {
		if err := b.ReadFrame(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		checkFrame(t, &f, i, size(i))
	}
	if err := b.ReadFrame(&f); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	st := b.Stats()
	if st.BufferDropped != 0 || st.Frames != n {
		t.Errorf("stats %+v: want %d frames, no drop", st, n)
	}
	if st.BufferHigh > st.BufferCapacity || st.BufferCapacity != 64<<20 {
		t.Errorf("high-water %d, capacity %d: want capacity 64 MiB, high-water within it", st.BufferHigh, st.BufferCapacity)
	}
}

// A reader that does not read: the buffer fills, the rest is dropped and
// counted, the capture goroutine is never held up, and what was kept is
// delivered intact and in order.
func TestBufferedFullDropsAndCounts(t *testing.T) {
	const n, size = 5000, 1000 // 1000 + 24 bytes of header: 1024 frames a 1 MiB chunk
	src := newGenSource(n, func(int) int { return size }, false)
	b := NewBuffered(src, 2<<20) // two chunks: 2048 frames
	var f Frame
	if err := b.ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	checkFrame(t, &f, 0, size)
	sharedtest.Eventually(t, 10*time.Second, "the source to be read to its end", src.ended.Load)
	st := b.Stats()
	// The high-water mark counts frame 0 or not, as the reader's read of
	// it and the writer's last put fell.
	if st.BufferDropped != n-2048 || st.BufferUsed != 2<<20-1024 || st.BufferHigh < st.BufferUsed || st.BufferHigh > 2<<20 {
		t.Fatalf("dropped %d, used %d, high-water %d; want %d, 2 MiB less the frame read, at most 2 MiB", st.BufferDropped, st.BufferUsed, st.BufferHigh, n-2048)
	}
	for i := 1; i < 2048; i++ {
		if err := b.ReadFrame(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		checkFrame(t, &f, i, size)
	}
	if err := b.ReadFrame(&f); !errors.Is(err, io.EOF) {
		t.Fatalf("after the kept frames: %v, want io.EOF", err)
	}
	if st := b.Stats(); st.BufferUsed != 0 {
		t.Errorf("used %d after draining, want 0", st.BufferUsed)
	}
}

// Close ends the capture, but the reader still gets every frame captured
// before it, then ErrClosed.
func TestBufferedCloseDrains(t *testing.T) {
	const n = 3000
	src := newGenSource(n, func(i int) int { return 60 + i%200 }, true)
	b := NewBuffered(src, 4<<20)
	var f Frame
	if err := b.ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	checkFrame(t, &f, 0, 60)
	sharedtest.Eventually(t, 10*time.Second, "every frame captured", func() bool { return src.reads.Load() == n })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := b.ReadFrame(&f); err != nil {
			t.Fatalf("frame %d after Close: %v", i, err)
		}
		checkFrame(t, &f, i, 60+i%200)
	}
	if err := b.ReadFrame(&f); !errors.Is(err, ErrClosed) {
		t.Fatalf("after draining: %v, want ErrClosed", err)
	}
	if err := b.ReadFrame(&f); !errors.Is(err, ErrClosed) {
		t.Fatalf("again: %v, want ErrClosed", err)
	}
}

// A reader waiting on an empty buffer returns ErrClosed on Close; a
// Buffered closed before its first read never starts.
func TestBufferedCloseWakesReader(t *testing.T) {
	src := newGenSource(0, nil, true)
	b := NewBuffered(src, 1<<20)
	errc := make(chan error, 1)
	go func() {
		var f Frame
		errc <- b.ReadFrame(&f)
	}()
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadFrame = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFrame still blocked after Close")
	}
	b2 := NewBuffered(newGenSource(5, func(int) int { return 10 }, true), 1<<20)
	b2.Close()
	var f Frame
	if err := b2.ReadFrame(&f); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadFrame after Close = %v, want ErrClosed", err)
	}
}

// Concurrent writer and reader over a small buffer: every frame arrives
// intact or is counted as dropped, never both, never altered. Every 5,000
// frames the reader holds its frame until the writer has filled the buffer
// and dropped (or the source has ended), so the writer laps the reader and
// reuses chunks on every run, whatever the scheduling; between those
// pauses the two race freely.
func TestBufferedConcurrentIntegrity(t *testing.T) {
	const n = 200000
	size := func(i int) int { return 40 + i%300 }
	src := newGenSource(n, size, false)
	b := NewBuffered(src, 2<<20)
	var f Frame
	got, last, pauses := 0, -1, 0
	for {
		err := b.ReadFrame(&f)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		i := int(binary.BigEndian.Uint32(f.Data))
		if i <= last {
			t.Fatalf("frame %d after %d", i, last)
		}
		checkFrame(t, &f, i, size(i))
		last = i
		got++
		if got%5000 == 0 {
			dropped := b.Stats().BufferDropped
			sharedtest.Eventually(t, 10*time.Second, "the writer to fill the buffer",
				func() bool { return b.Stats().BufferDropped > dropped || src.ended.Load() })
			checkFrame(t, &f, i, size(i)) // still intact: its chunk was not reused
			pauses++
		}
	}
	st := b.Stats()
	if uint64(got)+st.BufferDropped != n {
		t.Fatalf("%d delivered + %d dropped, want %d", got, st.BufferDropped, n)
	}
	if st.BufferDropped == 0 || pauses == 0 {
		t.Fatalf("%d dropped after %d pauses: the writer never lapped the reader", st.BufferDropped, pauses)
	}
}

// BenchmarkBuffered measures a frame's trip through the buffer, copied in
// by put and read out by ReadFrame, in batches of 4096 frames on one
// goroutine (so the figure is the buffer's own cost, not the scheduler's).
// The steady state allocates nothing: the chunks are reused.
func BenchmarkBuffered(b *testing.B) {
	for _, size := range []int{214, 1400} {
		b.Run(itoa(size), func(b *testing.B) {
			bf := NewBuffered(newGenSource(0, nil, true), 64<<20)
			bf.started = true // no capture goroutine: the benchmark puts
			data := make([]byte, size)
			in := Frame{Data: data, Length: size, LinkType: LinkTypeEthernet, Time: time.Unix(1700000000, 0)}
			var f Frame
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for n := 0; n < b.N; {
				batch := min(4096, b.N-n)
				for range batch {
					bf.put(&in)
				}
				for range batch {
					if err := bf.ReadFrame(&f); err != nil {
						b.Fatal(err)
					}
				}
				n += batch
			}
			if d := bf.Stats().BufferDropped; d > 0 {
				b.Fatalf("%d dropped", d)
			}
		})
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for ; n > 0 || i == len(b); n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
