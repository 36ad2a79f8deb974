//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// openLiveOrSkip opens a live source or skips when the test cannot capture
// (not root, or AF_PACKET refused by a sandbox).
func openLiveOrSkip(t testing.TB, cfg LiveConfig) *Live {
	t.Helper()
	if os.Geteuid() != 0 {
		sharedtest.Missing(t, "live capture needs root")
	}
	l, err := OpenLive(cfg)
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") || strings.Contains(err.Error(), "permission denied") {
			sharedtest.Missing(t, "live capture refused: %v", err)
		}
		t.Fatalf("OpenLive(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// udpSink binds a UDP socket on loopback so that datagrams to its port are
// delivered (no ICMP unreachable) and returns it.
func udpSink(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// foreignFragment reports (and logs) a non-first IPv4 fragment: the filter
// matches those whatever their ports (see CompileFilter), so other
// processes' fragmented loopback traffic may show up in a port-filtered
// capture.
func foreignFragment(t testing.TB, ip []byte) bool {
	if len(ip) >= 8 && ip[0]>>4 == 4 && binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		t.Logf("ignoring a non-first IPv4 fragment from other traffic")
		return true
	}
	return false
}

// ourDatagrams is the filter for what conn sends to 127.0.0.1:port and
// nothing else that other tests put on lo at the same time: IPv4 between
// 127.0.0.1 and itself, both ports, conn's bound by the test for its run.
// (Port tests also pass non-first fragments, which carry no ports. Sockets
// never fragment on lo, whose MTU is above the largest IPv4 datagram, and
// frames other tests inject into lo carry other addresses (see
// test/daemon_buffer_test.go, "Loopback isolation"); foreignFragment still
// tells such a fragment apart, should one ever come.)
func ourDatagrams(port int, conn *net.UDPConn) string {
	return fmt.Sprintf("ip and src host 127.0.0.1 and dst host 127.0.0.1 and udp dst port %d and src port %d",
		port, conn.LocalAddr().(*net.UDPAddr).Port)
}

type capturedFrame struct {
	data     []byte
	time     time.Time
	length   int
	linkType LinkType
}

// collect reads frames into a channel until the source is closed.
func collect(l *Live) (<-chan capturedFrame, <-chan error) {
	out := make(chan capturedFrame, 1024)
	done := make(chan error, 1)
	go func() {
		defer close(out)
		var f Frame
		for {
			if err := l.ReadFrame(&f); err != nil {
				done <- err
				return
			}
			out <- capturedFrame{append([]byte(nil), f.Data...), f.Time, f.Length, f.LinkType}
		}
	}()
	return out, done
}

func TestLiveLoopback(t *testing.T) {
	for _, tc := range []struct {
		iface  string
		lt     LinkType
		l3     int // offset of the IPv4 header
		etherT int // offset of the ethertype / protocol field
	}{
		{"lo", LinkTypeEthernet, 14, 12},
		{"any", LinkTypeLinuxSLL, 16, 14},
	} {
		t.Run(tc.iface, func(t *testing.T) {
			sink := udpSink(t)
			port := sink.LocalAddr().(*net.UDPAddr).Port
			conn, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			l := openLiveOrSkip(t, LiveConfig{Interface: tc.iface, Filter: ourDatagrams(port, conn)})
			if l.LinkType() != tc.lt {
				t.Fatalf("LinkType = %d, want %d", l.LinkType(), tc.lt)
			}
			frames, done := collect(l)

			const n = 50
			start := time.Now()
			for i := range n {
				if _, err := fmt.Fprintf(conn, "voipsensor-%03d", i); err != nil {
					t.Fatal(err)
				}
			}
			var got []capturedFrame
			timeout := time.After(5 * time.Second)
		wait:
			for len(got) < n {
				select {
				case f := <-frames:
					if !foreignFragment(t, f.data[tc.l3:]) {
						got = append(got, f)
					}
				case <-timeout:
					break wait
				}
			}
			// Any duplicate (e.g. the outgoing copy on lo) would arrive
			// within the ring's block timeout; give it 300 ms.
			extra := time.After(300 * time.Millisecond)
		drain:
			for {
				select {
				case f := <-frames:
					if !foreignFragment(t, f.data[tc.l3:]) {
						got = append(got, f)
					}
				case <-extra:
					break drain
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, ErrClosed) {
				t.Errorf("ReadFrame after Close = %v, want ErrClosed", err)
			}
			if len(got) != n {
				t.Fatalf("captured %d frames, want exactly %d", len(got), n)
			}
			for i, f := range got {
				if f.linkType != tc.lt {
					t.Errorf("frame %d: LinkType %d, want %d", i, f.linkType, tc.lt)
				}
				if et := binary.BigEndian.Uint16(f.data[tc.etherT:]); et != etherIPv4 {
					t.Errorf("frame %d: ethertype %#04x, want 0x0800", i, et)
				}
				ihl := int(f.data[tc.l3]&0x0f) * 4
				udpH := f.data[tc.l3+ihl:]
				if dp := int(binary.BigEndian.Uint16(udpH[2:])); dp != port {
					t.Errorf("frame %d: dst port %d, want %d", i, dp, port)
				}
				if want := fmt.Sprintf("voipsensor-%03d", i); string(udpH[8:]) != want {
					t.Errorf("frame %d: payload %q, want %q", i, udpH[8:], want)
				}
				if tc.lt == LinkTypeLinuxSLL {
					// As tcpdump -i any shows a packet received on lo:
					// PACKET_HOST, ARPHRD_LOOPBACK, 6-byte zero address.
					if pt, hw, al := binary.BigEndian.Uint16(f.data[0:]), binary.BigEndian.Uint16(f.data[2:]), binary.BigEndian.Uint16(f.data[4:]); pt != 0 || hw != arphrdLoopback || al != 6 {
						t.Errorf("frame %d: SLL pkttype %d hatype %d halen %d, want 0 772 6", i, pt, hw, al)
					}
				}
				if f.length != len(f.data) {
					t.Errorf("frame %d: Length %d, captured %d", i, f.length, len(f.data))
				}
				if d := f.time.Sub(start); d < -time.Second || d > 5*time.Second {
					t.Errorf("frame %d: Time %v is %v from the send time", i, f.time, d)
				}
			}
			if s := l.Stats(); s.Frames != n || s.KernelDropped != 0 {
				t.Errorf("Stats = %+v, want %d frames, 0 dropped", s, n)
			}
		})
	}
}

func TestLiveSnaplen(t *testing.T) {
	sink := udpSink(t)
	port := sink.LocalAddr().(*net.UDPAddr).Port
	conn, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The first frame captured must be ours: a port test alone also passes
	// a generated capture's RTP injected into lo when the sink's ephemeral
	// port is one of its ports.
	l := openLiveOrSkip(t, LiveConfig{Interface: "lo", Snaplen: 60, Filter: ourDatagrams(port, conn)})
	frames, _ := collect(l)
	if _, err := conn.Write(make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-frames:
		// 14 Ethernet + 20 IPv4 + 8 UDP + 500 payload on the wire.
		if len(f.data) != 60 || f.length != 542 {
			t.Errorf("captured %d of %d bytes, want 60 of 542", len(f.data), f.length)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame captured")
	}
}

func TestLiveCloseUnblocksRead(t *testing.T) {
	sink := udpSink(t)
	port := sink.LocalAddr().(*net.UDPAddr).Port
	// Nothing is sent from the sink's address to itself: ReadFrame blocks.
	l := openLiveOrSkip(t, LiveConfig{Interface: "lo", Filter: ourDatagrams(port, sink), PollTimeout: 50 * time.Millisecond})
	_, done := collect(l)
	time.Sleep(50 * time.Millisecond) // let ReadFrame block (not a correctness wait)
	closed := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("ReadFrame = %v, want ErrClosed", err)
		}
		t.Logf("ReadFrame returned %v after Close", time.Since(closed))
	case <-time.After(2 * time.Second):
		t.Fatal("ReadFrame still blocked 2s after Close")
	}
	var f Frame
	if err := l.ReadFrame(&f); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrame after Close = %v, want ErrClosed", err)
	}
}

// TestLiveCloseWaitsForLease: Close called while the reader still holds a
// frame does not unmap the ring under it. Close may return only after the
// reader has finished with the frame and come back to ReadFrame.
func TestLiveCloseWaitsForLease(t *testing.T) {
	sink := udpSink(t)
	port := sink.LocalAddr().(*net.UDPAddr).Port
	l := openLiveOrSkip(t, LiveConfig{Interface: "lo", Filter: fmt.Sprintf("udp port %d", port), PollTimeout: 20 * time.Millisecond})
	c, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := []byte("lease-check-0123456789")
	got := make(chan struct{})
	var finished atomic.Bool
	readErr := make(chan error, 1)
	go func() {
		var f Frame
		for {
			if err := l.ReadFrame(&f); err != nil {
				readErr <- err
				return
			}
			if !strings.Contains(string(f.Data), string(payload)) {
				continue
			}
			close(got)
			// Still holding the frame: Close is running now. Touch every
			// byte of it (a fault if the ring were unmapped), then let go.
			for i := 0; i < 20; i++ {
				sum := 0
				for _, b := range f.Data {
					sum += int(b)
				}
				_ = sum
				time.Sleep(5 * time.Millisecond) // widen the window a wrong Close would use
			}
			finished.Store(true)
			readErr <- l.ReadFrame(&f)
			return
		}
	}()
	deadline := time.After(10 * time.Second)
	for sent := false; !sent; {
		c.Write(payload)
		select {
		case <-got:
			sent = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("frame never captured")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned while the reader still held its frame")
	}
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrame after the lease = %v, want ErrClosed", err)
	}
}

// TestLiveFilterFromFirstFrame: no frame reaches the ring before its
// filter. lo carries a flood of other datagrams while the capture opens;
// then the test sends its own. Every frame read must be one of its own:
// a frame captured between the socket's creation and the filter's
// attachment would come first (the ring is read in order), and unfiltered
// (the snaplen is the filter's too). Before the socket was bound after its
// filter, hundreds of the flood's frames came through here.
func TestLiveFilterFromFirstFrame(t *testing.T) {
	for _, iface := range []string{"lo", "any"} {
		t.Run(iface, func(t *testing.T) {
			noise := udpSink(t)
			stop := make(chan struct{})
			flooding := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // someone else's traffic on lo
				defer wg.Done()
				c, err := net.DialUDP("udp4", nil, noise.LocalAddr().(*net.UDPAddr))
				if err != nil {
					t.Error(err)
					close(flooding)
					return
				}
				defer c.Close()
				for i := 0; ; i++ {
					if i == 1000 {
						close(flooding)
					}
					select {
					case <-stop:
						return
					default:
					}
					c.Write([]byte("noise"))
				}
			}()
			defer wg.Wait()
			defer close(stop)
			<-flooding

			sink := udpSink(t)
			port := sink.LocalAddr().(*net.UDPAddr).Port
			conn, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			l := openLiveOrSkip(t, LiveConfig{Interface: iface, Snaplen: 100, Filter: ourDatagrams(port, conn)})
			frames, _ := collect(l)
			const n = 20
			for i := range n {
				if _, err := fmt.Fprintf(conn, "ours-%02d", i); err != nil {
					t.Fatal(err)
				}
			}
			ours, foreign := 0, 0
			timeout := time.After(10 * time.Second)
			for ours < n {
				select {
				case f := <-frames:
					if strings.HasSuffix(string(f.data), fmt.Sprintf("ours-%02d", ours)) {
						ours++
					} else {
						foreign++
						if foreign <= 3 {
							t.Errorf("frame of %d bytes (of %d) that is not ours: %q", len(f.data), f.length, f.data[min(len(f.data), 28):])
						}
					}
				case <-timeout:
					t.Fatalf("%d of our %d datagrams captured", ours, n)
				}
			}
			if foreign > 0 {
				t.Errorf("%d frames before or among ours that the filter does not pass", foreign)
			}
		})
	}
}

func TestOpenLiveErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  LiveConfig
		want string
	}{
		{LiveConfig{}, "capture: live: no interface"},
		{LiveConfig{Interface: "lo", Filter: "vlan and udp"}, `capture: filter: "vlan" is not supported on live capture (the kernel strips tags)`},
		{LiveConfig{Interface: "lo", Filter: "greater 10"}, `capture: filter: unsupported primitive "greater"`},
		{LiveConfig{Interface: "no-such-if0"}, "capture: live no-such-if0: no such interface (`ip link` lists them; \"any\" captures all)"},
	} {
		_, err := OpenLive(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("OpenLive(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestLiveThroughput floods loopback from one goroutine for a fixed count and
// reports what the capture kept up with. It asserts only accounting: every
// datagram sent is either captured or counted as a kernel drop.
func TestLiveThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	pps, dropped, sent := floodLoopback(t, 200000)
	t.Logf("captured %.0f packets/s (%d sent, %d kernel drops)", pps, sent, dropped)
}

func BenchmarkLiveLoopback(b *testing.B) {
	pps, dropped, _ := floodLoopback(b, b.N)
	b.ReportMetric(pps, "pkts/s")
	b.ReportMetric(float64(dropped), "drops")
}

func floodLoopback(t testing.TB, n int) (pps float64, dropped uint64, sent int) {
	t.Helper()
	sink := udpSink(t)
	port := sink.LocalAddr().(*net.UDPAddr).Port
	conn, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Addresses and both ports in the filter: other tests' traffic to a
	// port that was theirs a moment ago (an RTP stream outliving its
	// receiver, frames of a generated capture sent into lo) cannot pass it.
	l := openLiveOrSkip(t, LiveConfig{Interface: "lo", Snaplen: 256, Filter: ourDatagrams(port, conn)})

	sendDone := make(chan int, 1)
	payload := make([]byte, 172) // an RTP packet of 20 ms G.711
	go func() {
		sent := 0
		for range n {
			if _, err := conn.Write(payload); err == nil {
				sent++
			}
		}
		sendDone <- sent
	}()
	var lastFrame atomic.Int64
	var ours, foreign atomic.Uint64
	start := time.Now()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		var f Frame
		for l.ReadFrame(&f) == nil {
			// Count only our datagrams: non-first fragments of other
			// loopback traffic also pass the filter.
			if ip := f.Data[14:]; ip[0]>>4 == 4 && binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
				foreign.Add(1)
				continue
			}
			ours.Add(1)
			lastFrame.Store(time.Now().UnixNano())
		}
	}()
	sent = <-sendDone
	var st Stats
	for deadline := time.Now().Add(30 * time.Second); ; {
		st = l.Stats()
		if ours.Load()+st.KernelDropped >= uint64(sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the counters
	}
	l.Close()
	<-readDone
	if n := foreign.Load(); n > 0 {
		t.Logf("ignored %d non-first fragments of other loopback traffic", n)
	}
	// The kernel counts a drop only for a frame that passed the filter, so
	// ours + drops == sent as long as no foreign fragment was dropped.
	if ours.Load()+st.KernelDropped != uint64(sent) {
		t.Errorf("captured %d + dropped %d != sent %d", ours.Load(), st.KernelDropped, sent)
	}
	elapsed := time.Unix(0, lastFrame.Load()).Sub(start)
	return float64(ours.Load()) / elapsed.Seconds(), st.KernelDropped, sent
}
