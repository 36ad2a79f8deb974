package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// File magic numbers, as the first four bytes read little-endian.
const (
	magicPcapMicroLE = 0xa1b2c3d4 // pcap, µs timestamps, little-endian file
	magicPcapMicroBE = 0xd4c3b2a1 // pcap, µs timestamps, big-endian file
	magicPcapNanoLE  = 0xa1b23c4d // pcap, ns timestamps, little-endian file
	magicPcapNanoBE  = 0x4d3cb2a1 // pcap, ns timestamps, big-endian file
	magicPcapNG      = 0x0a0d0d0a // pcapng Section Header Block type (palindromic)
)

// fileBufferSize is the read-ahead buffer between the file and the pcap
// reader. Progress counts bytes pulled into it.
const fileBufferSize = 64 << 10

// File is a [Source] reading a pcap or pcapng file, optionally gzip
// compressed. The format is detected from the magic number.
//
// Frames are read with pcapgo's ZeroCopyReadPacketData: a Frame's Data
// aliases the File's buffer and is valid until the next ReadFrame. A File is
// not safe for concurrent use, except Stats, Progress and Truncated, which
// may be called from any goroutine.
type File struct {
	file   *os.File // the file OpenFile opened; nil for NewFileReader
	count  *countingReader
	total  int64
	pcap   *pcapgo.Reader   // set for pcap files
	ng     *pcapgo.NgReader // set for pcapng files
	link   LinkType         // pcap only: the file header's link type
	name   string
	closed atomic.Bool
	done   bool // EOF or a truncated record was reached

	frames    atomic.Uint64
	bytes     atomic.Uint64
	truncated atomic.Uint64
}

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
	f, err := newFile(osf, path, total)
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
	return newFile(r, "reader", total)
}

func newFile(r io.Reader, name string, total int64) (*File, error) {
	f := &File{count: &countingReader{r: r}, total: total, name: name}
	br := bufio.NewReaderSize(f.count, fileBufferSize)
	magic, err := peekMagic(br)
	if err != nil {
		return nil, named(name, err)
	}
	if magic&0xffff == 0x8b1f { // gzip: 1f 8b
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("capture: %s: gzip: %w", name, err)
		}
		br = bufio.NewReaderSize(gz, fileBufferSize)
		if magic, err = peekMagic(br); err != nil {
			return nil, named(name+" (gzip)", err)
		}
	}
	switch magic {
	case magicPcapMicroLE, magicPcapMicroBE, magicPcapNanoLE, magicPcapNanoBE:
		f.pcap, err = pcapgo.NewReader(br)
		if err != nil {
			return nil, &FormatError{Name: name, Detail: err.Error()}
		}
		f.link = LinkType(f.pcap.LinkType())
	case magicPcapNG:
		f.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, &FormatError{Name: name, Detail: err.Error()}
		}
	default:
		return nil, &FormatError{Name: name, Detail: fmt.Sprintf("magic %#08x", magic)}
	}
	return f, nil
}

// peekMagic returns the first four bytes of br read little-endian, without
// consuming them. A stream shorter than four bytes is an unknown format.
func peekMagic(br *bufio.Reader) (uint32, error) {
	b, err := br.Peek(4)
	if len(b) < 4 {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, &FormatError{Detail: fmt.Sprintf("only %d bytes", len(b))}
		}
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
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
	var (
		data []byte
		ci   gopacket.CaptureInfo
		err  error
		link = f.link
	)
	if f.pcap != nil {
		data, ci, err = f.pcap.ZeroCopyReadPacketData()
	} else {
		data, ci, err = f.ng.ZeroCopyReadPacketData()
		if err == nil && len(ci.AncillaryData) > 0 {
			if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				link = LinkType(lt)
			}
		}
	}
	switch {
	case err == nil:
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
		return fmt.Errorf("capture: %s: %w", f.name, err)
	}
	fr.Data = data
	fr.Time = ci.Timestamp
	fr.Length = ci.Length
	fr.LinkType = link
	fr.Interface = ci.InterfaceIndex
	f.frames.Add(1)
	f.bytes.Add(uint64(len(data)))
	return nil
}

// Stats returns the frames and bytes delivered so far. Safe for concurrent
// use.
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
// It closes the file only when OpenFile opened it.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
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
