package capture

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapgoFile is the File of before the block reader, on gopacket's pcapgo
// (commit bbce509): the reference FuzzReadFile and the format tests check
// File against, and the "pcapgo" side of BenchmarkReadFile.
type pcapgoFile struct {
	count *countingReader
	pcap  *pcapgo.Reader
	ng    *pcapgo.NgReader
	link  LinkType
	name  string
	done  bool

	truncated atomic.Uint64
}

func newPcapgoFile(r io.Reader, name string) (*pcapgoFile, error) {
	f := &pcapgoFile{count: &countingReader{r: r}, name: name}
	br := bufio.NewReaderSize(f.count, 64<<10)
	magic, err := pcapgoPeekMagic(br)
	if err != nil {
		return nil, named(name, err)
	}
	if magic&0xffff == 0x8b1f { // gzip: 1f 8b
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("capture: %s: gzip: %w", name, err)
		}
		br = bufio.NewReaderSize(gz, 64<<10)
		if magic, err = pcapgoPeekMagic(br); err != nil {
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

func pcapgoPeekMagic(br *bufio.Reader) (uint32, error) {
	b, err := br.Peek(4)
	if len(b) < 4 {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, &FormatError{Detail: fmt.Sprintf("only %d bytes", len(b))}
		}
		return 0, err
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil
}

func (f *pcapgoFile) ReadFrame(fr *Frame) error {
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
		return fmt.Errorf("capture: %s: %w", f.name, err)
	}
	fr.Data = data
	fr.Time = ci.Timestamp
	fr.Length = ci.Length
	fr.LinkType = link
	fr.Interface = ci.InterfaceIndex
	return nil
}

func (f *pcapgoFile) Stats() Stats { return Stats{} }

func (f *pcapgoFile) Close() error { return nil }

func (f *pcapgoFile) Truncated() uint64 { return f.truncated.Load() }

var _ Source = (*pcapgoFile)(nil)
