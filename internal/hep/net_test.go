package hep

import (
	"bytes"
	"context"
	"fmt"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// sink collects copies of the packets a collector delivers.
type sink struct {
	mu   sync.Mutex
	pkts []Packet
}

func (s *sink) handle(p *Packet) bool {
	q := *p
	q.Payload = bytes.Clone(p.Payload)
	q.AuthKey, q.CorrelationID, q.NodeName = nil, nil, nil
	s.mu.Lock()
	s.pkts = append(s.pkts, q)
	s.mu.Unlock()
	return p.Type != TypeLog
}

func (s *sink) snapshot() []Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Packet(nil), s.pkts...)
}

// startCollector binds cfg on loopback and runs it until the test ends.
func startCollector(t testing.TB, cfg CollectorConfig) (*Collector, *sink) {
	t.Helper()
	k := new(sink)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Handler = k.handle
	c := NewCollector(cfg)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c, k
}

// packet returns a HEPv3 SIP packet with id, key and a numbered payload.
func packet(t testing.TB, id uint32, key string, n int) []byte {
	p := Packet{IPProto: 17, Type: TypeSIP, CaptureID: id, Src: netip.MustParseAddrPort("10.1.1.1:5060"),
		Dst: netip.MustParseAddrPort("10.1.1.2:5060"), Time: time.Unix(1700000000, 0), Payload: []byte("msg " + strconv.Itoa(n))}
	if key != "" {
		p.AuthKey = []byte(key)
	}
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCollectorChecks(t *testing.T) {
	c, k := startCollector(t, CollectorConfig{Password: "secret", CaptureIDs: []uint32{7, 8}})
	if c.UDPAddr().(*net.UDPAddr).Port != c.TCPAddr().(*net.TCPAddr).Port {
		t.Fatalf("UDP %v and TCP %v ports differ", c.UDPAddr(), c.TCPAddr())
	}
	u, err := net.Dial("udp", c.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	logPkt := Packet{IPProto: 17, Type: TypeLog, CaptureID: 8, AuthKey: []byte("secret"), Src: netip.MustParseAddrPort("1.1.1.1:1"),
		Dst: netip.MustParseAddrPort("2.2.2.2:2"), Payload: []byte("{}")}
	logBytes, _ := logPkt.AppendBinary(nil)
	for _, b := range [][]byte{
		packet(t, 7, "secret", 1), // delivered
		packet(t, 7, "wrong", 2),  // auth failure
		packet(t, 7, "", 3),       // auth failure: no key
		packet(t, 9, "secret", 4), // unknown agent
		hep2(2, 2, 17, 1, 2, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 1, 2, 7, "x"), // v2: no key, auth failure
		[]byte("not hep at all"), // malformed
		logBytes,                 // ignored by the handler
	} {
		if _, err := u.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	sharedtest.Eventually(t, 5*time.Second, "7 UDP packets", func() bool { return c.Stats().Received == 7 })
	st := c.Stats()
	if st.Delivered != 1 || st.AuthFailures != 3 || st.UnknownAgents != 1 || st.Malformed != 1 || st.Ignored != 1 {
		t.Errorf("stats = %+v, want delivered 1, auth failures 3, unknown 1, malformed 1, ignored 1", st)
	}
	got := k.snapshot()
	if string(got[0].Payload) != "msg 1" || got[0].CaptureID != 7 || got[0].Src.String() != "10.1.1.1:5060" {
		t.Errorf("delivered %+v", got[0])
	}

	// TCP: two packets in one write and one split across writes, then
	// garbage, which ends the connection.
	tc, err := net.Dial("tcp", c.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	two := append(packet(t, 8, "secret", 10), packet(t, 8, "secret", 11)...)
	third := packet(t, 8, "secret", 12)
	for _, w := range [][]byte{two, third[:9], third[9:], []byte("GET / HTTP/1.1\r\n\r\n")} {
		if _, err := tc.Write(w); err != nil {
			t.Fatal(err)
		}
	}
	sharedtest.Eventually(t, 5*time.Second, "the garbage to close the TCP connection", func() bool {
		s := c.Stats()
		return s.Malformed == 2 && s.Conns == 0
	})
	st = c.Stats()
	if st.Delivered != 4 || st.ConnsAccepted != 1 {
		t.Errorf("after TCP: %+v, want 4 delivered over 1 connection", st)
	}
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after garbage")
	}
}

func TestCollectorMaxConns(t *testing.T) {
	c, _ := startCollector(t, CollectorConfig{MaxConns: 1})
	a, err := net.Dial("tcp", c.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sharedtest.Eventually(t, 5*time.Second, "first connection", func() bool { return c.Stats().Conns == 1 })
	b, err := net.Dial("tcp", c.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sharedtest.Eventually(t, 5*time.Second, "second connection refused", func() bool { return c.Stats().ConnsRefused == 1 })
}

// TestSenderToCollector: a Sender feeding a Collector on loopback, over
// UDP and TCP, delivers every packet with its fields.
func TestSenderToCollector(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c, k := startCollector(t, CollectorConfig{Password: "pw", CaptureIDs: []uint32{42}})
			s, err := NewSender(SenderConfig{Network: network, Addr: c.TCPAddr().String(), CaptureID: 42, Password: "pw", Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			sharedtest.Eventually(t, 5*time.Second, "connected", func() bool { return s.Stats().Connected })
			const n = 500
			for i := range n {
				p := Packet{IPProto: 6, Type: TypeSIP, CaptureID: 1, AuthKey: []byte("ignored"),
					Src: netip.MustParseAddrPort("[2001:db8::1]:5060"), Dst: netip.MustParseAddrPort("[2001:db8::2]:5061"),
					Time: time.Unix(1700000000, int64(i)*1000), Payload: []byte(fmt.Sprintf("message %d", i))}
				if !s.Send(&p) {
					t.Fatalf("Send %d refused", i)
				}
				if i%100 == 99 { // let UDP's receive buffer drain
					sharedtest.Eventually(t, 5*time.Second, "a batch delivered", func() bool { return c.Stats().Delivered == uint64(i+1) })
				}
			}
			sharedtest.Eventually(t, 5*time.Second, "every packet delivered", func() bool { return c.Stats().Delivered == n })
			got := k.snapshot()
			seen := map[string]bool{}
			for _, p := range got {
				if p.CaptureID != 42 || p.IPProto != 6 || p.Src.Port() != 5060 || p.Dst.Addr() != v6Dst || p.Type != TypeSIP {
					t.Fatalf("packet %+v", p)
				}
				seen[string(p.Payload)] = true
			}
			if len(seen) != n {
				t.Errorf("%d distinct payloads, want %d", len(seen), n)
			}
			if network == "tcp" {
				for i, p := range got { // one stream: in order
					if want := fmt.Sprintf("message %d", i); string(p.Payload) != want || !p.Time.Equal(time.Unix(1700000000, int64(i)*1000)) {
						t.Fatalf("packet %d = %q at %v, want %q", i, p.Payload, p.Time, want)
					}
				}
			}
			sharedtest.Eventually(t, 5*time.Second, "the sender's count", func() bool { return s.Stats().Sent == n }) // counted after the write returns
			if st := s.Stats(); st.Dropped != 0 || st.Failed != 0 || st.Queued != 0 {
				t.Errorf("sender stats %+v", st)
			}
			if st := c.Stats(); st.AuthFailures != 0 || st.Malformed != 0 {
				t.Errorf("collector stats %+v", st)
			}
		})
	}
}

func TestSenderQueueBound(t *testing.T) {
	s, err := NewSender(SenderConfig{Addr: "127.0.0.1:9", QueuePackets: 10})
	if err != nil {
		t.Fatal(err)
	}
	p := Packet{Src: netip.MustParseAddrPort("1.1.1.1:1"), Dst: netip.MustParseAddrPort("2.2.2.2:2"), Payload: make([]byte, 100)}
	for i := range 15 {
		if got, want := s.Send(&p), i < 10; got != want {
			t.Fatalf("Send %d = %v, want %v", i, got, want)
		}
	}
	if st := s.Stats(); st.Queued != 10 || st.Dropped != 5 {
		t.Errorf("stats %+v, want 10 queued, 5 dropped", st)
	}
	size := p.MarshalSize()
	s, _ = NewSender(SenderConfig{Addr: "127.0.0.1:9", QueueBytes: 3*size + size/2})
	for i := range 5 {
		if got, want := s.Send(&p), i < 3; got != want {
			t.Fatalf("byte bound: Send %d = %v, want %v", i, got, want)
		}
	}
	big := Packet{Payload: make([]byte, MaxPacketSize)}
	if s.Send(&big) {
		t.Error("a packet over 64 KiB was queued")
	}
	if _, err := NewSender(SenderConfig{Network: "sctp", Addr: "127.0.0.1:9"}); err == nil {
		t.Error("NewSender accepted network sctp")
	}
	if _, err := NewSender(SenderConfig{Addr: "nohostport"}); err == nil {
		t.Error("NewSender accepted an address without a port")
	}
}

// TestSendAllocations: once the queue buffers have grown, Send allocates
// nothing (it runs on the capture goroutine).
func TestSendAllocations(t *testing.T) {
	s, _ := NewSender(SenderConfig{Addr: "127.0.0.1:9"})
	p := Packet{IPProto: 17, Type: TypeSIP, Src: netip.MustParseAddrPort("1.1.1.1:1"), Dst: netip.MustParseAddrPort("2.2.2.2:2"),
		Time: time.Unix(1, 0), Payload: make([]byte, 800)}
	drain := func() {
		s.mu.Lock()
		s.pend, s.ends = s.pend[:0], s.ends[:0]
		s.mu.Unlock()
	}
	for range 1000 {
		s.Send(&p)
	}
	drain()
	if n := testing.AllocsPerRun(100, func() {
		for range 10 {
			s.Send(&p)
		}
		drain()
	}); n != 0 {
		t.Errorf("Send: %v allocs per 10 packets, want 0", n)
	}
}

// TestSenderReconnect: a TCP sender whose collector is down keeps its queue
// and delivers it once the collector is up; after the collector restarts it
// reconnects.
func TestSenderReconnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a free port, nobody listening yet

	s, err := NewSender(SenderConfig{Network: "tcp", Addr: addr, MaxBackoff: 200 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	send := func(n int) {
		p := Packet{IPProto: 17, Type: TypeSIP, Src: netip.MustParseAddrPort("1.1.1.1:1"), Dst: netip.MustParseAddrPort("2.2.2.2:2"),
			Payload: []byte("p" + strconv.Itoa(n))}
		s.Send(&p)
	}
	for i := range 5 {
		send(i)
	}
	if st := s.Stats(); st.Connected || st.Queued != 5 {
		t.Fatalf("before the collector: %+v, want 5 queued, not connected", st)
	}

	c1 := NewCollector(CollectorConfig{Addr: addr, Handler: func(*Packet) bool { return true }})
	if err := c1.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	go c1.Run(ctx1)
	sharedtest.Eventually(t, 5*time.Second, "the queued packets delivered", func() bool { return c1.Stats().Delivered == 5 })
	cancel1()
	c1.Close()

	// The collector is gone: writes fail sooner or later, and the sender
	// notices.
	for i := 0; s.Stats().Connected; i++ {
		send(100 + i)
		time.Sleep(5 * time.Millisecond)
		if i > 2000 {
			t.Fatal("sender still connected 10 s after the collector closed")
		}
	}
	c2, k2 := startCollector(t, CollectorConfig{Addr: addr})
	sharedtest.Eventually(t, 5*time.Second, "reconnection", func() bool { return s.Stats().Connected })
	send(1000)
	sharedtest.Eventually(t, 5*time.Second, "a packet after the reconnection", func() bool {
		for _, p := range k2.snapshot() {
			if string(p.Payload) == "p1000" {
				return true
			}
		}
		return false
	})
	if st := s.Stats(); st.Reconnects < 1 {
		t.Errorf("stats %+v, want a reconnection", st)
	}
	_ = c2
}

// BenchmarkLoopback is the collector's throughput end to end: a Sender
// writing HEPv3 SIP packets of about 800 bytes to a Collector on loopback
// (UDP: sendmmsg batches against one reading goroutine; TCP: one stream).
// It reports delivered packets per second and the packets lost on the way
// (UDP only, in the kernel's socket buffer).
func BenchmarkLoopback(b *testing.B) {
	for _, network := range []string{"tcp", "udp"} {
		b.Run(network, func(b *testing.B) {
			c, _ := startCollector(b, CollectorConfig{})
			s, _ := NewSender(SenderConfig{Network: network, Addr: c.TCPAddr().String(), QueuePackets: 1 << 20, QueueBytes: 1 << 30, Logger: quiet})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			sharedtest.Eventually(b, 5*time.Second, "connected", func() bool { return s.Stats().Connected })
			p := Packet{IPProto: 17, Type: TypeSIP, Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5060"),
				Time: time.Unix(1700000000, 0), Payload: bytes.Repeat([]byte("v"), 700)}
			start := c.Stats().Delivered
			b.ResetTimer()
			// At most window packets in flight between Send and the
			// collector, so that the rate measured is the collector's, not
			// how fast UDP overruns it.
			// TCP has its own flow control.
			const window = 2048
			for i := 0; i < b.N; i++ {
				for !s.Send(&p) {
					runtime.Gosched()
				}
				if network == "udp" && i%(window/4) == 0 {
					// (A lost datagram never arrives: give up waiting
					// after 100 ms.)
					for t0 := time.Now(); uint64(i)-(c.received.Load()-start) > window && time.Since(t0) < 100*time.Millisecond; {
						runtime.Gosched()
					}
				}
			}
			// Wait until every packet was written and the collector's count
			// stops moving.
			for s.Stats().Sent+s.Stats().Failed < uint64(b.N) {
				time.Sleep(50 * time.Microsecond)
			}
			// TCP loses nothing: wait for every packet. A UDP datagram
			// the kernel dropped never comes: stop after 500 ms without
			// progress.
			last, lastAt := uint64(0), time.Now()
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
				d := c.Stats().Delivered - start
				if d == uint64(b.N) || (network == "udp" && time.Since(lastAt) > 500*time.Millisecond) {
					break
				}
				if d != last {
					last, lastAt = d, time.Now()
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			got := c.Stats().Delivered - start
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pkt/s")
			b.ReportMetric(float64(uint64(b.N)-got), "lost")
		})
	}
}
