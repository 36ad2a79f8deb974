package sqlstore

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voipsensor/voipsensor/internal/cdr"
)

type kind int

const (
	kInt    kind = iota // int64
	kText               // string, truncated to maxText
	kTime               // time.Time, UTC, microseconds
	kSensor             // int64, NULL read back as -1
)

// maxText is the VARCHAR length of text columns; longer values are cut
// (on a rune boundary) so that MySQL strict mode does not reject the row.
const maxText = 255

// column maps one table column to a field. get returns int64, string,
// time.Time or nil (NULL); set receives a non-NULL value of the column's kind.
type column[T any] struct {
	name string
	kind kind
	get  func(*T) any
	set  func(*T, any)
}

func intCol[T any](name string, f func(*T) *int64) column[T] {
	return column[T]{name, kInt, func(r *T) any { return *f(r) }, func(r *T, v any) { *f(r) = v.(int64) }}
}

func iCol[T any](name string, f func(*T) *int) column[T] {
	return column[T]{name, kInt, func(r *T) any { return int64(*f(r)) }, func(r *T, v any) { *f(r) = int(v.(int64)) }}
}

func textCol[T any](name string, f func(*T) *string) column[T] {
	return column[T]{name, kText, func(r *T) any { return *f(r) }, func(r *T, v any) { *f(r) = v.(string) }}
}

func timeCol[T any](name string, f func(*T) *time.Time) column[T] {
	return column[T]{name, kTime,
		func(r *T) any {
			if f(r).IsZero() {
				return nil
			}
			return f(r).UTC().Truncate(time.Microsecond)
		},
		func(r *T, v any) { *f(r) = v.(time.Time).UTC() }}
}

// msCol stores a duration in milliseconds.
func msCol[T any](name string, f func(*T) *time.Duration) column[T] {
	return column[T]{name, kInt, func(r *T) any { return f(r).Milliseconds() },
		func(r *T, v any) { *f(r) = time.Duration(v.(int64)) * time.Millisecond }}
}

// addrCols stores an AddrPort as a text IP column and an int port column.
func addrCols[T any](ipName, portName string, f func(*T) *netip.AddrPort) []column[T] {
	return []column[T]{
		{ipName, kText,
			func(r *T) any {
				if !f(r).IsValid() {
					return nil
				}
				return f(r).Addr().String()
			},
			func(r *T, v any) {
				if a, err := netip.ParseAddr(v.(string)); err == nil {
					*f(r) = netip.AddrPortFrom(a, f(r).Port())
				}
			}},
		{portName, kInt,
			func(r *T) any {
				if !f(r).IsValid() {
					return nil
				}
				return int64(f(r).Port())
			},
			func(r *T, v any) { *f(r) = netip.AddrPortFrom(f(r).Addr(), uint16(v.(int64))) }},
	}
}

// idSensorCol stores -1 as NULL.
func idSensorCol[T any](f func(*T) *int) column[T] {
	return column[T]{"id_sensor", kSensor,
		func(r *T) any {
			if *f(r) < 0 {
				return nil
			}
			return int64(*f(r))
		},
		func(r *T, v any) { *f(r) = int(v.(int64)) }}
}

// streamCols are the per-direction columns with prefix "a_" or "b_"; all
// are NULL when the stream is nil.
func streamCols(prefix string, side func(*cdr.Record) **cdr.Stream) []column[cdr.Record] {
	// s returns the stream, allocating it on set.
	s := func(r *cdr.Record) *cdr.Stream {
		if *side(r) == nil {
			*side(r) = &cdr.Stream{}
		}
		return *side(r)
	}
	wrap := func(c column[cdr.Stream]) column[cdr.Record] {
		return column[cdr.Record]{name: prefix + c.name, kind: c.kind,
			get: func(r *cdr.Record) any {
				if *side(r) == nil {
					return nil
				}
				return c.get(*side(r))
			},
			set: func(r *cdr.Record, v any) { c.set(s(r), v) }}
	}
	type S = cdr.Stream
	inner := []column[S]{}
	inner = append(inner, addrCols("saddr", "sport", func(s *S) *netip.AddrPort { return &s.Saddr })...)
	inner = append(inner, addrCols("daddr", "dport", func(s *S) *netip.AddrPort { return &s.Daddr })...)
	inner = append(inner,
		column[S]{"ssrc", kInt, func(s *S) any { return int64(s.SSRC) }, func(s *S, v any) { s.SSRC = uint32(v.(int64)) }},
		iCol("payload", func(s *S) *int { return &s.Payload }),
		textCol("codec", func(s *S) *string { return &s.Codec }),
		intCol("received", func(s *S) *int64 { return &s.Received }),
		intCol("lost", func(s *S) *int64 { return &s.Lost }),
		intCol("duplicates", func(s *S) *int64 { return &s.Duplicates }),
		intCol("reordered", func(s *S) *int64 { return &s.Reordered }),
		iCol("packet_loss_perc_mult1000", func(s *S) *int { return &s.LossPercMult1000 }),
		iCol("avgjitter_mult10", func(s *S) *int { return &s.AvgJitterMult10 }),
		iCol("maxjitter", func(s *S) *int { return &s.MaxJitter }),
		iCol("maxdelta", func(s *S) *int { return &s.MaxDelta }),
		iCol("mos_f1_mult10", func(s *S) *int { return &s.MOSF1Mult10 }),
		iCol("mos_f2_mult10", func(s *S) *int { return &s.MOSF2Mult10 }),
		iCol("mos_adapt_mult10", func(s *S) *int { return &s.MOSAdaptMult10 }),
		iCol("mos_f1_min_mult10", func(s *S) *int { return &s.MOSF1MinMult10 }),
		iCol("mos_f2_min_mult10", func(s *S) *int { return &s.MOSF2MinMult10 }),
		iCol("mos_adapt_min_mult10", func(s *S) *int { return &s.MOSAdaptMinMult10 }),
	)
	for i := range 10 {
		inner = append(inner, intCol("sl"+itoa(i+1), func(s *S) *int64 { return &s.SL[i] }))
	}
	inner = append(inner,
		intCol("rtcp_loss", func(s *S) *int64 { return &s.RTCPLoss }),
		iCol("rtcp_maxfr", func(s *S) *int { return &s.RTCPMaxFR }),
		iCol("rtcp_avgfr_mult10", func(s *S) *int { return &s.RTCPAvgFRMult10 }),
		iCol("rtcp_maxjitter", func(s *S) *int { return &s.RTCPMaxJitter }),
		iCol("rtcp_avgjitter_mult10", func(s *S) *int { return &s.RTCPAvgJitterMult10 }),
		iCol("rtcp_avgrtd_mult10", func(s *S) *int { return &s.RTCPAvgRTDMult10 }),
		iCol("rtcp_maxrtd_mult10", func(s *S) *int { return &s.RTCPMaxRTDMult10 }),
	)
	out := make([]column[cdr.Record], len(inner))
	for i, c := range inner {
		out[i] = wrap(c)
	}
	return out
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return "1" + string(rune('0'+n-10))
}

type R = cdr.Record

// recordCols is the cdr table, in column order. duration and
// connect_duration are whole seconds as in VoIPmonitor; the *_ms columns
// keep the precision. The call-level summary columns (jitter_mult10, …) are
// derived on insert and ignored when reading.
var recordCols = func() []column[R] {
	cols := []column[R]{
		idSensorCol(func(r *R) *int { return &r.IDSensor }),
		textCol("callid", func(r *R) *string { return &r.CallID }),
		timeCol("calldate", func(r *R) *time.Time { return &r.CallDate }),
		timeCol("callend", func(r *R) *time.Time { return &r.CallEnd }),
		{"duration", kInt, func(r *R) any { return int64(r.Duration / time.Second) }, func(*R, any) {}},
		{"connect_duration", kInt, func(r *R) any { return int64(r.ConnectDuration / time.Second) }, func(*R, any) {}},
		msCol("duration_ms", func(r *R) *time.Duration { return &r.Duration }),
		msCol("connect_duration_ms", func(r *R) *time.Duration { return &r.ConnectDuration }),
		msCol("progress_time_ms", func(r *R) *time.Duration { return &r.ProgressTime }),
		msCol("ringing_time_ms", func(r *R) *time.Duration { return &r.RingingTime }),
		textCol("caller", func(r *R) *string { return &r.Caller }),
		textCol("caller_domain", func(r *R) *string { return &r.CallerDomain }),
		textCol("callername", func(r *R) *string { return &r.CallerName }),
		textCol("called", func(r *R) *string { return &r.Called }),
		textCol("called_domain", func(r *R) *string { return &r.CalledDomain }),
		textCol("a_ua", func(r *R) *string { return &r.CallerUA }),
		textCol("b_ua", func(r *R) *string { return &r.CalledUA }),
	}
	cols = append(cols, addrCols("sipcallerip", "sipcallerport", func(r *R) *netip.AddrPort { return &r.SIPCallerAddr })...)
	cols = append(cols, addrCols("sipcalledip", "sipcalledport", func(r *R) *netip.AddrPort { return &r.SIPCalledAddr })...)
	cols = append(cols,
		iCol("lastSIPresponseNum", func(r *R) *int { return &r.LastSIPCode }),
		textCol("lastSIPresponse", func(r *R) *string { return &r.LastSIPReason }),
		column[R]{"whohanged", kText, func(r *R) any { return string(r.WhoHanged) }, func(r *R, v any) { r.WhoHanged = cdr.Hangup(v.(string)) }},
		column[R]{"state", kText, func(r *R) any { return string(r.State) }, func(r *R, v any) { r.State = cdr.State(v.(string)) }},
		column[R]{"jitter_mult10", kInt, func(r *R) any { return int64(r.JitterMult10()) }, func(*R, any) {}},
		column[R]{"packet_loss_perc_mult1000", kInt, func(r *R) any { return int64(r.LossPercMult1000()) }, func(*R, any) {}},
		column[R]{"mos_min_mult10", kInt, func(r *R) any {
			if m, ok := r.MOSMinMult10(); ok {
				return int64(m)
			}
			return nil
		}, func(*R, any) {}},
	)
	cols = append(cols, streamCols("a_", func(r *R) **cdr.Stream { return &r.A })...)
	cols = append(cols, streamCols("b_", func(r *R) **cdr.Stream { return &r.B })...)
	// Added after the first release: [Store.Open] adds it to older tables
	// (NULL in their rows).
	cols = append(cols, column[R]{"ending", kText,
		func(r *R) any { return EndingName(r.Ending) },
		func(r *R, v any) { r.Ending, _ = ParseEnding(v.(string)) }},
		column[R]{"sensor_dropped", kInt,
			func(r *R) any {
				if r.SensorDropped {
					return int64(1)
				}
				return int64(0)
			},
			func(r *R, v any) { r.SensorDropped = v.(int64) != 0 }})
	return cols
}()

// endingNames are the texts of the cdr table's ending column, by
// [cdr.Ending].
var endingNames = [...]string{
	cdr.EndingNormal:          "normal",
	cdr.EndingShutdown:        "shutdown",
	cdr.EndingAbsoluteTimeout: "absolute_timeout",
	cdr.EndingRTPTimeout:      "rtp_timeout",
	cdr.EndingSetupTimeout:    "setup_timeout",
}

// EndingName returns the text the voipsensor schema stores for e:
// "normal", "shutdown", "absolute_timeout", "rtp_timeout" or
// "setup_timeout" ("" for an unknown value).
func EndingName(e cdr.Ending) string {
	if int(e) < len(endingNames) {
		return endingNames[e]
	}
	return ""
}

// ParseEnding is the inverse of [EndingName].
func ParseEnding(s string) (cdr.Ending, bool) {
	for i, n := range endingNames {
		if n == s {
			return cdr.Ending(i), true
		}
	}
	return cdr.EndingNormal, false
}

type G = cdr.Registration

// registrationCols is the register_state table, with VoIPmonitor's names
// where they exist (calldate = time of the state, to_num = AOR user,
// rrd_avg = round trip in ms).
var registrationCols = func() []column[G] {
	cols := []column[G]{
		idSensorCol(func(g *G) *int { return &g.IDSensor }),
		timeCol("calldate", func(g *G) *time.Time { return &g.Time }),
		textCol("callid", func(g *G) *string { return &g.CallID }),
		textCol("to_num", func(g *G) *string { return &g.User }),
		textCol("to_domain", func(g *G) *string { return &g.Domain }),
		textCol("contact", func(g *G) *string { return &g.Contact }),
		{"state", kInt, func(g *G) any { return int64(g.State) }, func(g *G, v any) { g.State = cdr.RegState(v.(int64)) }},
		iCol("expires", func(g *G) *int { return &g.Expires }),
		iCol("attempts", func(g *G) *int { return &g.Attempts }),
		textCol("ua", func(g *G) *string { return &g.UserAgent }),
	}
	cols = append(cols, addrCols("sipcallerip", "sipcallerport", func(g *G) *netip.AddrPort { return &g.Src })...)
	cols = append(cols, addrCols("sipcalledip", "sipcalledport", func(g *G) *netip.AddrPort { return &g.Dst })...)
	cols = append(cols, msCol("rrd_avg", func(g *G) *time.Duration { return &g.RRD }))
	return cols
}()

// truncText replaces invalid UTF-8 and cuts s to maxText bytes on a rune
// boundary, so that MySQL strict mode accepts it.
func truncText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxText {
		return s
	}
	i := maxText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func (d dialect) colType(k kind) string {
	switch k {
	case kInt, kSensor:
		if d == mysql {
			return "BIGINT"
		}
		return "INTEGER"
	case kTime:
		if d == mysql {
			return "DATETIME(6)"
		}
		return "DATETIME"
	}
	if d == mysql {
		return "VARCHAR(255)"
	}
	return "TEXT"
}

func createTable[T any](d dialect, table string, cols []column[T], keys ...string) []string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + table + " (\n")
	if d == mysql {
		b.WriteString("  ID BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY")
	} else {
		b.WriteString("  ID INTEGER PRIMARY KEY AUTOINCREMENT")
	}
	for _, c := range cols {
		b.WriteString(",\n  " + d.quote(c.name) + " " + d.colType(c.kind))
	}
	if d == mysql {
		for _, k := range keys {
			b.WriteString(",\n  KEY " + k + " (" + k + ")")
		}
		b.WriteString("\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
		return []string{b.String()}
	}
	b.WriteString("\n)")
	stmts := []string{b.String()}
	for _, k := range keys {
		stmts = append(stmts, "CREATE INDEX IF NOT EXISTS "+table+"_"+k+" ON "+table+" ("+k+")")
	}
	return stmts
}
