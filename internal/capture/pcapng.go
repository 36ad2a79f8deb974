//lint:file-ignore ST1005 the error texts are pcapgo's, so that a damaged file is reported as it was before this reader

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	ngSHB = 0x0a0d0d0a // Section Header Block (the same in both byte orders)
	ngIDB = 1          // Interface Description Block
	ngPB  = 2          // Packet Block (obsolete)
	ngSPB = 3          // Simple Packet Block
	ngNRB = 4          // Name Resolution Block
	ngISB = 5          // Interface Statistics Block
	ngEPB = 6          // Enhanced Packet Block

	ngByteOrderMagic = 0x1a2b3c4d

	ngOptEnd      = 0  // opt_endofopt
	ngOptTSResol  = 9  // if_tsresol
	ngOptTSOffset = 14 // if_tsoffset
)

// Errors of a pcapng file, with pcapgo's texts, so that a damaged file is
// reported as it was before this reader.
var (
	errNgVersion      = errors.New("Unknown pcapng Version in Section Header")
	errNgByteOrder    = errors.New("Wrong byte order value in Section Header")
	errNgOptionEnd    = errors.New("End of Options must be zero length")
	errNgNoInterface  = errors.New("At least one Interface is needed for a packet")
	errNgBlockOverrun = errors.New("capture: pcapng field beyond its block") // internal: parse the block again from the stream
)

// ngInterface is what a packet needs of its Interface Description Block:
// the link type, and the timestamp's resolution and offset.
type ngInterface struct {
	link    LinkType
	snaplen uint32
	// A timestamp t is t/mask + offset seconds and t%mask·up/down ns.
	mask, up, down, offset uint64
}

// ngCursor reads the body of one block, pcapgo's way: each read and
// discard takes the bytes it asks for, whatever the block's length says,
// and length counts down what the block has left (wrapping, as pcapgo's
// uint32 does, when a field claims more than the block holds).
//
// Normally the whole block is in the reader's buffer and the cursor reads
// it in place (body), so a packet's data is delivered without a copy. A
// read past the block's end (a damaged block) makes the block be parsed
// again in stream mode, where reads consume the file itself, as pcapgo
// does; a block that is not wholly in the file is parsed so too, which
// ends in the same error as pcapgo's.
type ngCursor struct {
	in     *blockReader
	body   []byte // in place: the block after its header
	off    int    // in place: bytes of body consumed
	stream bool   // read from in, not body
	be     bool   // big-endian section
	left   uint32 // pcapgo's currentBlock.length: what the block has left
	spill  []byte // stream mode: a copy of the packet's data
}

// read returns the next n bytes, or pcapgo's readBytes error (io.EOF
// becomes io.ErrUnexpectedEOF) with how many bytes were there.
func (c *ngCursor) read(n int) ([]byte, int, error) {
	if !c.stream {
		if n > len(c.body)-c.off {
			return nil, 0, errNgBlockOverrun
		}
		p := c.body[c.off : c.off+n : c.off+n]
		c.off += n
		return p, n, nil
	}
	p, k, err := c.in.next(n)
	if p == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, k, err
	}
	return p, n, nil
}

// data returns the packet's n bytes, valid until the reader's next read.
func (c *ngCursor) data(n int) ([]byte, error) {
	p, _, err := c.read(n)
	if err != nil || !c.stream {
		return p, err
	}
	c.spill = append(c.spill[:0], p...) // later reads of the stream may move p
	return c.spill, nil
}

// discard skips n bytes, with pcapgo's errors.
func (c *ngCursor) discard(n int) error {
	if !c.stream {
		if n > len(c.body)-c.off {
			return errNgBlockOverrun
		}
		c.off += n
	} else if _, err := c.in.skip(n); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return fmt.Errorf("could not discard %d bytes: %v", n, err)
	}
	c.left -= uint32(n)
	return nil
}

func (c *ngCursor) u16(b []byte) uint16 {
	if c.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (c *ngCursor) u32(b []byte) uint32 {
	if c.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (c *ngCursor) u64(b []byte) uint64 {
	if c.be {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// ngOption is one option of a block: its code, length and first 8 bytes
// (all any option this reader uses needs).
type ngOption struct {
	code uint16
	len  int
	head [8]byte
}

// option reads the next option (pcapgo's readOption). Only the trailing
// block length left means the end of the options.
func (c *ngCursor) option() (ngOption, error) {
	var o ngOption
	if c.left == 4 {
		return o, nil // ngOptEnd
	}
	h, _, err := c.read(4)
	if err != nil {
		return o, err
	}
	c.left -= 4
	o.code = c.u16(h[0:2])
	length := c.u16(h[2:4])
	if o.code == ngOptEnd {
		if length != 0 {
			return o, errNgOptionEnd
		}
		return o, nil
	}
	if length == 0 {
		return o, nil
	}
	v, _, err := c.read(int(length))
	if err != nil {
		return o, err
	}
	o.len = int(length)
	copy(o.head[:], v) // before the padding is skipped, which may move v
	if pad := length % 4; pad > 0 {
		if err := c.discard(int(4 - pad)); err != nil {
			return o, err
		}
	}
	c.left -= uint32(length)
	return o, nil
}

// skipOptions reads options up to opt_endofopt (or the block's end),
// for their errors only.
func (c *ngCursor) skipOptions() error {
	for {
		o, err := c.option()
		if err != nil || o.code == ngOptEnd {
			return err
		}
	}
}

// ngBlockHeader reads a block's type and total length (pcapgo's readBlock):
// io.EOF only when the file ends cleanly before a block. A Section Header
// Block sets the section's byte order. left is the length after the header.
func (f *File) ngBlockHeader() (typ, left uint32, err error) {
	h, k, err := f.in.next(8)
	if h == nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if k == 0 {
				return 0, 0, io.EOF // the start of a block is the only place the file may end
			}
			return 0, 0, io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	c := ngCursor{be: f.be}
	typ = c.u32(h[0:4])
	total := h[4:8:8]
	if typ != ngSHB {
		return typ, c.u32(total) - 8, nil
	}
	var tot [4]byte
	copy(tot[:], total) // before the next read, which may move h
	bom, _, err := f.in.next(4)
	if bom == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	switch {
	case binary.BigEndian.Uint32(bom) == ngByteOrderMagic:
		f.be = true
	case binary.LittleEndian.Uint32(bom) == ngByteOrderMagic:
		f.be = false
	default:
		return 0, 0, errNgByteOrder
	}
	c.be = f.be
	return typ, c.u32(tot[:]) - 12, nil
}

// ngOpen reads the Section Header Block that starts a pcapng file.
func (f *File) ngOpen() error {
	typ, left, err := f.ngBlockHeader()
	if err != nil {
		return err
	}
	if typ != ngSHB { // cannot be: the magic is the block type
		return fmt.Errorf("Unknown magic %x", typ)
	}
	_, err = f.ngBlock(typ, left, nil)
	return err
}

// ngReadFrame fills fr with the next packet of a pcapng file, reading the
// blocks before it (pcapgo's ZeroCopyReadPacketData).
func (f *File) ngReadFrame(fr *Frame) error {
	for {
		typ, left, err := f.ngBlockHeader()
		if err != nil {
			return err
		}
		pkt, err := f.ngBlock(typ, left, fr)
		if err != nil || pkt {
			return err
		}
	}
}

// ngBlock parses the block whose header has been read: in place when the
// reader holds all of it, else (or when a field overruns it) from the
// stream. It reports whether the block was a packet, then in fr.
func (f *File) ngBlock(typ, left uint32, fr *Frame) (bool, error) {
	c := ngCursor{in: f.in, be: f.be, left: left, spill: f.spill}
	if left <= maxRecordLen {
		if body, err := f.in.peek(int(left)); err == nil {
			c.body = body[:left:left]
		} else {
			c.stream = true
		}
	} else {
		c.stream = true
	}
	pkt, err := f.ngParse(&c, typ, fr)
	if err == errNgBlockOverrun { // a damaged block: what pcapgo does with it
		c = ngCursor{in: f.in, be: f.be, left: left, stream: true, spill: f.spill}
		pkt, err = f.ngParse(&c, typ, fr)
	}
	if !c.stream {
		f.in.r += c.off
	}
	f.spill = c.spill
	return pkt, err
}

// ngParse parses one block's body with c, in pcapgo's order and with its
// checks and errors.
func (f *File) ngParse(c *ngCursor, typ uint32, fr *Frame) (bool, error) {
	var (
		iface          int
		caplen, length int
		ts             time.Time
	)
	switch typ {
	case ngEPB, ngPB:
		h, _, err := c.read(20)
		if err != nil {
			return false, err
		}
		c.left -= 20
		if typ == ngEPB {
			iface = int(c.u32(h[0:4]))
		} else {
			iface = int(c.u16(h[0:2]))
		}
		if iface >= len(f.ifaces) {
			return false, fmt.Errorf("Interface id %d not present in section (have only %d interfaces)", iface, len(f.ifaces))
		}
		ts = f.ifaces[iface].time(uint64(c.u32(h[4:8]))<<32 | uint64(c.u32(h[8:12])))
		caplen = int(c.u32(h[12:16]))
		length = int(c.u32(h[16:20]))
	case ngSPB:
		h, _, err := c.read(4)
		if err != nil {
			return false, err
		}
		c.left -= 4
		length = int(c.u32(h))
		caplen = length
		if len(f.ifaces) == 0 {
			return false, errNgNoInterface
		}
		if snap := f.ifaces[0].snaplen; snap != 0 && uint32(caplen) > snap {
			caplen = int(snap)
		}
	case ngIDB:
		return false, f.ngInterface(c)
	case ngISB:
		return false, f.ngStatistics(c)
	case ngSHB:
		return false, f.ngSection(c)
	case ngNRB:
		return false, f.ngNames(c)
	default:
		return false, c.discard(int(c.left))
	}

	data, err := c.data(caplen)
	if err != nil {
		return false, err
	}
	c.left -= uint32(caplen)
	if pad := (4 - caplen&3) & 3; pad > 0 {
		if err := c.discard(pad); err != nil {
			return false, err
		}
	}
	if typ == ngEPB {
		if err := c.skipOptions(); err != nil {
			return false, err
		}
	}
	if err := c.discard(int(c.left)); err != nil {
		return false, err
	}
	fr.Data = data
	fr.Time = ts
	fr.Length = length
	fr.LinkType = f.ifaces[iface].link
	fr.Interface = iface
	return true, nil
}

// time converts a packet's timestamp as pcapgo does. Microseconds and
// nanoseconds, nearly every file's, divide by constants (a multiplication)
// rather than by mask (a division instruction per packet and field).
func (ifc *ngInterface) time(t uint64) time.Time {
	var sec, ns uint64
	switch ifc.mask {
	case 1e6:
		sec, ns = t/1e6, t%1e6*1e3
	case 1e9:
		sec, ns = t/1e9, t%1e9
	default:
		sec, ns = t/ifc.mask, t%ifc.mask*ifc.up/ifc.down
	}
	return time.Unix(int64(sec+ifc.offset), int64(ns)).UTC()
}

// ngSection reads a Section Header Block's body: a new section, whose
// interfaces are described anew.
func (f *File) ngSection(c *ngCursor) error {
	f.ifaces = f.ifaces[:0]
	h, _, err := c.read(12)
	if err != nil {
		return err
	}
	c.left -= 12
	if c.u16(h[0:2]) != 1 || c.u16(h[2:4]) != 0 {
		return errNgVersion
	}
	if err := c.skipOptions(); err != nil {
		return err
	}
	return c.discard(int(c.left))
}

// ngInterface reads an Interface Description Block: the link type, the
// snapshot length and the timestamps' resolution and offset.
func (f *File) ngInterface(c *ngCursor) error {
	h, _, err := c.read(8)
	if err != nil {
		return err
	}
	c.left -= 8
	ifc := ngInterface{link: LinkType(c.u16(h[0:2])), snaplen: c.u32(h[4:8])}
	var resol byte
	for {
		o, err := c.option()
		if err != nil {
			return err
		}
		if o.code == ngOptEnd {
			break
		}
		switch {
		case o.code == ngOptTSResol && o.len >= 1:
			resol = o.head[0]
		case o.code == ngOptTSOffset && o.len >= 8:
			ifc.offset = c.u64(o.head[:])
		}
	}
	if err := c.discard(int(c.left)); err != nil {
		return err
	}
	if resol == 0 {
		resol = 6 // microseconds
	}
	exp := resol & 0x7f
	if resol&0x80 != 0 {
		if exp > 63 {
			return fmt.Errorf("Timestamp resolution 2^-%d is too high", exp)
		}
		ifc.mask = 1 << exp
	} else {
		if exp > 63 {
			return fmt.Errorf("Timestamp resolution 10^-%d is too high", exp)
		}
		ifc.mask = 1
		for range exp {
			ifc.mask *= 10
		}
	}
	ifc.up, ifc.down = 1, 1
	if ifc.mask < 1e9 {
		ifc.up = 1e9 / ifc.mask
	} else {
		ifc.down = ifc.mask / 1e9
	}
	f.ifaces = append(f.ifaces, ifc)
	return nil
}

// ngStatistics reads an Interface Statistics Block, for its errors only.
func (f *File) ngStatistics(c *ngCursor) error {
	h, _, err := c.read(12)
	if err != nil {
		return err
	}
	c.left -= 12
	if id := int(c.u32(h[0:4])); id >= len(f.ifaces) {
		return fmt.Errorf("Interface id %d not present in section (have only %d interfaces)", id, len(f.ifaces))
	}
	if err := c.skipOptions(); err != nil {
		return err
	}
	return c.discard(int(c.left))
}

// ngNames reads a Name Resolution Block, for its errors only, record by
// record as pcapgo does (its records are not used).
func (f *File) ngNames(c *ngCursor) error {
	for c.left > 0 {
		h, _, err := c.read(4)
		if err != nil {
			return ngWrap("could not read NameRecord Header block length: %v", err)
		}
		c.left -= 4
		typ, rlen := c.u16(h[0:2]), c.u16(h[2:4])
		length := min(int(rlen), int(c.left))
		pad := (4 - length%4) % 4
		addr, kind, what := 0, "", ""
		switch typ {
		case 0: // end of records
			return c.discard(int(c.left))
		case 1:
			addr, kind, what = 4, "IPv4", "IP"
		case 2:
			addr, kind, what = 16, "IPv6", "IP"
		case 3:
			addr, kind, what = 6, "EUI-48", "EUI"
		case 4:
			addr, kind, what = 8, "EUI-64", "EUI"
		}
		if length < addr {
			return fmt.Errorf("name record of type %d is too short for its address", typ)
		}
		if addr == 0 {
			if err := c.discard(length + pad); err != nil {
				return ngWrap("could not discard unknown name record: %v", err)
			}
			continue
		}
		if _, _, err := c.read(addr); err != nil {
			return ngWrap("could not read "+kind+" address: could not read "+what+" address: %v", err)
		}
		c.left -= uint32(length)
		if _, _, err := c.read(length - addr); err != nil {
			return ngWrap("could not read name: %v", err)
		}
		if err := c.discard(pad); err != nil {
			return err
		}
	}
	return c.discard(int(c.left))
}

// ngWrap is pcapgo's wrapping of a read error, which hides what it wraps;
// a read past an in-place block stays itself, to parse the block again.
func ngWrap(format string, err error) error {
	if err == errNgBlockOverrun {
		return err
	}
	return fmt.Errorf(format, err)
}
