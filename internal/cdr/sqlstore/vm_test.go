package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

func openVM(t *testing.T) *Store {
	t.Helper()
	st, err := Open("sqlite", filepath.Join(t.TempDir(), "vm.db"), SchemaVoipmonitor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// queryRow returns the first row of q as column → value, NULL as nil,
// numbers as int64 or float64, texts and DATETIMEs as strings.
func queryRow(t *testing.T, st *Store, q string, args ...any) map[string]any {
	t.Helper()
	rows, err := st.db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatalf("%s %v: no row", q, args)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for i, c := range cols {
		switch v := vals[i].(type) {
		case time.Time:
			out[c] = v.UTC().Format(time.DateTime)
		case []byte:
			out[c] = string(v)
		default:
			out[c] = v
		}
	}
	return out
}

// vmRecord is an answered call of 65.5 s with a BYE from the callee, one
// stream per direction (the callee's first) and a DTMF-only stream.
func vmRecord(id string) cdr.Record {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 700000000, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a := cdr.Stream{
		Saddr: netip.MustParseAddrPort("192.0.2.10:4000"), Daddr: netip.MustParseAddrPort("192.0.2.20:5000"),
		SSRC: 0xdeadbeef, Payload: 0, Codec: "PCMU", Received: 3000, Lost: 12, Reordered: 2,
		LossPercMult1000: 398, AvgJitterMult10: 15, MaxJitter: 9,
		MOSF1Mult10: 43, MOSF2Mult10: 44, MOSAdaptMult10: 42, MOSF1MinMult10: 40, MOSF2MinMult10: 42, MOSAdaptMinMult10: 41,
		SL:    [10]int64{5, 2, 1, 0, 0, 0, 0, 0, 0, 1},
		Index: 1, FromCaller: true, First: at(1300 * time.Millisecond), Last: at(61 * time.Second),
		PtimeMS: 20, SDPPtimeMS: 20, MaxJitterMS: 8.76, Delay: [7]int64{3, 1, 0, 0, 0, 0, 1},
		MOSMeasured: true, TTL: cdr.TTL{Min: 60, Max: 62, Count: 4, Sum: 245},
		RTCPReports: 4, RTCPFracLostReports: 1, RTCPLoss: 11, RTCPMaxFR: 3, RTCPAvgFRMult10: 12,
		RTCPJitterMaxMS: 1.4, RTCPJitterAvgMS: 1.6, RTCPRTTCount: 2, RTCPRTTMaxMS: 41.2, RTCPRTTAvgMS: 30.57,
	}
	b := cdr.Stream{
		Saddr: netip.MustParseAddrPort("192.0.2.20:5000"), Daddr: netip.MustParseAddrPort("192.0.2.10:4000"),
		SSRC: 7, Payload: 0, Codec: "PCMU", Received: 3001, AvgJitterMult10: 4, MaxJitter: 2,
		MOSF1Mult10: 45, MOSF2Mult10: 45, MOSAdaptMult10: 45, MOSF1MinMult10: 45, MOSF2MinMult10: 45, MOSAdaptMinMult10: 45,
		Index: 0, First: at(1200 * time.Millisecond), Last: at(62 * time.Second), PtimeMS: 20, MaxJitterMS: 1.05,
		MOSMeasured: true,
	}
	dtmf := cdr.Stream{
		Saddr: a.Saddr, Daddr: a.Daddr, SSRC: 99, Received: 10, Events: 10,
		Index: 2, FromCaller: true, First: at(63 * time.Second), Last: at(63500 * time.Millisecond),
	}
	return cdr.Record{
		IDSensor: 7, CallID: id, CallDate: t0, CallEnd: at(65 * time.Second), Duration: 65 * time.Second,
		Caller: "1001", CallerDomain: "pbx.example.org", CallerName: "Zoë Ärger", Called: "+4202", CalledDomain: "example.net",
		CallerUA: "baresip 3.1", CalledUA: "Asterisk PBX 20",
		CallerUserAgent: "baresip 3.1", CalleeUserAgent: "Asterisk PBX 20",
		SIPCallerAddr: netip.MustParseAddrPort("192.0.2.10:5060"), SIPCalledAddr: netip.MustParseAddrPort("192.0.2.20:5062"),
		LastSIPCode: 200, LastSIPReason: "OK", WhoHanged: cdr.HangupCallee, State: cdr.StateAnswered,
		A: &a, B: &b,
		LastPacketAt: at(65*time.Second + 500*time.Millisecond), LastSIPAt: at(65*time.Second + 400*time.Millisecond),
		AnsweredAt: at(5*time.Second + 600*time.Millisecond), ProgressAt: at(900 * time.Millisecond),
		ByeAt: at(65 * time.Second), ByeOKAt: at(65*time.Second + 2345*time.Microsecond),
		Response100: 1500 * time.Microsecond, ResponseOther: 899500 * time.Microsecond,
		Transport: "udp", VLAN: -1, Flags: cdr.FlagSDPAudio | cdr.FlagEventsOffered | cdr.FlagRTCP,
		SIPTTL:  cdr.TTL{Min: 63, Max: 64, Count: 3, Sum: 191},
		Streams: []cdr.Stream{b, a, dtmf},
	}
}

const vmCDRByCallID = `SELECT c.*, n.fbasename, n.calldate AS next_calldate, r.lastSIPresponse, ua.ua AS a_ua, ub.ua AS b_ua
	FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID
	LEFT JOIN cdr_sip_response r ON r.id = c.lastSIPresponse_id
	LEFT JOIN cdr_ua ua ON ua.id = c.a_ua_id LEFT JOIN cdr_ua ub ON ub.id = c.b_ua_id
	WHERE n.fbasename = ?`

// TestVMRecordRow checks every column the voipmonitor schema fills for an
// answered call, value by value as the sniffer computes them.
func TestVMRecordRow(t *testing.T) {
	st := openVM(t)
	r := vmRecord("answered@x")
	if err := st.WriteRecords(context.Background(), []cdr.Record{r}); err != nil {
		t.Fatal(err)
	}
	got := queryRow(t, st, vmCDRByCallID, r.CallID)
	i := func(v int64) any { return v }
	want := map[string]any{
		"calldate": "2026-03-01 12:00:00", "callend": "2026-03-01 12:01:06", "next_calldate": "2026-03-01 12:00:00",
		"duration": i(65), "connect_duration": i(59), // 65.5 − 5.6 s, truncated
		"progress_time": i(0), "first_rtp_time": i(1), "post_bye_delay": 0.0, // 2.3 ms in whole seconds
		"caller": "1001", "caller_reverse": "1001", "callername": "Zoë Ärger", "callername_reverse": "regrÄ ëoZ",
		"called": "+4202", "called_reverse": "2024+", "caller_domain": "pbx.example.org", "called_domain": "example.net",
		"sipcallerip": i(0xc000020a), "sipcallerport": i(5060), "sipcalledip": i(0xc0000214), "sipcalledport": i(5062),
		"whohanged": "callee", "bye": i(3), "lastSIPresponseNum": i(200), "lastSIPresponse": "200 OK",
		"sighup": i(0), "a_ua": "baresip 3.1", "b_ua": "Asterisk PBX 20", "fbasename": "answered@x",
		"a_index": i(1), "b_index": i(0), "a_payload": i(0), "b_payload": i(0), "payload": i(0),
		"a_saddr": i(0xc000020a), "a_received": i(3000), "a_lost": i(12), "a_reordered": i(2),
		"a_avgjitter_mult10": i(15), "a_maxjitter": i(9), "jitter_mult10": i(15),
		"a_sl1": i(5), "a_sl10": i(1), "a_d50": i(3), "a_d70": i(1), "a_d300": i(1),
		"a_delay_sum": i(3*60 + 80 + 300), "a_delay_cnt": i(5), "a_delay_avg_mult100": i(11200),
		"delay_sum": i(560), "b_delay_sum": i(0), "b_delay_avg_mult100": i(0),
		"a_mos_f1_mult10": i(43), "a_mos_f2_mult10": i(44), "a_mos_adapt_mult10": i(42),
		"a_mos_f1_min_mult10": i(40), "a_mos_f2_min_mult10": i(42), "a_mos_adapt_min_mult10": i(41),
		"a_mos_silence_min_mult10": i(45), "a_mos_silence_mult10": i(45), "a_mos_xr_mult10": nil, "a_mos_lqo_mult10": nil,
		"a_mos_min_mult10": i(44), "b_mos_min_mult10": i(45), "mos_min_mult10": i(44),
		"a_packet_loss_perc_mult1000": i(398), "packet_loss_perc_mult1000": i(398), "lost": i(12),
		// RTCP: jitter 1.4 ms rounds to 1, below the 1.6 ms mean: bumped to 2.
		"a_rtcp_loss": i(11), "a_rtcp_maxfr": i(3), "a_rtcp_avgfr_mult10": i(12),
		"a_rtcp_maxjitter": i(2), "a_rtcp_avgjitter_mult10": i(16), "a_rtcp_fraclost_pktcount": i(1),
		"a_rtcp_maxrtd_mult10": i(410), "a_rtcp_avgrtd_mult10": i(305),
		"b_rtcp_loss": nil, "b_rtcp_maxjitter": nil, "b_rtcp_fraclost_pktcount": nil, "b_rtcp_maxrtd_mult10": nil,
		"rtcp_avgfr_mult10": i(12), "rtcp_avgjitter_mult10": i(16),
		// The caller's last RTP is the DTMF stream's (63.5 s); the last SIP 65.4 s.
		"a_last_rtp_from_end": i(1), "b_last_rtp_from_end": i(3),
		"a_rtp_ptime": i(20), "b_rtp_ptime": i(20),
		"response_time_100": i(2), "response_time_xxx": i(900),
		"ttl_min": i(63), "ttl_max": i(64), "ttl_avg_mult10": i(637),
		"a_ttl_min": i(60), "a_ttl_max": i(62), "a_ttl_avg_mult10": i(613), "b_ttl_min": nil,
		"flags": i(1<<8 | 1<<12 | 1<<17 | 1<<23 | 1<<32), "vlan": nil, "id_sensor": i(7),
		"reason_sip_cause": nil, "dscp": nil, "max_retransmission_invite": nil, "price_operator_mult1000000": nil,
	}
	for col, w := range want {
		g, ok := got[col]
		if !ok {
			t.Errorf("no column %s", col)
			continue
		}
		if !cmp.Equal(g, w) {
			t.Errorf("%s = %#v, want %#v", col, g, w)
		}
	}

	// cdr_rtp: the two voice streams in order of first packet, not the
	// DTMF-only one.
	rows, err := st.db.Query(`SELECT "index", sport, ssrc, received, firsttime, maxjitter_mult10, flags, duration, sdp_ptime, ttl_avg_mult10
		FROM cdr_rtp ORDER BY "index"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var gotRTP []string
	for rows.Next() {
		var idx, sport, ssrc, recv, mj, flags int64
		var first, dur float64
		var sdp, ttl *int64
		if err := rows.Scan(&idx, &sport, &ssrc, &recv, &first, &mj, &flags, &dur, &sdp, &ttl); err != nil {
			t.Fatal(err)
		}
		gotRTP = append(gotRTP, fmt.Sprintf("%d %d %d %d %.3f %d %d %.3f %v %v", idx, sport, ssrc, recv, first, mj, flags, dur, deref(sdp), deref(ttl)))
	}
	wantRTP := []string{
		"1 5000 7 3001 1.200 10 10 60.800 NULL NULL",      // callee's, a/b, maxjitter 1.05 ms truncated ×10
		"2 4000 3735928559 3000 1.300 87 6 59.700 20 613", // caller's
	}
	if d := cmp.Diff(wantRTP, gotRTP); d != "" {
		t.Errorf("cdr_rtp (-want +got):\n%s", d)
	}
}

// TestVMRowColumns checks that every row names each column once, only
// columns of its table, and the same columns whether a side has a stream
// or not (SQLite would take a column named twice; MySQL refuses it).
func TestVMRowColumns(t *testing.T) {
	full := vmRecord("full@x")
	empty := full
	empty.A, empty.B, empty.Streams = nil, nil, nil
	regOK := cdr.Registration{State: cdr.RegOK, VLAN: -1}
	regFailed := cdr.Registration{State: cdr.RegFailed, VLAN: -1}
	var rows []struct {
		table string
		row   *vmRow
	}
	add := func(table string, r *vmRow) {
		rows = append(rows, struct {
			table string
			row   *vmRow
		}{table, r})
	}
	add("cdr", vmCDRRow(&full, nil, nil))
	add("cdr", vmCDRRow(&empty, nil, nil))
	for _, r := range vmRTPRows(&full) {
		add("cdr_rtp", r)
	}
	for _, g := range []cdr.Registration{regOK, regFailed} {
		table, r := vmRegisterRow(&g, nil)
		add(table, r)
	}
	tables := map[string]*vmTable{}
	for i := range vmTables {
		tables[vmTables[i].name] = &vmTables[i]
	}
	sets := map[string]string{}
	for _, r := range rows {
		cols := map[string]bool{}
		for _, c := range tables[r.table].cols {
			cols[c.name] = true
		}
		seen := map[string]bool{}
		for _, n := range r.row.names {
			if seen[n] {
				t.Errorf("%s: column %s set twice", r.table, n)
			}
			if !cols[n] {
				t.Errorf("%s: no column %s", r.table, n)
			}
			seen[n] = true
		}
		names := append([]string(nil), r.row.names...)
		sort.Strings(names)
		set := strings.Join(names, ",")
		if prev, ok := sets[r.table]; ok && prev != set {
			t.Errorf("%s rows name different columns:\n%s\n%s", r.table, prev, set)
		}
		sets[r.table] = set
	}
}

func deref(p *int64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// TestVMNullRules checks the sniffer's NULL rules and bye codes on calls
// that were not answered or did not end with a BYE.
func TestVMNullRules(t *testing.T) {
	base := vmRecord("")
	tests := []struct {
		name string
		edit func(r *cdr.Record)
		want map[string]any
	}{
		{"busy", func(r *cdr.Record) {
			r.A, r.B, r.Streams = nil, nil, nil
			r.AnsweredAt, r.ByeAt, r.ByeOKAt = time.Time{}, time.Time{}, time.Time{}
			r.LastSIPCode, r.LastSIPReason, r.WhoHanged, r.State = 486, "Busy Here", cdr.HangupNone, cdr.StateBusy
		}, map[string]any{"connect_duration": nil, "whohanged": nil, "bye": int64(0), "post_bye_delay": nil,
			"first_rtp_time": nil, "payload": nil, "a_index": nil, "a_received": nil, "jitter_mult10": nil,
			"mos_min_mult10": nil, "lost": nil, "a_last_rtp_from_end": nil, "a_mos_silence_min_mult10": nil,
			"lastSIPresponse": "486 Busy Here"}},
		{"cancelled by the caller", func(r *cdr.Record) {
			r.A, r.B, r.Streams = nil, nil, nil
			r.AnsweredAt, r.ByeAt, r.ByeOKAt = time.Time{}, time.Time{}, time.Time{}
			r.LastSIPCode, r.LastSIPReason, r.WhoHanged, r.State = 487, "Request Terminated", cdr.HangupCaller, cdr.StateCancelled
		}, map[string]any{"connect_duration": nil, "whohanged": nil, "bye": int64(0)}},
		{"no response at all", func(r *cdr.Record) {
			r.A, r.B, r.Streams = nil, nil, nil
			r.AnsweredAt, r.ProgressAt, r.ByeAt, r.ByeOKAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			r.Response100, r.ResponseOther = -1, -1
			r.LastSIPCode, r.LastSIPReason = 0, ""
		}, map[string]any{"lastSIPresponse": "", "lastSIPresponseNum": int64(0), "progress_time": nil,
			"response_time_100": nil, "response_time_xxx": nil}},
		{"BYE before any answer", func(r *cdr.Record) {
			r.AnsweredAt, r.ProgressAt, r.ByeOKAt = time.Time{}, time.Time{}, time.Time{}
		}, map[string]any{"bye": int64(106), "whohanged": "callee", "connect_duration": nil}},
		{"BYE confirmed 2.6 s later", func(r *cdr.Record) { r.ByeOKAt = r.ByeAt.Add(2600 * time.Millisecond) },
			map[string]any{"post_bye_delay": 2.0}},
		{"display name with escapes, Server header only", func(r *cdr.Record) {
			r.CallerName = `Jan "Honza" back\slash`
			r.CalleeUserAgent = ""
		}, map[string]any{"callername": `Jan \"Honza\" back\\slash`, "callername_reverse": `hsals\\kcab "\aznoH"\ naJ`,
			"b_ua": nil, "b_ua_id": nil}},
		{"BYE unconfirmed", func(r *cdr.Record) { r.ByeOKAt = time.Time{} },
			map[string]any{"bye": int64(2), "post_bye_delay": nil}},
		{"answered, no BYE", func(r *cdr.Record) { r.ByeAt, r.ByeOKAt = time.Time{}, time.Time{} },
			map[string]any{"bye": int64(1), "whohanged": nil}},
		{"RTP timeout", func(r *cdr.Record) { r.Ending = cdr.EndingRTPTimeout }, map[string]any{"bye": int64(104)}},
		{"absolute timeout", func(r *cdr.Record) { r.Ending = cdr.EndingAbsoluteTimeout }, map[string]any{"bye": int64(102)}},
		{"setup timeout without RTP", func(r *cdr.Record) {
			r.Ending, r.A, r.B, r.Streams = cdr.EndingSetupTimeout, nil, nil, nil
		}, map[string]any{"bye": int64(108)}},
		{"closed at shutdown", func(r *cdr.Record) { r.Ending = cdr.EndingShutdown }, map[string]any{"sighup": int64(1), "bye": int64(3)}},
		{"no 10 s MOS interval", func(r *cdr.Record) {
			a := *r.A
			a.MOSMeasured = false
			r.A = &a
		}, map[string]any{"a_mos_f1_mult10": nil, "a_mos_f2_mult10": nil, "a_mos_adapt_mult10": nil, "a_mos_silence_mult10": nil,
			"a_mos_min_mult10": nil, "a_mos_f1_min_mult10": int64(40), "a_mos_silence_min_mult10": int64(45), "mos_min_mult10": int64(45)}},
		{"round trips under 0.5 ms", func(r *cdr.Record) {
			a := *r.A
			a.RTCPRTTMaxMS, a.RTCPRTTAvgMS = 0.4, 0.3
			r.A = &a
		}, map[string]any{"a_rtcp_maxrtd_mult10": nil, "a_rtcp_avgrtd_mult10": nil, "a_rtcp_loss": int64(11)}},
		{"IPv6, VLAN, no sensor id", func(r *cdr.Record) {
			r.SIPCallerAddr = netip.MustParseAddrPort("[2001:db8::1]:5060")
			r.VLAN, r.IDSensor = 100, -1
		}, map[string]any{"sipcallerip": nil, "sipcallerport": int64(5060), "vlan": int64(100), "id_sensor": nil}},
		{"DTMF only from the caller", func(r *cdr.Record) {
			r.A, r.B, r.Streams = &r.Streams[2], nil, r.Streams[2:]
		}, map[string]any{"a_payload": nil, "payload": int64(-1), "a_received": int64(10)}},
	}
	st := openVM(t)
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.Streams = append([]cdr.Stream(nil), base.Streams...)
			r.CallID = fmt.Sprintf("null-%d@x", n)
			tt.edit(&r)
			if err := st.WriteRecords(context.Background(), []cdr.Record{r}); err != nil {
				t.Fatal(err)
			}
			got := queryRow(t, st, vmCDRByCallID, r.CallID)
			for col, w := range tt.want {
				if g := got[col]; !cmp.Equal(g, w) {
					t.Errorf("%s = %#v, want %#v", col, g, w)
				}
			}
		})
	}
}

// TestVMLookups checks that equal strings share one cdr_ua and one
// cdr_sip_response row, within a batch and across batches.
func TestVMLookups(t *testing.T) {
	st := openVM(t)
	ctx := context.Background()
	a, b := vmRecord("l1@x"), vmRecord("l2@x")
	b.CalleeUserAgent = a.CallerUserAgent
	if err := st.WriteRecords(ctx, []cdr.Record{a, b}); err != nil {
		t.Fatal(err)
	}
	c := vmRecord("l3@x")
	if err := st.WriteRecords(ctx, []cdr.Record{c}); err != nil {
		t.Fatal(err)
	}
	var uas, resps, distinct int
	st.db.QueryRow("SELECT COUNT(*) FROM cdr_ua").Scan(&uas)
	st.db.QueryRow("SELECT COUNT(*) FROM cdr_sip_response").Scan(&resps)
	st.db.QueryRow("SELECT COUNT(DISTINCT a_ua_id) FROM cdr").Scan(&distinct)
	if uas != 2 || resps != 1 || distinct != 1 {
		t.Errorf("cdr_ua rows %d, cdr_sip_response rows %d, distinct a_ua_id %d; want 2, 1, 1", uas, resps, distinct)
	}
	if got := queryRow(t, st, vmCDRByCallID, "l2@x"); got["b_ua"] != a.CallerUserAgent {
		t.Errorf("b_ua = %v, want %q", got["b_ua"], a.CallerUserAgent)
	}
}

func TestVMRegistrations(t *testing.T) {
	st := openVM(t)
	at := time.Date(2026, 3, 1, 8, 0, 0, 999000000, time.UTC)
	reg := func(state cdr.RegState, expires int) cdr.Registration {
		return cdr.Registration{
			IDSensor: -1, Time: at, User: "1001", Domain: "pbx.example.org", FromUser: "1001x", AuthUser: "auth1001",
			Contact: "sip:1001@[2001:db8::5]:5070;transport=udp", State: state, Expires: expires, UserAgent: "baresip",
			Src: netip.MustParseAddrPort("192.0.2.10:5062"), Dst: netip.MustParseAddrPort("192.0.2.1:5060"), VLAN: -1,
		}
	}
	regs := []cdr.Registration{reg(cdr.RegOK, 3600), reg(cdr.RegUnregister, 0), reg(cdr.RegExpired, 3600), reg(cdr.RegFailed, 0)}
	if err := st.WriteRegistrations(context.Background(), regs); err != nil {
		t.Fatal(err)
	}
	rows, err := st.db.Query(`SELECT created_at, id_sensor, fname, sipcallerip, sipcallerport, from_num, to_num, contact_num,
		contact_domain, digestusername, digestrealm, expires, state, ua_id, to_domain, flags, vlan, from_num_country_code
		FROM register_state ORDER BY ID`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var created any
		var v [17]any
		ptrs := []any{&created}
		for i := range v {
			ptrs = append(ptrs, &v[i])
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if tm, ok := created.(time.Time); ok {
			created = tm.UTC().Format(time.DateTime)
		}
		fields := []string{fmt.Sprint(created)}
		for _, x := range v {
			fields = append(fields, fmt.Sprint(x))
		}
		got = append(got, strings.Join(fields, "|"))
	}
	// Unregister is stored as state 1 with expires 0, as the sniffer does.
	row := "2026-03-01 08:00:00|0|0|3221225994|5062|1001x|1001|1001|[2001:db8::5]|auth1001||%d|%d|1|pbx.example.org|2|<nil>|"
	want := []string{fmt.Sprintf(row, 3600, 1), fmt.Sprintf(row, 0, 1), fmt.Sprintf(row, 3600, 5)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("register_state (-want +got):\n%s", d)
	}
	failed := queryRow(t, st, "SELECT * FROM register_failed")
	if failed["counter"] != int64(1) || failed["to_num"] != "1001" || failed["created_at"] != "2026-03-01 08:00:00" {
		t.Errorf("register_failed row = %v", failed)
	}
}

func TestVMContact(t *testing.T) {
	for _, tt := range []struct{ in, user, host string }{
		{"sip:alice@127.0.0.1:5073", "alice", "127.0.0.1"},
		{"<sips:bob@example.org;transport=tls>", "bob", "example.org"},
		{"sip:[2001:db8::1]:5060", "", "[2001:db8::1]"},
		{"tel:+4201", "", "+4201"},
		{"*", "", "*"},
	} {
		if u, h := vmContact(tt.in); u != tt.user || h != tt.host {
			t.Errorf("vmContact(%q) = %q, %q; want %q, %q", tt.in, u, h, tt.user, tt.host)
		}
	}
}

// TestVMOpen checks the schema choice: an unknown schema, a database of the
// other schema, and what the voipmonitor schema cannot read back.
func TestVMOpen(t *testing.T) {
	if _, err := Open("sqlite", ":memory:", "gui"); !errors.Is(err, ErrSchema) {
		t.Errorf("Open(schema gui) = %v, want ErrSchema", err)
	}
	for _, tt := range []struct{ first, second Schema }{
		{SchemaVoipsensor, SchemaVoipmonitor}, {SchemaVoipmonitor, SchemaVoipsensor},
	} {
		path := filepath.Join(t.TempDir(), "x.db")
		st, err := Open("sqlite", path, tt.first)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		if st, err := Open("sqlite", path, tt.second); !errors.Is(err, ErrSchema) {
			t.Errorf("Open(%s database as %s) = %v, want ErrSchema", tt.first, tt.second, err)
			if err == nil {
				st.Close()
			}
		}
	}
	st := openVM(t)
	if _, err := st.ListRecords(context.Background(), 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ListRecords = %v, want ErrUnsupported", err)
	}
	// system and sensors work as in the voipsensor schema.
	ctx := context.Background()
	if err := st.SetSystem(ctx, "manager_key", "k"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := st.GetSystem(ctx, "manager_key"); v != "k" || !ok || err != nil {
		t.Errorf("GetSystem = %q, %v, %v", v, ok, err)
	}
	if err := st.UpsertSensor(ctx, Sensor{ID: 3, Name: "s3", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Sensors(ctx); err != nil || len(got) != 1 || got[0].Name != "s3" {
		t.Errorf("Sensors = %v, %v", got, err)
	}
}

// TestVMTablesAsTheSniffer compares the table definitions with the columns
// the real sniffer 2026.04.0 created (../shared/peers/voipmonitor/
// schema-columns.tsv): names in order, MySQL types, NULL and defaults.
func TestVMTablesAsTheSniffer(t *testing.T) {
	want := sharedtest.SchemaColumns(t)
	for _, tb := range vmTables {
		cols, ok := want[tb.name]
		if !ok {
			t.Errorf("table %s not in schema-columns.tsv", tb.name)
			continue
		}
		var got []string
		for _, c := range tb.cols {
			null, def := "YES", "NULL"
			if c.notNull {
				null = "NO"
			}
			if c.def != "" {
				def = c.def
			}
			got = append(got, strings.Join([]string{c.name, c.typ, null, def}, "\t"))
		}
		if d := cmp.Diff(cols, got); d != "" {
			t.Errorf("%s (-sniffer +voipsensor):\n%s", tb.name, d)
		}
	}
	if len(want) != len(vmTables) {
		t.Errorf("schema-columns.tsv has %d tables, voipsensor creates %d", len(want), len(vmTables))
	}
}
