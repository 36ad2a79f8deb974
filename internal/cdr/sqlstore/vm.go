package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/voipsensor/voipsensor/internal/cdr"
)

// Schema names the set of tables a [Store] writes.
type Schema string

// Schemas.
const (
	// SchemaVoipsensor is voipsensor's own schema: one cdr row per call
	// with one column per [cdr.Record] field (VoIPmonitor's names where
	// they exist, microsecond DATETIMEs, the Call-ID in the row) and
	// register_state. It is the default.
	SchemaVoipsensor Schema = "voipsensor"
	// SchemaVoipmonitor is the VoIPmonitor sniffer's own schema, as far
	// as voipsensor can fill it: cdr (its column names, types and NULL
	// rules, DATETIME in whole seconds), cdr_next (fbasename = Call-ID),
	// cdr_rtp, the cdr_ua and cdr_sip_response lookup tables referenced
	// by id, register_state and register_failed, system and sensors; on
	// MySQL latin1 tables partitioned by day, as the sniffer creates
	// them. A VoIPmonitor GUI can read it.
	SchemaVoipmonitor Schema = "voipmonitor"
)

// ErrSchema is returned by [Open] for an unknown schema, or for a database
// whose cdr table has the other schema's columns.
var ErrSchema = errors.New("sqlstore: schema")

// ErrUnsupported is returned by reads that the schema cannot answer
// ([Store.ListRecords] and [Store.ListRegistrations] on the voipmonitor
// schema, which keeps no Record as such).
var ErrUnsupported = errors.New("sqlstore: not supported by this schema")

// vmState is what a Store on the voipmonitor schema remembers between
// writes. Safe for concurrent use.
type vmState struct {
	mu sync.Mutex
	// ids caches the ids of cdr_ua ("ua") and cdr_sip_response
	// ("lastSIPresponse") rows; they are never deleted.
	ids map[string]map[string]int64
	// parts holds, per partitioned MySQL table, the upper bound
	// (exclusive day, "YYYY-MM-DD") of its last partition; absent for a
	// table without day partitions, which is left alone.
	parts map[string]string
}

// codebook is a lookup table: strings stored once and referenced by id.
type codebook struct{ table, col string }

var (
	cbUA       = codebook{"cdr_ua", "ua"}
	cbResponse = codebook{"cdr_sip_response", "lastSIPresponse"}
)

// createVMSchema creates the voipmonitor tables when missing and reads the
// partitions of the MySQL ones.
func (s *Store) createVMSchema(ctx context.Context) error {
	today := time.Now().UTC().Format(time.DateOnly)
	for i := range vmTables {
		for _, q := range vmTables[i].createStmts(s.d, today) {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("sqlstore: create schema: %w", err)
			}
		}
	}
	s.vm = &vmState{ids: map[string]map[string]int64{}, parts: map[string]string{}}
	if s.d != mysql {
		return nil
	}
	for i := range vmTables {
		if t := &vmTables[i]; t.partBy != "" {
			if err := s.readPartitions(ctx, t.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSchema refuses a database whose cdr table belongs to the other
// schema (inserting would fail on every row): it probes, unquoted, a
// column only the other schema has (voipsensor's callid, the sniffer's
// bye). Run before creating anything.
func (s *Store) checkSchema(ctx context.Context) error {
	col, other := "bye", SchemaVoipmonitor
	if s.schema == SchemaVoipmonitor {
		col, other = "callid", SchemaVoipsensor
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+col+" FROM cdr WHERE 1 = 0")
	if err != nil {
		return nil // no cdr table yet, or not the other schema's
	}
	rows.Close()
	return fmt.Errorf("%w: table cdr has column %s: the database holds the %s schema; cdr_schema = %s needs another database",
		ErrSchema, col, other, s.schema)
}

// readPartitions records the upper bound of table's last day partition.
func (s *Store) readPartitions(ctx context.Context, table string) error {
	var desc sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT PARTITION_DESCRIPTION FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL
		ORDER BY PARTITION_ORDINAL_POSITION DESC LIMIT 1`, table).Scan(&desc)
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		delete(s.vm.parts, table) // not partitioned (an existing table): nothing to maintain
		return nil
	case err != nil:
		return fmt.Errorf("sqlstore: partitions of %s: %w", table, err)
	}
	// RANGE COLUMNS(calldate) bounds read '2026-12-08' (or
	// '2026-12-08 00:00:00'); MAXVALUE or a to_days() bound needs no
	// maintenance by day names.
	bound := strings.Trim(desc.String, "'")
	if len(bound) < 10 || bound[4] != '-' {
		delete(s.vm.parts, table)
		return nil
	}
	s.vm.parts[table] = bound[:10]
	return nil
}

// partitionName is the sniffer's name of a day's partition: p + YYMMDD.
func partitionName(day string) string {
	return "p" + strings.ReplaceAll(day[2:], "-", "")
}

// nextDay returns the day after day ("YYYY-MM-DD").
func nextDay(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// ensurePartitions adds the partition of day to each table whose last
// partition ends before or on it, as the sniffer's daily partition job
// does. Days the data skips get no partition of their own: the next
// partition covers them. Another writer adding the same partition first
// is not an error.
func (s *Store) ensurePartitions(ctx context.Context, day string, tables ...string) error {
	if s.d != mysql || day == "" {
		return nil
	}
	for _, table := range tables {
		s.vm.mu.Lock()
		bound, ok := s.vm.parts[table]
		s.vm.mu.Unlock()
		if !ok || day < bound {
			continue
		}
		q := "ALTER TABLE " + s.d.quote(table) + " ADD PARTITION (PARTITION " + partitionName(day) +
			" VALUES LESS THAN ('" + nextDay(day) + "') ENGINE = InnoDB)"
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			var me *mysqldrv.MySQLError
			// 1493: not above the last bound; 1517: duplicate name.
			if !errors.As(err, &me) || (me.Number != 1493 && me.Number != 1517) {
				return fmt.Errorf("sqlstore: add partition to %s: %w", table, err)
			}
		}
		if err := s.readPartitions(ctx, table); err != nil {
			return err
		}
	}
	return nil
}

// lookupIDs returns the ids of vals in cb, inserting the missing ones.
// The inserts commit on their own (autocommit), outside the batch's
// transaction, so that cached ids never point to rows a rollback removed;
// an id stored for a batch that then fails is merely unused.
func (s *Store) lookupIDs(ctx context.Context, cb codebook, vals []string) (map[string]int64, error) {
	out := make(map[string]int64, len(vals))
	var missing []string
	s.vm.mu.Lock()
	cache := s.vm.ids[cb.table]
	if cache == nil {
		cache = map[string]int64{}
		s.vm.ids[cb.table] = cache
	}
	for _, v := range vals {
		if id, ok := cache[v]; ok {
			out[v] = id
		} else if _, dup := out[v]; !dup {
			missing = append(missing, v)
			out[v] = 0
		}
	}
	s.vm.mu.Unlock()
	insert := "INSERT IGNORE INTO "
	if s.d == sqlite {
		insert = "INSERT OR IGNORE INTO "
	}
	ins := insert + s.d.quote(cb.table) + " (" + s.d.quote(cb.col) + ") VALUES (?)"
	sel := "SELECT id FROM " + s.d.quote(cb.table) + " WHERE " + s.d.quote(cb.col) + " = ? ORDER BY id LIMIT 1"
	for _, v := range missing {
		if _, err := s.db.ExecContext(ctx, ins, v); err != nil {
			return nil, s.classify(err)
		}
		var id int64
		if err := s.db.QueryRowContext(ctx, sel, v).Scan(&id); err != nil {
			return nil, s.classify(err)
		}
		out[v] = id
		s.vm.mu.Lock()
		cache[v] = id
		s.vm.mu.Unlock()
	}
	return out, nil
}

// writeVMRecords stores recs in cdr, cdr_next and cdr_rtp in one
// transaction: one cdr row each (its ID links the others), after the
// lookups and the partitions they need.
func (s *Store) writeVMRecords(ctx context.Context, recs []cdr.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var uas, resps []string
	maxDay := ""
	for i := range recs {
		r := &recs[i]
		for _, ua := range []string{r.CallerUserAgent, r.CalleeUserAgent} {
			if ua != "" {
				uas = append(uas, vmUA(ua))
			}
		}
		resps = append(resps, vmSIPResponse(r))
		if d := r.CallDate.UTC().Format(time.DateOnly); d > maxDay {
			maxDay = d
		}
	}
	if err := s.ensurePartitions(ctx, maxDay, "cdr", "cdr_next", "cdr_rtp"); err != nil {
		return err
	}
	ua, err := s.lookupIDs(ctx, cbUA, uas)
	if err != nil {
		return err
	}
	resp, err := s.lookupIDs(ctx, cbResponse, resps)
	if err != nil {
		return err
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.classify(err)
	}
	defer tx.Rollback()
	ins := newInserter(s.d, tx)
	defer ins.close()
	for i := range recs {
		r := &recs[i]
		id, err := ins.exec(ctx, "cdr", vmCDRRow(r, ua, resp))
		if err != nil {
			return s.classify(err)
		}
		next := &vmRow{}
		next.set("cdr_ID", id)
		next.set("calldate", vmDateTime(r.CallDate))
		next.set("fbasename", vmText(r.CallID, 255))
		if _, err := ins.exec(ctx, "cdr_next", next); err != nil {
			return s.classify(err)
		}
		for _, row := range vmRTPRows(r) {
			row.names = append([]string{"cdr_ID"}, row.names...)
			row.vals = append([]any{id}, row.vals...)
			if _, err := ins.exec(ctx, "cdr_rtp", row); err != nil {
				return s.classify(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return s.classify(err)
	}
	return nil
}

// writeVMRegistrations stores regs in register_state and register_failed.
func (s *Store) writeVMRegistrations(ctx context.Context, regs []cdr.Registration) error {
	if len(regs) == 0 {
		return nil
	}
	var uas []string
	maxDay := ""
	for i := range regs {
		if regs[i].UserAgent != "" {
			uas = append(uas, vmUA(regs[i].UserAgent))
		}
		if d := regs[i].Time.UTC().Format(time.DateOnly); d > maxDay {
			maxDay = d
		}
	}
	if err := s.ensurePartitions(ctx, maxDay, "register_state", "register_failed"); err != nil {
		return err
	}
	ua, err := s.lookupIDs(ctx, cbUA, uas)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.classify(err)
	}
	defer tx.Rollback()
	ins := newInserter(s.d, tx)
	defer ins.close()
	for i := range regs {
		table, row := vmRegisterRow(&regs[i], ua)
		if _, err := ins.exec(ctx, table, row); err != nil {
			return s.classify(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.classify(err)
	}
	return nil
}

// inserter runs single-row INSERTs in a transaction, preparing each
// distinct statement once.
type inserter struct {
	d     dialect
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newInserter(d dialect, tx *sql.Tx) *inserter {
	return &inserter{d: d, tx: tx, stmts: map[string]*sql.Stmt{}}
}

// exec inserts row into table and returns the row's auto-increment id.
func (in *inserter) exec(ctx context.Context, table string, row *vmRow) (int64, error) {
	names := make([]string, len(row.names))
	for i, n := range row.names {
		names[i] = in.d.quote(n)
	}
	q := "INSERT INTO " + in.d.quote(table) + " (" + strings.Join(names, ",") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?,", len(names)), ",") + ")"
	st := in.stmts[q]
	if st == nil {
		var err error
		if st, err = in.tx.PrepareContext(ctx, q); err != nil {
			return 0, err
		}
		in.stmts[q] = st
	}
	res, err := st.ExecContext(ctx, row.vals...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (in *inserter) close() {
	for _, st := range in.stmts {
		st.Close()
	}
}
