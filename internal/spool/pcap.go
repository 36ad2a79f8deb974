package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// The classic pcap format (tcpdump.org, draft-ietf-opsawg-pcap), written
// little-endian with microsecond timestamps as the sniffer writes its
// spool: every reader takes it.
//
//	file header (24 bytes):
//	  magic 0xa1b2c3d4 | version 2.4 | thiszone 0 | sigfigs 0 | snaplen | linktype
//	record header (16 bytes) before each frame:
//	  ts_sec | ts_usec | incl_len (bytes saved) | orig_len (bytes on the wire)
const (
	pcapMagicMicro  = 0xa1b2c3d4
	pcapMagicNano   = 0xa1b23c4d
	fileHeaderLen   = 24
	recordHeaderLen = 16
	// pcapSnaplen is the snap length written in headers: libpcap's
	// MAXIMUM_SNAPLEN, above any frame a capture delivers (loopback
	// frames reach 64 KiB and more).
	pcapSnaplen = 262144
)

// ErrNotPcap is returned for a file that does not start with a pcap header.
var ErrNotPcap = errors.New("spool: not a pcap file")

// appendFileHeader appends a pcap file header for link.
func appendFileHeader(b []byte, link capture.LinkType) []byte {
	b = binary.LittleEndian.AppendUint32(b, pcapMagicMicro)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0) // thiszone
	b = binary.LittleEndian.AppendUint32(b, 0) // sigfigs
	b = binary.LittleEndian.AppendUint32(b, pcapSnaplen)
	return binary.LittleEndian.AppendUint32(b, uint32(link))
}

// appendRecord appends one pcap record: a frame captured at tsNs (Unix
// nanoseconds, cut to microseconds) that was origLen bytes on the wire.
func appendRecord(b []byte, tsNs int64, origLen int, data []byte) []byte {
	sec, usec := tsNs/1e9, tsNs%1e9/1e3
	if usec < 0 { // before 1970: keep usec in [0, 1e6)
		sec--
		usec += 1e6
	}
	if origLen < len(data) {
		origLen = len(data)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(sec))
	b = binary.LittleEndian.AppendUint32(b, uint32(usec))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(origLen))
	return append(b, data...)
}

// readLinkType reads the link type of the pcap file header at the start of
// r (either byte order and timestamp resolution).
func readLinkType(r io.ReaderAt) (capture.LinkType, error) {
	var h [fileHeaderLen]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		if m := bo.Uint32(h[:4]); m == pcapMagicMicro || m == pcapMagicNano {
			return capture.LinkType(bo.Uint32(h[20:])), nil
		}
	}
	return 0, ErrNotPcap
}

// cutTorn truncates a pcap of size bytes after its last whole record and
// returns the new size. It reads every record header: for the rare file a
// failed write may have left torn.
func cutTorn(f *os.File, size int64) (int64, error) {
	var h [recordHeaderLen]byte
	bo := binary.ByteOrder(binary.LittleEndian)
	if _, err := f.ReadAt(h[:4], 0); err != nil {
		return 0, err
	}
	if m := binary.BigEndian.Uint32(h[:4]); m == pcapMagicMicro || m == pcapMagicNano {
		bo = binary.BigEndian
	}
	end := int64(fileHeaderLen)
	for end+recordHeaderLen <= size {
		if _, err := f.ReadAt(h[:], end); err != nil {
			return 0, err
		}
		next := end + recordHeaderLen + int64(bo.Uint32(h[8:12]))
		if next > size {
			break
		}
		end = next
	}
	if end == size {
		return size, nil
	}
	return end, f.Truncate(end)
}

// Writer writes frames as a pcap stream (the export subcommand's output).
// The file header is written with the first frame's link type; a frame of
// another link type is refused with [ErrLinkType]. Not safe for concurrent
// use.
type Writer struct {
	w      io.Writer
	link   capture.LinkType
	begun  bool
	buf    []byte
	Frames int // frames written
}

// ErrLinkType is returned by [Writer.WriteFrame] for a frame whose link
// type differs from the stream's: a pcap holds one.
var ErrLinkType = errors.New("spool: frame of another link type than the pcap's")

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame writes f as one record; f.Data is not retained.
func (pw *Writer) WriteFrame(f *capture.Frame) error {
	pw.buf = pw.buf[:0]
	if !pw.begun {
		pw.begun, pw.link = true, f.LinkType
		pw.buf = appendFileHeader(pw.buf, f.LinkType)
	} else if f.LinkType != pw.link {
		return ErrLinkType
	}
	pw.buf = appendRecord(pw.buf, f.Time.UnixNano(), f.Length, f.Data)
	if _, err := pw.w.Write(pw.buf); err != nil {
		return err
	}
	pw.Frames++
	return nil
}

// Begin writes the file header for link if no frame has been written yet,
// so that a call without frames still gives a valid (empty) pcap.
func (pw *Writer) Begin(link capture.LinkType) error {
	if pw.begun {
		return nil
	}
	pw.begun, pw.link = true, link
	_, err := pw.w.Write(appendFileHeader(nil, link))
	return err
}
