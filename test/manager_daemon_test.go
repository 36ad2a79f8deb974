package test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// ncSend sends req with netcat-openbsd (TCP to 127.0.0.1:port, or the
// unix socket with -U) and returns the reply bytes. -N half-closes after
// the request, as scripts piping into nc do.
func ncSend(t *testing.T, port int, socket string, req []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("nc"); err != nil {
		sharedtest.Missing(t, "nc (netcat-openbsd) not installed")
	}
	args := []string{"-N", "-w", "10", "127.0.0.1", strconv.Itoa(port)}
	if socket != "" {
		args = []string{"-N", "-w", "10", "-U", socket}
	}
	cmd := exec.Command("nc", args...)
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nc %v: %v", args, err)
	}
	return out
}

// pcapCallIDs lists the Call-IDs of the INVITEs in a capture, read by
// tshark (the independent reference), or nil when tshark is absent.
func pcapCallIDs(t *testing.T, pcap string) []string {
	if _, err := exec.LookPath("tshark"); err != nil {
		return nil
	}
	out, err := exec.Command("tshark", "-r", pcap, "-Y", "sip.Method == \"INVITE\"", "-T", "fields", "-e", "sip.Call-ID").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, l := range strings.Fields(string(out)) {
		if !seen[l] {
			seen[l] = true
			ids = append(ids, l)
		}
	}
	return ids
}

// waitCalls polls totalcalls over the unix socket until it is at least n.
func waitCalls(t *testing.T, socket string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := strconv.Atoi(strings.TrimSpace(string(ncSend(t, 0, socket, []byte("totalcalls\n"))))); err == nil && v >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("totalcalls never reached %d", n)
}

// TestManagerDaemonNC queries a daemon replaying a capture in real time,
// with the call in progress, through nc over TCP and nc -U over the unix
// socket, then stops it with terminating and checks the CDR was flushed.
func TestManagerDaemonNC(t *testing.T) {
	pcap := sharedtest.Pcap(t, "sipp_rtpstream.pcap")
	port := freeTCPPort(t)
	sockDir := t.TempDir()
	sock := filepath.Join(sockDir, "sock")
	d := startDaemon(t, "-r", pcap, "--realtime", "-set", "managerport="+strconv.Itoa(port), "-set", "managersocket="+sock)
	waitCalls(t, sock, 1)

	ids := pcapCallIDs(t, pcap)
	for _, via := range []struct {
		name string
		port int
		sock string
	}{{"tcp", port, ""}, {"unix", 0, sock}} {
		t.Run(via.name, func(t *testing.T) {
			var table [][]any
			reply := ncSend(t, via.port, via.sock, []byte("listcalls\r\n\r\n"))
			if err := json.Unmarshal(reply, &table); err != nil || len(table) < 2 {
				t.Fatalf("listcalls reply %.200q: %v", reply, err)
			}
			if table[0][0] != "callreference" || table[0][1] != "callid" {
				t.Errorf("header starts %v, want callreference, callid", table[0][:2])
			}
			if ids != nil && table[1][1] != ids[0] {
				t.Errorf("listcalls callid %v, tshark says %q", table[1][1], ids[0])
			}
			var stat map[string]any
			if reply := ncSend(t, via.port, via.sock, []byte("sniffer_stat\n")); json.Unmarshal(reply, &stat) != nil || stat["version"] == nil {
				t.Errorf("sniffer_stat reply %.200q", reply)
			}
			if reply := strings.TrimSpace(string(ncSend(t, via.port, via.sock, []byte("totalcalls")))); reply != "1" {
				t.Errorf("totalcalls = %q, want 1", reply)
			}
			var regs []any
			if reply := ncSend(t, via.port, via.sock, []byte("listregisters\n")); json.Unmarshal(reply, &regs) != nil || len(regs) < 1 {
				t.Errorf("listregisters reply %.200q", reply)
			}
			if reply := string(ncSend(t, via.port, via.sock, []byte("no_such_command\n"))); !strings.Contains(reply, "command not found") {
				t.Errorf("unknown command reply %q", reply)
			}
		})
	}

	// terminating stops the daemon gracefully, the call in progress is
	// closed and its CDR written before exit.
	ncSend(t, 0, sock, []byte("terminating\n"))
	if code := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after terminating", code)
	}
	rows := readCDRs(t, "sqlite", filepath.Join(d.spool, "voipsensor.db"))
	if len(rows) != 1 || (ids != nil && rows[0].CallID != ids[0]) {
		t.Errorf("CDRs after terminating: %+v, want one for %v", rows, ids)
	}
}

// opensslEnc runs `openssl enc -aes-128-cbc` (decrypting with -d) with the
// raw key and IV: the independent AES implementation.
func opensslEnc(t *testing.T, decrypt bool, key, iv, in []byte) []byte {
	t.Helper()
	args := []string{"enc", "-aes-128-cbc", "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv)}
	if decrypt {
		args = append(args, "-d")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// TestManagerDaemonAES stores a key with `voipsensor key store`, then talks
// to the daemon with requests encrypted by openssl and decrypts its
// replies with openssl; a plaintext TCP request gets "need aes!", the
// unix socket needs no AES, and `voipsensor ctl -a` finds the stored key.
func TestManagerDaemonAES(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		sharedtest.Missing(t, "openssl not installed")
	}
	bin := voipsensorBinary(t)
	pcap := sharedtest.Pcap(t, "sipp_rtpstream.pcap")
	port := freeTCPPort(t)
	sock := filepath.Join(t.TempDir(), "sock")
	d := newDaemon(t, "-r", pcap, "--realtime", "-set", "managerport="+strconv.Itoa(port), "-set", "managersocket="+sock)
	out, err := exec.Command(bin, "key", "store", "-set", "spooldir="+d.spool).Output()
	if err != nil {
		t.Fatalf("key store: %v", err)
	}
	var stored struct{ Key, IV string }
	if err := json.Unmarshal(out, &stored); err != nil {
		t.Fatalf("key store printed %q: %v", out, err)
	}
	key, _ := base64.StdEncoding.DecodeString(stored.Key)
	iv, _ := base64.StdEncoding.DecodeString(stored.IV)
	if len(key) != 16 || len(iv) != 16 {
		t.Fatalf("stored key %d bytes, iv %d bytes; want 16/16", len(key), len(iv))
	}
	d = startDaemonFrom(t, d)
	waitCalls(t, sock, 1)

	if reply := string(ncSend(t, port, "", []byte("listcalls\n"))); reply != "need aes!\n" {
		t.Errorf("plaintext listcalls over TCP = %q, want need aes!", reply)
	}
	req := append([]byte("aes-128-cbc:"), opensslEnc(t, false, key, iv, []byte("listcalls"))...)
	req = append(req, ":sea"...)
	reply := ncSend(t, port, "", req)
	if !bytes.HasPrefix(reply, []byte("aes:")) {
		t.Fatalf("encrypted listcalls reply starts %.20q, want aes:", reply)
	}
	plain := opensslEnc(t, true, key, iv, reply[4:])
	var table [][]any
	if err := json.Unmarshal(plain, &table); err != nil || len(table) != 2 || table[0][0] != "callreference" {
		t.Errorf("decrypted listcalls %.200q: %v", plain, err)
	}
	// A wrong key is refused with the legacy text.
	bad := append([]byte("aes-128-cbc:"), opensslEnc(t, false, iv, key, []byte("listcalls"))...)
	if reply := string(ncSend(t, port, "", append(bad, ":sea"...))); reply != "failed aes decrypt!\n" {
		t.Errorf("wrong-key request = %q, want failed aes decrypt!", reply)
	}
	if reply := string(ncSend(t, 0, sock, []byte("totalcalls\n"))); strings.TrimSpace(reply) != "1" {
		t.Errorf("unix socket totalcalls = %q, want 1 without AES", reply)
	}
	ctl, err := exec.Command(bin, "ctl", "-a", "-set", "spooldir="+d.spool, "-p", strconv.Itoa(port), "--table", "listcalls").CombinedOutput()
	if err != nil || !strings.Contains(string(ctl), "CALL-ID") || !strings.Contains(string(ctl), "127.0.0.1  127.0.0.1") {
		t.Errorf("ctl -a --table listcalls: %v\n%s", err, ctl)
	}
	if ctl, err := exec.Command(bin, "ctl", "-p", strconv.Itoa(port), "listcalls").CombinedOutput(); err == nil || !strings.Contains(string(ctl), "needs AES") {
		t.Errorf("ctl without -a: %v\n%s", err, ctl)
	}
	// key delete removes the row; ctl -a then has no key.
	if out, err := exec.Command(bin, "key", "delete", "-set", "spooldir="+d.spool).CombinedOutput(); err != nil {
		t.Fatalf("key delete: %v %s", err, out)
	}
	if ctl, err := exec.Command(bin, "ctl", "-a", "-set", "spooldir="+d.spool, "-p", strconv.Itoa(port), "totalcalls").CombinedOutput(); err == nil || !strings.Contains(string(ctl), "no AES key") {
		t.Errorf("ctl -a after key delete: %v\n%s", err, ctl)
	}
}

// TestManagerDaemonReload edits the -c file under a running daemon and
// sends reload over the unix socket: an unchanged or live-changeable file
// answers "reload ok", a key that needs a restart is named in the reply,
// and a broken file is reported without stopping the daemon.
func TestManagerDaemonReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voipsensor.conf")
	sock := filepath.Join(dir, "sock")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("id_sensor = 5\nloglevel = info\n")
	startDaemon(t, "-c", conf, "-r", sharedtest.Pcap(t, "sipp_rtpstream.pcap"), "--realtime", "-set", "managersocket="+sock)
	reload := func() string { return string(ncSend(t, 0, sock, []byte("reload\n"))) }
	if got := reload(); got != "reload ok" {
		t.Errorf("reload of an unchanged file = %q, want reload ok", got)
	}
	write("id_sensor = 5\nloglevel = debug\n")
	if got := reload(); got != "reload ok" {
		t.Errorf("reload with a live key changed = %q, want reload ok", got)
	}
	write("id_sensor = 6\nloglevel = debug\n")
	if got := reload(); !strings.Contains(got, "id_sensor") || !strings.Contains(got, "restart") {
		t.Errorf("reload with id_sensor changed = %q, want it named as needing a restart", got)
	}
	write("id_sensor = banana\n")
	if got := reload(); !strings.Contains(got, "id_sensor") {
		t.Errorf("reload of a broken file = %q, want an error naming id_sensor", got)
	}
	if got := strings.TrimSpace(string(ncSend(t, 0, sock, []byte("totalcalls\n")))); got == "" {
		t.Errorf("daemon not answering after a failed reload")
	}
}
