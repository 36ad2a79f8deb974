package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// miDaemon is a daemon with every MI listener bound on loopback: HTTP
// (/mi and /RPC2), the FIFO, a UDP and a unix datagram socket (two
// mi_datagram lines, so from a config file).
type miDaemon struct {
	*daemon
	http, fifo, udp, unix string
}

func startMIDaemon(t testing.TB, extra ...string) *miDaemon {
	t.Helper()
	dir := t.TempDir()
	m := &miDaemon{
		http: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		fifo: filepath.Join(dir, "mi_fifo"),
		unix: filepath.Join(dir, "mi.sock"),
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.udp = u.LocalAddr().String()
	u.Close()
	conf := filepath.Join(dir, "voipsensor.conf")
	body := fmt.Sprintf("[general]\nmi_http = %s\nmi_fifo = %s\nmi_datagram = udp:%s\nmi_datagram = %s\nsip-register = yes\n", m.http, m.fifo, m.udp, m.unix)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-c", conf}, extra...)
	if len(extra) == 0 {
		args = append(args, "-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop")
	}
	m.daemon = startDaemon(t, args...)
	if !m.waitLog("MI datagram listening", 5*time.Second) {
		t.Fatalf("MI listeners not up:\n%s", m.log)
	}
	if len(extra) == 0 {
		// The capture's two REGISTERs (alice, bob) come early; wait for both.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, r := postMI(t, m.http, `{"jsonrpc":"2.0","method":"get_statistics","params":[["usrloc:registered_users"]],"id":1}`)
			if string(r.Result) == `{"usrloc:registered_users":2}` {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("registrations not seen: %s", r.Result)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return m
}

// rpcReply is a JSON-RPC 2.0 reply.
type rpcReply struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
	ID json.RawMessage `json:"id"`
}

// postMI posts body to /mi with net/http and decodes the reply.
func postMI(t testing.TB, addr, body string) (int, rpcReply) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/mi", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r rpcReply
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("reply %q: %v", b, err)
		}
	}
	return resp.StatusCode, r
}
