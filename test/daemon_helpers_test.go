package test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the mysql driver for the MariaDB backend test
	_ "modernc.org/sqlite"             // the sqlite driver reading the daemon's CDR table

	"github.com/voipsensor/voipsensor/internal/gen"
)

// This file holds the harness of the daemon tests (daemon_*_test.go): a
// running `voipsensor run` subprocess with its log, the cdr table read with
// plain SQL, and generated captures with their ground truth.

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is one `voipsensor run` subprocess.
type daemon struct {
	t     testing.TB
	cmd   *exec.Cmd
	log   *syncBuffer // stdout and stderr together
	spool string
	done  chan struct{}
	err   error // Wait's result, valid after done is closed
}

// daemonArgs returns the arguments that keep a test daemon to itself: a
// temporary spool directory (and so SQLite file) and no fixed TCP ports
// (the metrics endpoint on a port the kernel picks).
func daemonArgs(spool string) []string {
	return []string{"run", "-set", "spooldir=" + spool, "-set", "managerport=0", "-set", "web_port=0", "-set", "metrics_bind=127.0.0.1:0"}
}

// startDaemon starts `voipsensor run` with daemonArgs plus args and waits
// until it logs "sensor started" (the packet source is open then). It fails
// the test if the daemon exits first. The process is killed at cleanup if
// the test left it running.
func startDaemon(t testing.TB, args ...string) *daemon {
	t.Helper()
	return startDaemonFrom(t, newDaemon(t, args...))
}

// startDaemonFrom starts a daemon prepared by newDaemon, as startDaemon does.
func startDaemonFrom(t testing.TB, d *daemon) *daemon {
	t.Helper()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log)
		}
	})
	if !d.waitLog("msg=\"sensor started\"", 15*time.Second) {
		t.Fatalf("daemon did not start; log:\n%s", d.log)
	}
	return d
}

func newDaemon(t testing.TB, args ...string) *daemon {
	spool := t.TempDir()
	d := &daemon{t: t, log: new(syncBuffer), spool: spool, done: make(chan struct{})}
	d.cmd = exec.Command(voipsensorBinary(t), append(daemonArgs(spool), args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	return d
}

// runDaemon runs `voipsensor run` to completion and returns its exit code
// and log.
func runDaemon(t testing.TB, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	d := newDaemon(t, args...)
	return d.run(timeout), d.log.String()
}

// run starts a daemon made by newDaemon and waits for its exit code.
func (d *daemon) run(timeout time.Duration) int {
	d.t.Helper()
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	return d.wait(timeout)
}

// waitLog polls the log until it contains s or the daemon exits.
func (d *daemon) waitLog(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(d.log.String(), s) {
			return true
		}
		select {
		case <-d.done:
			return strings.Contains(d.log.String(), s)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the daemon to exit and returns its exit code (-1 when
// killed by a signal). It fails the test after timeout.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Fatalf("daemon still running after %v; log:\n%s", timeout, d.log)
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	if d.err != nil {
		d.t.Fatalf("daemon: %v", d.err)
	}
	return 0
}

// logTime returns the timestamp of the first log line containing msg.
func (d *daemon) logTime(msg string) time.Time {
	d.t.Helper()
	for _, line := range strings.Split(d.log.String(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		m := regexp.MustCompile(`^time=(\S+)`).FindStringSubmatch(line)
		if m == nil {
			break
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			d.t.Fatalf("log time %q: %v", m[1], err)
		}
		return ts
	}
	d.t.Fatalf("no log line with %q in:\n%s", msg, d.log)
	return time.Time{}
}

// logInt returns the integer attribute key of the last log line containing
// msg, or -1.
func logInt(log, msg, key string) int64 {
	var v int64 = -1
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(key) + `=(\d+)`)
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		if m := re.FindStringSubmatch(line); m != nil {
			v, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	return v
}

// sqliteDB is the daemon's SQLite file.
func (d *daemon) sqliteDB() string { return filepath.Join(d.spool, "voipsensor.db") }

// cdrRow is the part of a cdr table row the daemon tests check.
type cdrRow struct {
	CallID     string
	Caller     string
	Called     string
	CallDate   time.Time
	DurationMS int64
	LastCode   int64
	State      string
	AReceived  sql.NullInt64
	BReceived  sql.NullInt64
	ALost      sql.NullInt64
	BLost      sql.NullInt64
	ASport     sql.NullInt64
	BSport     sql.NullInt64
	// SensorDropped is 1 when the sensor lost frames during the call.
	SensorDropped int64
}

// readCDRs reads every row of the cdr table with plain SQL (driver
// "sqlite" with a file path, or "mysql" with a DSN).
func readCDRs(t testing.TB, driver, dsn string) []cdrRow {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT callid, caller, called, calldate, duration_ms, lastSIPresponseNum, state,
		a_received, b_received, a_lost, b_lost, a_sport, b_sport, sensor_dropped FROM cdr ORDER BY ID`)
	if err != nil {
		t.Fatalf("query cdr: %v", err)
	}
	defer rows.Close()
	var out []cdrRow
	for rows.Next() {
		var r cdrRow
		if err := rows.Scan(&r.CallID, &r.Caller, &r.Called, &r.CallDate, &r.DurationMS, &r.LastCode, &r.State,
			&r.AReceived, &r.BReceived, &r.ALost, &r.BLost, &r.ASport, &r.BSport, &r.SensorDropped); err != nil {
			t.Fatalf("scan cdr: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// countByCallID counts the rows of each Call-ID.
func countByCallID(rows []cdrRow) map[string]int {
	n := make(map[string]int, len(rows))
	for _, r := range rows {
		n[r.CallID]++
	}
	return n
}

// genCall is the part of the generator's ground truth (internal/gen/doc.go)
// the daemon tests use.
type genCall struct {
	CallID   string    `json:"callid"`
	Caller   string    `json:"caller"`
	Called   string    `json:"called"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	LastCode int       `json:"last_sip_code"`
	State    string    `json:"state"`
}

// generateCapture writes a generated capture into dir and returns its path
// and the calls of the ground truth, in INVITE order.
func generateCapture(t testing.TB, cfg gen.Config) (string, []genCall) {
	t.Helper()
	var pcap, js bytes.Buffer
	if _, err := gen.Generate(cfg, &pcap, &js); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	name := filepath.Join(t.TempDir(), "gen.pcap")
	if err := os.WriteFile(name, pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Calls []genCall `json:"calls"`
	}
	if err := json.Unmarshal(js.Bytes(), &tr); err != nil {
		t.Fatalf("truth: %v", err)
	}
	sort.SliceStable(tr.Calls, func(i, j int) bool { return tr.Calls[i].Start.Before(tr.Calls[j].Start) })
	return name, tr.Calls
}
