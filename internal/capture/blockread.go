package capture

import (
	"errors"
	"io"
	"sync"
)

// Buffer sizes of the file reader.
const (
	// fileBlockSize is the reader's buffer, and so the most it asks the
	// file for at once. 1 MiB read no faster, 64 KiB slower.
	fileBlockSize = 256 << 10
	// minFileBuffer is the buffer of a capture known to be smaller.
	minFileBuffer = 4 << 10
	// maxRecordLen bounds one record: the buffer holds a whole record, and
	// grows past its size only as the file actually supplies the bytes of
	// a larger one, up to this. libpcap's largest snapshot length, for
	// D-Bus, is 128 MiB. More is [ErrRecordTooLarge].
	maxRecordLen = 256 << 20
	// maxEmptyReads ends a source that keeps returning nothing, as bufio does.
	maxEmptyReads = 100
)

// ErrRecordTooLarge is a record of more than 256 MiB in a capture file.
var ErrRecordTooLarge = errors.New("capture: record larger than 256 MiB")

// errLengthOverflow is a length from the file that an int cannot hold (on
// a 32-bit platform). The text is pcapgo's.
var errLengthOverflow = errors.New("length from file does not fit in int")

// blockReader reads its source in large blocks and hands out slices of
// them, so that a record is parsed and delivered where it lies, without
// copying it. A slice from next stays valid until the following call of
// next, peek or skip, which may move on to another block or move the
// unread bytes.
//
// A file is read on the caller's goroutine into one buffer. A gzip stream
// is decompressed by a goroutine of its own (a blockPipe) a few blocks
// ahead, so that decompression runs on another core than the parsing; the
// parser takes over each block as it is, and only a record that straddles
// two blocks is copied, into the headroom in front of the second.
//
// The source's error is kept and returned once the bytes read before it
// have been consumed, so a reader sees what a bufio.Reader would show it.
type blockReader struct {
	src  io.Reader  // read on the caller's goroutine, when pipe is nil
	pipe *blockPipe // the goroutine reading the source
	buf  []byte
	r, w int    // buf[r:w] is read from the source and not yet consumed
	err  error  // the source's error; nothing more is read after it
	held []byte // the pipe's buffer that buf is in, to give back when done
	priv []byte // a buffer of the reader's own, for a record larger than a block's headroom
	// inPriv: buf is priv (a record is being gathered in it).
	inPriv bool
}

// newBlockReader reads src with a buffer of fileBlockSize, or less when the
// source is known to hold less (size >= 0), on the caller's goroutine.
func newBlockReader(src io.Reader, size int64) *blockReader {
	n := fileBlockSize
	if size >= 0 && size < fileBlockSize {
		n = max(int(size)+1, minFileBuffer) // +1: room to see the end without growing
	}
	return &blockReader{src: src, buf: make([]byte, n)}
}

// readAhead moves the reading of the source to a blockPipe, after what is
// buffered now; gz tells it that src is a decompressor, which is read until
// a block is well filled (other sources are handed on at each read, so
// that a slow pipe's frames would not be held back).
func (b *blockReader) readAhead(gz bool) {
	b.pipe = startBlockPipe(b.src, gz)
	b.src = nil
}

// close stops the read-ahead goroutine, if any. Safe to call more than once
// and from any goroutine.
func (b *blockReader) close() {
	if b.pipe != nil {
		b.pipe.close()
	}
}

// next consumes and returns the next n bytes. When the source ends (or
// fails) first, it returns nil, the number of bytes that were left, and
// the source's error (io.EOF at the end).
func (b *blockReader) next(n int) (p []byte, avail int, err error) {
	if n <= b.w-b.r && n >= 0 {
		p = b.buf[b.r : b.r+n : b.r+n]
		b.r += n
		return p, n, nil
	}
	if err := b.fill(n); err != nil {
		return nil, b.w - b.r, err
	}
	p = b.buf[b.r : b.r+n : b.r+n]
	b.r += n
	return p, n, nil
}

// peek returns at least n unread bytes without consuming them, or what is
// left and the error that ended the source first.
func (b *blockReader) peek(n int) ([]byte, error) {
	if n > b.w-b.r {
		if err := b.fill(n); err != nil {
			return b.buf[b.r:b.w], err
		}
	}
	return b.buf[b.r:b.w], nil
}

// fill reads until n bytes are unread, growing the buffer for a record
// larger than it only as the source supplies the record's bytes.
func (b *blockReader) fill(n int) error {
	if n < 0 {
		return errLengthOverflow
	}
	if b.pipe != nil {
		return b.fillFromPipe(n)
	}
	empty := 0
	for b.w-b.r < n {
		if b.err != nil {
			return b.err
		}
		if b.r > 0 { // keep the unread bytes (at most a record) at the front
			b.w = copy(b.buf, b.buf[b.r:b.w])
			b.r = 0
		}
		if b.w == len(b.buf) { // full of a record larger than the buffer
			if len(b.buf) >= maxRecordLen {
				return ErrRecordTooLarge
			}
			nb := make([]byte, min(max(2*len(b.buf), fileBlockSize), maxRecordLen, roundUp(n, fileBlockSize)))
			copy(nb, b.buf[:b.w])
			b.buf = nb
		}
		m, err := b.src.Read(b.buf[b.w:])
		b.w += m
		switch {
		case err != nil:
			b.err = err
		case m == 0:
			if empty++; empty >= maxEmptyReads {
				b.err = io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return nil
}

// fillFromPipe takes blocks from the pipe until n bytes are unread. The
// unread bytes of the current block (the start of a record) go into the
// headroom in front of the next block's; a record longer than the
// headroom is gathered in a buffer of the reader's own.
func (b *blockReader) fillFromPipe(n int) error {
	for b.w-b.r < n {
		if b.err != nil {
			return b.err
		}
		blk, ok := b.pipe.next()
		if !ok {
			b.err = ErrClosed
			continue
		}
		tail, data := b.buf[b.r:b.w], blk.buf[pipeHead:pipeHead+blk.n]
		switch t := len(tail); {
		case t <= pipeHead:
			copy(blk.buf[pipeHead-t:], tail)
			b.release()
			b.held, b.buf, b.r, b.w = blk.buf, blk.buf[pipeHead-t:pipeHead+blk.n], 0, t+blk.n
			b.inPriv = false
		case t >= maxRecordLen:
			b.pipe.free <- blk.buf // cannot block: the channel holds every buffer
			return ErrRecordTooLarge
		default:
			need := t + len(data)
			switch {
			case cap(b.priv) < need:
				np := make([]byte, max(need, 2*cap(b.priv)))
				copy(np, tail)
				b.priv = np
			case !b.inPriv || b.r > 0:
				copy(b.priv, tail) // tail may be in priv: copy moves overlapping bytes right
			} // else tail is priv's start already: only the new bytes are copied
			copy(b.priv[t:need], data)
			b.pipe.free <- blk.buf
			b.release()
			b.buf, b.r, b.w = b.priv[:need], 0, need
			b.inPriv = true
		}
		b.err = blk.err
	}
	return nil
}

// release gives the pipe back the buffer the reader was in. Its bytes are
// no longer needed: the caller moved what it keeps.
func (b *blockReader) release() {
	if b.held != nil {
		b.pipe.free <- b.held // cannot block: the channel holds every buffer
		b.held = nil
	}
}

// skip consumes n bytes without keeping them. When the source ends first
// it returns how many it skipped and the source's error.
func (b *blockReader) skip(n int) (int, error) {
	done := 0
	for {
		m := min(n-done, b.w-b.r)
		b.r += m
		done += m
		if done == n {
			return n, nil
		}
		if b.err != nil {
			return done, b.err
		}
		if b.pipe != nil {
			if err := b.fillFromPipe(1); err != nil {
				return done, err
			}
			continue
		}
		b.r, b.w = 0, 0
		m, err := b.src.Read(b.buf)
		b.w = m
		if err != nil {
			b.err = err
		}
	}
}

// roundUp rounds n up to a multiple of unit, without overflowing for the
// lengths a file can claim.
func roundUp(n, unit int) int {
	if n > maxRecordLen {
		return maxRecordLen
	}
	return (n + unit - 1) / unit * unit
}

// The read-ahead goroutine's blocks: at most pipeBlocks buffers of up to
// pipeBlockSize bytes of data, each with pipeHead bytes of headroom in
// front for the start of a record begun in the block before. The first
// blocks hold pipeFirstBlock bytes, and each block the source fills to the
// brim doubles the size of the next, so a small or slow source (a pipe)
// does not cost megabytes.
const (
	pipeBlockSize  = 1 << 20
	pipeFirstBlock = 64 << 10
	pipeHead       = 64 << 10
	pipeBlocks     = 4
	pipeGzMin      = 256 << 10 // a decompressed block is handed on once it holds this much
)

// blockPipe reads a source on its own goroutine into blocks, ahead of the
// reader. The goroutine starts with startBlockPipe and ends at the end of
// the source, at its first error, or at close (one blocked in a read of a
// file ends when the file is closed).
type blockPipe struct {
	src    io.Reader
	gz     bool           // src is a decompressor: fill blocks up to pipeGzMin
	blocks chan pipeBlock // read blocks, in order; the last carries the source's error
	free   chan []byte    // buffers the reader is done with
	stop   chan struct{}  // closed by close
	once   sync.Once      // closes stop
}

// pipeBlock is n bytes read into buf[pipeHead:], then the source's error
// (nil while it goes on).
type pipeBlock struct {
	buf []byte
	n   int
	err error
}

func startBlockPipe(src io.Reader, gz bool) *blockPipe {
	p := &blockPipe{
		src:    src,
		gz:     gz,
		blocks: make(chan pipeBlock, pipeBlocks),
		free:   make(chan []byte, pipeBlocks),
		stop:   make(chan struct{}),
	}
	go p.run()
	return p
}

// run is the read-ahead goroutine.
func (p *blockPipe) run() {
	allocated, size := 0, pipeFirstBlock
	for {
		var buf []byte
		select {
		case buf = <-p.free:
		default:
			if allocated < pipeBlocks {
				allocated++
				buf = make([]byte, pipeHead+size)
				break
			}
			select {
			case buf = <-p.free:
			case <-p.stop:
				return
			}
		}
		if len(buf) < pipeHead+size { // blocks have grown since this one was made
			buf = make([]byte, pipeHead+size)
		}
		room := len(buf) - pipeHead
		n, empty := 0, 0
		var err error
		for err == nil && n < room && (n == 0 || p.gz && n < pipeGzMin) {
			var m int
			m, err = p.src.Read(buf[pipeHead+n:])
			n += m
			if m == 0 && err == nil {
				if empty++; empty >= maxEmptyReads {
					err = io.ErrNoProgress
				}
			}
		}
		if n == room {
			size = min(2*size, pipeBlockSize)
		}
		select {
		case p.blocks <- pipeBlock{buf: buf, n: n, err: err}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// next returns the next block; false once the pipe is closed.
func (p *blockPipe) next() (pipeBlock, bool) {
	select {
	case blk := <-p.blocks:
		return blk, true
	case <-p.stop:
		return pipeBlock{}, false
	}
}

// close stops the goroutine. Safe to call more than once and from any
// goroutine.
func (p *blockPipe) close() {
	p.once.Do(func() { close(p.stop) })
}
