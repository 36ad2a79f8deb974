package sqlstore

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr"
)

// bulkRows is the size of the history tests' large table.
const bulkRows = 100_000

// fillBulk adds bulkRows calls to st's cdr table in one statement (the
// Writer would take about a minute for them), one every 10 s from
// historyBase: 5,000 callers (49…), 20,000 called numbers (+4202…), 62,500
// caller addresses, 20 callee addresses, 10 % busy and 10 % cancelled,
// MOS 3.0 to 4.5, loss 0 to 4.9 %. Call-IDs are bulk-N@x.
func fillBulk(t testing.TB, st *Store) {
	t.Helper()
	const seq = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) `
	caller := `'49' || printf('%07d', (i * 7919) % 5000)`
	called := `'+4202' || printf('%05d', (i * 104729) % 20000)`
	code := `CASE i % 10 WHEN 0 THEN 486 WHEN 1 THEN 487 ELSE 200 END`
	date := `datetime('2026-03-01 12:00:00', '+' || (i * 10) || ' seconds')`
	var stmts []string
	if st.schema == SchemaVoipmonitor {
		stmts = []string{
			seq + `INSERT INTO cdr (ID, calldate, callend, duration, connect_duration, caller, called, sipcallerip, sipcalledip,
				lastSIPresponseNum, bye, sighup, mos_min_mult10, packet_loss_perc_mult1000, jitter_mult10)
			SELECT i, ` + date + `, ` + date + `, 60, CASE WHEN i % 10 > 1 THEN 55 END, ` + caller + `, ` + called + `,
				167772160 + (i * 31) % 62500, 3221225984 + i % 20, ` + code + `, 3, 0,
				CASE WHEN i % 10 > 1 THEN 30 + i % 16 END, (i % 50) * 100, i % 40 FROM n`,
			seq + `INSERT INTO cdr_next (cdr_ID, calldate, fbasename) SELECT i, ` + date + `, 'bulk-' || i || '@x' FROM n`,
		}
	} else {
		stmts = []string{seq + `INSERT INTO cdr (callid, calldate, callend, duration, duration_ms, caller, called, sipcallerip, sipcalledip,
				lastSIPresponseNum, state, ending, mos_min_mult10, packet_loss_perc_mult1000, jitter_mult10)
			SELECT 'bulk-' || i || '@x', ` + date + ` || '+00:00', ` + date + ` || '+00:00', 60, 60000, ` + caller + `, ` + called + `,
				'10.' || ((i * 31) % 62500 / 250) || '.' || ((i * 31) % 250) || '.1', '192.0.2.' || (i % 20), ` + code + `,
				CASE i % 10 WHEN 0 THEN 'busy' WHEN 1 THEN 'cancelled' ELSE 'answered' END, 'normal',
				CASE WHEN i % 10 > 1 THEN 30 + i % 16 END, (i % 50) * 100, i % 40 FROM n`}
	}
	for _, q := range stmts {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// bulkCount counts the calls of fillBulk for which f(i) holds.
func bulkCount(f func(i int) bool) int {
	n := 0
	for i := 1; i <= bulkRows; i++ {
		if f(i) {
			n++
		}
	}
	return n
}

// planCases are page queries over the bulk table and the index each must
// be answered from, as EXPLAIN QUERY PLAN names it: the voipsensor
// schema's index, then the sniffer's.
var planCases = []struct {
	name       string
	q          Query
	native, vm string
	rows       int // rows the query matches
}{
	{"newest", Query{}, "SCAN cdr USING INDEX cdr_calldate", "SCAN c USING COVERING INDEX cdr_calldate", bulkRows},
	{"deep page", Query{Offset: bulkRows - 50}, "SCAN cdr USING INDEX cdr_calldate", "SCAN c USING COVERING INDEX cdr_calldate", bulkRows},
	{"caller prefix", Query{Caller: "49000123%"}, "USING INDEX cdr_caller (caller>? AND caller<?)", "USING INDEX cdr_source (caller>? AND caller<?)", 200},
	{"caller exact", Query{Caller: "490001234"}, "USING INDEX cdr_caller (caller=?)", "USING INDEX cdr_source (caller=?)", 20},
	{"number either side", Query{Number: "+42020001%"}, "MULTI-INDEX OR", "MULTI-INDEX OR", 50},
	{"ip either side", Query{IP: netip.MustParseAddr("192.0.2.7")}, "MULTI-INDEX OR", "MULTI-INDEX OR", bulkRows / 20},
	{"callid", Query{CallID: "bulk-77777@x"}, "USING INDEX cdr_callid (callid=?)", "USING INDEX cdr_next_fbasename (fbasename=?)", 1},
	{"date range", Query{From: historyBase.Add(100 * time.Hour), To: historyBase.Add(101 * time.Hour), Sort: SortCaller},
		"USING INDEX cdr_calldate (calldate>? AND calldate<?)", "USING INDEX cdr_calldate (calldate>? AND calldate<?)", 360},
	{"code", Query{CodeMin: 486, CodeMax: 486}, "USING INDEX cdr_lastSIPresponseNum (lastSIPresponseNum=?)",
		"USING INDEX cdr_lastSIPresponseNum (lastSIPresponseNum=?)", bulkRows / 10},
	{"caller and quality", Query{Caller: "4900001%", State: cdr.StateAnswered, MOSBelowMult10: ptr(40)},
		"USING INDEX cdr_caller (caller>? AND caller<?)", "USING INDEX cdr_source (caller>? AND caller<?)", bulkCount(func(i int) bool {
			v := (i * 7919) % 5000
			return v >= 100 && v < 200 && i%10 > 1 && 30+i%16 < 40
		})},
}

// explain returns EXPLAIN QUERY PLAN's lines for stmt.
func explain(t testing.TB, st *Store, stmt string, args []any) string {
	t.Helper()
	rows, err := st.db.Query("EXPLAIN QUERY PLAN "+stmt, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", stmt, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// TestSearchPlan100k fills each schema's SQLite table with 100,000 calls
// and checks that every page query walks an index: the newest page and
// the last one in calldate order without sorting the table, a filter
// through its column's index. It checks the counts too. Not timed: see
// BenchmarkSearch100k.
func TestSearchPlan100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 rows")
	}
	for _, schema := range []Schema{SchemaVoipsensor, SchemaVoipmonitor} {
		t.Run(string(schema), func(t *testing.T) {
			st, err := Open("sqlite", filepath.Join(t.TempDir(), "bulk.db"), schema)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			fillBulk(t, st)
			for _, tt := range planCases {
				t.Run(tt.name, func(t *testing.T) {
					stmt, args, err := st.SearchSQL(tt.q)
					if err != nil {
						t.Fatal(err)
					}
					plan := explain(t, st, stmt, args)
					want := tt.native
					if schema == SchemaVoipmonitor {
						want = tt.vm
					}
					if !strings.Contains(plan, want) {
						t.Errorf("plan lacks %q:\n%s\n%s", want, plan, stmt)
					}
					// The voipmonitor schema's page of IDs (the co-routine
					// p) is ordered; its 50 rows are sorted again after
					// the joins.
					inner := plan
					if i := strings.Index(plan, "\nSCAN p"); i >= 0 {
						inner = plan[:i]
					}
					if strings.HasPrefix(want, "SCAN") && strings.Contains(inner, "TEMP B-TREE") {
						t.Errorf("the calldate order sorts:\n%s", plan)
					}
					for _, l := range strings.Split(plan, "\n") {
						if (strings.HasPrefix(l, "SCAN cdr") || strings.HasPrefix(l, "SCAN c")) && !strings.Contains(l, "INDEX") {
							t.Errorf("a full table scan: %s", l)
						}
					}
					page, err := st.Search(context.Background(), tt.q)
					if err != nil {
						t.Fatal(err)
					}
					if page.Total != tt.rows || len(page.Rows) != min(tt.rows-tt.q.Offset, DefaultLimit) {
						t.Errorf("Total %d, %d rows; want %d, %d", page.Total, len(page.Rows), tt.rows, min(tt.rows, DefaultLimit))
					}
				})
			}
		})
	}
}

// BenchmarkSearch100k measures a page (with its count) over 100,000 calls
// in SQLite, per query of TestSearchPlan100k.
func BenchmarkSearch100k(b *testing.B) {
	for _, schema := range []Schema{SchemaVoipsensor, SchemaVoipmonitor} {
		st, err := Open("sqlite", filepath.Join(b.TempDir(), "bulk.db"), schema)
		if err != nil {
			b.Fatal(err)
		}
		fillBulk(b, st)
		for _, tt := range planCases {
			b.Run(string(schema)+"/"+strings.ReplaceAll(tt.name, " ", "_"), func(b *testing.B) {
				for b.Loop() {
					if _, err := st.Search(context.Background(), tt.q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		st.Close()
	}
}
