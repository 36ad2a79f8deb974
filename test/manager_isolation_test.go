package test

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestManagerIsolation replays a generated capture (~200k packets) at
// full speed under the security issue's floods: 1,100 manager connections
// that send nothing, 50 that send listcalls but never read their replies
// (receive buffers shrunk to 1 KiB so that the server's writes stall),
// 1,100 one-byte connections to the server API and 12 service openings
// that each ask for the server's RSA key. The run must store exactly the
// CDRs of an undisturbed run of the same capture, see every frame (no
// capture drops), and keep answering other clients promptly; the local
// admin's unix socket most of all.
//
// The capture is fed through a FIFO so the clients are all connected
// before the first packet is read: without that a full-speed replay could
// end before the load is in place.
func TestManagerIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("replays ~200k packets twice")
	}
	bin := voipsensorBinary(t)
	dir := t.TempDir()
	pcap := filepath.Join(dir, "iso.pcap")
	if out, err := exec.Command(bin, "gen", "-calls", "100", "-concurrency", "50", "-talk", "20s", "-o", pcap).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	data, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}

	// Reference run, nobody connected.
	ref := newDaemon(t, "-r", pcap)
	if code := ref.run(2 * time.Minute); code != 0 {
		t.Fatalf("reference run exit %d\n%s", code, ref.log)
	}
	wantFrames := logInt(ref.log.String(), "sensor stopped", "frames")
	wantCDRs := len(readCDRs(t, "sqlite", filepath.Join(ref.spool, "voipsensor.db")))
	if wantCDRs != 100 || wantFrames < 190_000 {
		t.Fatalf("reference run: %d CDRs, %d frames; want 100 CDRs and ~197k frames", wantCDRs, wantFrames)
	}

	fifo := filepath.Join(dir, "feed.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeTCPPort(t)
	sock := filepath.Join(dir, "m.sock")
	srvPort := freeTCPPort(t)
	d := newDaemon(t, "-r", fifo, "-set", "managerport="+strconv.Itoa(port), "-set", "managersocket="+sock,
		"-set", "server_bind=127.0.0.1", "-set", "server_bind_port="+strconv.Itoa(srvPort), "-set", "server_password=flood-test")
	// The writer end: opening blocks until the daemon opens the FIFO; the
	// header goes first so the reader can start, the packets after the load.
	feed := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			feed <- nil
			return
		}
		f.Write(data[:24])
		feed <- f
	}()
	d = startDaemonFrom(t, d)
	f := <-feed
	if f == nil {
		t.FailNow()
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// The server API's floods come from addresses of their own: one byte
	// and silence, and service openings (each would once have cost a
	// fresh 4096-bit RSA key, seconds of CPU).
	srvAddr := "127.0.0.1:" + strconv.Itoa(srvPort)
	oneByte := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 5)}, Timeout: time.Second}
	for range 1100 {
		c, err := oneByte.Dial("tcp", srvAddr)
		if err != nil {
			continue // refused once the per-address cap is reached: the point
		}
		io.WriteString(c, "{")
		conns = append(conns, c)
	}
	service := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 6)}, Timeout: time.Second}
	for range 12 {
		c, err := service.Dial("tcp", srvAddr)
		if err != nil {
			t.Fatalf("service opening: %v", err)
		}
		io.WriteString(c, `{"type_connection":"service"}`+"\r\n")
		conns = append(conns, c)
	}
	// The stalled readers and the clients that are answered come from
	// other loopback addresses than the 300 idle ones: the per-address cap
	// (max_connections_per_ip) refuses most of those 300, which is the
	// point, and must not refuse anybody else.
	small := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
	}}
	other := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
	for range 50 {
		c, err := small.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatalf("non-reading connection: %v", err)
		}
		io.WriteString(c, "listcalls\n")
		conns = append(conns, c)
	}

	// fed is set before the FIFO is closed: the daemon sees the end of its
	// input, finishes and closes its listeners only after that, so a client
	// error is a failure only while fed is unset.
	done := make(chan error, 1)
	var fed atomic.Bool
	go func() {
		_, err := f.Write(data[24:])
		fed.Store(true)
		f.Close()
		done <- err
	}()
	// Meanwhile other clients keep being answered, over TCP and the socket.
	var worst, worstUnix time.Duration
	var asked int
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("feeding the capture: %v", err)
			}
			running = false
		default:
		}
		for _, network := range []string{"tcp", "unix"} {
			a := addr
			if network == "unix" {
				a = sock
			}
			start := time.Now()
			var c net.Conn
			var err error
			if network == "tcp" {
				c, err = other.Dial(network, a)
			} else {
				c, err = net.DialTimeout(network, a, time.Second)
			}
			if err != nil {
				if !fed.Load() {
					t.Errorf("%s client: %v", network, err)
				}
				continue
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "sniffer_stat\n")
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil || len(b) == 0 {
				if !fed.Load() {
					t.Errorf("%s client: %d bytes, %v", network, len(b), err)
				}
				continue
			}
			asked++
			worst = max(worst, time.Since(start))
			if network == "unix" {
				worstUnix = max(worstUnix, time.Since(start))
			}
		}
	}
	if code := d.wait(2 * time.Minute); code != 0 {
		t.Fatalf("exit %d", code)
	}
	gotFrames := logInt(d.log.String(), "sensor stopped", "frames")
	gotCDRs := len(readCDRs(t, "sqlite", filepath.Join(d.spool, "voipsensor.db")))
	t.Logf("%d sniffer_stat answered during the replay, slowest %v (unix socket %v); %d frames, %d CDRs", asked, worst, worstUnix, gotFrames, gotCDRs)
	if gotFrames != wantFrames || gotCDRs != wantCDRs {
		t.Errorf("under the floods: %d frames, %d CDRs; undisturbed: %d frames, %d CDRs", gotFrames, gotCDRs, wantFrames, wantCDRs)
	}
	// Queued behind the idle floods, an answer would wait until they are
	// cut at first_request_timeout (5 s); 3 s tells that apart from a busy
	// runner's scheduling stalls (1.2 s is seen under load, where the old
	// 1 s bound was a speed target). The figure is logged.
	if worst > 3*time.Second {
		t.Errorf("slowest answer during the replay took %v, want < 3 s (the floods are cut after 5 s)", worst)
	}
}
