package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// historyBase is the call date of historyCalls(…)[0]; call i starts i
// minutes later.
var historyBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// historyCalls are n calls, with what both schemas store alike:
//
//   - Call-ID call-%04d@x, caller 10%02d, called 20%02d counting down
//     (2011 for call 0 of 12), so that a number is the caller of one call
//     and the called of another;
//   - the caller's SIP address 192.0.2.(10 + i%3), the callee's
//     192.0.2.(20 + i%2);
//   - every third call (i%3 == 2) unanswered: 486, 404, 487, 480 in turn
//     (busy, failed, cancelled, noanswer), no RTP;
//   - the others answered, the caller's stream with MOS 3.0 + i/10 and
//     10·i packets lost of 3000, the callee's at 4.5 without loss;
//   - call 4 ended by the RTP timeout, call 7 by a shutdown, call 5 by the
//     setup timeout, the rest normally.
func historyCalls(n int) []cdr.Record {
	codes := []int{486, 404, 487, 480}
	states := []cdr.State{cdr.StateBusy, cdr.StateFailed, cdr.StateCancelled, cdr.StateNoAnswer}
	out := make([]cdr.Record, n)
	for i := range out {
		r := vmRecord(fmt.Sprintf("call-%04d@x", i))
		shift := time.Duration(i)*time.Minute + historyBase.Sub(r.CallDate)
		move := func(t *time.Time) {
			if !t.IsZero() {
				*t = t.Add(shift)
			}
		}
		for _, t := range []*time.Time{&r.CallDate, &r.CallEnd, &r.LastPacketAt, &r.LastSIPAt, &r.AnsweredAt, &r.ProgressAt, &r.ByeAt, &r.ByeOKAt} {
			move(t)
		}
		r.Caller, r.Called = fmt.Sprintf("10%02d", i), fmt.Sprintf("20%02d", n-1-i)
		r.SIPCallerAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i%3)}), 5060)
		r.SIPCalledAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i%2)}), 5060)
		if i%3 == 2 {
			k := (i / 3) % 4
			r.LastSIPCode, r.LastSIPReason, r.State = codes[k], "Nope", states[k]
			r.A, r.B, r.Streams = nil, nil, nil
			r.AnsweredAt, r.ByeAt, r.ByeOKAt, r.ConnectDuration = time.Time{}, time.Time{}, time.Time{}, 0
			r.WhoHanged = cdr.HangupNone
		} else {
			a, b := *r.A, *r.B
			for j := range a.Delay {
				a.Delay[j] = 0
			}
			a.MOSF1Mult10, a.MOSF2Mult10, a.MOSAdaptMult10 = 30+i, 30+i, 30+i
			a.Lost, a.Duplicates = int64(10*i), 0
			a.LossPercMult1000 = int(math.Round(float64(a.Lost) / float64(a.Received+a.Lost) * 100000))
			for _, s := range []*cdr.Stream{&a, &b} {
				s.First, s.Last = s.First.Add(shift), s.Last.Add(shift)
			}
			r.A, r.B = &a, &b
			r.Streams = []cdr.Stream{b, a}
			r.ConnectDuration = r.CallEnd.Sub(r.AnsweredAt)
		}
		switch i {
		case 4:
			r.Ending = cdr.EndingRTPTimeout
		case 5:
			r.Ending = cdr.EndingSetupTimeout
		case 7:
			r.Ending = cdr.EndingShutdown
		}
		out[i] = r
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// searchCases are the queries over historyCalls(12) with the calls they
// must return, in order; total is the count when it is not the rows'.
var searchCases = []struct {
	name  string
	q     Query
	want  []int
	total int
}{
	{"all", Query{}, []int{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 0},
	{"caller prefix", Query{Caller: "100%"}, []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 0},
	{"caller exact", Query{Caller: "1011"}, []int{11}, 0},
	{"caller one char", Query{Caller: "10_1"}, []int{11, 1}, 0},
	{"caller no match", Query{Caller: "1%9%9"}, nil, 0},
	{"glob characters are literal", Query{Caller: "*%"}, nil, 0},
	{"called suffix", Query{Called: "%11"}, []int{0}, 0},
	{"number either side", Query{Number: "%05"}, []int{6, 5}, 0},
	{"ip either side", Query{IP: netip.MustParseAddr("192.0.2.21")}, []int{11, 9, 7, 5, 3, 1}, 0},
	{"ip caller side", Query{IP: netip.MustParseAddr("192.0.2.11")}, []int{10, 7, 4, 1}, 0},
	{"ip unknown", Query{IP: netip.MustParseAddr("198.51.100.1")}, nil, 0},
	{"callid", Query{CallID: "call-0003@x"}, []int{3}, 0},
	{"callid pattern", Query{CallID: "call-001%"}, []int{11, 10}, 0},
	{"date range", Query{From: historyBase.Add(3 * time.Minute), To: historyBase.Add(6 * time.Minute)}, []int{5, 4, 3}, 0},
	{"date range seconds", Query{From: historyBase.Add(3*time.Minute - 500*time.Millisecond), To: historyBase.Add(3*time.Minute + 500*time.Millisecond)}, []int{3}, 0},
	{"code", Query{CodeMin: 486, CodeMax: 486}, []int{2}, 0},
	{"code class", Query{CodeMin: 400, CodeMax: 499}, []int{11, 8, 5, 2}, 0},
	{"busy", Query{State: cdr.StateBusy}, []int{2}, 0},
	{"failed", Query{State: cdr.StateFailed}, []int{5}, 0},
	{"cancelled", Query{State: cdr.StateCancelled}, []int{8}, 0},
	{"noanswer", Query{State: cdr.StateNoAnswer}, []int{11}, 0},
	{"answered", Query{State: cdr.StateAnswered, Limit: 3}, []int{10, 9, 7}, 8},
	{"rtp timeout", Query{Ending: ptr(cdr.EndingRTPTimeout)}, []int{4}, 0},
	{"shutdown", Query{Ending: ptr(cdr.EndingShutdown)}, []int{7}, 0},
	{"setup timeout", Query{Ending: ptr(cdr.EndingSetupTimeout)}, []int{5}, 0},
	{"mos below 3.5", Query{MOSBelowMult10: ptr(35)}, []int{4, 3, 1, 0}, 0},
	{"loss above 1 %", Query{LossAboveMult1000: ptr(1000)}, []int{10, 9, 7, 6, 4}, 0},
	{"mos ascending", Query{Sort: SortMOS, Asc: true, State: cdr.StateAnswered}, []int{0, 1, 3, 4, 6, 7, 9, 10}, 0},
	{"caller page", Query{Sort: SortCaller, Asc: true, Limit: 3, Offset: 2}, []int{2, 3, 4}, 12},
	{"called page", Query{Sort: SortCalled, Limit: 2, Offset: 10}, []int{10, 11}, 12},
	{"beyond the end", Query{Offset: 100}, nil, 12},
	{"code descending", Query{Sort: SortCode, Limit: 2}, []int{8, 2}, 12},
	{"combined", Query{Caller: "10%", State: cdr.StateAnswered, LossAboveMult1000: ptr(0), Limit: 2}, []int{10, 9}, 7},
}

func checkSearch(t *testing.T, st *Store) {
	t.Helper()
	ctx := context.Background()
	calls := historyCalls(12)
	if err := st.WriteRecords(ctx, calls); err != nil {
		t.Fatal(err)
	}
	for _, tt := range searchCases {
		t.Run(tt.name, func(t *testing.T) {
			page, err := st.Search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, r := range page.Rows {
				var i int
				fmt.Sscanf(r.CallID, "call-%04d@x", &i)
				got = append(got, i)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			total := tt.total
			if total == 0 {
				total = len(tt.want)
			}
			if page.Total != total || page.TotalCapped {
				t.Errorf("Total = %d (capped %v), want %d", page.Total, page.TotalCapped, total)
			}
		})
	}

	// A row as listed: the columns both schemas have.
	page, err := st.Search(ctx, Query{CallID: "call-0004@x"})
	if err != nil || len(page.Rows) != 1 {
		t.Fatalf("Search(call 4) = %v, %v", page, err)
	}
	r, c := page.Rows[0], calls[4]
	if r.ID <= 0 || !r.CallDate.Equal(c.CallDate.Truncate(time.Second)) || r.Caller != "1004" || r.Called != "2007" ||
		r.CallerName != c.CallerName || r.CalledDomain != c.CalledDomain || r.SIPCallerAddr != c.SIPCallerAddr ||
		r.SIPCalledAddr != c.SIPCalledAddr || r.LastSIPCode != 200 || r.LastSIPReason != "OK" ||
		r.State != cdr.StateAnswered || !r.Answered || r.Ending != cdr.EndingRTPTimeout || !r.EndingKnown ||
		r.WhoHanged != cdr.HangupCallee || !r.HasMOS || r.MOSMinMult10 != 34 || r.LossPercMult1000 != 1316 ||
		r.IDSensor != 7 || r.Duration < 65*time.Second || r.ConnectDuration < 59*time.Second {
		t.Errorf("row of call 4 = %+v", r)
	}

	for _, q := range []Query{{Sort: "bogus"}, {Limit: MaxLimit + 1}, {Limit: -1}, {Offset: -1},
		{From: historyBase, To: historyBase}, {State: "ringing"}, {Ending: ptr(cdr.Ending(99))}} {
		if _, err := st.Search(ctx, q); !errors.Is(err, ErrQuery) {
			t.Errorf("Search(%+v) = %v, want ErrQuery", q, err)
		}
	}

	// One call with its streams, by ID and by Call-ID.
	d, err := st.Call(ctx, r.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := st.Call(ctx, 0, "call-0004@x")
	if err != nil || d2.ID != d.ID {
		t.Errorf("Call by Call-ID = %d, %v; want row %d", d2.ID, err, d.ID)
	}
	if d.CallID != "call-0004@x" || d.State != cdr.StateAnswered {
		t.Errorf("Call = %+v", d.Row)
	}
	var caller, callee *cdr.Stream
	for i := range d.Streams {
		if s := &d.Streams[i]; s.FromCaller {
			caller = s
		} else {
			callee = s
		}
	}
	if len(d.Streams) != 2 || caller == nil || callee == nil {
		t.Fatalf("streams = %+v, want the caller's and the callee's", d.Streams)
	}
	if caller.SSRC != c.A.SSRC || caller.Lost != 40 || caller.MOSF2Mult10 != 34 || caller.Saddr != c.A.Saddr ||
		callee.SSRC != c.B.SSRC || callee.MOSF2Mult10 != 45 || callee.Daddr != c.B.Daddr {
		t.Errorf("caller stream %+v\ncallee stream %+v", caller, callee)
	}
	if _, err := st.Call(ctx, 0, "none@x"); !errors.Is(err, ErrNoCall) {
		t.Errorf("Call(none) = %v, want ErrNoCall", err)
	}
	if _, err := st.Call(ctx, 1<<40, ""); !errors.Is(err, ErrNoCall) {
		t.Errorf("Call(unknown id) = %v, want ErrNoCall", err)
	}
	if d, err := st.Call(ctx, 0, "call-0002@x"); err != nil || len(d.Streams) != 0 || d.State != cdr.StateBusy || d.Answered {
		t.Errorf("Call(busy) = %+v, %v", d, err)
	}
}

func TestSearch(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) { checkSearch(t, st) })
	}
}

func TestSearchVoipmonitor(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { checkSearch(t, openVM(t)) })
	t.Run("mysql", func(t *testing.T) {
		ctl := os.Getenv(envCtl)
		if os.Getenv(envDSN) == "" || ctl == "" {
			sharedtest.Missing(t, "needs %s and %s (scripts/mariadb-test.sh)", envDSN, envCtl)
		}
		// The voipmonitor tables share their names with the voipsensor
		// schema's: a MariaDB of this test's own.
		dir := filepath.Join(t.TempDir(), "mariadb")
		run := func(cmd string) string {
			c := exec.Command(ctl, cmd)
			c.Env = append(os.Environ(), "VOIPSENSOR_MARIADB_DIR="+dir)
			out, err := c.Output()
			if err != nil {
				t.Fatalf("%s %s: %v", ctl, cmd, err)
			}
			return strings.TrimSpace(string(out))
		}
		dsn := run("start")
		t.Cleanup(func() { run("stop") })
		st, err := Open("mysql", dsn, SchemaVoipmonitor)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		checkSearch(t, st)
	})
}

// TestUpgradeSchema opens a voipsensor-schema database made before the
// ending column and the search indexes: Open adds them, old rows read
// with an unknown ending.
func TestUpgradeSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	st, err := Open("sqlite", path, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP INDEX cdr_caller", "DROP INDEX cdr_sipcalledip", "ALTER TABLE cdr DROP COLUMN ending", "ALTER TABLE cdr DROP COLUMN sensor_dropped",
		"INSERT INTO cdr (callid, calldate, caller) VALUES ('old@x', '2026-01-01T00:00:00Z', '99')"} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	if st, err = Open("sqlite", path, ""); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('cdr_caller', 'cdr_sipcalledip')`).Scan(&n); err != nil || n != 2 {
		t.Errorf("indexes after reopening: %d, %v", n, err)
	}
	page, err := st.Search(ctx, Query{Caller: "99"})
	if err != nil || len(page.Rows) != 1 || page.Rows[0].EndingKnown {
		t.Fatalf("old row = %+v, %v", page, err)
	}
	rec := sampleRecord(1)
	rec.SensorDropped = true
	if err := st.WriteRecords(ctx, []cdr.Record{rec}); err != nil {
		t.Fatal(err)
	}
	var dropped int
	if err := st.db.QueryRow("SELECT sensor_dropped FROM cdr WHERE callid = ?", rec.CallID).Scan(&dropped); err != nil || dropped != 1 {
		t.Errorf("sensor_dropped of a new row = %d, %v; want 1", dropped, err)
	}
	if page, err := st.Search(ctx, Query{Ending: ptr(cdr.EndingNormal)}); err != nil || page.Total != 1 {
		t.Errorf("new row by ending = %+v, %v", page, err)
	}
}
