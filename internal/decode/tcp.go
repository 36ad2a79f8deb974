package decode

import (
	"encoding/binary"
	"github.com/voipsensor/voipsensor/internal/capture"
	"net/netip"
	"time"
)

// TCP flags (RFC 9293 section 3.1).
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
)

// maxOutOfOrder bounds the segments buffered ahead of a gap per stream
// direction; MaxTCPBuffer bounds their bytes.
const maxOutOfOrder = 256

// maxFreeStreams bounds the recycled stream states kept for reuse.
const maxFreeStreams = 64

// Stream framing modes.
const (
	modeUnknown     uint8 = iota // no in-order byte seen yet
	modeSIP                      // SIP messages framed by Content-Length (RFC 3261 section 18.3)
	modeWSHandshake              // an HTTP upgrade header block, then WebSocket frames
	modeWS                       // WebSocket frames (RFC 6455), one SIP message each (RFC 7118)
)

// tcpStream is one direction of a TCP connection carrying SIP.
type tcpStream struct {
	flow     Flow
	mode     uint8
	anyPort  bool   // on no SIP port: followed because it started like SIP; dropped at garbage
	dead     bool   // to be dropped once the current segment is done
	msg      []byte // WebSocket: fragments of the message being received
	wsFrag   bool   // WebSocket: msg holds a message whose last fragment is due
	next     uint32 // next expected sequence number
	synced   bool   // next is known
	last     time.Time
	gapSince time.Time // when the oldest pending gap appeared
	buf      []byte    // in-order bytes not yet framed into a message
	ooo      []segment // segments ahead of next, sorted by sequence
	oooBytes int
	// held are copies of the frames whose bytes are in buf or ooo, not
	// yet delivered in a message (Config.KeepFragments): the message that
	// completes names them in Datagram.Held, so that a recorder saves
	// every segment of it. Their Data buffers are reused.
	held     []capture.Frame
	heldLast uint64 // Stats.Frames of the frame held last, so that none is held twice
}

type segment struct {
	seq  uint32
	data []byte
}

// pending reports whether the stream holds bytes that were never delivered.
func (s *tcpStream) pending() bool { return len(s.buf) > 0 || len(s.ooo) > 0 }

// seqAfter is the signed distance from b to a in sequence space
// (RFC 1982-style serial arithmetic).
func seqAfter(a, b uint32) int32 { return int32(a - b) }

// tcp decodes a TCP header (RFC 9293 section 3.1):
//
//	|          Source Port          |       Destination Port        |
//	|                        Sequence Number                        |
//	|                    Acknowledgment Number                      |
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|           Checksum            |         Urgent Pointer        |
//	|                    Options                    |    Padding    |
func (d *Decoder) tcp(src, dst netip.Addr, p []byte, h Handler) {
	if len(p) < 20 {
		d.short()
		return
	}
	off := int(p[12]>>4) * 4
	if off < 20 {
		d.stats.Malformed++
		return
	}
	if len(p) < off {
		d.short()
		return
	}
	sport := binary.BigEndian.Uint16(p[0:])
	dport := binary.BigEndian.Uint16(p[2:])
	flow := Flow{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, dport), Proto: ProtoTCP}
	anyPort := !d.cfg.SIPPorts.Has(sport) && !d.cfg.SIPPorts.Has(dport)
	if anyPort && (d.nAnyPort == 0 || d.streams[flow] == nil) {
		// A stream on another port is followed from a segment that starts
		// like SIP or a WebSocket upgrade; nothing is kept for the rest.
		if data := p[off:]; len(data) == 0 || p[13]&tcpRST != 0 || !startsStream(data) {
			d.stats.TCPNonSIP++
			return
		}
	}
	d.stats.TCPSegments++
	d.segment(flow, anyPort, binary.BigEndian.Uint32(p[4:]), p[13], p[off:], h)
}

// segment feeds one TCP segment to its stream direction.
func (d *Decoder) segment(flow Flow, anyPort bool, seq uint32, flags byte, data []byte, h Handler) {
	now := d.dg.Time
	s := d.streams[flow]
	if flags&tcpRST != 0 {
		if s != nil {
			d.dropStream(s)
		}
		return
	}
	if s == nil {
		if len(data) == 0 && flags&tcpSYN == 0 {
			return // a bare ACK or FIN of a stream we do not track
		}
		s = d.newStream(flow)
		d.setAnyPort(s, anyPort)
	}
	s.last = now
	if flags&tcpSYN != 0 {
		if s.pending() {
			d.stats.TCPDropped++
		}
		d.resetStream(s)
		seq++ // the SYN occupies one sequence number
		s.next = seq
		s.synced = true
	}
	if len(data) > 0 {
		if !s.synced { // picked up mid-stream: trust the first segment seen
			s.next = seq
			s.synced = true
		}
		d.streamData(s, seq, data, h)
	}
	if len(s.ooo) > 0 && now.Sub(s.gapSince) >= d.cfg.TCPGapTimeout {
		d.skipGap(s, h)
	}
	if s.dead || (flags&tcpFIN != 0 && len(s.ooo) == 0) {
		d.dropStream(s)
	}
}

func (d *Decoder) newStream(flow Flow) *tcpStream {
	if len(d.streams) >= d.cfg.MaxTCPStreams {
		var old *tcpStream
		for _, s := range d.streams {
			if old == nil || s.last.Before(old.last) {
				old = s
			}
		}
		d.dropStream(old)
	}
	var s *tcpStream
	if n := len(d.free); n > 0 {
		s = d.free[n-1]
		d.free = d.free[:n-1]
	} else {
		s = new(tcpStream)
	}
	s.flow = flow
	d.streams[flow] = s
	return s
}

// killStream counts s as dropped once and marks it to be removed when the
// current segment is done; nothing more is framed from it.
func (d *Decoder) killStream(s *tcpStream) {
	d.stats.TCPDropped++
	s.dead = true
	s.buf = s.buf[:0]
	s.msg = s.msg[:0]
	for i := range s.ooo {
		s.ooo[i] = segment{}
	}
	s.ooo = s.ooo[:0]
	s.oooBytes = 0
}

// setAnyPort marks s as followed on no SIP port, keeping the count that
// lets segments of other ports skip the stream lookup while there is none.
func (d *Decoder) setAnyPort(s *tcpStream, v bool) {
	if s.anyPort != v {
		if v {
			d.nAnyPort++
		} else {
			d.nAnyPort--
		}
		s.anyPort = v
	}
}

// resetStream forgets the stream's buffered bytes and sequence state.
func (s *tcpStream) reset() {
	s.buf = s.buf[:0]
	s.msg = s.msg[:0]
	s.mode = modeUnknown
	s.dead = false
	s.wsFrag = false
	for i := range s.ooo {
		s.ooo[i] = segment{}
	}
	s.ooo = s.ooo[:0]
	s.oooBytes = 0
	s.synced = false
	s.gapSince = time.Time{}
	s.held = s.held[:0]
}

func (d *Decoder) resetStream(s *tcpStream) { s.reset() }

// dropStream removes s, counting undelivered bytes as dropped.
func (d *Decoder) dropStream(s *tcpStream) {
	if s.pending() {
		d.stats.TCPDropped++
	}
	delete(d.streams, s.flow)
	s.reset()
	d.setAnyPort(s, false)
	if len(d.free) < maxFreeStreams && cap(s.buf) <= 64<<10 && cap(s.msg) <= 64<<10 {
		d.free = append(d.free, s)
	}
}

func (d *Decoder) expireStreams(now time.Time, h Handler) {
	for _, s := range d.streams {
		if now.Sub(s.last) > d.cfg.TCPTimeout {
			d.dropStream(s)
		} else if len(s.ooo) > 0 && now.Sub(s.gapSince) >= d.cfg.TCPGapTimeout && h != nil {
			d.skipGap(s, h)
		}
	}
}

// streamData handles seq/data of stream s: in-order bytes are framed,
// already seen bytes are dropped, bytes beyond a gap are buffered.
func (d *Decoder) streamData(s *tcpStream, seq uint32, data []byte, h Handler) {
	diff := seqAfter(seq, s.next)
	if diff < 0 { // retransmission, possibly with new bytes at the end
		if int64(-diff) >= int64(len(data)) {
			d.stats.TCPRetransmits++
			return
		}
		data = data[-diff:]
		seq = s.next
		diff = 0
	}
	if diff > 0 {
		if s.oooBytes+len(data) > d.cfg.MaxTCPBuffer || len(s.ooo) >= maxOutOfOrder {
			// No room to wait for the missing bytes: skip forward now.
			d.skipGap(s, h)
			if seqAfter(seq, s.next) > 0 {
				d.stats.TCPGaps++
				d.discardBuf(s)
				s.next = seq
			}
			d.streamData(s, seq, data, h)
			return
		}
		d.bufferSegment(s, seq, data)
		return
	}
	d.frameBytes(s, data, h)
	s.next += uint32(len(data))
	d.drain(s, h)
}

// bufferSegment copies a segment that arrived ahead of a gap.
func (d *Decoder) bufferSegment(s *tcpStream, seq uint32, data []byte) {
	i := 0
	for i < len(s.ooo) && seqAfter(s.ooo[i].seq, seq) < 0 {
		i++
	}
	if i < len(s.ooo) && s.ooo[i].seq == seq && len(s.ooo[i].data) >= len(data) {
		d.stats.TCPRetransmits++
		return
	}
	d.stats.TCPOutOfOrder++
	if len(s.ooo) == 0 {
		s.gapSince = d.dg.Time
	}
	s.ooo = append(s.ooo, segment{})
	copy(s.ooo[i+1:], s.ooo[i:])
	s.ooo[i] = segment{seq: seq, data: append([]byte(nil), data...)}
	s.oooBytes += len(data)
	d.holdSegment(s)
}

// holdSegment keeps a copy of the frame being decoded in s.held: some of
// its bytes wait in the stream for a later segment.
func (d *Decoder) holdSegment(s *tcpStream) {
	if !d.cfg.KeepFragments || d.cur == nil {
		return
	}
	n := len(s.held)
	if n >= maxHeldFrames || (n > 0 && s.heldLast == d.stats.Frames) {
		return // full, or this frame is held already
	}
	s.heldLast = d.stats.Frames
	if n < cap(s.held) {
		s.held = s.held[:n+1]
	} else {
		s.held = append(s.held, capture.Frame{})
	}
	h := &s.held[n]
	data := append(h.Data[:0], d.cur.Data...)
	*h = *d.cur
	h.Data = data
}

// takeHeld names s's held frames in the datagram being delivered (after
// any an IP reassembly named) and forgets them: they are the message's.
func (d *Decoder) takeHeld(s *tcpStream) {
	held := s.held
	if n := len(held); n > 0 && s.heldLast == d.stats.Frames {
		held = held[:n-1] // the frame being decoded: a recorder saves it anyway
	}
	if len(held) == 0 {
		s.held = s.held[:0]
		return
	}
	if d.dg.Held == nil {
		d.dg.Held = held
	} else {
		d.dg.Held = append(d.dg.Held[:len(d.dg.Held):len(d.dg.Held)], held...)
	}
	s.held = s.held[:0] // the slots are reused only by a later frame, after this delivery
}

// drain frames buffered segments that the stream has caught up with.
func (d *Decoder) drain(s *tcpStream, h Handler) {
	for len(s.ooo) > 0 {
		seg := s.ooo[0]
		diff := seqAfter(seg.seq, s.next)
		if diff > 0 {
			break
		}
		copy(s.ooo, s.ooo[1:])
		s.ooo[len(s.ooo)-1] = segment{}
		s.ooo = s.ooo[:len(s.ooo)-1]
		s.oooBytes -= len(seg.data)
		if int64(-diff) < int64(len(seg.data)) {
			data := seg.data[-diff:]
			d.frameBytes(s, data, h)
			s.next += uint32(len(data))
		}
	}
	if len(s.ooo) > 0 && s.gapSince.IsZero() {
		s.gapSince = d.dg.Time
	} else if len(s.ooo) == 0 {
		s.gapSince = time.Time{}
	}
}

// skipGap gives up on the bytes missing before the first buffered segment:
// the partial message is discarded and framing resumes at that segment.
func (d *Decoder) skipGap(s *tcpStream, h Handler) {
	if len(s.ooo) == 0 {
		return
	}
	d.stats.TCPGaps++
	d.discardBuf(s)
	s.next = s.ooo[0].seq
	s.gapSince = time.Time{}
	d.drain(s, h)
	if len(s.ooo) > 0 {
		s.gapSince = d.dg.Time
	}
}

// discardBuf drops a partially received message.
func (d *Decoder) discardBuf(s *tcpStream) {
	if len(s.buf) > 0 {
		d.stats.TCPDropped++
		s.buf = s.buf[:0]
	}
	if len(s.ooo) == 0 {
		s.held = s.held[:0]
	}
}

// frameBytes appends in-order stream bytes and delivers every complete SIP
// message. When nothing is buffered, messages are delivered straight from
// data without a copy.
func (d *Decoder) frameBytes(s *tcpStream, data []byte, h Handler) {
	if s.dead {
		return
	}
	if s.mode == modeUnknown && len(s.buf) == 0 {
		s.mode = modeSIP
		if wsUpgradeRequest(data) {
			s.mode = modeWSHandshake
			d.expectWSResponse(s.flow.Reverse(), s.anyPort)
		}
	}
	if s.mode != modeSIP {
		d.frameWS(s, data, h)
		if len(s.buf) > 0 || len(s.msg) > 0 {
			d.holdSegment(s)
		}
		return
	}
	if len(s.buf) == 0 {
		rest := d.frameMessages(s, data, h)
		if len(rest) > 0 {
			s.buf = append(s.buf, rest...)
			d.holdSegment(s)
		}
		return
	}
	s.buf = append(s.buf, data...)
	rest := d.frameMessages(s, s.buf, h)
	n := copy(s.buf, rest)
	s.buf = s.buf[:n]
	if n > 0 {
		d.holdSegment(s)
	}
}

// frameMessages delivers the complete messages at the start of b and
// returns the incomplete tail, or nil after garbage (the stream resyncs at
// the next segment that starts a message).
func (d *Decoder) frameMessages(s *tcpStream, b []byte, h Handler) []byte {
	for {
		if k := skipKeepalive(b); len(k) != len(b) {
			d.stats.TCPKeepalives++
			b = k
		}
		if len(b) == 0 {
			return nil
		}
		n, err := frameSIP(b, d.cfg.MaxTCPBuffer)
		if err != nil {
			if s.anyPort {
				d.stats.TCPGaveUp++
				d.killStream(s)
			} else {
				d.stats.TCPDropped++
			}
			return nil
		}
		if n == 0 {
			return b
		}
		d.dg.Flow = s.flow
		d.dg.Payload = b[:n]
		d.stats.TCPMessages++
		held := d.dg.Held
		d.takeHeld(s)
		d.deliver(h)
		d.dg.Held = held // the next message of this frame starts in it
		b = b[n:]
	}
}
