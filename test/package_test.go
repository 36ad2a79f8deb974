package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestDebianPackage builds the .deb with scripts/package.sh, installs it
// with dpkg -i (CI runs as root on a throw-away machine), runs the
// installed `voipsensor version`, checks the files, the system user and
// the unit (systemd-analyze verify), and removes it again.
func TestDebianPackage(t *testing.T) {
	sharedtest.Root(t)
	sharedtest.Tool(t, "dpkg-deb")
	if testing.Short() {
		t.Skip("builds and installs a package")
	}
	out, err := exec.Command("../scripts/package.sh", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("package.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "voipsensor").Run() })
	v, err := exec.Command("/usr/bin/voipsensor", "version").Output()
	if err != nil || !regexp.MustCompile(`^voipsensor \d+\.\d+\.\d+\n$`).Match(v) {
		t.Errorf("installed voipsensor version: %q, %v", v, err)
	}
	for _, f := range []string{"/lib/systemd/system/voipsensor.service", "/etc/voipsensor/voipsensor.conf",
		"/usr/share/man/man1/voipsensor.1.gz", "/usr/share/voipsensor/grafana/voipsensor.json", "/var/spool/voipsensor"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}
	if err := exec.Command("getent", "passwd", "voipsensor").Run(); err != nil {
		t.Error("no system user voipsensor after install")
	}
	// The installed sample configuration is a valid one: check it by
	// reading a capture with it (read needs no listener).
	if out, err := exec.Command("/usr/bin/voipsensor", "run", "-c", "/etc/voipsensor/voipsensor.conf", "-set", "spooldir="+t.TempDir(),
		"-set", "managerport=0", "-set", "web_port=0", "-set", "metrics_bind=", "-r", sharedtest.Pcap(t, "sipp_rtpstream.pcap")).CombinedOutput(); err != nil {
		t.Errorf("run -c the installed configuration: %v\n%s", err, out)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command(sa, "verify", "/lib/systemd/system/voipsensor.service").CombinedOutput()
		// verify also complains about unrelated units of the machine; only
		// lines naming ours count.
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "voipsensor.service") {
				t.Errorf("systemd-analyze verify: %s (%v)", l, err)
			}
		}
	}
}

// TestGrafanaDashboard: the shipped dashboard is valid JSON whose queries
// name only metrics the sensor exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "voipsensor.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	// The families the sensor exports, from the metrics command of a
	// running daemon would be best; the source names them once.
	src, _ := os.ReadFile(filepath.Join("..", "internal", "tableview", "metrics.go"))
	for _, m := range regexp.MustCompile(`"(voipsensor_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		known[m[1]] = true
	}
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range regexp.MustCompile(`voipsensor_[a-z_]+`).FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !known[base] {
					t.Errorf("panel %q queries %s, which the sensor does not export", p.Title, m)
				}
				n++
			}
		}
	}
	if len(d.Panels) < 8 || n < 10 {
		t.Errorf("%d panels, %d metric references", len(d.Panels), n)
	}
}
