package conn

import (
	"bufio"
	"context"
	"errors"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serve starts a Listener on a loopback port running h; it is shut down at
// cleanup.
func serve(t *testing.T, lim Limits, opts Options, h Handler) *Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := New(l, lim, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return x
}

func dial(t *testing.T, x *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial(x.Addr().Network(), x.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedAtOnce reports whether c was closed by the server without a byte.
func refusedAtOnce(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
}

// echoUntilQuit greets, then echoes lines until "quit".
func echoUntilQuit(ctx context.Context, c *Conn) {
	io.WriteString(c, "hello\n")
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		c.Started()
		if line == "login\n" {
			c.Authenticated()
		}
		if line == "quit\n" {
			return
		}
		io.WriteString(c, line)
	}
}

func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := c.Read(one)
		if n == 1 {
			b = append(b, one[0])
			if one[0] == '\n' {
				return string(b)
			}
		}
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, b)
		}
	}
}

func TestSessionCap(t *testing.T) {
	x := serve(t, Limits{MaxConns: 3, MaxUnauthPerAddr: -1}, Options{}, echoUntilQuit)
	var cs []net.Conn
	for range 3 {
		c := dial(t, x)
		if got := readLine(t, c); got != "hello\n" {
			t.Fatalf("greeting %q", got)
		}
		cs = append(cs, c)
	}
	extra := dial(t, x)
	if !refusedAtOnce(t, extra) {
		t.Fatal("the connection over MaxConns was not refused")
	}
	if st := x.Stats(); st.Closed[ClosedRefusedCap] != 1 || st.Active != 3 {
		t.Fatalf("Stats = %+v, want 1 refused at the cap and 3 active", st)
	}
	io.WriteString(cs[0], "quit\n")
	sharedtest.Eventually(t, 5*time.Second, "a free slot", func() bool { return x.Stats().Active == 2 })
	c := dial(t, x)
	if got := readLine(t, c); got != "hello\n" {
		t.Fatalf("after a slot was freed: %q", got)
	}
}

func TestUnauthCapsLeaveRoomForLoggedIn(t *testing.T) {
	x := serve(t, Limits{MaxConns: 10, MaxUnauth: 2, MaxUnauthPerAddr: -1}, Options{}, echoUntilQuit)
	a, b := dial(t, x), dial(t, x)
	readLine(t, a)
	readLine(t, b)
	if c := dial(t, x); !refusedAtOnce(t, c) {
		t.Fatal("a third unauthenticated session was admitted over MaxUnauth 2")
	}
	io.WriteString(a, "login\n")
	if got := readLine(t, a); got != "login\n" {
		t.Fatal(got)
	}
	sharedtest.Eventually(t, 5*time.Second, "the login to free its unauthenticated slot", func() bool { return x.Stats().Unauth == 1 })
	c := dial(t, x)
	if got := readLine(t, c); got != "hello\n" {
		t.Fatalf("after a login freed a slot: %q", got)
	}
	if st := x.Stats(); st.Closed[ClosedRefusedUnauth] != 1 || st.Active != 3 || st.Unauth != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestPerAddrCap(t *testing.T) {
	x := serve(t, Limits{MaxUnauthPerAddr: 2}, Options{}, echoUntilQuit)
	readLine(t, dial(t, x))
	readLine(t, dial(t, x))
	if c := dial(t, x); !refusedAtOnce(t, c) {
		t.Fatal("a third session from 127.0.0.1 was admitted over MaxUnauthPerAddr 2")
	}
	if st := x.Stats(); st.Closed[ClosedRefusedPerAddr] != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestFirstRequestDeadline(t *testing.T) {
	x := serve(t, Limits{FirstRequest: 50 * time.Millisecond}, Options{}, echoUntilQuit)
	silent := dial(t, x)
	readLine(t, silent)
	talker := dial(t, x)
	readLine(t, talker)
	io.WriteString(talker, "ping\n")
	readLine(t, talker)
	// The silent one is closed once the deadline passes; the one that sent
	// a request is not.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("silent session: read %d, %v; want it closed", n, err)
	}
	sharedtest.Eventually(t, 5*time.Second, "the close to be counted", func() bool { return x.Stats().Closed[ClosedFirstRequest] == 1 })
	io.WriteString(talker, "still here\n")
	if got := readLine(t, talker); got != "still here\n" {
		t.Fatalf("talker: %q", got)
	}
}

func TestPanicContained(t *testing.T) {
	var calls atomic.Int32
	x := serve(t, Limits{}, Options{OnPanic: func(c *Conn) { io.WriteString(c, "500 internal error\n") }},
		func(ctx context.Context, c *Conn) {
			if calls.Add(1) == 1 {
				panic("boom")
			}
			io.WriteString(c, "fine\n")
		})
	if got := readLine(t, dial(t, x)); got != "500 internal error\n" {
		t.Fatalf("panicking session answered %q", got)
	}
	if got := readLine(t, dial(t, x)); got != "fine\n" {
		t.Fatalf("after a panic the listener answered %q", got)
	}
	sharedtest.Eventually(t, 5*time.Second, "counters", func() bool {
		st := x.Stats()
		return st.Panics == 1 && st.Closed[ClosedPanic] == 1
	})
}

func TestAcceptBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &sharedtest.FlakyListener{Listener: l}
	fl.Fails.Store(4)
	x := New(fl, Limits{}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Serve(ctx, echoUntilQuit) }()
	defer func() { cancel(); <-done }()
	c := dial(t, x)
	if got := readLine(t, c); got != "hello\n" {
		t.Fatal(got)
	}
	if st := x.Stats(); st.AcceptRetries != 4 {
		t.Fatalf("AcceptRetries = %d, want 4", st.AcceptRetries)
	}
}

// TestAcceptSurvivesEMFILE lowers the process's descriptor limit until
// accept fails with EMFILE for real, then raises it again: the listener
// must pause and come back, not stop for good.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	x := serve(t, Limits{MaxUnauthPerAddr: -1}, Options{}, echoUntilQuit)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	low := old
	low.Cur = uint64(len(ents) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
			restored = true
		}
	}
	defer restore()
	// Each client connection costs this process two descriptors (ours and
	// the accepted one), so the accepts run out first.
	var cs []net.Conn
	for range 40 {
		c, err := net.DialTimeout("tcp", x.Addr().String(), time.Second)
		if err != nil {
			break
		}
		cs = append(cs, c)
	}
	sharedtest.Eventually(t, 5*time.Second, "accept to hit EMFILE", func() bool { return x.Stats().AcceptRetries > 0 })
	restore()
	for _, c := range cs {
		c.Close()
	}
	c := dial(t, x)
	if got := readLine(t, c); got != "hello\n" {
		t.Fatalf("after EMFILE the listener answered %q", got)
	}
}

func TestDrainLetsSessionsFinish(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := New(l, Limits{Drain: 5 * time.Second}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- x.Serve(ctx, func(ctx context.Context, c *Conn) {
			_, err := c.Read(make([]byte, 1)) // blocks: the client sends nothing
			if c.Draining() {
				io.WriteString(c, "bye\n")
				return
			}
			t.Errorf("read returned %v without a drain", err)
		})
	}()
	c := dial(t, x)
	sharedtest.Eventually(t, 5*time.Second, "the session", func() bool { return x.Stats().Active == 1 })
	cancel()
	if got := readLine(t, c); got != "bye\n" {
		t.Fatalf("draining session wrote %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

func TestDrainBound(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	x := New(l, Limits{Drain: 20 * time.Millisecond}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stuck := make(chan struct{})
	go func() {
		done <- x.Serve(ctx, func(ctx context.Context, c *Conn) {
			<-c.Done() // ignores the drain: only the forced close ends it
			close(stuck)
		})
	}()
	dial(t, x)
	sharedtest.Eventually(t, 5*time.Second, "the session", func() bool { return x.Stats().Active == 1 })
	cancel()
	<-done
	<-stuck
	if st := x.Stats(); st.Closed[ClosedShutdown] != 1 {
		t.Fatalf("Stats = %+v, want the stuck session closed at shutdown", st)
	}
}

func TestOutboxSlowConsumer(t *testing.T) {
	got := make(chan ClosedState, 1)
	x := serve(t, Limits{}, Options{}, func(ctx context.Context, c *Conn) {
		o := NewOutbox(c, 4, 1<<20, 10*time.Second)
		go o.Run()
		msg := make([]byte, 64<<10)
		for i := 0; o.Send(msg); i++ {
			if i > 10000 { // 640 MB: far beyond any socket buffer
				t.Error("the queue never filled against a client that does not read")
				break
			}
		}
		<-o.Done()
		got <- c.Reason()
	})
	dial(t, x) // never reads; the kernel buffers take the first ones
	select {
	case r := <-got:
		if r != ClosedSlowConsumer {
			t.Fatalf("closed as %v, want slow consumer (the write deadline is far)", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("producer blocked by a client that does not read")
	}
}

func TestOutboxWriteTimeout(t *testing.T) {
	got := make(chan ClosedState, 1)
	big := []byte(strings.Repeat("x", 8<<20)) // more than the socket buffers hold
	x := serve(t, Limits{}, Options{}, func(ctx context.Context, c *Conn) {
		o := NewOutbox(c, 16, 64<<20, 50*time.Millisecond)
		go o.Run()
		o.Send(big)
		<-o.Done()
		got <- c.Reason()
	})
	dial(t, x)
	select {
	case r := <-got:
		if r != ClosedWriteTimeout {
			t.Fatalf("closed as %v, want write timeout", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writer stuck on a client that does not read")
	}
}

func TestOutboxFinishDeliversQueue(t *testing.T) {
	x := serve(t, Limits{}, Options{}, func(ctx context.Context, c *Conn) {
		o := NewOutbox(c, 1000, 1<<20, time.Second)
		for i := range 100 {
			o.Send([]byte{byte('a' + i%26), '\n'})
		}
		go o.Run()
		o.Finish(ClosedClient, 5*time.Second)
	})
	c := dial(t, x)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || len(b) != 200 {
		t.Fatalf("read %d bytes (%v), want the 100 queued messages", len(b), err)
	}
}

func TestWorkersContainPanics(t *testing.T) {
	w := NewWorkers("test", 2, nil)
	var answered, ran atomic.Int32
	for i := range 10 {
		w.Go(func() {
			ran.Add(1)
			if i%3 == 0 {
				panic("bad request")
			}
		}, func() { answered.Add(1) })
	}
	w.Wait()
	if ran.Load() != 10 || w.Panics() != 4 || answered.Load() != 4 {
		t.Fatalf("ran %d, panics %d, answered %d; want 10, 4, 4", ran.Load(), w.Panics(), answered.Load())
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	l, err := ListenUnixStream(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// Served: a second bind must not take it over.
	if _, err := ListenUnixStream(path); !errors.Is(err, ErrPathInUse) {
		t.Errorf("bind over a served socket = %v, want ErrPathInUse", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the served socket was removed: %v", err)
	}
	l.Close()
	if _, err := os.Stat(path); err == nil {
		t.Error("Close left the socket file")
	}

	// A stale socket of ours (bound, never served, not unlinked) is reused.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l2, err := ListenUnixStream(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	// Someone else's file at our path after we bound: Close must not
	// remove it.
	os.Remove(path)
	if err := os.WriteFile(path, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if b, err := os.ReadFile(path); err != nil || string(b) != "not ours" {
		t.Errorf("Close removed a file it did not create: %v", err)
	}
	// A regular file is never replaced.
	if _, err := ListenUnixStream(path); !errors.Is(err, ErrPathInUse) {
		t.Errorf("bind over a regular file = %v, want ErrPathInUse", err)
	}
	// A datagram socket too.
	gpath := filepath.Join(dir, "g.sock")
	pc, err := ListenUnixgram(gpath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnixgram(gpath); !errors.Is(err, ErrPathInUse) {
		t.Errorf("bind over a served datagram socket = %v, want ErrPathInUse", err)
	}
	pc.Close()
	if _, err := os.Stat(gpath); err == nil {
		t.Error("Close left the datagram socket file")
	}
}

func TestLimitedForHTTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := New(l, Limits{MaxConns: 10, MaxUnauthPerAddr: 2}, Options{})
	ll := x.Limited()
	defer ll.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	a, b := dial(t, x), dial(t, x)
	sa, sb := <-accepted, <-accepted
	if third := dial(t, x); !refusedAtOnce(t, third) {
		t.Fatal("a third connection from one address was handed to the server")
	}
	sa.Close()
	sharedtest.Eventually(t, 5*time.Second, "the slot to free", func() bool { return x.Stats().Active == 1 })
	dial(t, x)
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after a slot was freed")
	}
	sb.Close()
	a.Close()
	b.Close()
	if st := x.Stats(); st.Closed[ClosedRefusedPerAddr] != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestThrottle(t *testing.T) {
	var th Throttle
	t0 := time.Unix(1000, 0)
	if ok, n := th.Allow(t0); !ok || n != 0 {
		t.Fatal("first line held back")
	}
	for i := range 358 {
		if ok, _ := th.Allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatalf("line %d let through within the second", i)
		}
	}
	if ok, n := th.Allow(t0.Add(time.Second)); !ok || n != 358 {
		t.Fatalf("after a second: %v, %d held back; want true, 358", ok, n)
	}
}
