package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// Environment for the MySQL/MariaDB tests; see scripts/mariadb-test.sh.
const (
	envDSN = "VOIPSENSOR_TEST_MYSQL_DSN" // DSN of a scratch database
	envCtl = "VOIPSENSOR_TEST_MYSQL_CTL" // script taking "down" and "up"
)

// addrEq compares netip.AddrPort values with ==.
var addrEq = cmpopts.EquateComparable(netip.AddrPort{})

// backends opens every available backend: SQLite always, MySQL when
// VOIPSENSOR_TEST_MYSQL_DSN is set (its tables are dropped first).
func backends(t *testing.T) map[string]*Store {
	t.Helper()
	out := map[string]*Store{}
	st, err := Open("sqlite", filepath.Join(t.TempDir(), "sub", "cdr.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	out["sqlite"] = st
	if dsn := os.Getenv(envDSN); dsn != "" {
		out["mysql"] = openMySQLTest(t, dsn)
	}
	return out
}

func openMySQLTest(t *testing.T, dsn string) *Store {
	t.Helper()
	st, err := Open("mysql", dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"cdr", "register_state", "`system`", "sensors"} {
		if _, err := st.db.Exec("DROP TABLE IF EXISTS " + tb); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if st, err = Open("mysql", dsn, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sampleRecord(i int) cdr.Record {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC).Add(time.Duration(i) * time.Second)
	return cdr.Record{
		IDSensor:        7,
		CallID:          fmt.Sprintf("call-%05d@example.org", i),
		CallDate:        t0,
		CallEnd:         t0.Add(65*time.Second + 500*time.Millisecond),
		Duration:        65*time.Second + 500*time.Millisecond,
		ConnectDuration: 60 * time.Second,
		ProgressTime:    120 * time.Millisecond,
		RingingTime:     5*time.Second + 380*time.Millisecond,
		Caller:          "1001", CallerDomain: "pbx.example.org", CallerName: "Alice Ä",
		Called: "1002", CalledDomain: "pbx.example.org",
		CallerUA: "baresip", CalledUA: "Asterisk PBX 20",
		SIPCallerAddr: netip.MustParseAddrPort("192.0.2.10:5060"),
		SIPCalledAddr: netip.MustParseAddrPort("[2001:db8::1]:5080"),
		LastSIPCode:   200, LastSIPReason: "OK",
		WhoHanged: cdr.HangupCallee, State: cdr.StateAnswered,
		A: &cdr.Stream{
			Saddr: netip.MustParseAddrPort("192.0.2.10:4000"), Daddr: netip.MustParseAddrPort("192.0.2.20:5000"),
			SSRC: 0xdeadbeef, Payload: 0, Codec: "PCMU", Received: 3000, Lost: 12, Duplicates: 1, Reordered: 2,
			LossPercMult1000: 398, AvgJitterMult10: 15, MaxJitter: 9, MaxDelta: 41,
			MOSF1Mult10: 43, MOSF2Mult10: 44, MOSAdaptMult10: 44, MOSF1MinMult10: 40, MOSF2MinMult10: 42, MOSAdaptMinMult10: 41,
			SL: [10]int64{5, 2, 1, 0, 0, 0, 0, 0, 0, 1}, RTCPLoss: 11, RTCPMaxFR: 3, RTCPAvgFRMult10: 12,
			RTCPMaxJitter: 4, RTCPAvgJitterMult10: 22, RTCPAvgRTDMult10: 305, RTCPMaxRTDMult10: 410,
		},
		B: nil, // one-way audio: no callee stream
	}
}

func TestRoundTrip(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			want := []cdr.Record{sampleRecord(1), sampleRecord(2)}
			want[1].IDSensor = -1
			want[1].A, want[1].B = nil, want[0].A
			want[1].State, want[1].WhoHanged = cdr.StateCancelled, cdr.HangupCaller
			want[1].SensorDropped = true
			if err := st.WriteRecords(ctx, want); err != nil {
				t.Fatal(err)
			}
			got, err := st.ListRecords(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			// ListRecords is newest first.
			if d := cmp.Diff([]cdr.Record{want[1], want[0]}, got, addrEq); d != "" {
				t.Errorf("ListRecords (-want +got):\n%s", d)
			}

			// Derived VoIPmonitor columns: duration in whole seconds, call-level summaries, NULL b_ columns.
			var dur, conn, jit, loss int64
			var mos, bRecv *int64
			err = st.db.QueryRow("SELECT duration, connect_duration, jitter_mult10, packet_loss_perc_mult1000, mos_min_mult10, b_received FROM cdr WHERE callid = ?", want[0].CallID).
				Scan(&dur, &conn, &jit, &loss, &mos, &bRecv)
			if err != nil {
				t.Fatal(err)
			}
			if dur != 65 || conn != 60 || jit != 15 || loss != 398 || mos == nil || *mos != 44 || bRecv != nil {
				t.Errorf("derived columns = %d %d %d %d %v %v, want 65 60 15 398 44 NULL", dur, conn, jit, loss, mos, bRecv)
			}
		})
	}
}

func TestLongAndInvalidText(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			r := sampleRecord(1)
			r.CallerUA = strings.Repeat("é", 200) // 400 bytes
			r.CallerName = "bad\xffutf8"
			if err := st.WriteRecords(context.Background(), []cdr.Record{r}); err != nil {
				t.Fatal(err)
			}
			got, err := st.ListRecords(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Repeat("é", 127); got[0].CallerUA != want {
				t.Errorf("CallerUA = %d bytes, want %d (cut at 255 bytes on a rune boundary)", len(got[0].CallerUA), len(want))
			}
			if got[0].CallerName != "bad\uFFFDutf8" {
				t.Errorf("CallerName = %q", got[0].CallerName)
			}
		})
	}
}

func TestLargeBatchIsChunked(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			// 1500 rows × ~100 columns exceeds one statement's placeholder limit.
			recs := make([]cdr.Record, 1500)
			for i := range recs {
				recs[i] = sampleRecord(i)
			}
			if err := st.WriteRecords(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := st.db.QueryRow("SELECT COUNT(*) FROM cdr").Scan(&n); err != nil || n != 1500 {
				t.Errorf("COUNT(*) = %d, %v; want 1500", n, err)
			}
		})
	}
}

func TestRegistrations(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			want := []cdr.Registration{{
				IDSensor: 3, Time: time.Date(2026, 3, 1, 8, 0, 0, 5000, time.UTC), CallID: "reg-1",
				User: "1001", Domain: "pbx.example.org", Contact: "sip:1001@192.0.2.10:5060",
				State: cdr.RegOK, Expires: 3600, Attempts: 2, UserAgent: "baresip",
				Src: netip.MustParseAddrPort("192.0.2.10:5060"), Dst: netip.MustParseAddrPort("192.0.2.1:5060"),
				RRD: 42 * time.Millisecond,
			}}
			if err := st.WriteRegistrations(context.Background(), want); err != nil {
				t.Fatal(err)
			}
			got, err := st.ListRegistrations(context.Background(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got, addrEq); d != "" {
				t.Errorf("ListRegistrations (-want +got):\n%s", d)
			}
		})
	}
}

func TestSystemAndSensors(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if _, ok, err := st.GetSystem(ctx, "manager_key"); ok || err != nil {
				t.Fatalf("GetSystem(empty) = %v, %v", ok, err)
			}
			key := `{"key":"MDEyMzQ1Njc4OWFiY2RlZg==","iv":"ZmVkY2JhOTg3NjU0MzIxMA=="}`
			for _, v := range []string{"old", key} {
				if err := st.SetSystem(ctx, "manager_key", v); err != nil {
					t.Fatal(err)
				}
			}
			if got, ok, err := st.GetSystem(ctx, "manager_key"); got != key || !ok || err != nil {
				t.Errorf("GetSystem = %q, %v, %v; want the last value set", got, ok, err)
			}
			if err := st.DeleteSystem(ctx, "manager_key"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := st.GetSystem(ctx, "manager_key"); ok {
				t.Error("GetSystem after DeleteSystem found a row")
			}

			seen := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			for _, sn := range []Sensor{{1, "a", "h1", seen}, {2, "b", "h2", seen}, {1, "a2", "h1b", seen.Add(time.Hour)}} {
				if err := st.UpsertSensor(ctx, sn); err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.Sensors(ctx)
			want := []Sensor{{1, "a2", "h1b", seen.Add(time.Hour)}, {2, "b", "h2", seen}}
			if err != nil || !cmp.Equal(want, got) {
				t.Errorf("Sensors = %v, %v; want %v", got, err, want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("postgres", "x", ""); !errors.Is(err, ErrDriver) {
		t.Errorf("Open(postgres) = %v, want ErrDriver", err)
	}
	if _, err := Open("mysql", "not a dsn", ""); err == nil {
		t.Error("Open(mysql, bad dsn) = nil error")
	}
	// A second Open of an existing file keeps the data.
	path := filepath.Join(t.TempDir(), "x.db")
	st, err := Open("sqlite", path, "")
	if err != nil {
		t.Fatal(err)
	}
	st.WriteRecords(context.Background(), []cdr.Record{sampleRecord(1)})
	st.Close()
	st, err = Open("sqlite", path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, _ := st.ListRecords(context.Background(), 0); len(got) != 1 {
		t.Errorf("after reopen ListRecords = %d records, want 1", len(got))
	}
}

// TestMySQLOutageWriterLosesNothing stops the MariaDB server while a Writer
// is writing to it, keeps adding records, starts the server again and checks
// that every record is stored exactly once.
func TestMySQLOutageWriterLosesNothing(t *testing.T) {
	dsn, ctl := os.Getenv(envDSN), os.Getenv(envCtl)
	if dsn == "" || ctl == "" {
		sharedtest.Missing(t, "needs %s and %s (scripts/mariadb-test.sh)", envDSN, envCtl)
	}
	st := openMySQLTest(t, dsn)
	run := func(arg string) {
		t.Helper()
		out, err := exec.Command(ctl, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", ctl, arg, err, out)
		}
	}
	spill := t.TempDir()
	w := cdr.NewWriter(st, cdr.WriterOptions{BatchSize: 20, BatchInterval: 50 * time.Millisecond, QueueSize: 100,
		SpillDir: spill, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	defer run("up") // leave the server running even if the test fails

	var want []string
	add := func(from, to int) {
		for i := from; i < to; i++ {
			r := sampleRecord(i)
			w.Add(r)
			want = append(want, r.CallID)
		}
	}
	add(0, 100)
	sharedtest.Eventually(t, 10*time.Second, "first 100 stored", func() bool { return w.Stats().Written == 100 })

	run("down")
	add(100, 400)
	sharedtest.Eventually(t, 20*time.Second, "retries while down", func() bool { return w.Stats().Retried >= 2 })
	s := w.Stats()
	t.Logf("while down: %#v", s)
	if s.Spilled == 0 || s.Written != 100 {
		t.Errorf("while down Stats = %#v, want records spilled and none written", s)
	}
	run("up")
	sharedtest.Eventually(t, 60*time.Second, "all 400 stored", func() bool { return w.Stats().Written >= 400 })
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("after restart: %#v", w.Stats())
	recs, err := st.ListRecords(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.CallID)
	}
	sort.Strings(got)
	sort.Strings(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored call IDs (-want +got):\n%s", d)
	}
	if s := w.Stats(); s.Failed != 0 || s.SpillFiles != 0 || s.Replayed != s.Spilled {
		t.Errorf("final Stats = %#v", s)
	}
}

// BenchmarkSQLiteWriteRecords measures records/s stored in SQLite by
// WriteRecords in batches of 500 (one transaction each).
func BenchmarkSQLiteWriteRecords(b *testing.B) {
	st, err := Open("sqlite", filepath.Join(b.TempDir(), "bench.db"), "")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	batch := make([]cdr.Record, 500)
	for i := range batch {
		batch[i] = sampleRecord(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := st.WriteRecords(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}
