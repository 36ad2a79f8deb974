package decode

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/capture"
)

func TestStartsStream(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{sipOptions, true},
		{sipNoLen, true},
		{"INVITE sip:a@b SIP/2.0\r\n", true}, // the start line alone is enough
		{wsUpgrade, true},
		{"INVITE sip:a@b SIP/2.0", false},            // start line not complete in the segment
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false}, // plain HTTP
		{strings.Replace(wsUpgrade, "Sec-WebSocket-Protocol: sip", "Sec-WebSocket-Protocol: chat, superchat", 1), false},
		{strings.Replace(wsUpgrade, "Sec-WebSocket-Protocol: sip", "sec-websocket-protocol: chat, SIP", 1), true},
		{strings.Replace(wsUpgrade, "Upgrade: websocket", "Upgrade: h2c", 1), false},
		{"\x16\x03\x01\x00\xa5", false}, // TLS
		{"", false},
		{"HTTP/1.1 200 OK\r\n", false},
	}
	for _, tt := range tests {
		if got := startsStream([]byte(tt.in)); got != tt.want {
			t.Errorf("startsStream(%.40q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// wsConn drives both directions of one TCP connection on port 8080.
type wsConn struct {
	d          *Decoder
	c          collector
	cseq, sseq uint32
}

func newWSConn() *wsConn { return &wsConn{d: NewDecoder(Config{}), cseq: 1, sseq: 1000} }

func (w *wsConn) client(b []byte) {
	w.d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 8080, w.cseq, 0, b)))), &w.c)
	w.cseq += uint32(len(b))
}

func (w *wsConn) server(b []byte) {
	f := cat(ether(0x0800), ipv4Opts(addrB, addrA, 6, 1, 0x4000, nil, tcpHdr(8080, 40000, w.sseq, 0, b)))
	w.d.Decode(frame(capture.LinkTypeEthernet, f), &w.c)
	w.sseq += uint32(len(b))
}

const wsAccept = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n"

func TestWebSocket(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	t.Run("both directions", func(t *testing.T) {
		w := newWSConn()
		w.client([]byte(wsUpgrade))
		w.server([]byte(wsAccept))
		w.client(wsFrameBytes(true, wsText, []byte(sipOptions), true, key)) // clients mask
		w.server(wsFrameBytes(true, wsText, []byte(sipNoLen), false, key))  // servers do not
		if got := w.c.payloads(); !cmp.Equal(got, []string{sipOptions, sipNoLen}) {
			t.Errorf("payloads %q", got)
		}
		if st := w.d.Stats(); st.WebSocket != 2 || st.TCPDropped != 0 {
			t.Errorf("Stats() %+v, want WebSocket 2, nothing dropped", st)
		}
		if w.c.got[1].Flow.Src.Port() != 8080 {
			t.Errorf("answer flow %v, want from port 8080", w.c.got[1].Flow)
		}
	})
	t.Run("frame split over segments, long length", func(t *testing.T) {
		w := newWSConn()
		w.client([]byte(wsUpgrade))
		big := sipInvite + strings.Repeat("a=x\r\n", 40) // > 125 bytes: 16-bit length
		big = strings.Replace(big, "content-length: 14", "content-length: 214", 1)
		fr := wsFrameBytes(true, wsText, []byte(big), true, key)
		w.client(fr[:3])
		w.client(fr[3:100])
		w.client(fr[100:])
		if got := w.c.payloads(); len(got) != 1 || got[0] != big {
			t.Errorf("payloads %q, want the one message", got)
		}
	})
	t.Run("fragmented with ping and pong between", func(t *testing.T) {
		w := newWSConn()
		w.client(append([]byte(wsUpgrade), wsFrameBytes(false, wsText, []byte(sipInvite[:20]), true, key)...))
		w.client(wsFrameBytes(true, wsPing, []byte("p"), true, key))
		w.client(wsFrameBytes(false, wsContinuation, []byte(sipInvite[20:60]), true, key))
		w.client(wsFrameBytes(true, wsPong, nil, true, key))
		w.client(wsFrameBytes(true, wsContinuation, []byte(sipInvite[60:]), true, key))
		if got := w.c.payloads(); len(got) != 1 || got[0] != sipInvite {
			t.Errorf("payloads %q, want the INVITE", got)
		}
	})
	t.Run("CRLF keepalive message", func(t *testing.T) {
		w := newWSConn()
		w.client([]byte(wsUpgrade))
		w.client(wsFrameBytes(true, wsText, []byte("\r\n\r\n"), true, key))
		if st := w.d.Stats(); len(w.c.got) != 0 || st.TCPKeepalives != 1 {
			t.Errorf("%d datagrams, Stats() %+v; want none and one keepalive", len(w.c.got), st)
		}
	})
	t.Run("refused upgrade", func(t *testing.T) {
		w := newWSConn()
		w.client([]byte(wsUpgrade))
		w.server([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		w.server(wsFrameBytes(true, wsText, []byte(sipNoLen), false, key))
		if len(w.c.got) != 0 || w.d.Stats().TCPDropped != 1 {
			t.Errorf("%d datagrams, Stats() %+v; want none, the server side dropped", len(w.c.got), w.d.Stats())
		}
	})
	t.Run("continuation without a start", func(t *testing.T) {
		w := newWSConn()
		w.client([]byte(wsUpgrade))
		w.client(wsFrameBytes(true, wsContinuation, []byte(sipOptions), true, key))
		if st := w.d.Stats(); len(w.c.got) != 0 || st.TCPDropped != 1 || st.TCPStreams != 1 {
			t.Errorf("%d datagrams, Stats() %+v; want none, client side dropped (server side left)", len(w.c.got), st)
		}
	})
	t.Run("frame over the buffer limit", func(t *testing.T) {
		d := NewDecoder(Config{MaxTCPBuffer: 1024})
		var c collector
		hdr := []byte{0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0} // 64 KiB payload announced
		d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 8080, 1, 0, append([]byte(wsUpgrade), hdr...))))), &c)
		if st := d.Stats(); len(c.got) != 0 || st.TCPDropped != 1 {
			t.Errorf("%d datagrams, Stats() %+v; want none, dropped", len(c.got), st)
		}
	})
	t.Run("on a SIP port", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		stream := append([]byte(wsUpgrade), wsFrameBytes(true, wsText, []byte(sipOptions), true, key)...)
		d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 5060, 1, 0, stream)))), &c)
		if got := c.payloads(); !cmp.Equal(got, []string{sipOptions}) {
			t.Errorf("payloads %q, want the OPTIONS", got)
		}
	})
}

func TestSCTP(t *testing.T) {
	t.Run("several chunks and streams in one packet", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		init := cat([]byte{1, 0}, be16(20), make([]byte, 16)) // an INIT chunk first: skipped
		d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(init,
			sctpChunk(3, 1, 0, 0, []byte(sipOptions)),
			sctpChunk(3, 2, 7, 0, []byte(sipNoLen)),
			sctpChunk(3, 3, 1, 46, []byte("diameter")), // another PPID: not SIP
		)), &c)
		if got := c.payloads(); !cmp.Equal(got, []string{sipOptions, sipNoLen}) {
			t.Errorf("payloads %q", got)
		}
		if st := d.Stats(); st.SCTPMessages != 2 || st.SCTPNonSIP != 1 || st.Malformed != 0 {
			t.Errorf("Stats() %+v", st)
		}
	})
	t.Run("fragment gap drops the message", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(sctpChunk(sctpFlagBegin, 10, 1, 0, []byte(sipInvite[:30])))), &c)
		d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(sctpChunk(sctpFlagEnd, 12, 1, 0, []byte(sipInvite[30:])))), &c)
		d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(sctpChunk(sctpFlagEnd, 13, 1, 0, []byte("x")))), &c) // end without a beginning
		if st := d.Stats(); len(c.got) != 0 || st.SCTPDropped != 2 {
			t.Errorf("%d datagrams, Stats() %+v; want none, 2 dropped", len(c.got), st)
		}
	})
	t.Run("malformed chunk length", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(cat([]byte{0, 3}, be16(2)))), &c)
		d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(cat([]byte{0, 3}, be16(8), make([]byte, 4)))), &c)
		if st := d.Stats(); len(c.got) != 0 || st.Malformed != 2 {
			t.Errorf("%d datagrams, Stats() %+v; want none, 2 malformed", len(c.got), st)
		}
	})
}

// TestWebSocketStreamLimit: with no room for the server side, the request
// side is still followed (the upgrade must not evict its own stream).
func TestWebSocketStreamLimit(t *testing.T) {
	d := NewDecoder(Config{MaxTCPStreams: 1})
	var c collector
	stream := append([]byte(wsUpgrade), wsFrameBytes(true, wsText, []byte(sipOptions), true, [4]byte{9, 8, 7, 6})...)
	d.Decode(frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 8080, 1, 0, stream)))), &c)
	if got := c.payloads(); len(got) != 1 || got[0] != sipOptions || c.got[0].Flow.Dst.Port() != 8080 {
		t.Errorf("datagrams %+v, want the OPTIONS to port 8080", c.got)
	}
}
