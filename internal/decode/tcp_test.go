package decode

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/voipsensor/voipsensor/internal/capture"
)

const (
	sipOptions = "OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
	sipInvite  = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK2\r\nContent-Type: application/sdp\r\ncontent-length: 14\r\n\r\nv=0\r\no=- 1 1\r\n"
	sipCompact = "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP a;branch=z9hG4bK2\r\nL : 5\r\n\r\nhello"
	sipNoLen   = "SIP/2.0 100 Trying\r\nVia: SIP/2.0/TCP a\r\n\r\n"
)

func TestFrameSIP(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  int
		err   error
	}{
		{"options", sipOptions, 1 << 16, len(sipOptions), nil},
		{"invite with body", sipInvite, 1 << 16, len(sipInvite), nil},
		{"compact l with space", sipCompact, 1 << 16, len(sipCompact), nil},
		{"no content-length", sipNoLen, 1 << 16, len(sipNoLen), nil},
		{"followed by another", sipOptions + sipInvite, 1 << 16, len(sipOptions), nil},
		{"body incomplete", sipInvite[:len(sipInvite)-1], 1 << 16, 0, nil},
		{"headers incomplete", sipInvite[:40], 1 << 16, 0, nil},
		{"start line incomplete", "INVITE sip:b@exa", 1 << 16, 0, nil},
		{"binary", "\x80\x00\x01\x02rtp", 1 << 16, 0, errGarbage},
		{"not sip", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 16, 0, errGarbage},
		{"bad status", "SIP/2.0 2x0 OK\r\n\r\n", 1 << 16, 0, errGarbage},
		{"bad method char", "INV@TE sip:a SIP/2.0\r\n\r\n", 1 << 16, 0, errGarbage},
		{"bad content-length", "SIP/2.0 200 OK\r\nContent-Length: 12a\r\n\r\n", 1 << 16, 0, errGarbage},
		{"empty content-length", "SIP/2.0 200 OK\r\nContent-Length:\r\n\r\n", 1 << 16, 0, errGarbage},
		{"absurd content-length", "SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", 1 << 16, 0, errTooLarge},
		{"huge content-length", "SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 1 << 16, 0, errGarbage},
		{"headers beyond limit", "SIP/2.0 200 OK\r\nX: " + strings.Repeat("a", 100), 64, 0, errTooLarge},
		{"start line too long", "INVITE " + strings.Repeat("a", maxStartLine), 1 << 20, 0, errGarbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := frameSIP([]byte(tt.in), tt.limit)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("frameSIP(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// seg is one TCP segment of a test stream from A:40000 to B:5060.
type seg struct {
	seq   uint32
	flags byte
	data  string
	at    time.Duration // after t0
}

func tcpFrame(s seg) *capture.Frame {
	f := frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 5060, s.seq, s.flags, []byte(s.data)))))
	f.Time = t0.Add(s.at)
	return f
}

func TestTCPStreams(t *testing.T) {
	const isn = 1000 // first data byte is isn+1
	two := sipOptions + sipInvite
	tlsJunk := "\x16\x03\x01 TLS hello\r\n"
	absurd := "SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\nxx"
	tests := []struct {
		name string
		segs []seg
		want []string
		// selected counters
		dropped, retrans, gaps uint64
	}{
		{"handshake, one message", []seg{{isn, tcpSYN, "", 0}, {isn + 1, 0, sipOptions, 0}}, []string{sipOptions}, 0, 0, 0},
		{"two messages in one segment", []seg{{isn + 1, 0, two, 0}}, []string{sipOptions, sipInvite}, 0, 0, 0},
		{"one message in three segments", []seg{
			{isn + 1, 0, sipInvite[:10], 0}, {isn + 11, 0, sipInvite[10:90], 0}, {isn + 91, 0, sipInvite[90:], 0},
		}, []string{sipInvite}, 0, 0, 0},
		{"retransmitted segment", []seg{
			{isn + 1, 0, sipOptions, 0}, {isn + 1, 0, sipOptions, 0}, {isn + 1 + uint32(len(sipOptions)), 0, sipCompact, 0},
		}, []string{sipOptions, sipCompact}, 0, 1, 0},
		{"retransmission overlapping new bytes", []seg{
			{isn + 1, 0, sipInvite[:50], 0}, {isn + 21, 0, sipInvite[20:], 0},
		}, []string{sipInvite}, 0, 0, 0},
		{"message straddling segments with the next", []seg{
			{isn + 1, 0, two[:len(sipOptions)+5], 0}, {isn + 1 + uint32(len(sipOptions)) + 5, 0, two[len(sipOptions)+5:] + sipNoLen, 0},
		}, []string{sipOptions, sipInvite, sipNoLen}, 0, 0, 0},
		{"crlf keepalives", []seg{{isn + 1, 0, "\r\n\r\n", 0}, {isn + 5, 0, "\r\n" + sipOptions + "\r\n", 0}, {isn + 9 + uint32(len(sipOptions)), 0, sipNoLen, 0}},
			[]string{sipOptions, sipNoLen}, 0, 0, 0},
		{"out of order filled", []seg{
			{isn + 1, 0, sipInvite[:30], 0}, {isn + 61, 0, sipInvite[60:], 0}, {isn + 31, 0, sipInvite[30:60], 0},
		}, []string{sipInvite}, 0, 0, 0},
		{"gap skipped after timeout", []seg{
			{isn + 1, 0, sipInvite[:30], 0},
			{isn + 1 + uint32(len(sipInvite)), 0, sipOptions, 10 * time.Millisecond},
			{isn + 1 + uint32(len(sipInvite)+len(sipOptions)), 0, sipNoLen, 2 * time.Second},
		}, []string{sipOptions, sipNoLen}, 1, 0, 1},
		{"garbage resets, next segment resyncs", []seg{
			{isn + 1, 0, tlsJunk, 0}, {isn + 1 + uint32(len(tlsJunk)), 0, sipOptions, 0},
		}, []string{sipOptions}, 1, 0, 0},
		{"picked up mid-message", []seg{
			{isn + 1, 0, sipInvite[40:], 0}, {isn + 1 + uint32(len(sipInvite)-40), 0, sipOptions, 0},
		}, []string{sipOptions}, 1, 0, 0},
		{"absurd content-length", []seg{
			{isn + 1, 0, absurd, 0}, {isn + 1 + uint32(len(absurd)), 0, sipOptions, 0},
		}, []string{sipOptions}, 1, 0, 0},
		{"rst drops partial", []seg{{isn + 1, 0, sipInvite[:30], 0}, {isn + 31, tcpRST, "", 0}, {isn + 31, 0, sipInvite[30:], 0}}, nil, 2, 0, 0},
		{"fin after message", []seg{{isn + 1, tcpFIN, sipOptions, 0}}, []string{sipOptions}, 0, 0, 0},
		{"sequence wraps", []seg{{0xffffffe0, 0, sipInvite[:0x20], 0}, {0, 0, sipInvite[0x20:], 0}}, []string{sipInvite}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var c collector
			for _, s := range tt.segs {
				d.Decode(tcpFrame(s), &c)
			}
			if diff := cmp.Diff(tt.want, c.payloads()); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			st := d.Stats()
			if st.TCPDropped != tt.dropped || st.TCPRetransmits != tt.retrans || st.TCPGaps != tt.gaps {
				t.Errorf("dropped, retransmits, gaps = %d, %d, %d; want %d, %d, %d",
					st.TCPDropped, st.TCPRetransmits, st.TCPGaps, tt.dropped, tt.retrans, tt.gaps)
			}
			if st.TCPMessages != uint64(len(tt.want)) {
				t.Errorf("TCPMessages = %d, want %d", st.TCPMessages, len(tt.want))
			}
			for _, g := range c.got {
				if g.Flow.Proto != ProtoTCP || g.Flow.Dst.Port() != 5060 || g.Flow.Src.Addr() != addrA {
					t.Errorf("Flow = %v, want tcp from %v to port 5060", g.Flow, addrA)
				}
			}
		})
	}
}

// TestTCPAnyPort checks that a stream on a port that is not a SIP port is
// followed when its first bytes are SIP, ignored without any state when
// they are not, and given up at the first bytes that stop being SIP; on a
// configured SIP port the same garbage only resynchronises.
func TestTCPAnyPort(t *testing.T) {
	seg := func(sport, dport uint16, seq uint32, payload string) *capture.Frame {
		return frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(sport, dport, seq, 0, []byte(payload)))))
	}
	t.Run("SIP on 443", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(seg(40000, 443, 1, sipOptions), &c)
		d.Decode(seg(443, 40000, 9, sipNoLen), &c) // the answer starts its own direction
		if got := c.payloads(); !cmp.Equal(got, []string{sipOptions, sipNoLen}) {
			t.Errorf("payloads = %q, want the OPTIONS and its answer", got)
		}
	})
	t.Run("TLS on 443 keeps no state", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(seg(40000, 443, 1, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), &c)
		d.Decode(seg(40000, 443, 12, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), &c)
		if st := d.Stats(); len(c.got) != 0 || st.TCPNonSIP != 2 || st.TCPStreams != 0 || st.TCPSegments != 0 {
			t.Errorf("%d datagrams, Stats() %+v; want 0 datagrams, TCPNonSIP 2, no stream", len(c.got), st)
		}
	})
	t.Run("garbage after SIP gives up", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(seg(40000, 6060, 1, sipOptions), &c)
		d.Decode(seg(40000, 6060, 1+uint32(len(sipOptions)), "\x00\x01binary"), &c)
		d.Decode(seg(40000, 6060, 10+uint32(len(sipOptions)), "more binary\r\n"), &c)
		st := d.Stats()
		if len(c.got) != 1 || st.TCPGaveUp != 1 || st.TCPStreams != 0 || st.TCPNonSIP != 1 || d.nAnyPort != 0 {
			t.Errorf("%d datagrams, Stats() %+v; want 1, TCPGaveUp 1, no stream left, TCPNonSIP 1", len(c.got), st)
		}
	})
	t.Run("garbage on a SIP port resyncs", func(t *testing.T) {
		var ports PortSet
		ports.Add(6060, 6060)
		d := NewDecoder(Config{SIPPorts: &ports})
		var c collector
		d.Decode(seg(40000, 6060, 1, "\x00\x01binary"), &c)
		d.Decode(seg(40000, 6060, 9, sipOptions), &c)
		if st := d.Stats(); len(c.got) != 1 || st.TCPGaveUp != 0 || st.TCPDropped != 1 {
			t.Errorf("%d datagrams, Stats() %+v; want 1, TCPDropped 1, TCPGaveUp 0", len(c.got), st)
		}
	})
	t.Run("keepalives counted", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(seg(40000, 5060, 1, "\r\n\r\n"), &c)
		d.Decode(seg(40000, 5060, 5, sipOptions+"\r\n"), &c)
		if st := d.Stats(); len(c.got) != 1 || st.TCPKeepalives != 2 || st.TCPDropped != 0 {
			t.Errorf("%d datagrams, Stats() %+v; want 1, TCPKeepalives 2", len(c.got), st)
		}
	})
}

func TestTCPLimits(t *testing.T) {
	t.Run("stream limit evicts least recent", func(t *testing.T) {
		d := NewDecoder(Config{MaxTCPStreams: 2})
		var c collector
		for i, port := range []uint16{1001, 1002, 1003} {
			f := frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(port, 5060, 1, 0, []byte(sipInvite[:20])))))
			f.Time = t0.Add(time.Duration(i) * time.Millisecond)
			d.Decode(f, &c)
		}
		if st := d.Stats(); st.TCPStreams != 2 || st.TCPDropped != 1 {
			t.Errorf("streams %d dropped %d, want 2, 1", st.TCPStreams, st.TCPDropped)
		}
	})
	t.Run("out-of-order overflow skips forward", func(t *testing.T) {
		d := NewDecoder(Config{MaxTCPBuffer: 100})
		var c collector
		d.Decode(tcpFrame(seg{1, 0, sipInvite[:10], 0}), &c)
		// A 1000-byte hole, then two 92-byte messages that together exceed
		// the 100-byte buffer bound: the second forces the skip.
		d.Decode(tcpFrame(seg{1011, 0, sipOptions, 0}), &c)
		d.Decode(tcpFrame(seg{1011 + uint32(len(sipOptions)), 0, sipOptions, 0}), &c)
		if got := len(c.got); got != 2 {
			t.Errorf("delivered %d messages, want 2", got)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		d := NewDecoder(Config{TCPTimeout: time.Minute})
		var c collector
		d.Decode(tcpFrame(seg{1, 0, sipInvite[:10], 0}), &c)
		d.Expire(t0.Add(2 * time.Minute))
		if st := d.Stats(); st.TCPStreams != 0 || st.TCPDropped != 1 {
			t.Errorf("streams %d dropped %d, want 0, 1", st.TCPStreams, st.TCPDropped)
		}
	})
	t.Run("gap skipped by Expire", func(t *testing.T) {
		d := NewDecoder(Config{})
		var c collector
		d.Decode(tcpFrame(seg{1, 0, sipInvite[:10], 0}), &c)
		d.Decode(tcpFrame(seg{500, 0, sipOptions, 0}), &c)
		d.Expire(t0.Add(5 * time.Second))
		if got := c.payloads(); len(got) != 1 || got[0] != sipOptions {
			t.Errorf("after Expire got %q, want the buffered OPTIONS", got)
		}
	})
}

// TestTCPFixture writes testdata/sip_tcp.pcap (handshake; two messages in
// one segment; one message across three segments, the middle one
// retransmitted; a reply in the other direction) and decodes it from the
// file.
func TestTCPFixture(t *testing.T) {
	path := filepath.Join("testdata", "sip_tcp.pcap")
	reply := "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n"
	type pkt struct {
		fromServer bool
		seq        uint32
		flags      byte
		data       string
	}
	c1 := uint32(5000) // client ISN
	s1 := uint32(9000) // server ISN
	big := sipInvite
	pkts := []pkt{
		{false, c1, tcpSYN, ""},
		{true, s1, tcpSYN, ""},
		{false, c1 + 1, 0, sipOptions + sipCompact},
		{false, c1 + 1 + uint32(len(sipOptions+sipCompact)), 0, big[:25]},
		{false, c1 + 26 + uint32(len(sipOptions+sipCompact)), 0, big[25:70]},
		{false, c1 + 26 + uint32(len(sipOptions+sipCompact)), 0, big[25:70]}, // retransmission
		{false, c1 + 71 + uint32(len(sipOptions+sipCompact)), 0, big[70:]},
		{true, s1 + 1, 0, reply},
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		var data []byte
		if p.fromServer {
			data = cat(ether(0x0800), ipv4Opts(addrB, addrA, 6, uint16(i), 0x4000, nil, tcpHdr(5060, 40000, p.seq, p.flags, []byte(p.data))))
		} else {
			data = cat(ether(0x0800), ipv4Opts(addrA, addrB, 6, uint16(i), 0x4000, nil, tcpHdr(40000, 5060, p.seq, p.flags, []byte(p.data))))
		}
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, st := decodeFile(t, path, Config{})
	want := []string{sipOptions, sipCompact, big, reply}
	if diff := cmp.Diff(want, c.payloads()); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if st.TCPSegments != 8 || st.TCPMessages != 4 || st.TCPRetransmits != 1 || st.TCPDropped != 0 {
		t.Errorf("Stats() = %+v, want 8 segments, 4 messages, 1 retransmit, 0 dropped", st)
	}
}

// feedSplit sends stream as TCP segments cut at the given points and
// returns the messages delivered.
func feedSplit(stream []byte, cuts []int, limit int) []string {
	d := NewDecoder(Config{MaxTCPBuffer: limit})
	var c collector
	prev := 0
	for _, cut := range append(cuts, len(stream)) {
		if cut <= prev || cut > len(stream) {
			continue
		}
		d.Decode(tcpFrame(seg{uint32(1 + prev), 0, string(stream[prev:cut]), 0}), &c)
		prev = cut
	}
	return c.payloads()
}

func TestTCPSplitInvariance(t *testing.T) {
	stream := []byte("\r\n" + sipOptions + sipInvite + "\r\n\r\n" + sipCompact + sipNoLen)
	whole := feedSplit(stream, nil, 0)
	if len(whole) != 4 {
		t.Fatalf("whole stream gave %d messages, want 4", len(whole))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var cuts []int
		for range r.IntN(8) {
			cuts = append(cuts, r.IntN(len(stream)))
		}
		cuts = sortInts(cuts)
		if diff := cmp.Diff(whole, feedSplit(stream, cuts, 0)); diff != "" {
			t.Fatalf("cuts %v changed the messages (-whole +split):\n%s", cuts, diff)
		}
	}
}

func sortInts(a []int) []int {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}

func BenchmarkDecodeTCPSIP(b *testing.B) {
	d := NewDecoder(Config{})
	var h nopHandler
	seq := uint32(1)
	f := tcpFrame(seg{seq, 0, sipInvite, 0})
	tcpOff := 14 + 20
	b.ReportAllocs()
	for b.Loop() {
		putSeq(f.Data[tcpOff+4:], seq)
		d.Decode(f, &h)
		seq += uint32(len(sipInvite))
	}
}

func putSeq(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// BenchmarkDecodeTCPNonSIP is the cost of a TCP segment on no SIP port
// that does not start like SIP (HTTPS, say): the any-port recognition must
// keep it near the plain path.
func BenchmarkDecodeTCPNonSIP(b *testing.B) {
	tls := append([]byte{0x17, 0x03, 0x03, 0x05, 0x00}, make([]byte, 1200)...)
	f := frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 443, 1, 0, tls))))
	d := NewDecoder(Config{})
	var h nopHandler
	b.ReportAllocs()
	for b.Loop() {
		d.Decode(f, &h)
	}
}
