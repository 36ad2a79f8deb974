package test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/jhttp"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

func needMITool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		sharedtest.Missing(t, "%s not installed (scripts/install-deps.sh installs it)", name)
	}
	return p
}

func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func decodeReply(t *testing.T, out string) rpcReply {
	t.Helper()
	var r rpcReply
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil || r.JSONRPC != "2.0" {
		t.Fatalf("not a JSON-RPC reply: %q (%v)", out, err)
	}
	return r
}

// TestMIKamctl drives the FIFO with Debian's kamctl (Kamailio framing,
// reply_name inside the JSON, reply FIFO in /tmp).
func TestMIKamctl(t *testing.T) {
	needMITool(t, "kamctl")
	m := startMIDaemon(t)
	env := []string{"RPCFIFOPATH=" + m.fifo}
	r := decodeReply(t, runTool(t, env, "kamctl", "uptime"))
	var up struct {
		Now     string `json:"now"`
		UpSince string `json:"up_since"`
		Uptime  *int   `json:"uptime"`
	}
	if err := json.Unmarshal(r.Result, &up); err != nil || up.Uptime == nil || *up.Uptime < 0 {
		t.Errorf("kamctl uptime result %s", r.Result)
	}
	// kamctl rpc passes a flat positional array: the server folds it into
	// the statistics array (documented leniency).
	r = decodeReply(t, runTool(t, env, "kamctl", "rpc", "get_statistics", "usrloc:", "dialog:"))
	var st map[string]int64
	if err := json.Unmarshal(r.Result, &st); err != nil {
		t.Fatalf("get_statistics %s: %v", r.Result, err)
	}
	for _, k := range []string{"usrloc:registered_users", "dialog:active_dialogs"} {
		if _, ok := st[k]; !ok {
			t.Errorf("kamctl rpc get_statistics: no %s in %s", k, r.Result)
		}
	}
	// kamctl ul show calls ul.dump: the capture has two REGISTERs
	// (alice and bob, tshark -Y 'sip.Method==REGISTER').
	r = decodeReply(t, runTool(t, env, "kamctl", "ul", "show"))
	for _, aor := range []string{`"AOR":"alice@127.0.0.1"`, `"AOR":"bob@127.0.0.1"`} {
		if !strings.Contains(string(r.Result), aor) {
			t.Errorf("kamctl ul show: no %s in %s", aor, r.Result)
		}
	}
	r = decodeReply(t, runTool(t, env, "kamctl", "rpc", "no.such.method"))
	if r.Error == nil || r.Error.Code != -32601 {
		t.Errorf("unknown method: %+v", r.Error)
	}
}

// TestMICurl: curl against POST /mi as OpenSIPS documents it (with
// Content-Type: application/json), including the HTTP status rules.
func TestMICurl(t *testing.T) {
	needMITool(t, "curl")
	m := startMIDaemon(t)
	url := "http://" + m.http + "/mi"
	js := []string{"-H", "Content-Type: application/json"}
	curl := func(args ...string) string {
		return runTool(t, nil, "curl", append(append([]string{"-sS"}, js...), args...)...)
	}
	out := curl("-d", `{"jsonrpc":"2.0","method":"which","params":["log_level"],"id":"w"}`, url)
	if want := `{"jsonrpc":"2.0","result":[[],["level"],["level","pid"]],"id":"w"}`; out != want {
		t.Errorf("which log_level = %s, want %s", out, want)
	}
	out = curl("-o", "/dev/null", "-w", "%{http_code}", "-d", `{"jsonrpc":"2.0","method":"uptime"}`, url)
	if out != "202" {
		t.Errorf("notification status %s, want 202", out)
	}
	out = runTool(t, nil, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url)
	if out != "405" {
		t.Errorf("GET status %s, want 405", out)
	}
	// log_level set really changes the daemon's level: debug lines appear.
	// A form POST (what any web page can make a browser send) is refused.
	out = runTool(t, nil, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-d", `{"jsonrpc":"2.0","method":"uptime","id":3}`, url)
	if out != "415" {
		t.Errorf("form-encoded POST status %s, want 415", out)
	}
	out = curl("-d", `{"jsonrpc":"2.0","method":"log_level","params":{"level":4},"id":1}`, url)
	if want := `{"jsonrpc":"2.0","result":{"New global log level":4},"id":1}`; out != want {
		t.Errorf("log_level 4 = %s", out)
	}
	out = curl("-d", `{"jsonrpc":"2.0","method":"log_level","id":2}`, url)
	if !strings.Contains(out, `"Log level":4`) {
		t.Errorf("log_level get after set = %s", out)
	}
}

// TestMIPythonXMLRPC: Python's xmlrpc.client against /RPC2.
func TestMIPythonXMLRPC(t *testing.T) {
	py := needMITool(t, "python3")
	m := startMIDaemon(t)
	script := `
import sys, xmlrpc.client
p = xmlrpc.client.ServerProxy("http://` + m.http + `/RPC2")
up = p.uptime()
assert up["Up time"].endswith(" [sec]"), up
st = p.get_statistics(["usrloc:", "capture:frames"])
assert "usrloc:registered_users" in st and "capture:frames" in st, st
named = p.which({"command": "ul_show_contact"})
assert named == [["table_name", "aor"]], named
c = p.ul_show_contact("location", "alice@127.0.0.1")
assert c["AOR"] == "alice@127.0.0.1" and c["Contacts"][0]["Contact"].startswith("sip:alice@"), c
try:
    p.nosuch()
    sys.exit("no fault")
except xmlrpc.client.Fault as f:
    assert f.faultCode == -32601 and f.faultString == "server error. requested method not found", f
try:
    p.ul_show_contact("location", "nobody@x")
    sys.exit("no fault")
except xmlrpc.client.Fault as f:
    assert f.faultCode == 404 and f.faultString == "AOR not found", f
print("ok")
`
	if out := runTool(t, nil, py, "-c", script); strings.TrimSpace(out) != "ok" {
		t.Errorf("python: %s", out)
	}
}

// TestMISocat: socat against the UDP and unix datagram sockets.
func TestMISocat(t *testing.T) {
	needMITool(t, "socat")
	m := startMIDaemon(t)
	req := `{"jsonrpc":"2.0","method":"get_statistics","params":[["usrloc:registered_users"]],"id":42}`
	client := filepath.Join(t.TempDir(), "client.sock")
	for _, addr := range []string{"UDP:" + m.udp, "UNIX-SENDTO:" + m.unix + ",bind=" + client} {
		cmd := exec.Command("socat", "-t", "3", "-T", "3", "-", addr)
		cmd.Stdin = strings.NewReader(req)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("socat %s: %v %s", addr, err, out)
		}
		if want := `{"jsonrpc":"2.0","result":{"usrloc:registered_users":2},"id":42}`; string(out) != want {
			t.Errorf("socat %s: %s, want %s", addr, out, want)
		}
		os.Remove(client)
	}
	cmd := exec.Command("socat", "-t", "3", "-T", "3", "-", "UDP:"+m.udp)
	cmd.Stdin = strings.NewReader("not json")
	if out, _ := cmd.CombinedOutput(); string(out) != "400 Parse_error" {
		t.Errorf("garbage over UDP: %q, want 400 Parse_error", out)
	}
}

// TestMIGoClient: creachadair/jrpc2 over HTTP (jhttp) against /mi.
func TestMIGoClient(t *testing.T) {
	m := startMIDaemon(t)
	cli := jrpc2.NewClient(jhttp.NewChannel("http://"+m.http+"/mi", nil), nil)
	defer cli.Close()
	ctx := context.Background()
	var ver map[string]string
	if err := cli.CallResult(ctx, "version", nil, &ver); err != nil || !strings.HasPrefix(ver["Server"], "voipsensor (") {
		t.Errorf("version = %v, %v", ver, err)
	}
	var st map[string]int64
	if err := cli.CallResult(ctx, "get_statistics", map[string]any{"statistics": []string{"all"}}, &st); err != nil || len(st) < 20 {
		t.Errorf("get_statistics all = %d stats, %v", len(st), err)
	}
	var dl struct{ Dialogs []json.RawMessage }
	if err := cli.CallResult(ctx, "dlg_list", nil, &dl); err != nil || dl.Dialogs == nil {
		t.Errorf("dlg_list = %+v, %v", dl, err)
	}
	err := cli.CallResult(ctx, "get_statistics", []any{}, &st)
	var je *jrpc2.Error
	if !errors.As(err, &je) || je.Code != -32602 {
		t.Errorf("get_statistics without params: %v, want -32602", err)
	}
	err = cli.CallResult(ctx, "get_statistics", []any{[]string{"nosuch"}}, &st)
	if !errors.As(err, &je) || je.Code != 404 || je.Message != "Statistics Not Found" {
		t.Errorf("unknown stat: %v, want 404 Statistics Not Found", err)
	}
}
