package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// File magic numbers, as the first four bytes read little-endian.
const (
	magicPcapMicroLE = 0xa1b2c3d4 // pcap, µs timestamps, little-endian file
	magicPcapMicroBE = 0xd4c3b2a1 // pcap, µs timestamps, big-endian file
	magicPcapNanoLE  = 0xa1b23c4d // pcap, ns timestamps, little-endian file
	magicPcapNanoBE  = 0x4d3cb2a1 // pcap, ns timestamps, big-endian file
	magicPcapNG      = 0x0a0d0d0a // pcapng Section Header Block type (palindromic)
)

// gzInputBuffer is the buffer between a gzip file and its decompressor.
const gzInputBuffer = 64 << 10

// pcapgoEagerMax is the largest record data pcapgo's pcap reader accepts
// whatever the file's snapshot length (libpcap's MAXIMUM_SNAPLEN).
const pcapgoEagerMax = 262144

// File is a [Source] reading a pcap or pcapng file, optionally gzip
// compressed. The format is detected from the magic number.
//
// The file is read in blocks of 256 KiB and a Frame's Data points into
// the block: no frame is copied, and Data is valid until the next
// ReadFrame. A gzip file is decompressed a few blocks ahead by a goroutine
// of its own, on another core than the parsing and the analysis. (An
// uncompressed file is read on the caller's goroutine: read ahead by
// another core, its frames reached the parser through the shared cache
// instead of its own, and reading bench.sh's 290 MB capture took a third
// longer.) A File is not safe for concurrent use, except Stats, Progress,
// Truncated and Close, which may be called from any goroutine.
//
// Classic pcap (either byte order, µs or ns timestamps) and pcapng
// (sections in either byte order; interfaces each with its link type,
// timestamp resolution and offset; Enhanced, Simple and obsolete Packet
// Blocks; statistics, name resolution, custom and unknown blocks skipped)
// are parsed by hand. gopacket's pcapgo, which read them before, copies
// every record out of a bufio.Reader into its own buffer and reads every
// field with a call of its own: on the 1.25 M-packet capture of
// scripts/bench.sh it cost as much as the whole call table. This reader keeps every rule
// of pcapgo's (what it accepts, what ends a file as truncated, the text of
// each error), so that `read` prints the same for any file, damaged ones
// included; pcapgo remains the right tool as the reference that
// FuzzReadFile and the format tests hold this reader to (the File of
// before is kept in file_pcapgo_test.go), and for writing test files.
//
// BenchmarkReadFile: a 48 MB file of 200,000 frames of 214 and 900 bytes
// read from the page cache to its end, ns per frame, median of 5 on the
// 2-core VM shared with other builds (load average 3–4), 2026-12-08:
//
//	           pcapgo   this reader
//	pcap         61.2          24.1   2.5× faster
//	pcapng       94.4          55.7   1.7× faster
//	pcap.gz    1518          1577     the same: gzip's decompression is 95 % of it
//
// (A gzip file gains when the analysis runs beside the decompression on
// an idle second core.) The kernel's copy out of the page cache is most
// of what is left for an uncompressed file; mapping the file would save
// it, but a capture truncated while mapped (a rotating tcpdump -W) would
// kill the process with SIGBUS wherever a frame is being decoded.
type File struct {
	file  *os.File // the file OpenFile opened; nil for NewFileReader
	count *countingReader
	total int64
	name  string
	in    *blockReader

	ng bool // pcapng; classic pcap otherwise

	// Classic pcap.
	be      bool     // big-endian file
	nano    uint32   // nanoseconds per unit of the fraction field: 1 or 1000
	snaplen uint32   // the header's snapshot length
	maxCap  int      // largest record data accepted
	link    LinkType // the header's link type

	// pcapng (be is the current section's byte order).
	ifaces []ngInterface // the current section's interfaces
	spill  []byte        // a packet read from the stream (a damaged block)

	closed atomic.Bool
	done   bool // EOF or a truncated record was reached

	// The reader counts in nFrames and nBytes and publishes them to frames
	// and bytes (for Stats, from any goroutine) every statsEvery frames and
	// whenever ReadFrame returns an error: an atomic add per frame cost
	// a fifth of the reading.
	nFrames, nBytes uint64
	frames          atomic.Uint64
	bytes           atomic.Uint64
	truncated       atomic.Uint64
}

// statsEvery is how many frames a File reads between two publications of
// its counters to Stats.
const statsEvery = 64

// OpenFile opens the pcap, pcapng or gzip-compressed capture file at path.
// It returns an error wrapping [ErrUnknownFormat] when the file is neither
// format. Close closes the file.
func OpenFile(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	total := int64(-1)
	if fi, err := osf.Stat(); err == nil && fi.Mode().IsRegular() {
		total = fi.Size()
	}
	f, err := newFile(osf, path, total, total, false)
	if err != nil {
		osf.Close()
		return nil, err
	}
	f.file = osf
	return f, nil
}

// NewFileReader reads a pcap, pcapng or gzip-compressed capture from r. It
// returns an error wrapping [ErrUnknownFormat] when r holds neither format.
// Progress reports a total of -1 unless r is an *os.File of a regular file.
// Close does not close r.
func NewFileReader(r io.Reader) (*File, error) {
	total := int64(-1)
	if osf, ok := r.(*os.File); ok {
		if fi, err := osf.Stat(); err == nil && fi.Mode().IsRegular() {
			total = fi.Size()
		}
	}
	size := total
	if s, ok := r.(interface{ Size() int64 }); ok && size < 0 { // bytes.Reader: a buffer to fit
		size = s.Size()
	}
	return newFile(r, "reader", total, size, false)
}

// newFile reads the file's header. size, when not -1, is the file's size,
// for the buffer. ahead reads a file that is not compressed ahead too, as
// a gzip file always is (for tests of the read-ahead).
func newFile(r io.Reader, name string, total, size int64, ahead bool) (*File, error) {
	f := &File{count: &countingReader{r: r}, total: total, name: name}
	f.in = newBlockReader(f.count, size)
	magic, err := peekMagic(f.in)
	if err != nil {
		return nil, named(name, err)
	}
	if magic&0xffff == 0x8b1f { // gzip: 1f 8b
		// The decompressor reads what the block reader holds, then the file.
		head := bytes.NewReader(f.in.buf[f.in.r:f.in.w])
		zr, err := gzip.NewReader(bufio.NewReaderSize(io.MultiReader(head, f.count), gzInputBuffer))
		if err != nil {
			return nil, fmt.Errorf("capture: %s: gzip: %w", name, err)
		}
		f.in = &blockReader{src: zr}
		f.in.readAhead(true)
		if magic, err = peekMagic(f.in); err != nil {
			f.in.close()
			return nil, named(name+" (gzip)", err)
		}
	} else if ahead {
		f.in.readAhead(false)
	}
	switch magic {
	case magicPcapMicroLE, magicPcapMicroBE, magicPcapNanoLE, magicPcapNanoBE:
		err = f.pcapOpen()
	case magicPcapNG:
		f.ng = true
		err = f.ngOpen()
	default:
		err = &FormatError{Name: name, Detail: fmt.Sprintf("magic %#08x", magic)}
	}
	if err != nil {
		f.in.close()
		var fe *FormatError
		if !errors.As(err, &fe) {
			err = &FormatError{Name: name, Detail: err.Error()}
		}
		return nil, err
	}
	return f, nil
}

// peekMagic returns the first four bytes read little-endian, without
// consuming them. A stream shorter than four bytes is an unknown format.
func peekMagic(in *blockReader) (uint32, error) {
	b, err := in.peek(4)
	if len(b) < 4 {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, &FormatError{Detail: fmt.Sprintf("only %d bytes", len(b))}
		}
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// fullErr is io.ReadFull's error for a read that found avail bytes before
// the source's error err.
func fullErr(avail int, err error) error {
	if avail > 0 && err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// pcapOpen reads a classic pcap file's header, with pcapgo's checks.
func (f *File) pcapOpen() error {
	h, k, err := f.in.next(24)
	if h == nil {
		return fullErr(k, err)
	}
	magic := binary.LittleEndian.Uint32(h[0:4])
	f.be = magic == magicPcapMicroBE || magic == magicPcapNanoBE
	f.nano = 1000
	if magic == magicPcapNanoLE || magic == magicPcapNanoBE {
		f.nano = 1
	}
	if v := f.u16(h[4:6]); v != 2 {
		return fmt.Errorf("Unknown major version %d", v) //lint:ignore ST1005 pcapgo's text
	}
	if v := f.u16(h[6:8]); v != 4 {
		return fmt.Errorf("Unknown minor version %d", v) //lint:ignore ST1005 pcapgo's text
	}
	f.snaplen = f.u32(h[16:20])
	f.maxCap = max(int(f.snaplen), pcapgoEagerMax)
	f.link = LinkType(uint16(f.u32(h[20:24]))) // pcapgo keeps the low 16 bits (the rest are FCS flags)
	return nil
}

// pcapReadFrame fills fr with the next record of a classic pcap file.
func (f *File) pcapReadFrame(fr *Frame) error {
	h, k, err := f.in.next(16)
	if h == nil {
		return fullErr(k, err)
	}
	sec, frac := f.u32(h[0:4]), f.u32(h[4:8])*f.nano // uint32 product, as pcapgo's
	caplen, length := int(f.u32(h[8:12])), int(f.u32(h[12:16]))
	if caplen > f.maxCap {
		return fmt.Errorf("capture length exceeds snap length: %d > %d", caplen, f.snaplen)
	}
	if caplen > length {
		return fmt.Errorf("capture length exceeds original packet length: %d > %d", caplen, length)
	}
	data, k, err := f.in.next(caplen)
	if data == nil {
		return fullErr(k, err)
	}
	fr.Data = data
	fr.Time = time.Unix(int64(sec), int64(frac)).UTC()
	fr.Length = length
	fr.LinkType = f.link
	fr.Interface = 0
	return nil
}

func (f *File) u16(b []byte) uint16 {
	if f.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (f *File) u32(b []byte) uint32 {
	if f.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// ReadFrame fills fr with the next frame. It returns io.EOF at the end of the
// file. A record cut short by the end of the file (a capture that was still
// being written, or a truncated copy) also ends the file with io.EOF; it is
// counted by [File.Truncated]. Other read errors mean a corrupt file.
func (f *File) ReadFrame(fr *Frame) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if f.done {
		return io.EOF
	}
	var err error
	if f.ng {
		err = f.ngReadFrame(fr)
	} else {
		err = f.pcapReadFrame(fr)
	}
	if err == nil {
		f.nFrames++
		f.nBytes += uint64(len(fr.Data))
		if f.nFrames%statsEvery == 0 {
			f.publish()
		}
		return nil
	}
	f.publish()
	switch {
	case errors.Is(err, io.EOF):
		f.done = true
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		f.done = true
		f.truncated.Add(1)
		return io.EOF
	default:
		if f.closed.Load() {
			return ErrClosed
		}
		if errors.Is(err, ErrRecordTooLarge) {
			return fmt.Errorf("%w: %s", err, f.name)
		}
		return fmt.Errorf("capture: %s: %w", f.name, err)
	}
}

// publish makes the counters visible to Stats.
func (f *File) publish() {
	f.frames.Store(f.nFrames)
	f.bytes.Store(f.nBytes)
}

// Stats returns the frames and bytes delivered so far: exact once
// ReadFrame has returned an error (io.EOF at the end), up to 63 frames
// behind while the file is being read. Safe for concurrent use.
func (f *File) Stats() Stats {
	return Stats{Frames: f.frames.Load(), Bytes: f.bytes.Load()}
}

// Progress returns how many bytes of the underlying file (compressed bytes
// for a gzip file) have been consumed, and the file size, or -1 when the size
// is unknown. Read-ahead buffering makes done run slightly ahead of the
// frames delivered. Safe for concurrent use.
func (f *File) Progress() (done, total int64) {
	return f.count.n.Load(), f.total
}

// Truncated returns how many truncated records ended the file: 0 or 1. Safe
// for concurrent use.
func (f *File) Truncated() uint64 {
	return f.truncated.Load()
}

// Close releases the file. Subsequent ReadFrame calls return [ErrClosed].
// It closes the file only when OpenFile opened it. Safe for concurrent
// use: a ReadFrame blocked in a read of the file returns.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.in.close()
	if f.file != nil {
		return f.file.Close()
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

var _ Source = (*File)(nil)

// FormatError is a file that is neither pcap nor pcapng (or whose header is
// broken). It matches [ErrUnknownFormat] with errors.Is.
type FormatError struct {
	Name   string // the file, "" when unknown
	Detail string // what was found
}

// Error returns "capture: NAME: not a pcap or pcapng file (DETAIL)".
func (e *FormatError) Error() string {
	s := "capture: "
	if e.Name != "" {
		s += e.Name + ": "
	}
	return s + "not a pcap or pcapng file (" + e.Detail + ")"
}

// Is reports whether target is [ErrUnknownFormat].
func (e *FormatError) Is(target error) bool { return target == ErrUnknownFormat }

// named adds the file name to an error from peekMagic.
func named(name string, err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Name = name
		return fe
	}
	return fmt.Errorf("capture: %s: %w", name, err)
}
