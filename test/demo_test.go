package test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs 'voipsensor demo -duration 8s' as a newcomer would, reads
// the manager address from what it prints, asks the manager API for
// listcalls until calls in progress show up (stamped with the wall clock),
// and checks that the demo exits 0 and removes its temporary directory.
func TestDemo(t *testing.T) {
	cmd := exec.Command(voipsensorBinary(t), "demo", "-duration", "8s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed after cmd.Wait has set exitErr
	var exitErr error
	stop := make(chan struct{}) // the test is over: drop stdout lines
	t.Cleanup(func() {
		close(stop)
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})

	// The banner: "CDRs go to SQLite in DIR (...)", then one line per
	// endpoint ("manager  tcp  ADDR") with indented examples, then a blank
	// line.
	var dir, addr, amiAddr, amiSecret string
	var examples []string // the indented commands the banner suggests
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
			}
		}
		close(lines)
		exitErr = cmd.Wait()
		close(exited)
	}()
	timeout := time.After(15 * time.Second)
banner:
	for {
		select {
		case l, ok := <-lines:
			if !ok || l == "" && addr != "" {
				break banner
			}
			if rest, ok := strings.CutPrefix(l, "CDRs go to SQLite in "); ok {
				dir, _, _ = strings.Cut(rest, " ")
			}
			if f := strings.Fields(l); len(f) == 3 && f[0] == "manager" && f[1] == "tcp" {
				addr = f[2]
			}
			if f := strings.Fields(l); len(f) == 3 && f[0] == "ami" && f[1] == "tcp" {
				amiAddr = f[2]
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "user demo, secret "); ok {
				amiSecret = rest
			}
			if ex, ok := strings.CutPrefix(l, "    "); ok && !strings.HasPrefix(ex, "user ") && !strings.HasPrefix(ex, "open ") {
				examples = append(examples, ex)
			}
		case <-timeout:
			t.Fatalf("no manager address printed in 15 s; stderr:\n%s", stderr.String())
		}
	}
	if addr == "" || dir == "" {
		t.Fatalf("banner without the manager address or the directory; stderr:\n%s", stderr.String())
	}
	go func() {
		for range lines { // drain the rest of stdout
		}
	}()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("temporary directory: %v", err)
	}
	if amiAddr != "" { // listed once the AMI transport is wired
		if amiSecret == "" {
			t.Error("AMI listed without the demo user's secret")
		} else if reply, err := amiLogin(amiAddr, amiSecret); err != nil || !strings.Contains(reply, "Response: Success") {
			t.Errorf("AMI login as demo: %v\n%s", err, reply)
		} else {
			t.Logf("AMI login as demo on %s: success", amiAddr)
		}
	}

	// The first call is invited at 0 s and answered after 1-4 s; poll.
	var calls [][]any
	for deadline := time.Now().Add(7 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		calls, err = listCalls(addr)
		if err != nil {
			t.Fatalf("listcalls: %v", err)
		}
		if len(calls) > 1 {
			break
		}
	}
	if len(calls) < 2 {
		t.Fatalf("listcalls shows no call within 7 s: %v", calls)
	}
	header := map[string]int{}
	for i, h := range calls[0] {
		if s, ok := h.(string); ok {
			header[s] = i
		}
	}
	for _, row := range calls[1:] {
		id, _ := row[header["callid"]].(string)
		if !strings.HasSuffix(id, "@voipsensor.test") {
			t.Errorf("callid %q is not one of the demo's calls", id)
		}
		// ShiftToNow: the call date is today's wall clock, not 2026-01-01.
		when, _ := row[header["calldate_num"]].(float64)
		if d := time.Unix(int64(when), 0).Sub(start); d < -2*time.Second || d > 15*time.Second {
			t.Errorf("call %s dated %v, %v after the demo started; want the wall clock", id, time.Unix(int64(when), 0), d)
		}
	}

	// Every command the banner prints works as printed, from a shell
	// where voipsensor is on PATH (the one-liners once flaked: AMI dropped
	// replies when nc closed its sending side).
	want := map[string]string{"nc -U": `[["callreference"`, "| nc 127": `[["callreference"`, "ctl ": "CALL-ID",
		"Action: Login": "Event: CoreShowChannelsComplete", "/mi": `"jsonrpc":"2.0","result":{"columns":["callreference"`,
		"/metrics": "voipsensor_calls_in_progress "}
	path := filepath.Dir(voipsensorBinary(t)) + string(os.PathListSeparator) + os.Getenv("PATH")
	ran := 0
	for _, ex := range examples {
		sh := exec.Command("sh", "-c", ex)
		sh.Env = append(os.Environ(), "PATH="+path)
		out, err := sh.CombinedOutput()
		matched := false
		for k, v := range want {
			if strings.Contains(ex, k) {
				matched = true
				if err != nil || !strings.Contains(string(out), v) {
					t.Errorf("banner example %q: %v, output lacks %q:\n%s", ex, err, v, out)
				}
			}
		}
		if !matched {
			t.Errorf("banner example %q is not checked by the test", ex)
		}
		ran++
	}
	if ran < 5 {
		t.Errorf("ran %d banner examples, want the manager, ctl, AMI, MI and metrics ones: %q", ran, examples)
	}

	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("demo exited with %v; stderr:\n%s", exitErr, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo still running 30 s after start with -duration 8s; stderr:\n%s", stderr.String())
	}
	if el := time.Since(start); el < 8*time.Second {
		t.Errorf("demo exited after %v, want -duration 8s", el)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s still there after exit (stat: %v)", dir, err)
	}
	if !strings.Contains(stderr.String(), "sensor stopped") {
		t.Errorf("no clean stop logged:\n%s", stderr.String())
	}
}

// listCalls sends the manager command listcalls the way 'echo listcalls |
// nc' does and decodes the JSON table (header row first).
func listCalls(addr string) ([][]any, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "listcalls\n"); err != nil {
		return nil, err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	var rows [][]any
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, errors.New("reply is not a JSON table: " + err.Error() + ": " + string(b))
	}
	return rows, nil
}

// amiLogin logs in on the AMI port and returns what the server said up to
// the end of its reply to Login.
func amiLogin(addr, secret string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "Action: Login\r\nUsername: demo\r\nSecret: "+secret+"\r\nActionID: 1\r\n\r\n"); err != nil {
		return "", err
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if i := strings.Index(got.String(), "Response: "); i >= 0 && strings.Contains(got.String()[i:], "\r\n\r\n") {
			return got.String(), nil
		}
		if err != nil {
			return got.String(), err
		}
	}
}
