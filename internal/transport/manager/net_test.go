package manager

import (
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
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
	path := t.TempDir() + "/extra.sock"
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

// TestMaxConns: with MaxConns 2 and two idle clients holding the slots, a
// third connection is closed at once without a reply.
func TestMaxConns(t *testing.T) {
	env := newEnv(t, Config{MaxConns: 2}, nil)
	var idle []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	checkFor(t, 5*time.Second, func() bool {
		env.srv.mu.Lock()
		defer env.srv.mu.Unlock()
		return len(env.srv.conns) == 2
	})
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
	if _, rejected := env.srv.Stats(); rejected == 0 {
		t.Errorf("rejected counter not bumped")
	}
	idle[0].Close()
	checkFor(t, 5*time.Second, func() bool {
		return string(exchangeNoFail("tcp", env.addr, "getversion\n")) == "1.2.3"
	})
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

// checkFor polls cond until it holds or d passes.
func checkFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	env := newEnv(t, Config{}, manyCalls(2000)) // ~1.5 MB per listcalls reply
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
		tab := RenderTable("listcalls", got)
		lines := strings.Split(strings.TrimSpace(tab), "\n")
		if len(lines) != 3 || strings.Fields(lines[0])[1] != "callid" || strings.Fields(lines[1])[1] != "abc@host" ||
			strings.Index(lines[0], "callid") != strings.Index(lines[1], "abc@host") || !strings.HasPrefix(lines[2], `{"total":1`) {
			t.Errorf("RenderTable:\n%s", tab)
		}
	}
	if got := RenderTable("getversion", []byte("1.2.3")); got != "1.2.3" {
		t.Errorf("RenderTable(non-table) = %q", got)
	}
}

func TestShutdownClosesIdle(t *testing.T) {
	env := newEnv(t, Config{}, nil)
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkFor(t, 5*time.Second, func() bool {
		env.srv.mu.Lock()
		defer env.srv.mu.Unlock()
		return len(env.srv.conns) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	env.srv.Shutdown(ctx)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("idle connection still open after Shutdown")
	}
	if _, err := net.Dial("tcp", env.addr); err == nil {
		t.Errorf("listener still accepting after Shutdown")
	}
}
