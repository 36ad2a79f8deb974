package ami

import (
	"bytes"
	"context"
	"errors"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// refused reports whether the server closed c without writing a byte.
func refused(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 64))
	return n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
}

// logBuffer is a log destination safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAcceptSurvivesEMFILE runs the process out of descriptors while a
// client waits to be accepted: the accept fails with EMFILE, and the
// listener must wait and accept it once descriptors are back, not stop
// serving for good.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	h := startServer(t, nil)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	low := old
	low.Cur = uint64(len(ents) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	restored := false
	restore := func() {
		if !restored {
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
			restored = true
		}
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer restore()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		files = append(files, f)
		if len(files) > 1000 {
			t.Fatal("descriptors never ran out")
		}
	}
	// One descriptor for our end of a connection: the server has none
	// left to accept it with.
	files[len(files)-1].Close()
	files = files[:len(files)-1]
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sharedtest.Eventually(t, 5*time.Second, "accept to hit EMFILE", func() bool { return h.srv.Stats().AcceptRetries > 0 })
	restore()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	banner := make([]byte, len("Asterisk Call Manager/9.0.0\r\n"))
	if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "Asterisk Call Manager/9.0.0\r\n" {
		t.Fatalf("after EMFILE: banner %q, %v", banner, err)
	}
}

// TestActionPanicContained runs an action whose rendering panics, as its
// own action and through Command: the session is answered with an AMI
// error and closed, the process and the port live on, and the panic is
// counted and its stack logged once.
func TestActionPanicContained(t *testing.T) {
	var logs logBuffer
	h := newHarness(t, func(_ *Config, o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	h.reg.Register(command.Command{Name: "explode", Perm: command.PermSystem, Doc: "a table whose rows panic",
		Run: func(context.Context, *command.Request) (command.Result, error) {
			return &command.Table{Columns: []command.Column{{Name: "x"}}, Len: 1,
				Emit: func(int, command.CellWriter) { panic("boom") }}, nil
		}})
	h.start(t)
	for _, req := range []string{
		"Action: Explode\r\nActionID: e1\r\n\r\n",
		"Action: Command\r\nActionID: e1\r\nCommand: explode\r\n\r\n",
	} {
		cl := h.dial(t)
		cl.login("admin", "s3cret")
		cl.readUntil("FullyBooted")
		cl.send(req)
		if m := cl.read(); m != "Response: Error\r\nActionID: e1\r\nMessage: Internal error\r\n" {
			t.Errorf("%q: answered %q", req, m)
		}
		if m := cl.read(); m != "" {
			t.Errorf("%q: after the panic read %q, want the session closed", req, m)
		}
	}
	cl := h.dial(t)
	cl.login("admin", "s3cret")
	cl.readUntil("FullyBooted")
	cl.send("Action: Ping\r\nActionID: p\r\n\r\n")
	if m := cl.read(); !strings.HasPrefix(m, "Response: Success\r\nActionID: p\r\nPing: Pong\r\n") {
		t.Errorf("ping after the panics: %q", m)
	}
	sharedtest.Eventually(t, 5*time.Second, "the panics to be counted and logged", func() bool {
		st := h.srv.Stats()
		return st.Panics == 2 && st.Closed[conn.ClosedPanic] == 2 && strings.Count(logs.String(), "session panicked") == 2
	})
	if out := logs.String(); strings.Count(out, "stack=") != 1 {
		t.Errorf("want the stack logged once:\n%s", out)
	}
}

// TestRenderPanicContained makes rendering the first event panic: the
// event is dropped and counted, and the next one reaches the session.
func TestRenderPanicContained(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.TimestampEvents = true })
	var calls atomic.Int32
	h.srv.rend.Now = func() time.Time {
		if calls.Add(1) == 1 {
			panic("render boom")
		}
		return time.Unix(1700000000, 0)
	}
	h.start(t)
	cl := h.dial(t)
	cl.login("admin", "s3cret")
	cl.readUntil("FullyBooted")
	start := time.Unix(1700000000, 0)
	h.bus.Publish(&event.Event{Kind: event.CallNew, CallRef: 1, Caller: "100", Called: "200", Start: start})
	h.bus.Publish(&event.Event{Kind: event.CallNew, CallRef: 2, Caller: "101", Called: "201", Start: start})
	got := cl.readUntil("Event: DialBegin")
	if len(got) != 3 || !strings.Contains(got[0], "Channel: SIP/101-00000002\r\n") {
		t.Errorf("after a rendering panic: %q", got)
	}
	if st := h.srv.Stats(); st.RenderPanics != 1 || st.EventsRendered != 3 {
		t.Errorf("RenderPanics %d, EventsRendered %d, want 1, 3", st.RenderPanics, st.EventsRendered)
	}
}

// TestPerAddressCap: one address holds at most authlimitperip sessions
// that have not logged in; another address still gets in, and logging in
// frees the slot.
func TestPerAddressCap(t *testing.T) {
	h := startServer(t, func(c *Config, _ *Options) {
		c.AuthLimit, c.AuthLimitPerIP, c.AuthTimeout = 3, 2, time.Minute
	})
	first := h.dial(t)
	h.dial(t)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !refused(t, c) {
		t.Fatal("a third unauthenticated session from 127.0.0.1 got in, want it refused before the banner")
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if other, err := d.Dial("tcp", h.addr); err != nil {
		t.Logf("no second loopback address (%v): skipped", err)
	} else {
		defer other.Close()
		other.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(io.LimitReader(other, 29)); err != nil || string(b) != "Asterisk Call Manager/9.0.0\r\n" {
			t.Errorf("from 127.0.0.2: %q, %v", b, err)
		}
	}
	first.login("admin", "s3cret")
	h.dial(t) // the logged-in session's slot is free again
	if st := h.srv.Stats(); st.Closed[conn.ClosedRefusedPerAddr] != 1 || st.Closed[conn.ClosedRefusedUnauth] != 0 {
		t.Errorf("refused per address %d, by authlimit %d, want 1, 0",
			st.Closed[conn.ClosedRefusedPerAddr], st.Closed[conn.ClosedRefusedUnauth])
	}
}

// TestHalfCloseAnswersEverything: a client that sends its actions and
// shuts its sending side gets every answer before the session closes.
func TestHalfCloseAnswersEverything(t *testing.T) {
	h := startServer(t, nil)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "Action: Login\r\nUsername: admin\r\nSecret: s3cret\r\nEvents: off\r\n\r\n"+
		"Action: CoreShowChannels\r\nActionID: csc\r\n\r\n"+
		"Action: Ping\r\nActionID: p\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"Authentication accepted", "Event: CoreShowChannelsComplete\r\nActionID: csc\r\n",
		"ActionID: p\r\nPing: Pong"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q missing from %q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("answer cut short: %q", got)
	}
}

// TestShutdownDeliversBacklog: events the bus holds when the server is
// told to stop still reach the sessions before they are closed.
func TestShutdownDeliversBacklog(t *testing.T) {
	h := startServer(t, nil)
	cl := h.dial(t)
	cl.login("admin", "s3cret")
	cl.readUntil("FullyBooted")
	start := time.Unix(1700000000, 0)
	const calls = 50
	for i := range calls {
		h.bus.Publish(&event.Event{Kind: event.CallNew, CallRef: uint64(i), Caller: "100", Called: "200", Start: start})
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	n := 0
	for m := cl.read(); m != ""; m = cl.read() {
		if strings.HasPrefix(m, "Event: DialBegin\r\n") {
			n++
		}
	}
	if n != calls {
		t.Errorf("%d DialBegin before the close, want %d", n, calls)
	}
	if st := h.srv.Stats(); st.Closed[conn.ClosedShutdown] != 1 {
		t.Errorf("closed by shutdown: %d, want 1", st.Closed[conn.ClosedShutdown])
	}
}

// TestChannelActionsThroughRegistry: CoreShowChannels, Status and
// CoreStatus render the calls_in_progress command, which the registry
// runs with the user's write classes: a user without the call class is
// refused, and ListCommands says what they need.
func TestChannelActionsThroughRegistry(t *testing.T) {
	h := startServer(t, nil)
	cl := h.dial(t)
	cl.login("admin", "s3cret")
	cl.readUntil("FullyBooted")
	cl.send("Action: Status\r\nActionID: st\r\nChannel: SIP/200-00000007;2\r\n\r\n")
	got := cl.readUntil("StatusComplete")
	if len(got) != 3 || !strings.Contains(got[1], "Channel: SIP/200-00000007;2\r\nChannelState: 6\r\n") ||
		!strings.Contains(got[1], "Uniqueid: 1700000000.15\r\nLinkedid: 1700000000.14\r\nType: SIP\r\nSeconds: 75\r\nActionID: st\r\n") ||
		!strings.Contains(got[2], "ListItems: 1\r\nItems: 1\r\n") {
		t.Errorf("Status: %q", got)
	}
	cl.send("Action: Status\r\nChannel: SIP/nobody-00000001\r\n\r\n")
	if m := cl.read(); m != "Response: Error\r\nMessage: No such channel\r\n" {
		t.Errorf("Status of an unknown channel: %q", m)
	}
	cl.send("Action: CoreShowChannels\r\n\r\n")
	got = cl.readUntil("CoreShowChannelsComplete")
	if len(got) != 3 || !strings.Contains(got[1], "Duration: 00:01:15\r\nBridgeId: \r\nCallID: c7@x\r\n") {
		t.Errorf("CoreShowChannels: %q", got)
	}
	cl.send("Action: CoreStatus\r\n\r\n")
	if m := cl.read(); !strings.Contains(m, "CoreCurrentCalls: 1\r\n") {
		t.Errorf("CoreStatus: %q", m)
	}
	cl.send("Action: ListCommands\r\n\r\n")
	if m := cl.read(); !strings.Contains(m, "CoreShowChannels: List currently active channels (Priv: call)\r\n") {
		t.Errorf("ListCommands for admin: %q", m)
	}

	sys := h.dial(t) // write = system
	sys.login("filtered", "pw")
	sys.readUntil("FullyBooted")
	for _, a := range []string{"CoreShowChannels", "Status", "CoreStatus"} {
		sys.send("Action: " + a + "\r\nActionID: x\r\n\r\n")
		if m := sys.read(); m != "Response: Error\r\nActionID: x\r\nMessage: Permission denied\r\n" {
			t.Errorf("%s without the call class: %q", a, m)
		}
	}
	sys.send("Action: ListCommands\r\n\r\n")
	if m := sys.read(); strings.Contains(m, "CoreShowChannels:") || !strings.Contains(m, "Filter:") {
		t.Errorf("ListCommands for a system-only user: %q", m)
	}
}
