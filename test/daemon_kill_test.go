package test

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
)

// killCapture generates the capture the kill tests replay: 60 calls, six at
// a time, with some failed and cancelled attempts (one CDR row each too).
// It returns the capture, its calls in INVITE order and the capture's first
// frame time.
func killCapture(t *testing.T) (string, []genCall, time.Time) {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 60, 6, 4*time.Second
	cfg.Failed, cfg.Cancelled = 0.1, 0.1
	cfg.Seed = 7
	name, calls := generateCapture(t, cfg)
	return name, calls, calls[0].Start
}

// replaySpan is the capture time from the first INVITE to the last call's
// end.
func replaySpan(calls []genCall) time.Duration {
	var last time.Time
	for _, c := range calls {
		if c.End.After(last) {
			last = c.End
		}
	}
	return last.Sub(calls[0].Start)
}

// TestDaemonSIGTERMFlushes replays a generated capture in real time (sped
// up), sends SIGTERM part-way and checks the graceful stop: exit 0 and a
// CDR row, exactly once, for every call whose INVITE had been processed,
// ended or still open, and for no other. The rows are therefore a prefix of
// the ground truth in INVITE order; which prefix is bounded by the time of
// the signal mapped onto the capture's clock.
func TestDaemonSIGTERMFlushes(t *testing.T) {
	pcap, calls, capStart := killCapture(t)
	const wallSpan = 3 * time.Second
	speed := float64(replaySpan(calls)) / float64(wallSpan)
	d := startDaemon(t, "-r", pcap, "--speed", ftoa(speed))
	started := d.logTime(`msg="sensor started"`)

	time.Sleep(wallSpan * 2 / 5) // part-way, on purpose
	sigAt := time.Now()
	d.signal(syscall.SIGTERM)
	if code := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0; log:\n%s", code, d.log)
	}

	rows := readCDRs(t, "sqlite", d.sqliteDB())
	seen := countByCallID(rows)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("call %s has %d rows, want 1", id, n)
		}
	}
	k := len(seen)
	if k == 0 || k == len(calls) {
		t.Fatalf("%d of %d calls have a row: SIGTERM was not part-way", k, len(calls))
	}
	for i, c := range calls {
		if (i < k) != (seen[c.CallID] > 0) {
			t.Errorf("call %d (%s, INVITE at +%v): row present = %v, want the rows to be the first %d calls in INVITE order",
				i, c.CallID, c.Start.Sub(capStart), seen[c.CallID] > 0, k)
		}
	}

	// The capture time at the signal; calls whose INVITE came clearly
	// before it must have a row, calls clearly after it must not. The
	// slack covers the start-up between the log line and the first frame,
	// and the signal's delivery.
	virt := capStart.Add(time.Duration(float64(sigAt.Sub(started)) * speed))
	slack := time.Duration(float64(300*time.Millisecond) * speed)
	byID := map[string]cdrRow{}
	for _, r := range rows {
		byID[r.CallID] = r
	}
	ended := 0
	for _, c := range calls {
		r, ok := byID[c.CallID]
		switch {
		case c.Start.Before(virt.Add(-slack)) && !ok:
			t.Errorf("call %s: INVITE %v before the signal, but no row", c.CallID, virt.Sub(c.Start))
		case c.Start.After(virt.Add(slack)) && ok:
			t.Errorf("call %s: INVITE %v after the signal, but a row", c.CallID, c.Start.Sub(virt))
		}
		if ok && c.End.Before(virt.Add(-slack)) {
			// Ended well before the signal: the row is the complete call.
			ended++
			if r.LastCode != int64(c.LastCode) || !sameState(r.State, c.State) || r.Caller != c.Caller || r.Called != c.Called {
				t.Errorf("call %s: row (%s→%s, %d, %s), want (%s→%s, %d, %s)", c.CallID,
					r.Caller, r.Called, r.LastCode, r.State, c.Caller, c.Called, c.LastCode, c.State)
			}
		}
	}
	t.Logf("SIGTERM at capture +%v (speed %.1f): %d of %d calls have a row (%d had ended, %d were open)",
		virt.Sub(capStart).Round(time.Millisecond), speed, k, len(calls), ended, k-ended)
}

// TestDaemonSIGKILLLoss replays the same capture, kills the daemon with
// SIGKILL part-way and reports how many calls that had ended at least one
// second before the kill have no row. The documented bound (issue #3,
// README) is that after SIGKILL at most the last second of ended calls may
// be missing. The writer flushes on a fixed cdr_batch_interval (1 s by
// default), so a call can wait that long in the queue plus the time of the
// write itself; and this test knows when a call ended only from the replay
// schedule, which the daemon may run behind on a loaded machine. So the
// assertion allows killSlack beyond the second, and the log says how many
// rows were missing at exactly one second. Rows must never be duplicated.
func TestDaemonSIGKILLLoss(t *testing.T) {
	const killSlack = 500 * time.Millisecond
	pcap, calls, capStart := killCapture(t)
	const wallSpan = 4 * time.Second
	speed := float64(replaySpan(calls)) / float64(wallSpan)
	d := startDaemon(t, "-r", pcap, "--speed", ftoa(speed))
	started := d.logTime(`msg="sensor started"`)

	time.Sleep(wallSpan * 3 / 4) // part-way, on purpose
	killAt := time.Now()
	d.signal(syscall.SIGKILL)
	d.wait(10 * time.Second)

	rows := readCDRs(t, "sqlite", d.sqliteDB())
	seen := countByCallID(rows)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("call %s has %d rows, want 1", id, n)
		}
	}
	// wall maps a capture time to the wall clock of this replay. The
	// daemon's "sensor started" line precedes its first frame by a few
	// milliseconds at most, so a call is counted as ended slightly later
	// than it really did: the count of missing rows is not flattered.
	wall := func(v time.Time) time.Time {
		return started.Add(time.Duration(float64(v.Sub(capStart)) / speed))
	}
	var ended, ended1s, missing, missing1s int
	for _, c := range calls {
		end := wall(c.End)
		if end.After(killAt) {
			continue
		}
		ended++
		age := killAt.Sub(end)
		if age >= time.Second {
			ended1s++
		}
		if seen[c.CallID] > 0 {
			continue
		}
		missing++
		if age >= time.Second {
			missing1s++
			t.Logf("call %s ended %v before SIGKILL and has no row", c.CallID, age.Round(time.Millisecond))
		}
		if age >= time.Second+killSlack {
			t.Errorf("call %s ended %v before SIGKILL but has no row (bound: 1 s + %v slack)", c.CallID, age.Round(time.Millisecond), killSlack)
		}
	}
	t.Logf("SIGKILL after %v of replay (speed %.1f): %d calls had ended, %d rows; missing: %d of the %d ended ≥ 1 s before the kill, %d of all %d ended",
		killAt.Sub(started).Round(time.Millisecond), speed, ended, len(rows), missing1s, ended1s, missing, ended)
	if ended1s == 0 {
		t.Fatalf("no call had ended a second before the kill; the test measured nothing")
	}
}

// sameState compares the cdr table's state with the generator's: the
// generator's "failed" covers the table's busy (486/600) and failed (other
// final errors).
func sameState(row, truth string) bool {
	if truth == "failed" {
		return row == "failed" || row == "busy"
	}
	return row == truth
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
