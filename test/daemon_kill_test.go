package test

import (
	"database/sql"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
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
// ended or still open, and for no other. The daemon logs how many frames
// it analysed; the time of that last frame, read from the capture with
// gopacket's reader, is the cut: calls with an INVITE before it have a row,
// those after it none, and those that ended before it a complete one. No
// assumption about how fast the replay ran.
func TestDaemonSIGTERMFlushes(t *testing.T) {
	pcap, calls, capStart := killCapture(t)
	frameTimes := pcapTimes(t, pcap)
	const wallSpan = 3 * time.Second
	speed := float64(replaySpan(calls)) / float64(wallSpan)
	d := startDaemon(t, "-r", pcap, "--speed", ftoa(speed))

	time.Sleep(wallSpan * 2 / 5) // part-way, on purpose
	d.signal(syscall.SIGTERM)
	if code := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0; log:\n%s", code, d.log)
	}
	n := logInt(d.log.String(), `msg="sensor stopped"`, "frames")
	if n <= 0 || int(n) >= len(frameTimes) {
		t.Fatalf("the daemon analysed %d of %d frames: SIGTERM was not part-way", n, len(frameTimes))
	}
	cut := frameTimes[n-1]

	rows := readCDRs(t, "sqlite", d.sqliteDB())
	seen := countByCallID(rows)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("call %s has %d rows, want 1", id, n)
		}
	}
	byID := map[string]cdrRow{}
	for _, r := range rows {
		byID[r.CallID] = r
	}
	ended := 0
	for _, c := range calls {
		r, ok := byID[c.CallID]
		switch {
		case c.Start.Equal(cut):
			continue // a tie with the last frame: either way is right
		case !c.Start.After(cut) && !ok:
			t.Errorf("call %s: INVITE %v before the last frame analysed, but no row", c.CallID, cut.Sub(c.Start))
		case c.Start.After(cut) && ok:
			t.Errorf("call %s: INVITE %v after the last frame analysed, but a row", c.CallID, c.Start.Sub(cut))
		}
		if ok && c.End.Before(cut) {
			// Ended before the stop: the row is the complete call.
			ended++
			if r.LastCode != int64(c.LastCode) || !sameState(r.State, c.State) || r.Caller != c.Caller || r.Called != c.Called {
				t.Errorf("call %s: row (%s→%s, %d, %s), want (%s→%s, %d, %s)", c.CallID,
					r.Caller, r.Called, r.LastCode, r.State, c.Caller, c.Called, c.LastCode, c.State)
			}
		}
	}
	if len(seen) == 0 || len(seen) == len(calls) {
		t.Fatalf("%d of %d calls have a row: SIGTERM was not part-way", len(seen), len(calls))
	}
	t.Logf("SIGTERM after %d frames, capture +%v (speed %.1f): %d of %d calls have a row (%d had ended, %d were open)",
		n, cut.Sub(capStart).Round(time.Millisecond), speed, len(seen), len(calls), ended, len(seen)-ended)
}

// pcapTimes returns the timestamp of every frame of a pcap, read with
// gopacket's pcapgo (not ours).
func pcapTimes(t *testing.T, name string) []time.Time {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for {
		_, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ci.Timestamp)
	}
}

// TestDaemonSIGKILLLoss replays the same capture, kills the daemon with
// SIGKILL part-way and checks what a crash may not do: duplicate a row,
// leave the database unreadable, or store a call other than as it was
// (every row equals the ground truth of its call: a call is stored only
// once it has ended). It waits for the first rows before the kill so that the
// check is never empty, and reports how many calls that had ended a second
// before the kill (on the replay's schedule) have no row: README's bound
// is that after SIGKILL at most the last second of ended calls may be
// missing. That figure depends on how far the daemon was behind its
// schedule on a loaded machine, so it is reported, not asserted.
func TestDaemonSIGKILLLoss(t *testing.T) {
	pcap, calls, capStart := killCapture(t)
	const wallSpan = 4 * time.Second
	speed := float64(replaySpan(calls)) / float64(wallSpan)
	d := startDaemon(t, "-r", pcap, "--speed", ftoa(speed))
	started := d.logTime(`msg="sensor started"`)

	// Part-way: at least three quarters of the span, and rows stored.
	time.Sleep(wallSpan * 3 / 4) // part-way, on purpose
	for deadline := time.Now().Add(20 * time.Second); len(readCDRsIfAny(t, d.sqliteDB())) < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no rows stored 20 s into the replay")
		}
	}
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
	truth := map[string]genCall{}
	for _, c := range calls {
		truth[c.CallID] = c
	}
	for _, r := range rows {
		c, ok := truth[r.CallID]
		if !ok {
			t.Errorf("row for unknown call %s", r.CallID)
			continue
		}
		if r.LastCode != int64(c.LastCode) || !sameState(r.State, c.State) || r.Caller != c.Caller || r.Called != c.Called {
			t.Errorf("call %s: row (%s→%s, %d, %s), want (%s→%s, %d, %s)", c.CallID,
				r.Caller, r.Called, r.LastCode, r.State, c.Caller, c.Called, c.LastCode, c.State)
		}
	}
	// The figure: calls that ended a second before the kill on the
	// replay's schedule, and how many of them have no row.
	wall := func(v time.Time) time.Time {
		return started.Add(time.Duration(float64(v.Sub(capStart)) / speed))
	}
	var ended1s, missing1s int
	for _, c := range calls {
		if age := killAt.Sub(wall(c.End)); age >= time.Second {
			ended1s++
			if seen[c.CallID] == 0 {
				missing1s++
				t.Logf("call %s ended %v before SIGKILL (on schedule) and has no row", c.CallID, age.Round(time.Millisecond))
			}
		}
	}
	t.Logf("SIGKILL after %v of replay (speed %.1f): %d rows, all complete and exact; missing: %d of the %d calls that ended ≥ 1 s before the kill on the replay's schedule",
		killAt.Sub(started).Round(time.Millisecond), speed, len(rows), missing1s, ended1s)
}

// readCDRsIfAny reads the cdr table, or returns nothing while the
// database or its table does not exist yet.
func readCDRsIfAny(t *testing.T, name string) []cdrRow {
	t.Helper()
	if _, err := os.Stat(name); err != nil {
		return nil
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil
	}
	defer db.Close()
	var n int
	if db.QueryRow(`SELECT count(*) FROM cdr`).Scan(&n) != nil {
		return nil
	}
	return make([]cdrRow, n)
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
