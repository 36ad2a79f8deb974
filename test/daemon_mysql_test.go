package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// privateMariaDB starts a MariaDB instance of this test's own with the
// control script CI names in VOIPSENSOR_TEST_MYSQL_CTL
// (scripts/mariadb-test.sh), in a temporary state directory: the test
// stops and restarts the database, which must not disturb other packages'
// tests sharing CI's instance at the same time. It returns the DSN and a
// function running a control command (down, up) on it. The test skips when
// CI's variables are absent.
func privateMariaDB(t *testing.T) (string, func(cmd string)) {
	t.Helper()
	if os.Getenv("VOIPSENSOR_TEST_MYSQL_DSN") == "" || os.Getenv("VOIPSENSOR_TEST_MYSQL_CTL") == "" {
		sharedtest.Missing(t, "VOIPSENSOR_TEST_MYSQL_DSN and VOIPSENSOR_TEST_MYSQL_CTL not set (scripts/test.sh sets them)")
	}
	ctlScript := os.Getenv("VOIPSENSOR_TEST_MYSQL_CTL")
	state := filepath.Join(t.TempDir(), "mariadb")
	ctl := func(cmd string) string {
		c := exec.Command(ctlScript, cmd)
		c.Env = append(os.Environ(), "VOIPSENSOR_MARIADB_DIR="+state)
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", ctlScript, cmd, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	dsn := ctl("start")
	t.Cleanup(func() { ctl("stop") })
	return dsn, func(cmd string) { ctl(cmd) }
}

// TestDaemonMySQLOutage runs the daemon with sqldriver = mysql against a
// real MariaDB while it replays a generated capture in (sped-up) real time,
// stops the database part-way, starts it again, and checks that every call
// of the ground truth has its row in the cdr table exactly once, with the
// generator's numbers and final code.
func TestDaemonMySQLOutage(t *testing.T) {
	dsn, ctl := privateMariaDB(t)
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("DSN %q: %v", dsn, err)
	}
	host, port, ok := strings.Cut(mc.Addr, ":")
	if !ok {
		t.Fatalf("DSN address %q has no port", mc.Addr)
	}

	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 40, 8, 3*time.Second
	cfg.Failed, cfg.Cancelled, cfg.Seed = 0.1, 0.1, 11
	pcap, calls := generateCapture(t, cfg)
	const wallSpan = 5 * time.Second
	speed := float64(replaySpan(calls)) / float64(wallSpan)

	d := startDaemon(t, "-r", pcap, "--speed", strconv.FormatFloat(speed, 'f', 3, 64),
		"-set", "sqldriver=mysql", "-set", "mysqlhost="+host, "-set", "mysqlport="+port,
		"-set", "mysqldb="+mc.DBName, "-set", "mysqlusername="+mc.User, "-set", "mysqlpassword="+mc.Passwd,
		"-set", "cdr_batch_interval=200ms")
	started := d.logTime(`msg="sensor started"`)

	// Wait for the first rows (the store works), then take the database
	// away while calls keep ending.
	before := 0
	for deadline := time.Now().Add(wallSpan / 2); before < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		before = len(readCDRs(t, "mysql", dsn))
	}
	downAt := time.Now()
	ctl("down")
	time.Sleep(wallSpan / 5)
	ctl("up")
	upAt := time.Now()

	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	rows := readCDRs(t, "mysql", dsn)

	// How many calls ended while the database was down (mapped from the
	// capture's clock onto this replay), so the log shows the outage mattered.
	duringOutage := 0
	for _, c := range calls {
		end := started.Add(time.Duration(float64(c.End.Sub(calls[0].Start)) / speed))
		if end.After(downAt) && end.Before(upAt) {
			duringOutage++
		}
	}
	t.Logf("%d rows before the outage, %d calls ended during it (%v), %d rows at the end; daemon: cdr_written=%d cdr_spilled=%d cdr_failed=%d",
		before, duringOutage, upAt.Sub(downAt).Round(time.Millisecond), len(rows),
		logInt(d.log.String(), "sensor stopped", "cdr_written"), logInt(d.log.String(), "sensor stopped", "cdr_spilled"),
		logInt(d.log.String(), "sensor stopped", "cdr_failed"))
	if duringOutage == 0 {
		t.Errorf("no call ended while the database was down; the outage tested nothing")
	}

	seen := countByCallID(rows)
	byID := map[string]cdrRow{}
	for _, r := range rows {
		byID[r.CallID] = r
	}
	for _, c := range calls {
		if n := seen[c.CallID]; n != 1 {
			t.Errorf("call %s has %d rows, want 1", c.CallID, n)
			continue
		}
		r := byID[c.CallID]
		if r.LastCode != int64(c.LastCode) || !sameState(r.State, c.State) || r.Caller != c.Caller || r.Called != c.Called {
			t.Errorf("call %s: row (%s→%s, %d, %s), want (%s→%s, %d, %s)", c.CallID,
				r.Caller, r.Called, r.LastCode, r.State, c.Caller, c.Called, c.LastCode, c.State)
		}
	}
	if len(rows) != len(calls) {
		t.Errorf("%d rows, want %d (one per generated call)", len(rows), len(calls))
	}
}
