package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// halfCloseRounds is how many times each transport is asked. A reply lost
// to the race between the client's FIN and the session's writer showed up
// in about half of the tries before the fix, so 100 rounds leave no doubt.
const halfCloseRounds = 100

// TestHalfClose writes one complete request to each transport, shuts the
// client's sending side at once (as `printf … | nc -N` and scripts do) and
// reads until the server closes: the answer must be complete every time.
func TestHalfClose(t *testing.T) {
	dir := t.TempDir()
	amiPath, amiPort := amiConf(t, "")
	mgrPort := freeTCPPort(t)
	sock := filepath.Join(dir, "manager.sock")
	miHTTP := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	fifo := filepath.Join(dir, "mi_fifo")
	conf := filepath.Join(dir, "voipsensor.conf")
	body := fmt.Sprintf("amiconfig = %s\nmanagersocket = %s\nmi_http = %s\nmi_fifo = %s\n", amiPath, sock, miHTTP, fifo)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "-c", conf, "-set", "managerport="+strconv.Itoa(mgrPort), "-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop")
	for _, l := range []string{"AMI listening", "MI FIFO listening"} {
		if !d.waitLog(l, 10*time.Second) {
			t.Fatalf("%s: not in the log:\n%s", l, d.log)
		}
	}

	t.Run("ami", func(t *testing.T) {
		req := "Action: Login\r\nUsername: admin\r\nSecret: amipass\r\nEvents: off\r\n\r\n" +
			"Action: CoreShowChannels\r\nActionID: csc-1\r\n\r\n" +
			"Action: Ping\r\nActionID: ping-2\r\n\r\n"
		for i := range halfCloseRounds {
			got := halfCloseTCP(t, "127.0.0.1:"+strconv.Itoa(amiPort), req)
			for _, want := range []string{"Asterisk Call Manager/", "Message: Authentication accepted",
				"ActionID: csc-1", "Event: CoreShowChannelsComplete", "ActionID: ping-2\r\nPing: Pong"} {
				if !strings.Contains(got, want) {
					t.Fatalf("round %d: %q missing from the answer:\n%s", i, want, got)
				}
			}
			if !strings.HasSuffix(got, "\r\n\r\n") {
				t.Fatalf("round %d: answer cut short:\n%s", i, got)
			}
		}
	})
	t.Run("manager-tcp", func(t *testing.T) {
		for i := range halfCloseRounds {
			checkListcalls(t, i, halfCloseTCP(t, "127.0.0.1:"+strconv.Itoa(mgrPort), "listcalls\r\n"))
		}
	})
	t.Run("manager-unix", func(t *testing.T) {
		for i := range halfCloseRounds {
			checkListcalls(t, i, halfCloseConn(t, "unix", sock, "listcalls\r\n"))
		}
	})
	t.Run("mi-http", func(t *testing.T) {
		js := `{"jsonrpc":"2.0","method":"uptime","id":7}`
		req := "POST /mi HTTP/1.1\r\nHost: " + miHTTP + "\r\nContent-Type: application/json\r\nConnection: close\r\n" +
			"Content-Length: " + strconv.Itoa(len(js)) + "\r\n\r\n" + js
		for i := range halfCloseRounds {
			got := halfCloseTCP(t, miHTTP, req)
			head, body, ok := strings.Cut(got, "\r\n\r\n")
			if !ok || !strings.HasPrefix(head, "HTTP/1.1 200 ") {
				t.Fatalf("round %d: answer %q", i, got)
			}
			var r rpcReply
			if err := json.Unmarshal([]byte(body), &r); err != nil || r.Error != nil || string(r.ID) != "7" ||
				!bytes.Contains(r.Result, []byte(`[sec]`)) {
				t.Fatalf("round %d: reply %q (%v)", i, body, err)
			}
		}
	})
	t.Run("xmlrpc", func(t *testing.T) {
		x := `<?xml version="1.0"?><methodCall><methodName>uptime</methodName><params></params></methodCall>`
		req := "POST /RPC2 HTTP/1.1\r\nHost: " + miHTTP + "\r\nContent-Type: text/xml\r\nConnection: close\r\n" +
			"Content-Length: " + strconv.Itoa(len(x)) + "\r\n\r\n" + x
		for i := range halfCloseRounds {
			got := halfCloseTCP(t, miHTTP, req)
			if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.Contains(got, "<methodResponse>") ||
				strings.Contains(got, "<fault>") || !strings.HasSuffix(strings.TrimSpace(got), "</methodResponse>") {
				t.Fatalf("round %d: answer %q", i, got)
			}
		}
	})
	t.Run("mi-fifo", func(t *testing.T) {
		for i := range halfCloseRounds {
			name := fmt.Sprintf("vs_halfclose_%d_%d", os.Getpid(), i)
			reply := fifoRequest(t, fifo, name, `{"jsonrpc":"2.0","method":"uptime","id":`+strconv.Itoa(i)+`}`)
			var r rpcReply
			if err := json.Unmarshal(reply, &r); err != nil || r.Error != nil || string(r.ID) != strconv.Itoa(i) {
				t.Fatalf("round %d: reply %q (%v)", i, reply, err)
			}
		}
	})
}

// checkListcalls checks a complete listcalls reply: a JSON array whose
// first element is the header row.
func checkListcalls(t *testing.T, round int, got string) {
	t.Helper()
	var rows []json.RawMessage
	if err := json.Unmarshal([]byte(got), &rows); err != nil || len(rows) == 0 || !bytes.HasPrefix(rows[0], []byte(`["`)) {
		t.Fatalf("round %d: listcalls reply not a complete table (%v): %q", round, err, got)
	}
}

func halfCloseTCP(t *testing.T, addr, req string) string {
	t.Helper()
	return halfCloseConn(t, "tcp", addr, req)
}

// halfCloseConn sends req, shuts the write side and reads until EOF.
func halfCloseConn(t *testing.T, network, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	switch cc := c.(type) {
	case *net.TCPConn:
		err = cc.CloseWrite()
	case *net.UnixConn:
		err = cc.CloseWrite()
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after half-close: %v (got %q)", err, b)
	}
	return string(b)
}

// fifoRequest writes an OpenSIPS-framed request to the MI FIFO, closing its
// end at once, and reads the reply FIFO /tmp/name to its end. The reply
// FIFO is opened for reading before the request is written, so the server
// finds its reader whatever the scheduling.
func fifoRequest(t *testing.T, fifo, name, js string) []byte {
	t.Helper()
	replyPath := "/tmp/" + name
	os.Remove(replyPath)
	if err := syscall.Mkfifo(replyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(replyPath)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(replyPath, os.O_RDONLY, 0) // blocks until the server opens it
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		done <- result{b, err}
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, ":"+name+":"+js+"\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.b
	case <-time.After(20 * time.Second):
		t.Fatal("no reply on the reply FIFO")
		return nil
	}
}
