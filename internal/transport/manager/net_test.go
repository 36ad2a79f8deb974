package manager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// runNC runs netcat-openbsd with stdin and returns its output.
func runNC(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("nc")
	if err != nil {
		sharedtest.Missing(t, "nc not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nc %v: %v (%q)", args, err, out)
	}
	return string(out)
}

func TestNetcat(t *testing.T) {
	env := newEnv(t, Config{}, []calls.Call{oneCall()})
	host, port, _ := net.SplitHostPort(env.addr)
	if got := runNC(t, "getversion\n", "-N", host, port); got != "1.2.3" {
		t.Errorf("echo getversion | nc -N: %q", got)
	}
	if got := runNC(t, "totalcalls\n", "-q1", host, port); got != "1" {
		t.Errorf("echo totalcalls | nc -q1: %q", got)
	}
	if got := runNC(t, "listregisters {\"states\":\"OK\"}\n", "-U", env.sock); !strings.Contains(got, `[{"total": 1}]`) {
		t.Errorf("nc -U listregisters: %q", got)
	}
	// The wiki's runtime socket: manager_file start over TCP, then use it.
	path := filepath.Join(filepath.Dir(env.sock), "extra.sock")
	if got := runNC(t, "manager_file start "+path+"\n", "-N", host, port); got != "OK ("+path+")\n" {
		t.Fatalf("manager_file start: %q", got)
	}
	if got := runNC(t, "getverbuild\n", "-U", path); got != "1.2.3 (b7)" {
		t.Errorf("nc -U on manager_file socket: %q", got)
	}
	if got := runNC(t, "manager_file start\n", "-N", host, port); !strings.Contains(got, "already running") {
		t.Errorf("second manager_file start: %q", got)
	}
	if got := runNC(t, "manager_file stop\n", "-N", host, port); got != "OK\n" {
		t.Errorf("manager_file stop: %q", got)
	}
}

// TestManagerFileRules: manager_file creates sockets only inside the
// socket directory, never over an existing file or a socket somebody
// serves, with mode 0600, removes only what it created, and over TCP it
// needs AES when a key exists (the sniffer let it through in plaintext:
// an AES bypass, since the socket it opens needs no AES).
func TestManagerFileRules(t *testing.T) {
	key := Key{Key: bytes.Repeat([]byte{7}, 16), IV: bytes.Repeat([]byte{9}, 16)}
	env := newEnv(t, Config{}, nil)
	dir := filepath.Dir(env.sock)
	run := func(line string) string { return string(exchange(t, "unix", env.sock, []byte(line+"\n"))) }

	other := t.TempDir()
	for _, bad := range []string{other + "/x.sock", dir + "/../x.sock", dir + "/sub/x.sock"} {
		if got := run("manager_file start " + bad); !strings.Contains(got, "outside the socket directory") {
			t.Errorf("start %s: %q, want refused", bad, got)
		}
	}
	file := filepath.Join(dir, "precious")
	os.WriteFile(file, []byte("data"), 0o600)
	if got := run("manager_file start " + file); !strings.Contains(got, "not a socket") {
		t.Errorf("start over a regular file: %q", got)
	}
	if b, _ := os.ReadFile(file); string(b) != "data" {
		t.Error("the regular file was touched")
	}
	served := filepath.Join(dir, "served.sock")
	l, err := net.Listen("unix", served)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := run("manager_file start " + served); !strings.Contains(got, "somebody is serving") {
		t.Errorf("start over a served socket: %q", got)
	}
	if _, err := os.Stat(served); err != nil {
		t.Errorf("another service's socket was removed: %v", err)
	}

	path := filepath.Join(dir, "mine.sock")
	if got := run("manager_file start mine.sock"); got != "OK ("+path+")\n" {
		t.Fatalf("start mine.sock: %q", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v, want 0600", fi, err)
	}
	run("manager_file stop")
	sharedtest.Eventually(t, 5*time.Second, "the socket file removed", func() bool { _, err := os.Stat(path); return err != nil })

	// With a key, plaintext TCP may not open the door.
	if err := env.srv.Reconfigure(key, false); err != nil {
		t.Fatal(err)
	}
	if got := string(exchange(t, "tcp", env.addr, []byte("manager_file start x.sock\n"))); got != replyNeedAES {
		t.Errorf("plaintext manager_file over TCP with a key: %q, want %q", got, replyNeedAES)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.sock")); err == nil {
		t.Error("the socket was created anyway")
	}
}

// TestRunsAtLineEnd: with a one-hour idle gap and no half-close, a request
// ending in "\n" is still answered, so it ran as soon as the line was complete.
func TestRunsAtLineEnd(t *testing.T) {
	env := newEnv(t, Config{IdleGap: time.Hour}, nil)
	for _, req := range []string{"getversion\n", "getversion\r\n", "getversion\r\n\r\n"} {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "1.2.3" {
			t.Errorf("%q: reply %q, %v", req, got, err)
		}
	}
}

func TestIdleGapCompletes(t *testing.T) {
	env := newEnv(t, Config{IdleGap: 50 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "getversion") // no terminator, no half-close
	if got, err := io.ReadAll(c); err != nil || string(got) != "1.2.3" {
		t.Errorf("reply %q, %v", got, err)
	}
}

func TestOversized(t *testing.T) {
	env := newEnv(t, Config{MaxRequest: 1024}, nil)
	req := "listcalls " + strings.Repeat("x", 4000) + "\n"
	if got := string(exchange(t, "tcp", env.addr, []byte(req))); got != replyTooLarge {
		t.Errorf("reply %q, want %q", got, replyTooLarge)
	}
}

// TestMaxConns: with a TCP cap of 2 and two idle clients holding the
// slots, a third TCP connection is closed at once without a reply, while
// the unix socket, which has a cap of its own, still answers: a flood of
// the TCP port cannot lock the local administrator out.
func TestMaxConns(t *testing.T) {
	env := newEnv(t, Config{TCPLimits: conn.Limits{MaxConns: 2, FirstRequest: time.Minute}}, nil)
	var idle []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	sharedtest.Eventually(t, 5*time.Second, "2 sessions active", func() bool { return env.srv.Stats().Active == 2 })
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "getversion\n")
	got, _ := io.ReadAll(c)
	if len(got) != 0 {
		t.Errorf("over the cap: reply %q, want none", got)
	}
	if st := env.srv.Stats(); st.Refused() == 0 {
		t.Errorf("refused counter not bumped: %+v", st)
	}
	if got := string(exchange(t, "unix", env.sock, []byte("getversion\n"))); got != "1.2.3" {
		t.Errorf("unix socket while TCP is full: %q", got)
	}
	idle[0].Close()
	sharedtest.Eventually(t, 5*time.Second, "getversion answered", func() bool {
		return string(exchangeNoFail("tcp", env.addr, "getversion\n")) == "1.2.3"
	})
}

// TestFirstRequestDeadline: a connection that sends nothing is closed
// after the first-request timeout; one that sends its request in time is
// answered.
func TestFirstRequestDeadline(t *testing.T) {
	env := newEnv(t, Config{TCPLimits: conn.Limits{FirstRequest: 100 * time.Millisecond}}, nil)
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("silent connection: read %q, %v; want closed with nothing", b, err)
	}
	sharedtest.Eventually(t, 5*time.Second, "a session closed at the first-request deadline", func() bool { return env.srv.Stats().Closed[conn.ClosedFirstRequest] == 1 })
	if got := string(exchange(t, "tcp", env.addr, []byte("getversion\n"))); got != "1.2.3" {
		t.Errorf("prompt request: %q", got)
	}
}

// TestPerAddrCap: one address may hold only so many connections that have
// not sent a request.
func TestPerAddrCap(t *testing.T) {
	env := newEnv(t, Config{TCPLimits: conn.Limits{MaxUnauthPerAddr: 3, FirstRequest: time.Minute}}, nil)
	for range 3 {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	sharedtest.Eventually(t, 5*time.Second, "3 sessions active", func() bool { return env.srv.Stats().Active == 3 })
	if got := exchangeNoFail("tcp", env.addr, "getversion\n"); len(got) != 0 {
		t.Errorf("a fourth connection from 127.0.0.1 was answered %q", got)
	}
	if st := env.srv.Stats(); st.Closed[conn.ClosedRefusedPerAddr] != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func exchangeNoFail(network, addr, req string) []byte {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return b
}

func manyCalls(n int) []calls.Call {
	base := oneCall()
	out := make([]calls.Call, n)
	for i := range out {
		c := base
		c.CallRef = strings.Repeat("a", 4) + string(rune('a'+i%26))
		c.Start = base.Start.Add(time.Duration(i) * time.Millisecond)
		out[i] = c
	}
	return out
}

// TestIsolation: 300 idle connections and 50 clients that request a large
// listcalls and never read do not stop other clients from being answered.
func TestIsolation(t *testing.T) {
	// No per-address cap and a long first-request deadline: the 350
	// holders all come from 127.0.0.1 and must stay connected.
	env := newEnv(t, Config{TCPLimits: conn.Limits{MaxUnauthPerAddr: -1, FirstRequest: time.Minute}}, manyCalls(2000)) // ~1.5 MB per listcalls reply
	var hold []net.Conn
	defer func() {
		for _, c := range hold {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, c)
	}
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "listcalls\n") // and never read
		hold = append(hold, c)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", env.addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			io.WriteString(c, "totalcalls\r\n\r\n")
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, []byte("2000")) {
				errs <- string(got) + " " + errString(err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("client not answered: %s", e)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestClientAndRenderTable(t *testing.T) {
	env := newEnv(t, Config{}, []calls.Call{oneCall()})
	for _, c := range []*Client{{Addr: env.addr}, {Socket: env.sock}} {
		got, err := c.Do(context.Background(), `listcalls {"zip":"yes"}`)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, []byte(`[["callreference"`)) {
			t.Errorf("gunzipped reply starts %q", got[:min(len(got), 30)])
		}
		if !bytes.Contains(got, []byte(`"abc@host"`)) {
			t.Errorf("reply lacks the call: %q", got[:min(len(got), 200)])
		}
	}
}

func TestShutdownClosesIdle(t *testing.T) {
	env := newEnv(t, Config{TCPLimits: conn.Limits{FirstRequest: time.Minute}}, nil)
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sharedtest.Eventually(t, 5*time.Second, "1 session active", func() bool { return env.srv.Stats().Active == 1 })
	env.stop()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("idle connection still open after shutdown")
	}
	if _, err := net.Dial("tcp", env.addr); err == nil {
		t.Errorf("listener still accepting after shutdown")
	}
}

func TestManagerFileNeedsDirectory(t *testing.T) {
	srv, err := New(command.NewRegistry(), Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.StartSocket("/tmp/v.sock"); !errors.Is(err, ErrNoSocketDir) {
		t.Errorf("StartSocket without managersocket or manager_file_dir = %v, want ErrNoSocketDir", err)
	}
}
