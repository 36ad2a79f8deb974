package test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestSecretsNeverShown sets every secret setting (half in the file, half
// with -set, plus an AMI user's secret in manager.conf), runs every
// registry command through the manager socket, every MI method over HTTP,
// the AMI actions and every console API path, and greps all of the
// answers and the daemon's whole log for any secret value. It is finding 6
// of the security issue: MI arg returned the command line with
// -set server_password=... in it.
func TestSecretsNeverShown(t *testing.T) {
	dir := t.TempDir()
	random := func() []byte { b := make([]byte, 16); rand.Read(b); return b }
	secrets := map[string]string{}
	for _, k := range config.SecretKeys() {
		switch k {
		case "manager_aes_key", "manager_aes_iv":
			secrets[k] = base64.StdEncoding.EncodeToString(random()) // 16 bytes, base64
		default:
			secrets[k] = "sEcReT" + hex.EncodeToString(random())
		}
	}
	amiSecret := "sEcReT" + hex.EncodeToString(random())
	amiPath, amiPort := amiConf(t, "")
	conf, _ := os.ReadFile(amiPath)
	os.WriteFile(amiPath, bytes.Replace(conf, []byte("secret = amipass"), []byte("secret = "+amiSecret), 1), 0o600)

	miHTTP := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	webPort := freeTCPPort(t)
	sock := filepath.Join(dir, "m.sock")
	file := fmt.Sprintf("amiconfig = %s\nmanagersocket = %s\nmi_http = %s\nweb_user = admin\n", amiPath, sock, miHTTP)
	var args []string
	i := 0
	for k, v := range secrets {
		if i%2 == 0 {
			file += k + " = " + v + "\n"
		} else {
			args = append(args, "-set", k+"="+v)
		}
		i++
	}
	cf := filepath.Join(dir, "voipsensor.conf")
	if err := os.WriteFile(cf, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "-c", cf, "-set", "web_port="+strconv.Itoa(webPort), "-set", "loglevel=debug",
		"-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop")
	d := startDaemon(t, args...)
	if !d.waitLog("AMI listening", 10*time.Second) || !d.waitLog("MI HTTP listening", 10*time.Second) {
		t.Fatalf("listeners not up:\n%s", d.log)
	}
	var out bytes.Buffer // every answer, to grep at the end
	record := func(what string, b []byte) {
		fmt.Fprintf(&out, "\n==== %s\n", what)
		out.Write(b)
	}

	// Every registry command, no arguments, through the manager socket.
	help := halfCloseConn(t, "unix", sock, "help\n")
	record("help", []byte(help))
	var names []string
	for _, line := range strings.Split(help, "\n") {
		if name, _, ok := strings.Cut(line, " ... "); ok && name != "" && !strings.Contains(name, " ") {
			names = append(names, name)
		}
	}
	if len(names) < 40 {
		t.Fatalf("help listed %d commands:\n%s", len(names), help)
	}
	for _, n := range names {
		if n == "terminating" {
			continue // last, below
		}
		record("manager "+n, []byte(halfCloseConn(t, "unix", sock, n+"\n")))
	}

	// Every MI method over HTTP, with the token.
	mi := func(body string) []byte {
		req, _ := http.NewRequest("POST", "http://"+miHTTP+"/mi", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secrets["mi_http_token"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	var which struct{ Result []string }
	json.Unmarshal(mi(`{"jsonrpc":"2.0","method":"which","id":1}`), &which)
	if len(which.Result) < 40 {
		t.Fatalf("MI which listed %d methods", len(which.Result))
	}
	for _, m := range which.Result {
		if m != "terminating" {
			record("mi "+m, mi(`{"jsonrpc":"2.0","method":"`+m+`","id":1}`))
		}
	}

	// AMI: log in with the secret, then the built-in actions and Command
	// for every registry command.
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(amiPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ami strings.Builder
	ami.WriteString("Action: Login\r\nUsername: admin\r\nSecret: " + amiSecret + "\r\nEvents: off\r\n\r\n")
	for _, a := range []string{"CoreSettings", "CoreStatus", "ListCommands", "CoreShowChannels", "Status", "Ping"} {
		ami.WriteString("Action: " + a + "\r\n\r\n")
	}
	for _, n := range names {
		if n != "terminating" {
			ami.WriteString("Action: Command\r\nCommand: " + n + "\r\n\r\n")
		}
	}
	ami.WriteString("Action: Logoff\r\n\r\n")
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, ami.String())
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	c.Close()
	if !bytes.Contains(b, []byte("Authentication accepted")) {
		t.Fatalf("AMI login failed:\n%s", b)
	}
	record("ami", b)

	// The console's API, with the token.
	for _, p := range []string{"/", "/api/calls", "/api/registrations", "/api/stat", "/api/call?ref=0x1", "/api/ladder?ref=0x1"} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", webPort, p), nil)
		req.Header.Set("Authorization", "Bearer "+secrets["web_token"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		record("web "+p, b)
	}
	// arg in particular must show the command line, redacted.
	argOut := mi(`{"jsonrpc":"2.0","method":"arg","id":1}`)
	if !bytes.Contains(argOut, []byte("=REDACTED")) {
		t.Errorf("MI arg does not show the redacted settings: %s", argOut)
	}

	halfCloseConn(t, "unix", sock, "terminating\n")
	if code := d.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d after terminating", code)
	}
	record("daemon log", []byte(d.log.String()))

	all := out.String()
	if len(all) < 50_000 {
		t.Fatalf("only %d bytes of output collected", len(all))
	}
	secrets["ami secret"] = amiSecret
	for k, v := range secrets {
		if i := strings.Index(all, v); i >= 0 {
			ctx := all[max(0, strings.LastIndex(all[:i], "\n===="))+1 : min(len(all), i+len(v)+40)]
			t.Errorf("the %s value appears in the output:\n%s", k, ctx)
		}
	}
	t.Logf("%d bytes from %d manager commands, %d MI methods, AMI, the console and the log: no secret", len(all), len(names), len(which.Result))
}
