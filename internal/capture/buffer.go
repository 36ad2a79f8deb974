package capture

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"time"
)

// Packet buffer sizing. A frame is stored whole in one chunk, so a chunk
// holds at least one frame of DefaultSnaplen; the buffer has at least two
// chunks, so the producer can fill one while the analysis reads the other.
const (
	minBufferChunk  = 1 << 20
	maxBufferChunk  = 8 << 20
	bufferChunks    = 32 // chunks in a buffer of at least 32 × minBufferChunk
	minBufferChunks = 2
	frameHeaderLen  = 24 // time (8), captured length (4), wire length (4), link type (4), interface (4)
	waitSpins       = 32 // yields before the reader parks on an empty buffer
)

// Buffered is a [Source] that puts a bounded packet buffer between a
// capture source and its reader, as the VoIPmonitor sniffer does with its
// max_buffer_mem: a capture goroutine does nothing but read the inner
// source and copy each frame into the buffer, so a live socket's ring
// blocks go back to the kernel at once, and the reader drains the buffer
// at its own pace. When the buffer is full the capture goroutine drops
// the frame and counts it ([Stats.BufferDropped]); it never waits for the
// reader.
//
// The buffer is a set of fixed-size chunks allocated as the fill first
// needs them (an idle sensor holds one) and reused afterwards, so the
// steady state allocates nothing. Each chunk has one writer (the capture
// goroutine) and one reader, which meet through the chunk's published
// length: no lock is taken per frame.
//
// The capture goroutine starts at the first ReadFrame. Frame.Data aliases
// the buffer and is valid until the next ReadFrame, as with any Source.
// After Close, ReadFrame still returns the frames already buffered, then
// the inner source's error ([ErrClosed]); so a stop that closes the
// source loses nothing that was captured before it.
type Buffered struct {
	src       Source
	chunkSize int
	maxChunks int

	// Capture goroutine only.
	cur       *chunk
	w         int // write offset in cur
	allocated int

	// Reader only.
	rd      *chunk
	r       int // read offset in rd
	started bool

	free    chan *chunk   // chunks the reader has finished, for reuse
	wake    chan struct{} // the reader waits for a frame on it
	done    chan struct{} // closed when the capture goroutine has ended
	err     error         // the inner source's final error; written before done is closed
	waiting atomic.Bool   // the reader is about to wait on wake
	closed  atomic.Bool

	dropped atomic.Uint64
	high    atomic.Int64 // most bytes of frames held at once
	in      atomic.Int64 // bytes of frames put, ever; written by the capture goroutine only
	_       [56]byte     // in and out on their own cache lines
	out     atomic.Int64 // bytes of frames read, ever; written by the reader only
}

// chunk is one slice of the buffer: frames, each a header and the data
// padded to 8 bytes, written one after the other.
type chunk struct {
	data []byte
	w    atomic.Int64          // bytes published by the capture goroutine
	next atomic.Pointer[chunk] // set once the writer has moved on; w is then final
}

// NewBuffered returns a buffered view of in holding at most maxBytes of
// frames (rounded to whole chunks, at least two of 1 MiB). It starts
// nothing: the capture goroutine starts with the first ReadFrame. The
// Buffered owns in: Close closes it.
func NewBuffered(in Source, maxBytes int) *Buffered {
	size := min(max(maxBytes/bufferChunks, minBufferChunk), maxBufferChunk)
	n := max(maxBytes/size, minBufferChunks)
	sentinel := new(chunk) // no data: the writer moves past it at its first frame
	return &Buffered{
		src: in, chunkSize: size, maxChunks: n,
		cur: sentinel, rd: sentinel,
		free: make(chan *chunk, n), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// Capacity is the most memory the buffer holds, in bytes.
func (b *Buffered) Capacity() int { return b.chunkSize * b.maxChunks }

// run is the capture goroutine.
func (b *Buffered) run() {
	var f Frame
	for {
		if err := b.src.ReadFrame(&f); err != nil {
			b.err = err
			close(b.done)
			return
		}
		b.put(&f)
	}
}

// put copies f into the buffer, or drops it when the buffer is full.
func (b *Buffered) put(f *Frame) {
	need := frameHeaderLen + (len(f.Data)+7)&^7
	if b.w+need > len(b.cur.data) {
		nc := b.take()
		if nc == nil || need > len(nc.data) {
			if nc != nil {
				b.free <- nc // cannot block: the channel holds every chunk
			}
			b.dropped.Add(1)
			return
		}
		b.cur.next.Store(nc)
		b.cur, b.w = nc, 0
	}
	c := b.cur
	h := c.data[b.w : b.w+need]
	binary.NativeEndian.PutUint64(h[0:], uint64(f.Time.UnixNano()))
	binary.NativeEndian.PutUint32(h[8:], uint32(len(f.Data)))
	binary.NativeEndian.PutUint32(h[12:], uint32(f.Length))
	binary.NativeEndian.PutUint32(h[16:], uint32(f.LinkType))
	binary.NativeEndian.PutUint32(h[20:], uint32(f.Interface))
	copy(h[frameHeaderLen:], f.Data)
	b.w += need
	c.w.Store(int64(b.w))
	in := b.in.Load() + int64(need)
	b.in.Store(in)
	if used := in - b.out.Load(); used > b.high.Load() {
		b.high.Store(used) // the capture goroutine is the only writer
	}
	if b.waiting.Load() {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// take returns an empty chunk: one the reader gave back, or a new one
// while the buffer is below its size; nil when the buffer is full.
func (b *Buffered) take() *chunk {
	var c *chunk
	select {
	case c = <-b.free:
		c.w.Store(0)
		c.next.Store(nil)
	default:
		if b.allocated == b.maxChunks {
			return nil
		}
		b.allocated++
		c = &chunk{data: make([]byte, b.chunkSize)}
	}
	return c
}

// ReadFrame fills f with the next buffered frame, waiting for one. Once
// the source has ended (Close, or the inner source's error) and the buffer
// is empty it returns the inner source's error.
func (b *Buffered) ReadFrame(f *Frame) error {
	if !b.started {
		if b.closed.Load() {
			return ErrClosed
		}
		b.started = true
		go b.run()
	}
	for {
		c := b.rd
		if w := int(c.w.Load()); b.r < w {
			h := c.data[b.r:w]
			n := int(binary.NativeEndian.Uint32(h[8:]))
			f.Time = time.Unix(0, int64(binary.NativeEndian.Uint64(h[0:])))
			f.Length = int(binary.NativeEndian.Uint32(h[12:]))
			f.LinkType = LinkType(binary.NativeEndian.Uint32(h[16:]))
			f.Interface = int(int32(binary.NativeEndian.Uint32(h[20:])))
			f.Data = h[frameHeaderLen : frameHeaderLen+n : frameHeaderLen+n]
			b.r += frameHeaderLen + (n+7)&^7
			b.out.Store(b.out.Load() + int64(frameHeaderLen+(n+7)&^7))
			return nil
		}
		if next := c.next.Load(); next != nil {
			if b.r < int(c.w.Load()) {
				continue // published before the writer moved on
			}
			// The frame last returned (in c) is no longer leased.
			b.rd, b.r = next, 0
			if c.data != nil {
				b.free <- c // cannot block: the channel holds every chunk
			}
			continue
		}
		if err := b.wait(c); err != nil {
			return err
		}
	}
}

// wait blocks until the capture goroutine publishes after c's read offset,
// or has ended with nothing left to read (its error is returned then).
func (b *Buffered) wait(c *chunk) error {
	ready := func() bool { return int(c.w.Load()) > b.r || c.next.Load() != nil }
	// The capture goroutine delivers a ring block's frames in a burst: a
	// short spin catches the next one without parking and being woken for
	// each frame.
	for range waitSpins {
		runtime.Gosched()
		if ready() {
			return nil
		}
	}
	b.waiting.Store(true)
	if !ready() { // the writer checks waiting after publishing: no wake-up is lost
		select {
		case <-b.wake:
		case <-b.done:
		}
	}
	b.waiting.Store(false)
	if !ready() {
		select {
		case <-b.done:
			if !ready() {
				return b.err
			}
		default:
		}
	}
	return nil
}

// Stats returns the inner source's counters with the buffer's. Frames are
// those the capture goroutine read from the inner source, buffered or
// dropped. Safe for concurrent use.
func (b *Buffered) Stats() Stats {
	st := b.src.Stats()
	st.BufferDropped = b.dropped.Load()
	st.BufferCapacity = uint64(b.Capacity())
	out := b.out.Load() // before in: used is never negative
	st.BufferUsed = uint64(max(b.in.Load()-out, 0))
	st.BufferHigh = uint64(b.high.Load())
	return st
}

// Close closes the inner source, which ends the capture goroutine once it
// has stored the frame in hand (a [Live] source waits for it before
// unmapping its ring). The reader still gets the frames already buffered,
// then [ErrClosed]. Safe for concurrent use.
func (b *Buffered) Close() error {
	b.closed.Store(true)
	return b.src.Close()
}

var _ Source = (*Buffered)(nil)
