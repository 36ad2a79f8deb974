package sqlstore

import (
	"fmt"
	"strings"
)

// vmCol is one column of VoIPmonitor's schema: its MySQL type as
// information_schema spells it for the tables the sniffer 2026.04.0
// creates, and whether it accepts NULL. Every column the sniffer creates
// is created, including those voipsensor leaves NULL, so that a GUI's
// queries find them.
type vmCol struct {
	name    string
	typ     string
	notNull bool
	def     string // DEFAULT clause value, "" for NULL
}

// vmTable is one table of VoIPmonitor's schema.
type vmTable struct {
	name string
	cols []vmCol
	// autoInc names the AUTO_INCREMENT column ("" for none).
	autoInc string
	// key is the primary key: with partitions (MySQL) the partitioning
	// column joins it, as the sniffer's opt_cdr_partition does.
	key []string
	// partBy is the DATETIME column the MySQL table is partitioned on by
	// day ("" for none).
	partBy string
	// indexes are the secondary keys as "name(col,…)"; unique ones start
	// with "unique ".
	indexes []string
}

// nullable builds columns that accept NULL from "name type" pairs.
func nullable(typ string, names ...string) []vmCol {
	out := make([]vmCol, len(names))
	for i, n := range names {
		out[i] = vmCol{name: n, typ: typ}
	}
	return out
}

// ab returns prefix a_ and b_ variants of each name, a_ first for all.
func ab(names ...string) []string {
	out := make([]string, 0, 2*len(names))
	for _, p := range []string{"a_", "b_"} {
		for _, n := range names {
			out = append(out, p+n)
		}
	}
	return out
}

const (
	tTinyU   = "tinyint(3) unsigned"
	tTiny    = "tinyint(4)"
	tSmallU  = "smallint(5) unsigned"
	tSmall   = "smallint(6)"
	tMediumU = "mediumint(8) unsigned"
	tMedium  = "mediumint(9)"
	tIntU    = "int(10) unsigned"
	tInt     = "int(11)"
	tBigU    = "bigint(20) unsigned"
	tBig     = "bigint(20)"
	tVarchar = "varchar(255)"
	tDate    = "datetime"
)

// vmCDRTable is VoIPmonitor's cdr table, columns in the sniffer's order.
var vmCDRTable = func() vmTable {
	var c []vmCol
	add := func(cols ...vmCol) { c = append(c, cols...) }
	add(vmCol{name: "ID", typ: tBigU, notNull: true},
		vmCol{name: "calldate", typ: tDate, notNull: true},
		vmCol{name: "callend", typ: tDate, notNull: true})
	add(nullable(tMediumU, "duration", "connect_duration", "progress_time", "first_rtp_time")...)
	add(vmCol{name: "post_bye_delay", typ: "decimal(9,3)"})
	add(nullable(tVarchar, "caller", "caller_domain", "caller_reverse", "callername", "callername_reverse",
		"called", "called_domain", "called_reverse")...)
	add(vmCol{name: "sipcallerip", typ: tIntU}, vmCol{name: "sipcallerport", typ: tSmallU},
		vmCol{name: "sipcalledip", typ: tIntU}, vmCol{name: "sipcalledport", typ: tSmallU},
		vmCol{name: "whohanged", typ: "enum('caller','callee')"},
		vmCol{name: "bye", typ: tTinyU},
		vmCol{name: "lastSIPresponse_id", typ: tMediumU},
		vmCol{name: "lastSIPresponseNum", typ: tSmallU},
		vmCol{name: "reason_sip_cause", typ: tSmallU},
		vmCol{name: "reason_sip_text_id", typ: tMediumU},
		vmCol{name: "reason_q850_cause", typ: tSmallU},
		vmCol{name: "reason_q850_text_id", typ: tMediumU},
		vmCol{name: "sighup", typ: tTiny},
		vmCol{name: "dscp", typ: tIntU})
	add(nullable(tTiny, "a_index", "b_index")...)
	add(nullable(tInt, "a_payload", "b_payload")...)
	add(nullable(tIntU, "a_saddr", "b_saddr")...)
	add(nullable(tMediumU, "a_received", "b_received", "a_lost", "b_lost", "a_reordered", "b_reordered")...)
	add(nullable(tIntU, "a_ua_id", "b_ua_id")...)
	add(nullable(tMediumU, "a_avgjitter_mult10", "b_avgjitter_mult10")...)
	add(nullable(tSmallU, "a_maxjitter", "b_maxjitter")...)
	for _, p := range []string{"a_", "b_"} {
		for i := 1; i <= 10; i++ {
			add(vmCol{name: fmt.Sprintf("%ssl%d", p, i), typ: tMediumU})
		}
		for _, d := range vmDelays {
			add(vmCol{name: p + d, typ: tMediumU})
		}
	}
	add(nullable(tTinyU, "a_mos_lqo_mult10", "b_mos_lqo_mult10")...)
	add(nullable(tTinyU, ab("mos_f1_min_mult10", "mos_f2_min_mult10", "mos_adapt_min_mult10", "mos_xr_min_mult10", "mos_silence_min_mult10")...)...)
	add(nullable(tTinyU, ab("mos_f1_mult10", "mos_f2_mult10", "mos_adapt_mult10", "mos_xr_mult10", "mos_silence_mult10")...)...)
	for _, p := range []string{"a_", "b_"} {
		add(vmCol{name: p + "rtcp_loss", typ: tMedium})
		add(nullable(tSmallU, p+"rtcp_maxfr", p+"rtcp_avgfr_mult10", p+"rtcp_maxjitter", p+"rtcp_avgjitter_mult10",
			p+"rtcp_avgrtd_mult10", p+"rtcp_maxrtd_mult10")...)
	}
	add(nullable(tSmall, "a_last_rtp_from_end", "b_last_rtp_from_end")...)
	add(nullable(tIntU, "a_rtcp_fraclost_pktcount", "b_rtcp_fraclost_pktcount")...)
	add(nullable(tTinyU, "a_rtp_ptime", "b_rtp_ptime")...)
	add(vmCol{name: "payload", typ: tInt},
		vmCol{name: "jitter_mult10", typ: tMediumU})
	add(nullable(tTinyU, "mos_min_mult10", "a_mos_min_mult10", "b_mos_min_mult10")...)
	add(nullable(tMediumU, "packet_loss_perc_mult1000", "a_packet_loss_perc_mult1000", "b_packet_loss_perc_mult1000",
		"delay_sum", "a_delay_sum", "b_delay_sum", "delay_avg_mult100", "a_delay_avg_mult100", "b_delay_avg_mult100",
		"delay_cnt", "a_delay_cnt", "b_delay_cnt")...)
	add(nullable(tSmallU, "rtcp_avgfr_mult10", "rtcp_avgjitter_mult10")...)
	add(vmCol{name: "lost", typ: tMediumU})
	add(nullable(tSmallU, "caller_clipping_div3", "called_clipping_div3")...)
	add(nullable(tTinyU, "caller_silence", "called_silence")...)
	add(nullable(tSmallU, "caller_silence_end", "called_silence_end", "response_time_100", "response_time_xxx")...)
	add(vmCol{name: "max_retransmission_invite", typ: tTinyU})
	for _, p := range []string{"", "a_", "b_"} {
		add(nullable(tTinyU, p+"ttl_min", p+"ttl_max")...)
		add(vmCol{name: p + "ttl_avg_mult10", typ: tSmallU})
	}
	add(vmCol{name: "flags", typ: tBigU},
		vmCol{name: "vlan", typ: tSmall},
		vmCol{name: "id_sensor", typ: tSmallU},
		vmCol{name: "price_operator_mult1000000", typ: tBigU},
		vmCol{name: "price_operator_currency_id", typ: tTinyU},
		vmCol{name: "price_customer_mult1000000", typ: tBigU},
		vmCol{name: "price_customer_currency_id", typ: tTinyU})
	return vmTable{
		name: "cdr", cols: c, autoInc: "ID", key: []string{"ID"}, partBy: "calldate",
		indexes: []string{
			"calldate(calldate)", "callend(callend)", "duration(duration)",
			"source(caller)", "source_reverse(caller_reverse)", "destination(called)", "destination_reverse(called_reverse)",
			"callername(callername)", "callername_reverse(callername_reverse)",
			"sipcallerip(sipcallerip)", "sipcalledip(sipcalledip)",
			"lastSIPresponseNum(lastSIPresponseNum)", "bye(bye)", "a_saddr(a_saddr)", "b_saddr(b_saddr)",
			"a_lost(a_lost)", "b_lost(b_lost)", "a_maxjitter(a_maxjitter)", "b_maxjitter(b_maxjitter)",
			"a_rtcp_loss(a_rtcp_loss)", "a_rtcp_maxfr(a_rtcp_maxfr)", "a_rtcp_maxjitter(a_rtcp_maxjitter)",
			"a_rtcp_maxrtd_mult10(a_rtcp_maxrtd_mult10)", "b_rtcp_maxrtd_mult10(b_rtcp_maxrtd_mult10)",
			"b_rtcp_loss(b_rtcp_loss)", "b_rtcp_maxfr(b_rtcp_maxfr)", "b_rtcp_maxjitter(b_rtcp_maxjitter)",
			"a_ua_id(a_ua_id)", "b_ua_id(b_ua_id)",
			"a_avgjitter_mult10(a_avgjitter_mult10)", "b_avgjitter_mult10(b_avgjitter_mult10)",
			"a_rtcp_avgjitter_mult10(a_rtcp_avgjitter_mult10)", "b_rtcp_avgjitter_mult10(b_rtcp_avgjitter_mult10)",
			"lastSIPresponse_id(lastSIPresponse_id)", "reason_sip_text_id(reason_sip_text_id)",
			"reason_q850_text_id(reason_q850_text_id)", "payload(payload)", "vlan(vlan)", "id_sensor(id_sensor)",
		},
	}
}()

// vmDelays are the delay-histogram columns (a_d50 …), in order.
var vmDelays = []string{"d50", "d70", "d90", "d120", "d150", "d200", "d300"}

var vmCDRNextTable = vmTable{
	name: "cdr_next",
	cols: []vmCol{
		{name: "cdr_ID", typ: tBigU, notNull: true},
		{name: "calldate", typ: tDate, notNull: true},
		{name: "custom_header1", typ: tVarchar},
		{name: "fbasename", typ: tVarchar},
		{name: "digest_username", typ: tVarchar},
		{name: "match_header", typ: "varchar(128)"},
		{name: "GeoPosition", typ: tVarchar},
		{name: "hold", typ: "varchar(1024)"},
		{name: "spool_index", typ: tTinyU},
	},
	key: []string{"cdr_ID"}, partBy: "calldate",
	indexes: []string{"fbasename(fbasename)", "digest_username(digest_username)", "match_header(match_header)"},
}

var vmCDRRTPTable = vmTable{
	name: "cdr_rtp",
	cols: []vmCol{
		{name: "cdr_ID", typ: tBigU, notNull: true},
		{name: "calldate", typ: tDate, notNull: true},
		{name: "saddr", typ: tIntU},
		{name: "sport", typ: tSmallU},
		{name: "daddr", typ: tIntU},
		{name: "dport", typ: tSmallU},
		{name: "ssrc", typ: tIntU},
		{name: "received", typ: tMediumU},
		{name: "loss", typ: tMediumU},
		{name: "firsttime", typ: "float"},
		{name: "payload", typ: tSmallU},
		{name: "maxjitter_mult10", typ: tSmallU},
		{name: "index", typ: tTinyU},
		{name: "sdp_ptime", typ: tTinyU},
		{name: "rtp_ptime", typ: tTinyU},
		{name: "flags", typ: tBigU},
		{name: "duration", typ: "float"},
		{name: "ttl_min", typ: tTinyU},
		{name: "ttl_max", typ: tTinyU},
		{name: "ttl_avg_mult10", typ: tSmallU},
	},
	partBy:  "calldate",
	indexes: []string{"cdr_ID(cdr_ID)", "calldate(calldate)"},
}

var vmCDRUATable = vmTable{
	name:    "cdr_ua",
	cols:    []vmCol{{name: "id", typ: tIntU, notNull: true}, {name: "ua", typ: "varchar(512)"}},
	autoInc: "id", key: []string{"id"},
	indexes: []string{"unique ua(ua)"},
}

var vmCDRSIPResponseTable = vmTable{
	name:    "cdr_sip_response",
	cols:    []vmCol{{name: "id", typ: tMediumU, notNull: true}, {name: "lastSIPresponse", typ: tVarchar}},
	autoInc: "id", key: []string{"id"},
	indexes: []string{"unique lastSIPresponse(lastSIPresponse)"},
}

// vmRegisterTable is register_state or register_failed (failed has a
// counter, state has expires and state).
func vmRegisterTable(failed bool) vmTable {
	c := []vmCol{
		{name: "ID", typ: tBigU, notNull: true},
		{name: "id_sensor", typ: tIntU, notNull: true},
		{name: "fname", typ: tBig},
	}
	if failed {
		c = append(c, vmCol{name: "counter", typ: tInt, def: "0"})
	}
	c = append(c,
		vmCol{name: "created_at", typ: tDate, notNull: true},
		vmCol{name: "sipcallerip", typ: tIntU, notNull: true},
		vmCol{name: "sipcalledip", typ: tIntU, notNull: true},
		vmCol{name: "sipcallerport", typ: tSmallU},
		vmCol{name: "sipcalledport", typ: tSmallU})
	c = append(c, nullable(tVarchar, "from_num", "to_num", "contact_num", "contact_domain", "digestusername", "digestrealm")...)
	if !failed {
		c = append(c, vmCol{name: "expires", typ: tMedium}, vmCol{name: "state", typ: tTinyU})
	}
	c = append(c,
		vmCol{name: "ua_id", typ: tIntU},
		vmCol{name: "to_domain", typ: tVarchar},
		vmCol{name: "flags", typ: tBigU},
		vmCol{name: "vlan", typ: tSmall},
		vmCol{name: "spool_index", typ: tTinyU})
	c = append(c, nullable("varchar(5)", "sipcallerip_country_code", "sipcalledip_country_code", "from_num_country_code", "to_num_country_code")...)
	name := "register_state"
	if failed {
		name = "register_failed"
	}
	return vmTable{
		name: name, cols: c, autoInc: "ID", key: []string{"ID"}, partBy: "created_at",
		indexes: []string{"created_at(created_at)", "sipcallerip(sipcallerip)", "sipcalledip(sipcalledip)",
			"sipcallerip_country_code(sipcallerip_country_code)", "sipcalledip_country_code(sipcalledip_country_code)", "vlan(vlan)"},
	}
}

var vmSystemTable = vmTable{
	name: "system",
	cols: []vmCol{
		{name: "id", typ: tInt, notNull: true},
		{name: "type", typ: "text"},
		{name: "cdate", typ: "date"},
		{name: "cdatetime", typ: tDate},
		{name: "content", typ: "text"},
	},
	autoInc: "id", key: []string{"id"},
}

var vmSensorsTable = vmTable{
	name: "sensors",
	cols: []vmCol{
		{name: "id_sensor", typ: tIntU, notNull: true},
		{name: "name", typ: "varchar(256)"},
		{name: "host", typ: tVarchar},
		{name: "port", typ: tInt},
		{name: "timezone_name", typ: "varchar(64)"},
		{name: "timezone_offset", typ: tInt},
		{name: "timezone_save_at", typ: tDate},
	},
	key: []string{"id_sensor"},
}

// vmTables are the tables of the voipmonitor schema, lookups before the
// tables that reference them.
var vmTables = []vmTable{
	vmCDRUATable, vmCDRSIPResponseTable, vmCDRTable, vmCDRNextTable, vmCDRRTPTable,
	vmRegisterTable(false), vmRegisterTable(true), vmSystemTable, vmSensorsTable,
}

// sqliteType maps a MySQL column type onto SQLite's type affinities:
// integers, REAL for float and decimal, DATETIME and DATE (kept as
// "YYYY-MM-DD HH:MM:SS" text), TEXT for the rest.
func sqliteType(typ string) string {
	switch {
	case strings.Contains(typ, "int"):
		return "INTEGER"
	case typ == "float", strings.HasPrefix(typ, "decimal"):
		return "REAL"
	case typ == "datetime":
		return "DATETIME"
	case typ == "date":
		return "DATE"
	}
	return "TEXT"
}

// createStmts returns the statements that create t when missing. On MySQL
// the table is partitioned by day on partBy with a first partition for
// the day of today (UTC), as the sniffer does; later days are added by
// [Store.ensurePartitions].
func (t *vmTable) createStmts(d dialect, today string) []string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + d.quote(t.name) + " (")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  " + d.quote(c.name) + " ")
		switch {
		case d == sqlite && c.name == t.autoInc:
			// SQLite's rowid alias; the key is this column alone.
			b.WriteString("INTEGER PRIMARY KEY AUTOINCREMENT")
			continue
		case d == sqlite && strings.HasPrefix(c.typ, "enum("):
			b.WriteString("TEXT CHECK (" + d.quote(c.name) + " IN " + strings.TrimPrefix(c.typ, "enum") + ")")
		case d == sqlite:
			b.WriteString(sqliteType(c.typ))
		default:
			b.WriteString(c.typ)
		}
		if c.notNull {
			b.WriteString(" NOT NULL")
		}
		switch {
		case d == mysql && c.name == t.autoInc:
			b.WriteString(" AUTO_INCREMENT")
		case c.def != "":
			b.WriteString(" DEFAULT " + c.def)
		case !c.notNull:
			b.WriteString(" DEFAULT NULL")
		}
	}
	key := t.key
	if d == mysql && t.partBy != "" && len(key) > 0 {
		key = append(key[:len(key):len(key)], t.partBy)
	}
	if len(key) > 0 && !(d == sqlite && t.autoInc != "") {
		b.WriteString(",\n  PRIMARY KEY (" + quoteAll(d, key) + ")")
	}
	var after []string
	for _, ix := range t.indexes {
		unique := strings.HasPrefix(ix, "unique ")
		ix = strings.TrimPrefix(ix, "unique ")
		name, cols, _ := strings.Cut(strings.TrimSuffix(ix, ")"), "(")
		if d == mysql {
			kw := "KEY"
			if unique {
				kw = "UNIQUE KEY"
			}
			b.WriteString(",\n  " + kw + " " + d.quote(name) + " (" + quoteAll(d, strings.Split(cols, ",")) + ")")
			continue
		}
		kw := "CREATE INDEX"
		if unique {
			kw = "CREATE UNIQUE INDEX"
		}
		after = append(after, kw+" IF NOT EXISTS "+d.quote(t.name+"_"+name)+" ON "+d.quote(t.name)+" ("+quoteAll(d, strings.Split(cols, ","))+")")
	}
	b.WriteString("\n)")
	if d == mysql {
		// latin1 as the sniffer's: the UTF-8 connection converts, and a
		// character latin1 lacks is stored as "?", as by the sniffer.
		b.WriteString(" ENGINE=InnoDB DEFAULT CHARSET=latin1")
		if t.partBy != "" {
			b.WriteString(" PARTITION BY RANGE COLUMNS(" + d.quote(t.partBy) + ") (PARTITION " + partitionName(today) +
				" VALUES LESS THAN ('" + nextDay(today) + "') ENGINE = InnoDB)")
		}
	}
	return append([]string{b.String()}, after...)
}

func quoteAll(d dialect, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = d.quote(strings.TrimSpace(n))
	}
	return strings.Join(q, ",")
}
