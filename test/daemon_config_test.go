package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// smallCapture is a generated capture of two short calls, enough for a
// daemon run that starts, processes and stops.
func smallCapture(t *testing.T) string {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.TalkTime = 2, time.Second
	name, _ := generateCapture(t, cfg)
	return name
}

// TestDaemonConfigInvalid: an invalid value in the configuration file stops
// the start with exit code 2 and a message naming the file, the line, the
// key and the reason; nothing is captured.
func TestDaemonConfigInvalid(t *testing.T) {
	pcap := smallCapture(t)
	tests := []struct {
		name   string
		body   string // lines 1 and 2 are a comment and a section header
		line   int
		key    string
		reason string
	}{
		{"port out of range", "managerport = 70000", 3, "managerport", "70000 out of range [0, 65535]"},
		{"reversed sipport range", "sipport = 5060,5080-5070", 3, "sipport", "range 5080-5070 is reversed"},
		{"bad duration", "rtptimeout = soon", 3, "rtptimeout", "want a number"},
		{"unknown driver", "sqldriver = oracle", 3, "sqldriver", "want one of sqlite, mysql"},
		{"bad log level", "loglevel = loud", 3, "loglevel", "want debug, info, warn or error"},
		{"id_sensor below -1", "id_sensor = -5", 3, "id_sensor", "out of range"},
		{"mysql without host (cross-key check)", "sqldriver = mysql\nmysqlhost =", 4, "mysqlhost", "required when sqldriver = mysql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "voipsensor.conf")
			if err := os.WriteFile(conf, []byte("# daemon test\n[general]\n"+tt.body+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, log := runDaemon(t, 10*time.Second, "-c", conf, "-r", pcap)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; log:\n%s", code, log)
			}
			for _, want := range []string{conf + ":" + strconv.Itoa(tt.line) + ":", tt.key + ":", tt.reason} {
				if !strings.Contains(log, want) {
					t.Errorf("message lacks %q; log:\n%s", want, log)
				}
			}
			if strings.Contains(log, "sensor started") {
				t.Errorf("the sensor started despite the invalid value; log:\n%s", log)
			}
		})
	}
}

// TestDaemonSetInvalid: an invalid -set override stops the start with exit
// code 2, naming the command line, the key and the reason.
func TestDaemonSetInvalid(t *testing.T) {
	code, log := runDaemon(t, 10*time.Second, "-r", smallCapture(t), "-set", "sipport=50x")
	if code != 2 {
		t.Errorf("exit code = %d, want 2; log:\n%s", code, log)
	}
	for _, want := range []string{"command line", "sipport", `bad port "50x"`} {
		if !strings.Contains(log, want) {
			t.Errorf("message lacks %q; log:\n%s", want, log)
		}
	}
}

// TestDaemonConfigUnknownKey: an unknown key is warned about with its file
// and line, and the daemon runs anyway (it processes the capture and exits
// 0 with every call's CDR).
func TestDaemonConfigUnknownKey(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "voipsensor.conf")
	body := "sipport = 5060\nfrobnication_level = 11\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "-c", conf, "-r", smallCapture(t))
	if code := d.run(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, d.log)
	}
	log := d.log.String()
	for _, want := range []string{"WARN", "file=" + conf, "line=2", "key=frobnication_level", "unknown key"} {
		if !strings.Contains(log, want) {
			t.Errorf("warning lacks %q; log:\n%s", want, log)
		}
	}
	if rows := readCDRs(t, "sqlite", d.sqliteDB()); len(rows) != 2 {
		t.Errorf("%d CDRs after the run, want 2", len(rows))
	}
}

// TestDaemonFilterRefused: a filter expression outside the supported subset
// stops the start with an error naming the expression and the problem; it
// is never widened to "everything". Checked on a file source and (as root)
// on live capture on lo.
func TestDaemonFilterRefused(t *testing.T) {
	pcap := smallCapture(t)
	tests := []struct {
		filter string
		reason string
	}{
		{"udp and frobnicate 3", "unsupported primitive"},
		{"udp port 70000", "not a number 0-65535"},
		{"udp port 5060 or", "unexpected end of expression"},
		{"(udp port 5060", "missing"},
	}
	sources := [][]string{{"-r", pcap}}
	if os.Geteuid() == 0 {
		sources = append(sources, []string{"-i", "lo"})
	} else {
		t.Log("not root: live capture on lo not checked")
	}
	for _, src := range sources {
		for _, tt := range tests {
			t.Run(src[0]+"/"+tt.filter, func(t *testing.T) {
				args := append([]string{"-set", "filter=" + tt.filter}, src...)
				code, log := runDaemon(t, 10*time.Second, args...)
				if code == 0 {
					t.Errorf("exit code 0, want a refusal; log:\n%s", log)
				}
				// The log quotes the error, so the expression's own quotes
				// are escaped there; look for its unquoted words.
				for _, want := range []string{"start failed", "filter", tt.reason, strings.Fields(tt.filter)[0]} {
					if !strings.Contains(log, want) {
						t.Errorf("message lacks %q; log:\n%s", want, log)
					}
				}
				if strings.Contains(log, "sensor started") {
					t.Errorf("the sensor started; log:\n%s", log)
				}
			})
		}
	}
}

// TestDaemonFilterOnFile: a supported filter applies to a file source as it
// does to an interface: the daemon processes exactly the frames tcpdump
// selects with the same expression.
func TestDaemonFilterOnFile(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		sharedtest.Missing(t, "tcpdump not installed (scripts/install-deps.sh installs it)")
	}
	pcap := smallCapture(t)
	for _, filter := range []string{"udp port 5060", "udp and not port 5060", "host 10.1.0.1 and udp"} {
		t.Run(filter, func(t *testing.T) {
			out, err := exec.Command("tcpdump", "-nn", "-r", pcap, filter).Output()
			if err != nil {
				t.Fatalf("tcpdump: %v", err)
			}
			want := int64(strings.Count(string(out), "\n"))
			code, log := runDaemon(t, 10*time.Second, "-set", "filter="+filter, "-r", pcap)
			if code != 0 {
				t.Fatalf("exit code %d; log:\n%s", code, log)
			}
			if got := logInt(log, "sensor stopped", "frames"); got != want {
				t.Errorf("frames = %d, want %d (tcpdump -r FILE %q)", got, want, filter)
			}
		})
	}
}
