package test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestSystemdNotify plays systemd for a Type=notify service: it binds the
// notification socket, starts the daemon with NOTIFY_SOCKET and a 200 ms
// WATCHDOG_USEC, and expects READY=1 once the daemon serves, watchdog
// pings while it runs, and STOPPING=1 after SIGTERM.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := pc.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	d := newDaemon(t, "-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop")
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	d = startDaemonFrom(t, d)
	next := func(what string) string {
		select {
		case m := <-msgs:
			return m
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s notification", what)
			return ""
		}
	}
	if m := next("READY"); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	for i := range 3 {
		if m := next("WATCHDOG"); m != "WATCHDOG=1" {
			t.Fatalf("notification %d after READY: %q, want WATCHDOG=1", i, m)
		}
	}
	d.signal(syscall.SIGTERM)
	for {
		m := next("STOPPING")
		if m == "STOPPING=1" {
			break
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("unexpected notification %q", m)
		}
	}
	if code := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
