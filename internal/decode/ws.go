package decode

import (
	"bytes"
	"encoding/binary"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

// maxHTTPHeader bounds the HTTP upgrade request or response of a WebSocket
// handshake.
const maxHTTPHeader = 16 << 10

// startsStream reports whether the first bytes seen of a TCP stream on a
// port that is not a SIP port begin a SIP message (a complete Request-Line
// or Status-Line) or a WebSocket upgrade for SIP. It looks at no more than
// the first line and, for an upgrade, the header block, so a stream of
// anything else costs a few comparisons.
func startsStream(b []byte) bool {
	if len(b) == 0 || b[0] < 'A' || b[0] > 'Z' {
		return false
	}
	line := b[:min(len(b), maxStartLine)]
	eol := bytes.IndexByte(line, '\n')
	if eol < 0 {
		return false
	}
	return isStartLine(bytes.TrimSuffix(line[:eol], []byte("\r"))) || wsUpgradeRequest(b)
}

// wsUpgradeRequest reports whether b starts with an HTTP GET that upgrades
// to WebSocket with the "sip" subprotocol (RFC 7118 section 4.1): an
// Upgrade: websocket header and a Sec-WebSocket-Protocol list naming sip.
func wsUpgradeRequest(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("GET ")) {
		return false
	}
	hdr := b[:min(len(b), maxHTTPHeader)]
	if end := bytes.Index(hdr, []byte("\r\n\r\n")); end >= 0 {
		hdr = hdr[:end+2]
	}
	var upgrade, sip bool
	for len(hdr) > 0 {
		eol := bytes.IndexByte(hdr, '\n')
		line := hdr
		if eol >= 0 {
			line, hdr = hdr[:eol], hdr[eol+1:]
		} else {
			hdr = nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		switch {
		case bytes.EqualFold(name, []byte("upgrade")):
			upgrade = hasToken(value, "websocket")
		case bytes.EqualFold(name, []byte("sec-websocket-protocol")):
			sip = hasToken(value, "sip")
		}
	}
	return upgrade && sip
}

// hasToken reports whether the comma-separated list v contains tok,
// case-insensitively.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(item), []byte(tok)) {
			return true
		}
	}
	return false
}

// expectWSResponse starts following the server side of a WebSocket
// connection whose upgrade request was just seen, so the 101 response and
// the frames after it are decoded whatever the port.
func (d *Decoder) expectWSResponse(rev Flow, anyPort bool) {
	if r := d.streams[rev]; r != nil {
		if r.mode == modeUnknown && len(r.buf) == 0 {
			r.mode = modeWSHandshake
		}
		return
	}
	if len(d.streams) >= d.cfg.MaxTCPStreams {
		// Making room would evict a stream, perhaps the request's own:
		// under that pressure the server side goes unfollowed.
		return
	}
	r := d.newStream(rev)
	d.setAnyPort(r, anyPort)
	r.mode = modeWSHandshake
	r.last = d.dg.Time
}

// frameWS handles in-order bytes of a WebSocket stream: the HTTP handshake
// header block, then frames. The bytes are always copied, since frames are
// unmasked in place.
func (d *Decoder) frameWS(s *tcpStream, data []byte, h Handler) {
	if len(s.buf)+len(data) > d.cfg.MaxTCPBuffer {
		d.killStream(s)
		return
	}
	s.buf = append(s.buf, data...)
	b := s.buf
	if s.mode == modeWSHandshake {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			if len(b) > maxHTTPHeader {
				d.killStream(s)
			}
			return
		}
		if !bytes.HasPrefix(b, []byte("GET ")) && !bytes.HasPrefix(b, []byte("HTTP/1.1 101")) {
			// The server refused the upgrade (or this is not HTTP at all).
			d.killStream(s)
			return
		}
		b = b[end+4:]
		s.mode = modeWS
	}
	for {
		n, ok := d.wsFrame(s, b, h)
		if !ok {
			d.killStream(s)
			return
		}
		if n == 0 {
			break
		}
		b = b[n:]
	}
	k := copy(s.buf, b)
	s.buf = s.buf[:k]
}

// wsFrame decodes the WebSocket frame at the start of b (RFC 6455
// section 5.2), unmasking its payload in place:
//
//	|F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//	|I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//	|N|V|V|V|       |S|             |   (if payload len==126/127)   |
//	|     Extended payload length continued, if payload len == 127  |
//	|                               |Masking-key, if MASK set to 1  |
//	| Masking-key (continued)       |          Payload Data         |
//
// A complete text or binary message (one frame with FIN, or fragments
// joined up to the continuation frame with FIN) is delivered as one
// datagram. Control frames (close, ping, pong) are skipped; they may come
// between fragments. It returns the frame length, 0 when b holds only part
// of a frame, and ok false for a frame that cannot be WebSocket.
func (d *Decoder) wsFrame(s *tcpStream, b []byte, h Handler) (n int, ok bool) {
	if len(b) < 2 {
		return 0, true
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	masked := b[1]&0x80 != 0
	plen := uint64(b[1] & 0x7f)
	n = 2
	switch plen {
	case 126:
		if len(b) < 4 {
			return 0, true
		}
		plen, n = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, true
		}
		plen, n = binary.BigEndian.Uint64(b[2:]), 10
	}
	if b[0]&0x70 != 0 || plen > uint64(d.cfg.MaxTCPBuffer) {
		return 0, false // extensions (compression) are not negotiated for SIP; too large
	}
	var key []byte
	if masked {
		if len(b) < n+4 {
			return 0, true
		}
		key, n = b[n:n+4], n+4
	}
	if uint64(len(b)-n) < plen {
		return 0, true
	}
	payload := b[n : n+int(plen)]
	n += int(plen)
	for i := range payload {
		if masked {
			payload[i] ^= key[i&3]
		}
	}
	switch op {
	case wsText, wsBinary:
		if s.wsFrag {
			d.stats.TCPDropped++ // a new message before the last one ended
		}
		s.msg = s.msg[:0]
		s.wsFrag = !fin
		if fin {
			d.wsDeliver(s, payload, h)
		} else {
			s.msg = append(s.msg, payload...)
		}
	case wsContinuation:
		if !s.wsFrag || len(s.msg)+len(payload) > d.cfg.MaxTCPBuffer {
			return 0, false
		}
		s.msg = append(s.msg, payload...)
		if fin {
			s.wsFrag = false
			d.wsDeliver(s, s.msg, h)
			s.msg = s.msg[:0]
		}
	case wsClose, wsPing, wsPong:
	default:
		return 0, false
	}
	return n, true
}

// wsDeliver hands one WebSocket message to h.
func (d *Decoder) wsDeliver(s *tcpStream, msg []byte, h Handler) {
	if k := skipKeepalive(msg); len(k) != len(msg) {
		d.stats.TCPKeepalives++
		msg = k
	}
	if len(msg) == 0 {
		return
	}
	d.dg.Flow = s.flow
	d.dg.Payload = msg
	d.stats.WebSocket++
	held := d.dg.Held
	d.takeHeld(s)
	d.deliver(h)
	d.dg.Held = held
}
