package test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// The security issue's findings reproduced against the daemon as a
// process. Finding 6 (secrets) is TestSecretsNeverShown, finding 8 (AMI
// permissions) TestAMIPermissionsEnforced; the server API's floods
// (findings 4 and 5) are internal/transport/server's tests.

// TestUnsafeBindsRefused is finding 7: a listener bound to a non-loopback
// address without authentication refuses to start, with an error naming
// the setting and the one that would authenticate it, before anything is
// bound or captured.
func TestUnsafeBindsRefused(t *testing.T) {
	pcap := smallCapture(t)
	for _, tc := range []struct {
		setting string
		args    []string
		remedy  string
	}{
		{"mi_http", []string{"-set", "mi_http=0.0.0.0:" + strconv.Itoa(freeTCPPort(t))}, "mi_http_token"},
		{"managerip", []string{"-set", "managerip=0.0.0.0", "-set", "managerport=" + strconv.Itoa(freeTCPPort(t))}, "manager_aes_key"},
		{"web_bind", []string{"-set", "web_bind=0.0.0.0", "-set", "web_port=" + strconv.Itoa(freeTCPPort(t))}, "web_token"},
		{"metrics_bind", []string{"-set", "metrics_bind=0.0.0.0:0"}, "metrics_token"},
		{"server_bind", []string{"-set", "server_bind=0.0.0.0", "-set", "server_bind_port=" + strconv.Itoa(freeTCPPort(t))}, "server_password"},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			code, log := runDaemon(t, 20*time.Second, append(tc.args, "-r", pcap)...)
			if code == 0 {
				t.Fatalf("started with %s on 0.0.0.0 and no authentication; log:\n%s", tc.setting, log)
			}
			wants := []string{tc.setting, tc.remedy}
			if tc.setting != "server_bind" { // server_bind without a password is refused even on loopback
				wants = append(wants, "allow_unauthenticated_remote")
			}
			for _, want := range wants {
				if !strings.Contains(log, want) {
					t.Errorf("error lacks %q; log:\n%s", want, log)
				}
			}
			if strings.Contains(log, "sensor started") || strings.Contains(log, " listening") {
				t.Errorf("something started before the refusal; log:\n%s", log)
			}
		})
	}
}

// httpDo sends one request and returns the status and body.
func httpDo(t *testing.T, method, url, host, origin, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s %s: CORS header %s sent", method, url, k)
		}
	}
	return resp.StatusCode, string(b)
}

// TestMIBrowserAttacks is findings 2 and 3 on MI over HTTP: a web page
// cannot POST a command to a loopback MI (a simple request with
// text/plain, or any request with a foreign Origin), and a page on a
// rebound name cannot read it. Each attack asks for `terminating`: the
// daemon must still be running and answering afterwards.
func TestMIBrowserAttacks(t *testing.T) {
	m := startMIDaemon(t)
	url := "http://" + m.http + "/mi"
	stop := `{"jsonrpc":"2.0","method":"terminating","id":1}`
	for _, tc := range []struct {
		name, host, origin, ctype string
		want                      int
	}{
		{"CSRF text/plain", "", "", "text/plain", http.StatusUnsupportedMediaType},
		{"CSRF form", "", "", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"foreign Origin", "", "http://evil.example", "application/json", http.StatusForbidden},
		{"DNS rebinding", "evil.example:" + strings.Split(m.http, ":")[1], "", "application/json", http.StatusMisdirectedRequest},
	} {
		code, body := httpDo(t, "POST", url, tc.host, tc.origin, tc.ctype, stop)
		if code != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, code, tc.want, body)
		}
	}
	// XML-RPC needs text/xml the same way.
	if code, _ := httpDo(t, "POST", "http://"+m.http+"/RPC2", "", "", "text/plain",
		`<?xml version="1.0"?><methodCall><methodName>terminating</methodName></methodCall>`); code != http.StatusUnsupportedMediaType {
		t.Errorf("XML-RPC as text/plain: status %d, want 415", code)
	}
	if code, r := postMI(t, m.http, `{"jsonrpc":"2.0","method":"version","id":2}`); code != http.StatusOK || r.Error != nil {
		t.Fatalf("after the attacks MI answers %d %+v", code, r.Error)
	}
	if strings.Contains(m.log.String(), "sensor stopped") {
		t.Fatalf("an attack stopped the sensor; log:\n%s", m.log)
	}
}

// TestWebConsoleRebinding is finding 3 on the console: a rebound Host
// gets 421 and no call data; the console's own name is served.
func TestWebConsoleRebinding(t *testing.T) {
	d := startDaemon(t, "-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop", "-set", "web_port="+strconv.Itoa(freeTCPPort(t)))
	if !d.waitLog("web console listening", 10*time.Second) {
		t.Fatalf("no web console; log:\n%s", d.log)
	}
	m := regexp.MustCompile(`web console listening" addr=http://(127\.0\.0\.1:\d+)/`).FindStringSubmatch(d.log.String())
	if m == nil {
		t.Fatalf("console address not in the log:\n%s", d.log)
	}
	addr := m[1]
	port := strings.Split(addr, ":")[1]
	if code, body := httpDo(t, "GET", "http://"+addr+"/api/calls", "evil.example:"+port, "", "", ""); code != http.StatusMisdirectedRequest || strings.Contains(body, "callreference") {
		t.Errorf("rebound Host: status %d, body %.80q; want 421 and no data", code, body)
	}
	if code, body := httpDo(t, "GET", "http://"+addr+"/api/calls", "localhost:"+port, "", "", ""); code != http.StatusOK {
		t.Errorf("localhost: status %d (%s), want 200", code, body)
	}
	if code, _ := httpDo(t, "GET", "http://"+addr+"/api/calls", "", "http://evil.example", "", ""); code != http.StatusForbidden {
		t.Errorf("cross-site read: status %d, want 403", code)
	}
}

// TestManagerFileNeedsAES is finding 1 on the manager's TCP port: with an
// AES key configured, a plaintext manager_file is refused like every
// other command, and no socket appears.
func TestManagerFileNeedsAES(t *testing.T) {
	bin := voipsensorBinary(t)
	port := freeTCPPort(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "manager.sock")
	d := newDaemon(t, "-r", sharedtest.Pcap(t, "sipp_rtpstream.pcap"), "--realtime", "--loop",
		"-set", "managerport="+strconv.Itoa(port), "-set", "managersocket="+sock)
	if out, err := exec.Command(bin, "key", "store", "-set", "spooldir="+d.spool).CombinedOutput(); err != nil {
		t.Fatalf("key store: %v %s", err, out)
	}
	startDaemonFrom(t, d)
	target := filepath.Join(dir, "v.sock")
	if reply := string(ncSend(t, port, "", []byte("manager_file start "+target+"\n"))); reply != "need aes!\n" {
		t.Errorf("plaintext manager_file over TCP = %q, want need aes!", reply)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("%s exists after the refused request (%v)", target, err)
	}
	// Over the local unix socket (0600, no AES), a path outside the
	// manager_file directory is refused too.
	outside := filepath.Join(t.TempDir(), "x.sock")
	if reply := ncSend(t, 0, sock, []byte("manager_file start "+outside+"\n")); bytes.HasPrefix(reply, []byte("OK")) {
		t.Errorf("manager_file outside its directory answered %q", reply)
	}
	if _, err := os.Lstat(outside); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v)", outside, err)
	}
}
