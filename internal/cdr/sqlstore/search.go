package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr"
)

// This file is the read side of the CDR tables for the history view:
// [Store.Search] pages through calls with filters, sorted in the database
// with its indexes, and [Store.Call] reads one call with its streams. Both
// schemas answer, each from its own columns.

// Errors of [Store.Search] and [Store.Call].
var (
	// ErrQuery is wrapped by the error of a [Query] the store refuses (an
	// unknown sort key, a page too large, a range that ends before it
	// starts).
	ErrQuery = errors.New("sqlstore: bad query")
	// ErrNoCall is returned by [Store.Call] when no row matches.
	ErrNoCall = errors.New("sqlstore: no such call")
)

// Paging bounds of [Store.Search].
const (
	// DefaultLimit is the page size when Query.Limit is 0.
	DefaultLimit = 50
	// MaxLimit is the largest page Search returns; a larger Limit is an
	// error, so that no request loads the table.
	MaxLimit = 1000
	// MaxCount bounds the count of matching rows: Search stops counting
	// there and says so (Page.TotalCapped).
	MaxCount = 1_000_000
)

// Sort keys of [Query.Sort].
const (
	SortCallDate = "calldate" // the default
	SortDuration = "duration"
	SortCaller   = "caller"
	SortCalled   = "called"
	SortCode     = "code"   // last SIP response code
	SortMOS      = "mos"    // mos_min_mult10 (calls without one first when ascending)
	SortLoss     = "loss"   // packet_loss_perc_mult1000
	SortJitter   = "jitter" // jitter_mult10
)

// Query selects and orders calls for [Store.Search]. The zero value
// selects every call, newest first, DefaultLimit at a time.
//
// Caller, Called, Number and CallID are patterns: % matches any run of
// characters and _ any one character; without either the value must be
// equal. SQLite compares bytes (case-sensitive); MySQL follows the
// column's collation (case-insensitive by default). A pattern that starts
// with its literal characters is answered from the column's index.
type Query struct {
	Caller, Called string
	Number         string // caller or called
	CallID         string
	// IP is the source or the destination of the call's INVITE. The
	// voipmonitor schema holds IPv4 only: an IPv6 address matches nothing
	// there.
	IP netip.Addr
	// From and To bound the call date (its first INVITE): From ≤ calldate
	// < To, in whole seconds (From rounded down, To up); a zero time is
	// no bound.
	From, To time.Time
	// CodeMin and CodeMax bound the last SIP response code, inclusive; 0
	// is no bound.
	CodeMin, CodeMax int
	// State is how the call attempt ended ("" any). The voipmonitor
	// schema derives it from connect_duration and lastSIPresponseNum.
	State cdr.State
	// Ending, when set, is why the call's record was written. The
	// voipmonitor schema derives it from bye and sighup (a setup timeout
	// after RTP reads as normal there).
	Ending *cdr.Ending
	// MOSBelowMult10, when set, selects calls whose worse MOS ×10
	// (mos_min_mult10) is below it; a call without MOS never matches.
	MOSBelowMult10 *int
	// LossAboveMult1000, when set, selects calls whose worse loss
	// (packet_loss_perc_mult1000, percent ×1000) is above it.
	LossAboveMult1000 *int
	// Sort is one of the Sort* keys ("" is SortCallDate); Asc orders
	// ascending (default descending). Ties go by insertion order, in the
	// same direction.
	Sort string
	Asc  bool
	// Limit is the page size (0: DefaultLimit, at most MaxLimit); Offset
	// the rows skipped before it.
	Limit, Offset int
}

// Page is one page of [Store.Search].
type Page struct {
	// Total counts every row that matches, at most MaxCount;
	// TotalCapped tells that the count stopped there.
	Total       int
	TotalCapped bool
	Rows        []Row
}

// Row is one call as the history lists it: the columns both schemas have.
type Row struct {
	// ID is the row's key in the cdr table: [Store.Call] takes it.
	ID                        int64
	CallID                    string
	CallDate, CallEnd         time.Time
	Duration, ConnectDuration time.Duration // whole seconds in the voipmonitor schema
	Answered                  bool
	Caller, CallerName        string
	CallerDomain              string
	Called, CalledDomain      string
	SIPCallerAddr             netip.AddrPort
	SIPCalledAddr             netip.AddrPort
	LastSIPCode               int
	LastSIPReason             string
	State                     cdr.State
	// Ending is why the record was written; EndingKnown is false for rows
	// written before the voipsensor schema had the column.
	Ending      cdr.Ending
	EndingKnown bool
	WhoHanged   cdr.Hangup
	// MOSMinMult10 is the worse direction's MOS ×10, valid when HasMOS.
	MOSMinMult10     int
	HasMOS           bool
	LossPercMult1000 int
	JitterMult10     int
	IDSensor         int // -1 when unset
	CallerUA         string
	CalledUA         string
}

// Detail is one call read by [Store.Call]: its row and its RTP streams.
// Streams are the caller's and the callee's main streams (voipsensor
// schema), or every voice stream of cdr_rtp with the main ones' quality
// from the cdr row (voipmonitor schema); Stream.FromCaller tells the
// direction and Stream.Index the order of first packet.
type Detail struct {
	Row
	Streams []cdr.Stream
}

// searchIndexes are the voipsensor schema's indexes besides calldate and
// callid, one per column a [Query] filters on by equality or prefix.
var searchIndexes = []string{"caller", "called", "sipcallerip", "sipcalledip", "lastSIPresponseNum"}

// upgradeSchema brings a voipsensor-schema cdr table made by an older
// release up to date: the ending and sensor_dropped columns, the search
// indexes.
func (s *Store) upgradeSchema(ctx context.Context) error {
	for _, c := range []struct {
		name string
		k    kind
	}{{"ending", kText}, {"sensor_dropped", kInt}} {
		if rows, err := s.db.QueryContext(ctx, "SELECT "+c.name+" FROM cdr WHERE 1 = 0"); err == nil {
			rows.Close()
		} else if _, err := s.db.ExecContext(ctx, "ALTER TABLE cdr ADD COLUMN "+c.name+" "+s.d.colType(c.k)); err != nil {
			return fmt.Errorf("sqlstore: add column cdr.%s: %w", c.name, err)
		}
	}
	for _, col := range searchIndexes {
		name := "cdr_" + col
		if s.d == sqlite {
			if _, err := s.db.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+name+" ON cdr ("+s.d.quote(col)+")"); err != nil {
				return fmt.Errorf("sqlstore: create index %s: %w", name, err)
			}
			continue
		}
		var n int
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cdr' AND INDEX_NAME = ?`, name).Scan(&n)
		if err != nil {
			return fmt.Errorf("sqlstore: indexes of cdr: %w", err)
		}
		if n > 0 {
			continue
		}
		if _, err := s.db.ExecContext(ctx, "CREATE INDEX "+s.d.quote(name)+" ON cdr ("+s.d.quote(col)+")"); err != nil {
			return fmt.Errorf("sqlstore: create index %s: %w", name, err)
		}
	}
	return nil
}

// schemaCols names, per schema, the columns a search uses.
type schemaCols struct {
	from         string // FROM clause with the joins the rows need
	count        string // FROM clause for the count, without them
	countCallID  string // FROM clause for the count with a Call-ID filter
	id, calldate string
	callID       string
	caller       string
	called       string
	callerIP     string
	calledIP     string
	code         string
	mos, loss    string
	jitter       string
	duration     string
	selects      []string
}

var nativeCols = schemaCols{
	from: "cdr", count: "cdr", countCallID: "cdr",
	id: "ID", calldate: "calldate", callID: "callid", caller: "caller", called: "called",
	callerIP: "sipcallerip", calledIP: "sipcalledip", code: "lastSIPresponseNum",
	mos: "mos_min_mult10", loss: "packet_loss_perc_mult1000", jitter: "jitter_mult10", duration: "duration_ms",
	selects: []string{"ID", "callid", "calldate", "callend", "duration_ms", "connect_duration_ms", "caller", "callername",
		"caller_domain", "called", "called_domain", "sipcallerip", "sipcallerport", "sipcalledip", "sipcalledport",
		"lastSIPresponseNum", "lastSIPresponse", "whohanged", "state", "ending", "mos_min_mult10",
		"packet_loss_perc_mult1000", "jitter_mult10", "id_sensor", "a_ua", "b_ua"},
}

var vmCols = schemaCols{
	from: `cdr c LEFT JOIN cdr_next n ON n.cdr_ID = c.ID AND n.calldate = c.calldate
		LEFT JOIN cdr_sip_response r ON r.id = c.lastSIPresponse_id
		LEFT JOIN cdr_ua ua ON ua.id = c.a_ua_id LEFT JOIN cdr_ua ub ON ub.id = c.b_ua_id`,
	count:       "cdr c",
	countCallID: "cdr c JOIN cdr_next n ON n.cdr_ID = c.ID AND n.calldate = c.calldate",
	id:          "c.ID", calldate: "c.calldate", callID: "n.fbasename", caller: "c.caller", called: "c.called",
	callerIP: "c.sipcallerip", calledIP: "c.sipcalledip", code: "c.lastSIPresponseNum",
	mos: "c.mos_min_mult10", loss: "c.packet_loss_perc_mult1000", jitter: "c.jitter_mult10", duration: "c.duration",
	selects: []string{"c.ID", "n.fbasename", "c.calldate", "c.callend", "c.duration", "c.connect_duration", "c.caller", "c.callername",
		"c.caller_domain", "c.called", "c.called_domain", "c.sipcallerip", "c.sipcallerport", "c.sipcalledip", "c.sipcalledport",
		"c.lastSIPresponseNum", "r.lastSIPresponse", "c.whohanged", "c.bye", "c.sighup", "c.mos_min_mult10",
		"c.packet_loss_perc_mult1000", "c.jitter_mult10", "c.id_sensor", "ua.ua", "ub.ua"},
}

func (s *Store) cols() *schemaCols {
	if s.schema == SchemaVoipmonitor {
		return &vmCols
	}
	return &nativeCols
}

// where collects the conditions of a query, ANDed.
type where struct {
	d     dialect
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// pattern returns the condition that col matches p (see [Query]) and its
// arguments. On SQLite a pattern with wildcards is a GLOB, bounded by
// its literal prefix so that the planner walks the column's index; on
// MySQL a LIKE, which MySQL bounds itself.
func (w *where) pattern(col, p string) (string, []any) {
	if !strings.ContainsAny(p, "%_") {
		return col + " = ?", []any{p}
	}
	if w.d == mysql {
		return col + ` LIKE ?`, []any{strings.ReplaceAll(p, `\`, `\\`)}
	}
	var glob strings.Builder
	for _, r := range p {
		switch r {
		case '%':
			glob.WriteByte('*')
		case '_':
			glob.WriteByte('?')
		case '*', '?', '[':
			glob.WriteString("[" + string(r) + "]")
		default:
			glob.WriteRune(r)
		}
	}
	cond, args := col+" GLOB ?", []any{glob.String()}
	prefix := p[:strings.IndexAny(p, "%_")]
	if prefix != "" {
		cond = col + " >= ? AND " + cond
		args = append([]any{prefix}, args...)
		if hi, ok := successor(prefix); ok {
			cond = col + " < ? AND " + cond
			args = append([]any{hi}, args...)
		}
	}
	return "(" + cond + ")", args
}

// successor returns the smallest string greater than every string that
// starts with prefix, by bytes; false when there is none (all 0xFF).
func successor(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// build turns q into the WHERE clause of s's schema.
func (s *Store) build(q *Query) (*where, error) {
	c := s.cols()
	w := &where{d: s.d}
	for _, f := range []struct{ col, p string }{{c.caller, q.Caller}, {c.called, q.Called}, {c.callID, q.CallID}} {
		if f.p != "" {
			cond, args := w.pattern(f.col, f.p)
			w.add(cond, args...)
		}
	}
	if q.Number != "" {
		a, aa := w.pattern(c.caller, q.Number)
		b, ba := w.pattern(c.called, q.Number)
		w.add("("+a+" OR "+b+")", append(aa, ba...)...)
	}
	if q.IP.IsValid() {
		ip := q.IP.Unmap()
		if s.schema == SchemaVoipmonitor {
			v := vmIP(netip.AddrPortFrom(ip, 0))
			if v == nil {
				w.add("1 = 0")
			} else {
				w.add("("+c.callerIP+" = ? OR "+c.calledIP+" = ?)", v, v)
			}
		} else {
			w.add("("+c.callerIP+" = ? OR "+c.calledIP+" = ?)", ip.String(), ip.String())
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: the date range ends before it starts", ErrQuery)
	}
	if !q.From.IsZero() {
		w.add(c.calldate+" >= ?", s.timeArg(q.From, false))
	}
	if !q.To.IsZero() {
		w.add(c.calldate+" < ?", s.timeArg(q.To, true))
	}
	switch {
	case q.CodeMin > 0 && q.CodeMin == q.CodeMax:
		w.add(c.code+" = ?", q.CodeMin)
	case q.CodeMin > 0 && q.CodeMax > 0:
		w.add(c.code+" BETWEEN ? AND ?", q.CodeMin, q.CodeMax)
	case q.CodeMin > 0:
		w.add(c.code+" >= ?", q.CodeMin)
	case q.CodeMax > 0:
		w.add(c.code+" <= ?", q.CodeMax)
	}
	if q.State != "" {
		if err := s.stateCond(w, q.State); err != nil {
			return nil, err
		}
	}
	if q.Ending != nil {
		if err := s.endingCond(w, *q.Ending); err != nil {
			return nil, err
		}
	}
	if q.MOSBelowMult10 != nil {
		w.add(c.mos+" < ?", *q.MOSBelowMult10)
	}
	if q.LossAboveMult1000 != nil {
		w.add(c.loss+" > ?", *q.LossAboveMult1000)
	}
	return w, nil
}

// timeArg is t as the schema's calldate column holds it, for a bound of
// a range: whole seconds, rounded up when up is set. SQLite keeps the
// voipsensor schema's times as text with a fraction only when there is
// one and a zone ("2026-03-01 12:00:01+00:00", "… 12:00:01.5+00:00"), so
// a bound written without either is a prefix of every time in its second
// and compares right with both forms.
func (s *Store) timeArg(t time.Time, up bool) any {
	t = t.UTC()
	if up && !t.Equal(t.Truncate(time.Second)) {
		t = t.Truncate(time.Second).Add(time.Second)
	}
	switch {
	case s.schema == SchemaVoipmonitor:
		return t.Format(time.DateTime)
	case s.d == sqlite:
		return t.Format(time.DateTime)
	}
	return t.Truncate(time.Second)
}

// vmBusy and friends are the response codes by which the voipmonitor
// schema's rows tell the states apart (as tableview.recordState sets them).
const (
	vmBusyCodes     = "486, 600"
	vmNoAnswerCodes = "408, 480"
	vmCancelCode    = "487"
)

func (s *Store) stateCond(w *where, st cdr.State) error {
	switch st {
	case cdr.StateAnswered, cdr.StateBusy, cdr.StateNoAnswer, cdr.StateCancelled, cdr.StateFailed:
	default:
		return fmt.Errorf("%w: unknown state %q", ErrQuery, st)
	}
	if s.schema != SchemaVoipmonitor {
		w.add("state = ?", string(st))
		return nil
	}
	switch st {
	case cdr.StateAnswered:
		w.add("c.connect_duration IS NOT NULL")
	case cdr.StateBusy:
		w.add("c.connect_duration IS NULL AND c.lastSIPresponseNum IN (" + vmBusyCodes + ")")
	case cdr.StateNoAnswer:
		w.add("c.connect_duration IS NULL AND c.lastSIPresponseNum IN (" + vmNoAnswerCodes + ")")
	case cdr.StateCancelled:
		w.add("c.connect_duration IS NULL AND c.lastSIPresponseNum = " + vmCancelCode)
	case cdr.StateFailed:
		w.add("c.connect_duration IS NULL AND c.lastSIPresponseNum NOT IN (" + vmBusyCodes + ", " + vmNoAnswerCodes + ", " + vmCancelCode + ")")
	}
	return nil
}

// The sniffer's bye values of the timeouts (vmBye).
const (
	vmByeAbsolute = 102
	vmByeRTP      = 104
	vmByeSetup    = 108
)

func (s *Store) endingCond(w *where, e cdr.Ending) error {
	if s.schema != SchemaVoipmonitor {
		name := EndingName(e)
		if name == "" {
			return fmt.Errorf("%w: unknown ending %d", ErrQuery, e)
		}
		w.add("ending = ?", name)
		return nil
	}
	switch e {
	case cdr.EndingNormal:
		w.add("c.sighup = 0 AND c.bye NOT IN (?, ?, ?)", vmByeAbsolute, vmByeRTP, vmByeSetup)
	case cdr.EndingShutdown:
		w.add("c.sighup = 1")
	case cdr.EndingAbsoluteTimeout:
		w.add("c.sighup = 0 AND c.bye = ?", vmByeAbsolute)
	case cdr.EndingRTPTimeout:
		w.add("c.sighup = 0 AND c.bye = ?", vmByeRTP)
	case cdr.EndingSetupTimeout:
		w.add("c.sighup = 0 AND c.bye = ?", vmByeSetup)
	default:
		return fmt.Errorf("%w: unknown ending %d", ErrQuery, e)
	}
	return nil
}

// order is the ORDER BY clause of q.
func (s *Store) order(q *Query) (string, error) {
	c := s.cols()
	var col string
	switch q.Sort {
	case "", SortCallDate:
		col = c.calldate
	case SortDuration:
		col = c.duration
	case SortCaller:
		col = c.caller
	case SortCalled:
		col = c.called
	case SortCode:
		col = c.code
	case SortMOS:
		col = c.mos
	case SortLoss:
		col = c.loss
	case SortJitter:
		col = c.jitter
	default:
		return "", fmt.Errorf("%w: unknown sort key %q", ErrQuery, q.Sort)
	}
	dir := " DESC"
	if q.Asc {
		dir = " ASC"
	}
	return " ORDER BY " + col + dir + ", " + c.id + dir, nil
}

// SearchSQL returns the statement and arguments Search runs for a page of
// q, for EXPLAIN in tests and benchmarks.
func (s *Store) SearchSQL(q Query) (string, []any, error) {
	w, err := s.build(&q)
	if err != nil {
		return "", nil, err
	}
	ord, err := s.order(&q)
	if err != nil {
		return "", nil, err
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return "", nil, fmt.Errorf("%w: limit %d, want 1 to %d", ErrQuery, limit, MaxLimit)
	}
	if q.Offset < 0 {
		return "", nil, fmt.Errorf("%w: offset %d", ErrQuery, q.Offset)
	}
	c := s.cols()
	page := " LIMIT " + strconv.Itoa(limit) + " OFFSET " + strconv.Itoa(q.Offset)
	if s.schema != SchemaVoipmonitor {
		return "SELECT " + strings.Join(c.selects, ", ") + " FROM " + c.from + w.String() + ord + page, w.args, nil
	}
	// The page's IDs first, from cdr alone, then the joins for those rows
	// only: skipping rows costs an index step each, not four lookups.
	from := c.count
	if q.CallID != "" {
		from = c.countCallID
	}
	stmt := "SELECT " + strings.Join(c.selects, ", ") + " FROM (SELECT c.ID AS pid FROM " + from + w.String() + ord + page +
		") p JOIN " + strings.Replace(c.from, "cdr c", "cdr c ON c.ID = p.pid", 1) + ord
	return stmt, w.args, nil
}

// Search returns one page of the calls q selects and how many there are
// in all. Errors wrapping [ErrQuery] are the query's.
func (s *Store) Search(ctx context.Context, q Query) (Page, error) {
	stmt, args, err := s.SearchSQL(q)
	if err != nil {
		return Page{}, err
	}
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return Page{}, fmt.Errorf("sqlstore: search: %w", err)
	}
	out, err := s.scanRows(rows)
	if err != nil {
		return Page{}, err
	}
	page := Page{Rows: out}
	if page.Total, page.TotalCapped, err = s.count(ctx, &q); err != nil {
		return Page{}, err
	}
	return page, nil
}

// count counts the rows q selects, up to MaxCount.
func (s *Store) count(ctx context.Context, q *Query) (int, bool, error) {
	w, err := s.build(q)
	if err != nil {
		return 0, false, err
	}
	c := s.cols()
	from := c.count
	if q.CallID != "" {
		from = c.countCallID
	}
	stmt := "SELECT COUNT(*) FROM (SELECT 1 AS one FROM " + from + w.String() + " LIMIT " + strconv.Itoa(MaxCount+1) + ") t"
	var n int
	if err := s.db.QueryRowContext(ctx, stmt, w.args...).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("sqlstore: count: %w", err)
	}
	if n > MaxCount {
		return MaxCount, true, nil
	}
	return n, false, nil
}

// dbTime scans a DATETIME that a driver hands over as a time.Time or as
// text ("2006-01-02 15:04:05[.frac][zone]").
type dbTime struct {
	t     time.Time
	valid bool
}

func (d *dbTime) Scan(v any) error {
	d.valid = false
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		d.t, d.valid = x.UTC(), true
		return nil
	case []byte:
		v = string(x)
	}
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("sqlstore: a datetime of type %T", v)
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.DateTime + ".999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, str); err == nil {
			d.t, d.valid = t.UTC(), true
			return nil
		}
	}
	return fmt.Errorf("sqlstore: datetime %q", str)
}

// scanRows reads rows of the schema's selects into Rows and closes them.
func (s *Store) scanRows(rows *sql.Rows) ([]Row, error) {
	defer rows.Close()
	out := []Row{}
	vm := s.schema == SchemaVoipmonitor
	for rows.Next() {
		var (
			r                                             Row
			callID, caller, name, cdom, called, ddom      sql.NullString
			reason, who, st, end, aUA, bUA                sql.NullString
			ipText1, ipText2                              sql.NullString
			ipNum1, ipNum2                                sql.NullInt64
			sip1, sip2                                    any
			date, endAt                                   dbTime
			dur, conn, port1, port2, code, mos, loss, jit sql.NullInt64
			sensor, bye, sighup                           sql.NullInt64
			stateOrBye, endingOrSighup                    any
		)
		if vm {
			stateOrBye, endingOrSighup = &bye, &sighup
			sip1, sip2 = &ipNum1, &ipNum2
		} else {
			stateOrBye, endingOrSighup = &st, &end
			sip1, sip2 = &ipText1, &ipText2
		}
		err := rows.Scan(&r.ID, &callID, &date, &endAt, &dur, &conn, &caller, &name, &cdom, &called, &ddom,
			sip1, &port1, sip2, &port2, &code, &reason, &who, stateOrBye, endingOrSighup, &mos, &loss, &jit, &sensor, &aUA, &bUA)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: search: %w", err)
		}
		r.CallID, r.CallDate, r.CallEnd = callID.String, date.t, endAt.t
		r.Caller, r.CallerName, r.CallerDomain = caller.String, name.String, cdom.String
		r.Called, r.CalledDomain = called.String, ddom.String
		if vm {
			r.SIPCallerAddr, r.SIPCalledAddr = vmAddr(ipNum1, port1), vmAddr(ipNum2, port2)
		} else {
			r.SIPCallerAddr, r.SIPCalledAddr = textAddr(ipText1, port1), textAddr(ipText2, port2)
		}
		r.LastSIPCode, r.LastSIPReason = int(code.Int64), reason.String
		r.WhoHanged = cdr.Hangup(who.String)
		r.MOSMinMult10, r.HasMOS = int(mos.Int64), mos.Valid
		r.LossPercMult1000, r.JitterMult10 = int(loss.Int64), int(jit.Int64)
		r.IDSensor = -1
		if sensor.Valid {
			r.IDSensor = int(sensor.Int64)
		}
		r.CallerUA, r.CalledUA = aUA.String, bUA.String
		if vm {
			r.Duration = time.Duration(dur.Int64) * time.Second
			r.ConnectDuration = time.Duration(conn.Int64) * time.Second
			r.Answered = conn.Valid
			// lastSIPresponse holds "200 OK": the reason follows the code.
			if c, rest, ok := strings.Cut(r.LastSIPReason, " "); ok && c == strconv.Itoa(r.LastSIPCode) {
				r.LastSIPReason = rest
			}
			r.State = vmCallState(r.Answered, r.LastSIPCode)
			r.Ending, r.EndingKnown = vmEnding(bye.Int64, sighup.Int64), true
		} else {
			r.Duration = time.Duration(dur.Int64) * time.Millisecond
			r.ConnectDuration = time.Duration(conn.Int64) * time.Millisecond
			r.State = cdr.State(st.String)
			r.Answered = r.State == cdr.StateAnswered
			r.Ending, r.EndingKnown = ParseEnding(end.String)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: search: %w", err)
	}
	return out, nil
}

// vmAddr turns an IPv4 number column and a port column into an AddrPort
// (invalid when the address is NULL).
func vmAddr(ip, port sql.NullInt64) netip.AddrPort {
	if !ip.Valid {
		return netip.AddrPort{}
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(ip.Int64))
	return netip.AddrPortFrom(netip.AddrFrom4(b), uint16(port.Int64))
}

// textAddr turns a text IP column and a port column into an AddrPort.
func textAddr(ip sql.NullString, port sql.NullInt64) netip.AddrPort {
	a, err := netip.ParseAddr(ip.String)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, uint16(port.Int64))
}

// vmCallState derives a call's state from the voipmonitor schema's columns.
func vmCallState(answered bool, code int) cdr.State {
	switch {
	case answered:
		return cdr.StateAnswered
	case code == 486 || code == 600:
		return cdr.StateBusy
	case code == 408 || code == 480:
		return cdr.StateNoAnswer
	case code == 487:
		return cdr.StateCancelled
	}
	return cdr.StateFailed
}

// vmEnding derives why a record was written from bye and sighup.
func vmEnding(bye, sighup int64) cdr.Ending {
	switch {
	case sighup == 1:
		return cdr.EndingShutdown
	case bye == vmByeAbsolute:
		return cdr.EndingAbsoluteTimeout
	case bye == vmByeRTP:
		return cdr.EndingRTPTimeout
	case bye == vmByeSetup:
		return cdr.EndingSetupTimeout
	}
	return cdr.EndingNormal
}

// Call reads one call: the row with this ID when id > 0, otherwise the
// newest row with this Call-ID. It returns [ErrNoCall] when none matches.
func (s *Store) Call(ctx context.Context, id int64, callID string) (Detail, error) {
	if id <= 0 && callID == "" {
		return Detail{}, fmt.Errorf("%w: no id or Call-ID", ErrQuery)
	}
	if s.schema == SchemaVoipmonitor {
		return s.vmCall(ctx, id, callID)
	}
	where, arg := "ID = ?", any(id)
	if id <= 0 {
		where, arg = "callid = ?", callID
	}
	recs, ids, err := query(ctx, s, "cdr", recordCols, where, []any{arg}, 1)
	if err != nil {
		return Detail{}, err
	}
	if len(recs) == 0 {
		return Detail{}, ErrNoCall
	}
	// The row as Search lists it (call-level columns, ending), then the
	// streams from the record.
	rows, err := s.db.QueryContext(ctx, "SELECT "+strings.Join(nativeCols.selects, ", ")+" FROM cdr WHERE ID = ?", ids[0])
	if err != nil {
		return Detail{}, fmt.Errorf("sqlstore: %w", err)
	}
	rs, err := s.scanRows(rows)
	if err != nil {
		return Detail{}, err
	}
	if len(rs) == 0 {
		return Detail{}, ErrNoCall // deleted in between
	}
	d := Detail{Row: rs[0]}
	rec := &recs[0]
	if rec.A != nil {
		a := *rec.A
		a.FromCaller = true
		d.Streams = append(d.Streams, a)
	}
	if rec.B != nil {
		b := *rec.B
		b.Index = 1
		d.Streams = append(d.Streams, b)
	}
	return d, nil
}

// vmCall is Call on the voipmonitor schema.
func (s *Store) vmCall(ctx context.Context, id int64, callID string) (Detail, error) {
	where, arg := "c.ID = ?", any(id)
	if id <= 0 {
		where, arg = "n.fbasename = ?", callID
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+strings.Join(vmCols.selects, ", ")+" FROM "+vmCols.from+
		" WHERE "+where+" ORDER BY c.calldate DESC, c.ID DESC LIMIT 1", arg)
	if err != nil {
		return Detail{}, fmt.Errorf("sqlstore: %w", err)
	}
	rs, err := s.scanRows(rows)
	if err != nil {
		return Detail{}, err
	}
	if len(rs) == 0 {
		return Detail{}, ErrNoCall
	}
	d := Detail{Row: rs[0]}
	if d.Streams, err = s.vmStreams(ctx, &d.Row); err != nil {
		return Detail{}, err
	}
	return d, nil
}

// vmStreamSides are the cdr columns of the main streams' quality.
var vmStreamSides = []string{"saddr", "payload", "received", "lost", "packet_loss_perc_mult1000", "avgjitter_mult10",
	"maxjitter", "mos_f1_mult10", "mos_f2_mult10", "mos_adapt_mult10", "mos_f1_min_mult10", "mos_f2_min_mult10",
	"mos_adapt_min_mult10", "rtcp_loss", "rtcp_maxfr", "rtcp_avgfr_mult10", "rtcp_maxjitter", "rtcp_avgjitter_mult10", "index"}

// vmStreams reads the voice streams of a call from cdr_rtp, with the
// quality of the caller's and the callee's main streams from its cdr row.
func (s *Store) vmStreams(ctx context.Context, r *Row) ([]cdr.Stream, error) {
	var cols []string
	for _, p := range []string{"a_", "b_"} {
		for _, n := range vmStreamSides {
			cols = append(cols, s.d.quote(p+n))
		}
	}
	vals := make([]sql.NullInt64, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := s.db.QueryRowContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM cdr WHERE ID = ?", r.ID).Scan(dest...); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	main := [2]*cdr.Stream{}
	for side := range 2 {
		v := vals[side*len(vmStreamSides):]
		if !v[2].Valid { // a_received: NULL without the stream
			continue
		}
		st := &cdr.Stream{FromCaller: side == 0, Payload: int(v[1].Int64), Received: v[2].Int64, Lost: v[3].Int64,
			LossPercMult1000: int(v[4].Int64), AvgJitterMult10: int(v[5].Int64), MaxJitter: int(v[6].Int64),
			MOSF1Mult10: int(v[7].Int64), MOSF2Mult10: int(v[8].Int64), MOSAdaptMult10: int(v[9].Int64),
			MOSF1MinMult10: int(v[10].Int64), MOSF2MinMult10: int(v[11].Int64), MOSAdaptMinMult10: int(v[12].Int64),
			RTCPLoss: v[13].Int64, RTCPMaxFR: int(v[14].Int64), RTCPAvgFRMult10: int(v[15].Int64),
			RTCPMaxJitter: int(v[16].Int64), RTCPAvgJitterMult10: int(v[17].Int64), Index: int(v[18].Int64),
			MOSMeasured: v[8].Valid}
		st.Saddr = vmAddr(v[0], sql.NullInt64{})
		main[side] = st
	}

	rows, err := s.db.QueryContext(ctx, `SELECT saddr, sport, daddr, dport, ssrc, received, loss, payload,
		maxjitter_mult10, `+s.d.quote("index")+`, flags, firsttime, duration FROM cdr_rtp WHERE cdr_ID = ? ORDER BY `+s.d.quote("index"), r.ID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	defer rows.Close()
	var out []cdr.Stream
	used := [2]bool{}
	for rows.Next() {
		var saddr, daddr, sport, dport, ssrc, recv, loss, pt, maxj, index, flags sql.NullInt64
		var first, dur sql.NullFloat64
		if err := rows.Scan(&saddr, &sport, &daddr, &dport, &ssrc, &recv, &loss, &pt, &maxj, &index, &flags, &first, &dur); err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
		st := cdr.Stream{Saddr: vmAddr(saddr, sport), Daddr: vmAddr(daddr, dport), SSRC: uint32(ssrc.Int64),
			Received: recv.Int64, Lost: loss.Int64, Payload: int(pt.Int64), MaxJitterMS: float64(maxj.Int64) / 10,
			Index: int(index.Int64) - 1, FromCaller: flags.Int64&vmRTPFlagCaller != 0}
		st.First = r.CallDate.Add(time.Duration(first.Float64 * float64(time.Second)))
		st.Last = st.First.Add(time.Duration(dur.Float64 * float64(time.Second)))
		side := 1
		if st.FromCaller {
			side = 0
		}
		if flags.Int64&vmRTPFlagAB != 0 && main[side] != nil && !used[side] {
			m := main[side]
			used[side] = true
			st.LossPercMult1000, st.AvgJitterMult10, st.MaxJitter = m.LossPercMult1000, m.AvgJitterMult10, m.MaxJitter
			st.MOSF1Mult10, st.MOSF2Mult10, st.MOSAdaptMult10 = m.MOSF1Mult10, m.MOSF2Mult10, m.MOSAdaptMult10
			st.MOSF1MinMult10, st.MOSF2MinMult10, st.MOSAdaptMinMult10 = m.MOSF1MinMult10, m.MOSF2MinMult10, m.MOSAdaptMinMult10
			st.RTCPLoss, st.RTCPMaxFR, st.RTCPAvgFRMult10 = m.RTCPLoss, m.RTCPMaxFR, m.RTCPAvgFRMult10
			st.RTCPMaxJitter, st.RTCPAvgJitterMult10, st.MOSMeasured = m.RTCPMaxJitter, m.RTCPAvgJitterMult10, m.MOSMeasured
		} else if den := st.Received + st.Lost; den > 0 {
			st.LossPercMult1000 = int(st.Lost * 100_000 / den)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	// A main stream without its cdr_rtp row (it carried no voice codec).
	for side, m := range main {
		if m != nil && !used[side] {
			out = append(out, *m)
		}
	}
	return out, nil
}
