package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers database/sql driver "sqlite"

	"github.com/voipsensor/voipsensor/internal/cdr"
)

// ErrDriver is returned by [Open] for a driver other than "sqlite" or "mysql".
var ErrDriver = errors.New("sqlstore: unknown driver")

type dialect int

const (
	sqlite dialect = iota
	mysql
)

// maxParams bounds the placeholders in one INSERT (SQLite allows 32766,
// MySQL 65535).
func (d dialect) maxParams() int {
	if d == mysql {
		return 60000
	}
	return 32000
}

func (d dialect) quote(name string) string {
	if d == mysql {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// Store is a [cdr.Store] over SQLite or MySQL/MariaDB, in one of two
// [Schema]s. Besides CDRs and registrations it holds the `system` table
// (the manager API's AES key) and the `sensors` table. Safe for concurrent
// use.
type Store struct {
	db     *sql.DB
	d      dialect
	schema Schema
	vm     *vmState // the voipmonitor schema's lookups and partitions
}

// Sensor is a row of the sensors table.
type Sensor struct {
	ID       int
	Name     string
	Host     string
	LastSeen time.Time
}

// Open opens the database and creates the tables of schema when missing
// ("" is [SchemaVoipsensor]). For "sqlite", dsn is a file path (its
// directory is created) or ":memory:"; the database runs in WAL mode with a
// 5 s busy timeout. For "mysql", dsn is a go-sql-driver DSN
// (user:pass@tcp(host:port)/db); times are read and written in UTC, and the
// voipmonitor schema's session runs with an empty sql_mode, as the sniffer's.
// A database whose cdr table has the other schema is refused with
// [ErrSchema].
func Open(driver, dsn string, schema Schema) (*Store, error) {
	switch schema {
	case "":
		schema = SchemaVoipsensor
	case SchemaVoipsensor, SchemaVoipmonitor:
	default:
		return nil, fmt.Errorf("%w: unknown schema %q", ErrSchema, schema)
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch driver {
	case "sqlite":
		d = sqlite
		db, err = openSQLite(dsn)
	case "mysql":
		d = mysql
		db, err = openMySQL(dsn, schema)
	default:
		return nil, fmt.Errorf("%w %q", ErrDriver, driver)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d, schema: schema}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.createSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(path string) (*sql.DB, error) {
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("sqlstore: %w", err)
			}
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_time_format", "sqlite")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	// One connection: SQLite serialises writers anyway, and ":memory:" is
	// per connection.
	db.SetMaxOpenConns(1)
	return db, nil
}

func openMySQL(dsn string, schema Schema) (*sql.DB, error) {
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if schema == SchemaVoipmonitor {
		// As the sniffer's connection (SET NAMES UTF8, sql_mode ''):
		// text converts into its latin1 tables, a character latin1
		// lacks becoming "?" instead of refusing the row.
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["sql_mode"] = "''"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: mysql: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

func (s *Store) createSchema(ctx context.Context) error {
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	if s.schema == SchemaVoipmonitor {
		return s.createVMSchema(ctx)
	}
	var stmts []string
	stmts = append(stmts, createTable(s.d, "cdr", recordCols, "calldate", "callid")...)
	stmts = append(stmts, createTable(s.d, "register_state", registrationCols, "calldate", "to_num")...)
	if s.d == mysql {
		stmts = append(stmts,
			"CREATE TABLE IF NOT EXISTS `system` (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, `type` VARCHAR(255) NOT NULL, content MEDIUMTEXT, KEY `type` (`type`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			"CREATE TABLE IF NOT EXISTS sensors (id_sensor INT NOT NULL PRIMARY KEY, name VARCHAR(255), host VARCHAR(255), last_seen DATETIME(6)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	} else {
		stmts = append(stmts,
			`CREATE TABLE IF NOT EXISTS "system" (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, content TEXT)`,
			`CREATE INDEX IF NOT EXISTS system_type ON "system" (type)`,
			`CREATE TABLE IF NOT EXISTS sensors (id_sensor INTEGER PRIMARY KEY, name TEXT, host TEXT, last_seen DATETIME)`)
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlstore: create schema: %w", err)
		}
	}
	return s.upgradeSchema(ctx)
}

// WriteRecords inserts recs in one transaction: with multi-row INSERTs in
// the voipsensor schema, a cdr, cdr_next and cdr_rtp rows per record in
// the voipmonitor schema.
func (s *Store) WriteRecords(ctx context.Context, recs []cdr.Record) error {
	if s.schema == SchemaVoipmonitor {
		return s.writeVMRecords(ctx, recs)
	}
	return insert(ctx, s, "cdr", recordCols, recs)
}

// WriteRegistrations inserts regs in one transaction: register_state in
// the voipsensor schema; register_state, or register_failed for a failed
// registration, in the voipmonitor schema.
func (s *Store) WriteRegistrations(ctx context.Context, regs []cdr.Registration) error {
	if s.schema == SchemaVoipmonitor {
		return s.writeVMRegistrations(ctx, regs)
	}
	return insert(ctx, s, "register_state", registrationCols, regs)
}

func insert[T any](ctx context.Context, s *Store, table string, cols []column[T], rows []T) error {
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = s.d.quote(c.name)
	}
	head := "INSERT INTO " + table + " (" + strings.Join(names, ",") + ") VALUES "
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	per := max(1, s.d.maxParams()/len(cols))

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.classify(err)
	}
	defer tx.Rollback()
	args := make([]any, 0, min(len(rows), per)*len(cols))
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args = args[:0]
		for i := range chunk {
			for _, c := range cols {
				v := c.get(&chunk[i])
				if str, ok := v.(string); ok {
					v = truncText(str)
				}
				args = append(args, v)
			}
		}
		q := head + strings.TrimSuffix(strings.Repeat(tuple+",", len(chunk)), ",")
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return s.classify(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.classify(err)
	}
	return nil
}

// classify wraps errors caused by the data with [cdr.ErrRejected].
func (s *Store) classify(err error) error {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1048, 1054, 1136, 1264, 1265, 1292, 1366, 1406, 1452, 3140:
			// null, unknown column, column count, out of range, truncated,
			// bad datetime, bad string, too long, foreign key, bad JSON.
			return fmt.Errorf("sqlstore: %w: %w", cdr.ErrRejected, err)
		}
	}
	return fmt.Errorf("sqlstore: %w", err)
}

// ListRecords returns the newest limit records (all when limit ≤ 0), newest
// first by calldate, then by insertion order. The voipmonitor schema
// returns [ErrUnsupported].
func (s *Store) ListRecords(ctx context.Context, limit int) ([]cdr.Record, error) {
	if s.schema == SchemaVoipmonitor {
		return nil, ErrUnsupported
	}
	return list(ctx, s, "cdr", recordCols, limit)
}

// ListRegistrations is like [Store.ListRecords] for registrations.
func (s *Store) ListRegistrations(ctx context.Context, limit int) ([]cdr.Registration, error) {
	if s.schema == SchemaVoipmonitor {
		return nil, ErrUnsupported
	}
	return list(ctx, s, "register_state", registrationCols, limit)
}

func list[T any](ctx context.Context, s *Store, table string, cols []column[T], limit int) ([]T, error) {
	out, _, err := query(ctx, s, table, cols, "", nil, limit)
	return out, err
}

// query reads the rows of table that match where (no condition when
// empty), newest first by calldate, then by insertion order, at most
// limit (all when limit ≤ 0), with their IDs.
func query[T any](ctx context.Context, s *Store, table string, cols []column[T], where string, args []any, limit int) ([]T, []int64, error) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = s.d.quote(c.name)
	}
	q := "SELECT ID," + strings.Join(names, ",") + " FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	q += " ORDER BY calldate DESC, ID DESC"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlstore: %w", err)
	}
	defer rows.Close()
	var out []T
	var ids []int64
	var id int64
	dest := make([]any, len(cols)+1)
	dest[0] = &id
	ints := make([]sql.NullInt64, len(cols))
	texts := make([]sql.NullString, len(cols))
	times := make([]sql.NullTime, len(cols))
	for i, c := range cols {
		switch c.kind {
		case kInt, kSensor:
			dest[i+1] = &ints[i]
		case kText:
			dest[i+1] = &texts[i]
		case kTime:
			dest[i+1] = &times[i]
		}
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("sqlstore: %w", err)
		}
		var v T
		for i, c := range cols {
			switch {
			case c.kind == kInt && ints[i].Valid:
				c.set(&v, ints[i].Int64)
			case c.kind == kText && texts[i].Valid:
				c.set(&v, texts[i].String)
			case c.kind == kTime && times[i].Valid:
				c.set(&v, times[i].Time)
			case c.kind == kSensor:
				c.set(&v, cmp.Or(ints[i], sql.NullInt64{Int64: -1}).Int64)
			}
		}
		out = append(out, v)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: %w", err)
	}
	return out, ids, nil
}

// GetSystem returns the content of the first system row of type typ (such
// as "manager_key"), and false when there is none.
func (s *Store) GetSystem(ctx context.Context, typ string) (string, bool, error) {
	var content sql.NullString
	err := s.db.QueryRowContext(ctx, "SELECT content FROM "+s.d.quote("system")+" WHERE "+s.d.quote("type")+" = ? ORDER BY id LIMIT 1", typ).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqlstore: %w", err)
	}
	return content.String, true, nil
}

// SetSystem replaces the system rows of type typ with one holding content.
func (s *Store) SetSystem(ctx context.Context, typ, content string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	defer tx.Rollback()
	sys, ty := s.d.quote("system"), s.d.quote("type")
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+sys+" WHERE "+ty+" = ?", typ); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+sys+" ("+ty+", content) VALUES (?, ?)", typ, content); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// DeleteSystem removes the system rows of type typ.
func (s *Store) DeleteSystem(ctx context.Context, typ string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM "+s.d.quote("system")+" WHERE "+s.d.quote("type")+" = ?", typ)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// UpsertSensor inserts the sensor or updates its name, host and last_seen
// (the voipmonitor schema's sensors table has no last_seen: it keeps name
// and host).
func (s *Store) UpsertSensor(ctx context.Context, sn Sensor) error {
	if s.schema == SchemaVoipmonitor {
		q := "INSERT INTO sensors (id_sensor, name, host) VALUES (?, ?, ?) "
		if s.d == mysql {
			q += "ON DUPLICATE KEY UPDATE name = VALUES(name), host = VALUES(host)"
		} else {
			q += "ON CONFLICT(id_sensor) DO UPDATE SET name = excluded.name, host = excluded.host"
		}
		if _, err := s.db.ExecContext(ctx, q, sn.ID, sn.Name, sn.Host); err != nil {
			return fmt.Errorf("sqlstore: %w", err)
		}
		return nil
	}
	q := "INSERT INTO sensors (id_sensor, name, host, last_seen) VALUES (?, ?, ?, ?) "
	if s.d == mysql {
		q += "ON DUPLICATE KEY UPDATE name = VALUES(name), host = VALUES(host), last_seen = VALUES(last_seen)"
	} else {
		q += "ON CONFLICT(id_sensor) DO UPDATE SET name = excluded.name, host = excluded.host, last_seen = excluded.last_seen"
	}
	if _, err := s.db.ExecContext(ctx, q, sn.ID, sn.Name, sn.Host, sn.LastSeen.UTC().Truncate(time.Microsecond)); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// Sensors returns all rows of the sensors table ordered by id (LastSeen
// zero in the voipmonitor schema).
func (s *Store) Sensors(ctx context.Context) ([]Sensor, error) {
	seen := "last_seen"
	if s.schema == SchemaVoipmonitor {
		seen = "NULL"
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id_sensor, name, host, "+seen+" FROM sensors ORDER BY id_sensor")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	defer rows.Close()
	var out []Sensor
	for rows.Next() {
		var sn Sensor
		var name, host sql.NullString
		var seen sql.NullTime
		if err := rows.Scan(&sn.ID, &name, &host, &seen); err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
		sn.Name, sn.Host, sn.LastSeen = name.String, host.String, seen.Time.UTC()
		out = append(out, sn)
	}
	return out, rows.Err()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

var _ cdr.Store = (*Store)(nil)
