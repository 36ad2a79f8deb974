package calls

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/command"
)

type fakeSource []Call

func (f fakeSource) ActiveCalls(bool) []Call { return append([]Call(nil), f...) }

var t0 = time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)

func testCalls() fakeSource {
	return fakeSource{
		{CallRef: "a1", CallID: "one@x", Caller: "1001", Called: "+420123", Start: t0, Answer: t0.Add(2 * time.Second),
			SIPCallerIP: netip.MustParseAddr("192.168.1.1"), SIPCalledIP: netip.MustParseAddr("10.0.0.5"), CallerCodec: 8, CalledCodec: 8, VLAN: -1},
		{CallRef: "b2", CallID: "two@x", Caller: "2002", Called: "1500", Start: t0.Add(10 * time.Second),
			SIPCallerIP: netip.MustParseAddr("10.0.0.7"), SIPCalledIP: netip.MustParseAddr("192.168.1.1"), CallerCodec: 0, CalledCodec: 0, VLAN: 12},
		{CallRef: "c3", CallID: "three@y", Caller: "1999", Called: "700", Start: t0.Add(5 * time.Second),
			SIPCallerIP: netip.MustParseAddr("2001:db8::1"), SIPCalledIP: netip.MustParseAddr("10.1.0.1"), CallerCodec: 18, CalledCodec: -1, VLAN: -1},
	}
}

func newReg(src Source) *command.Registry {
	reg := command.NewRegistry()
	Register(reg, Deps{Source: src, Now: func() time.Time { return t0.Add(time.Minute) }})
	return reg
}

func run(t *testing.T, reg *command.Registry, name string, args ...string) (command.Result, error) {
	t.Helper()
	return reg.Run(context.Background(), &command.Request{Name: name, Args: args, Perm: command.PermAll})
}

func refs(t *testing.T, res command.Result) []string {
	t.Helper()
	tb, ok := res.(*command.Table)
	if !ok {
		t.Fatalf("result %T, want *command.Table", res)
	}
	var out []string
	for i := 0; i < tb.Len; i++ {
		out = append(out, tb.Cell(0, i).Str)
	}
	return out
}

func TestListCallsFilter(t *testing.T) {
	tests := []struct {
		name string
		opts string
		want []string
	}{
		{"no options: calldate desc", "", []string{"0xb2", "0xc3", "0xa1"}},
		{"contains", `{"filter":{"caller":"%99%"}}`, []string{"0xc3"}},
		{"prefix wildcard list", `{"filter":{"caller":"10%,20%"}}`, []string{"0xb2", "0xa1"}},
		{"negation", `{"filter":{"caller":"!1001"}}`, []string{"0xb2", "0xc3"}},
		{"range", `{"filter":{"called":"600-1600"}}`, []string{"0xb2", "0xc3"}},
		{"underscore", `{"filter":{"called":"7_0"}}`, []string{"0xc3"}},
		{"caller or called", `{"filter":{"caller":"700","callerd_type":"0"}}`, []string{"0xc3"}},
		{"sip ip cidr", `{"filter":{"sipcallerip":"10.0.0.0/8"}}`, []string{"0xb2"}},
		{"sip ip either side", `{"filter":{"sipcallerip":"192.168.1.1","sipcallerdip_type":"0"}}`, []string{"0xb2", "0xa1"}},
		{"ipv6", `{"filter":{"sipcallerip":"2001:db8::/32"}}`, []string{"0xc3"}},
		{"negated ip", `{"filter":{"sipcalledip":"!192.168.1.1"}}`, []string{"0xc3", "0xa1"}},
		{"callid wildcard", `{"filter":{"callid":"%@x"}}`, []string{"0xb2", "0xa1"}},
		{"codec number", `{"filter":{"codec":18}}`, []string{"0xc3"}},
		{"array is AND", `{"filter":[{"caller":"1%"},{"codec":"8"}]}`, []string{"0xa1"}},
		{"OR object", `{"filter":{"OR":1,"caller":"2002","codec":"18"}}`, []string{"0xb2", "0xc3"}},
		{"form_filters ANDed", `{"filter":{"caller":"1%"},"form_filters":{"called":"700"}}`, []string{"0xc3"}},
		{"empty values ignored", `{"filter":{"caller":"","called":""}}`, []string{"0xb2", "0xc3", "0xa1"}},
		{"connected", `{"filter":{"connected":"1"}}`, []string{"0xa1"}},
		{"sort asc", `{"sort_dir":"asc"}`, []string{"0xa1", "0xc3", "0xb2"}},
		{"sort caller case-insensitive name", `{"sort_field":"CALLER","sort_dir":"asc"}`, []string{"0xa1", "0xc3", "0xb2"}},
		{"limit as string", `{"limit":"2"}`, []string{"0xb2", "0xc3"}},
		{"vlan", `{"filter":{"vlan":"12"}}`, []string{"0xb2"}},
	}
	reg := newReg(testCalls())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.opts != "" {
				args = []string{tt.opts}
			}
			res, err := run(t, reg, "listcalls", args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, refs(t, res)); diff != "" {
				t.Errorf("listcalls %s rows (-want +got):\n%s", tt.opts, diff)
			}
		})
	}
}

func TestListCallsTotals(t *testing.T) {
	reg := newReg(testCalls())
	res, _ := run(t, reg, "listcalls")
	if tb := res.(*command.Table); tb.Totals != nil {
		t.Errorf("no options: Totals = %v, want none", tb.Totals)
	}
	res, _ = run(t, reg, "listcalls", `{"filter":{"caller":"1%"}}`)
	if got, want := res.(*command.Table).Totals, (Totals{Total: 2, IDSensor: -1}); got != want {
		t.Errorf("Totals = %v, want %v", got, want)
	}
	res, _ = run(t, reg, "listcalls", `{"limit":0}`)
	if got, want := res, (command.Value{V: Totals{Total: 3, IDSensor: -1}}); got != want {
		t.Errorf("limit 0 = %#v, want %#v", got, want)
	}
	// "zip" is the manager transport's (it compresses the reply); the
	// command accepts it and answers the same table.
	res, _ = run(t, reg, "listcalls", `{"zip":"yes"}`)
	if tb, ok := res.(*command.Table); !ok || tb.Len != 3 {
		t.Errorf("zip: result %T, want the table", res)
	}
}

func TestListCallsCells(t *testing.T) {
	reg := newReg(testCalls())
	res, _ := run(t, reg, "listcalls", `{"sort_dir":"asc","limit":1}`)
	tb := res.(*command.Table)
	row := map[string]any{}
	for c, col := range tb.Columns {
		row[col.Name] = tb.Cell(c, 0).Any()
	}
	want := map[string]any{
		"callid": "one@x", "calldate_num": t0.Unix(), "duration": int64(60), "connect_duration": int64(58),
		"called_international": true, "caller_international": true, "callerip": netip.MustParseAddr("192.168.1.1"),
		"src_mosf1": 4.5, "src_mosf1_avg": nil, "vlan": nil, "id_sensor": int64(-1), "callercodec": int64(8),
		"callerip_encaps": int64(0), "calledip_encaps_prot": int64(255), "sipproxies": "",
	}
	for k, v := range want {
		if !cmp.Equal(row[k], v, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
			t.Errorf("cell %s = %#v, want %#v", k, row[k], v)
		}
	}
	if got, want := len(tb.Columns), len(Columns()); got != want || tb.Columns[0].Name != "callreference" || tb.Columns[len(tb.Columns)-1].Name != "vlan" {
		t.Errorf("columns %v", tb.Names())
	}
}

// TestListCallsColumns: the sniffer's callFields[] order, each direction's
// MOS block (current, average, minimum per buffer) and then the jitter.
func TestListCallsColumns(t *testing.T) {
	want := "callreference callid calldate calldate_num lastpackettime duration connect_duration caller called " +
		"caller_country called_country caller_international called_international callername callerdomain calleddomain " +
		"calleragent calledagent callerip calledip callerip_country calledip_country callerip_encaps calledip_encaps " +
		"callerip_encaps_prot calledip_encaps_prot sipproxies lastSIPresponseNum rtp_src rtp_dst rtp_src_country " +
		"rtp_dst_country callercodec calledcodec " +
		"src_mosf1 src_mosf1_avg src_mosf1_min src_mosf2 src_mosf2_avg src_mosf2_min src_mosAD src_mosAD_avg src_mosAD_min " +
		"dst_mosf1 dst_mosf1_avg dst_mosf1_min dst_mosf2 dst_mosf2_avg dst_mosf2_min dst_mosAD dst_mosAD_avg dst_mosAD_min " +
		"src_jitter src_jitter_avg src_jitter_max dst_jitter dst_jitter_avg dst_jitter_max src_received dst_received " +
		"src_loss_abs dst_loss_abs src_loss dst_loss src_loss_last10sec dst_loss_last10sec id_sensor vlan"
	if got := strings.Join(Columns(), " "); got != want {
		t.Errorf("Columns() =\n%s\nwant\n%s", got, want)
	}
}

// TestListCallsTextOptions: options that are not a JSON object are
// ignored, as the sniffer's JsonItem ignores them, but they are options:
// the totals element comes (what a leading space before listcalls gives).
func TestListCallsTextOptions(t *testing.T) {
	reg := newReg(testCalls())
	for _, opts := range []string{"s", `{"limit":`, `s {"limit":1}`} {
		res, err := run(t, reg, "listcalls", opts)
		if err != nil {
			t.Fatalf("listcalls %s: %v", opts, err)
		}
		if tb := res.(*command.Table); tb.Len != 3 || tb.Totals != (Totals{Total: 3, IDSensor: -1}) {
			t.Errorf("listcalls %s: %d rows, totals %v; want 3 rows and the totals", opts, tb.Len, tb.Totals)
		}
	}
}

func TestListCallsBadOptions(t *testing.T) {
	reg := newReg(testCalls())
	for _, opts := range []string{`{"limit":"x"}`, `{"filter":{"sipcallerip":"nope"}}`, `{"sort_field":"nosuch"}`, `{"filter":3}`, `{"filter":{"caller":"!"}}`} {
		_, err := run(t, reg, "listcalls", opts)
		var pe *command.ParamError
		if !errors.As(err, &pe) || !errors.Is(err, command.ErrBadParam) {
			t.Errorf("listcalls %s: err = %v, want a bad-parameter ParamError", opts, err)
		}
	}
}

func TestActiveCallInfo(t *testing.T) {
	src := testCalls()
	src[1].Streams = []Stream{{SrcIP: netip.MustParseAddr("10.0.0.7"), SrcPort: 4000, SSRC: 0xdeadbeef, Codec: 0, Received: 50}}
	reg := newReg(src)
	for _, arg := range []string{"0xB2", "b2", `{"callreference":"0x00b2"}`} {
		res, err := run(t, reg, "active_call_info", arg)
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		info := res.(command.Value).V.(Info)
		if info.Call.Len != 1 || info.Call.Cell(1, 0).Str != "two@x" || len(info.RTPStreams) != 1 || info.RTPStreams[0].SSRC != 0xdeadbeef ||
			info.SIPPackets != SIPPacketsDisabled {
			t.Errorf("active_call_info %s = %+v", arg, info)
		}
		if st := info.StreamTable(); st.Len != 1 || st.Cell(0, 0).Addr != netip.MustParseAddr("10.0.0.7") || st.Cell(1, 0).Int != 4000 ||
			st.Cell(6, 0).Int != 0xdeadbeef || strings.Join(st.Names(), ",") != strings.Join(streamColumns, ",") {
			t.Errorf("stream table %v: %+v", st.Names(), st.Cell(0, 0))
		}
	}
	// The JSON for other transports: the call's members in column order.
	res, _ := run(t, reg, "active_call_info", "b2")
	b, err := json.Marshal(res.(command.Value).V)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"call":{"callreference":"0xb2","callid":"two@x",`) ||
		!strings.Contains(string(b), `"vlan":12},"sip_packets":"active call info is disabled (option active_call_info)","rtp_streams":[{"src_ip":"10.0.0.7","src_port":4000,`) {
		t.Errorf("active_call_info JSON %s", b)
	}
	if _, err := run(t, reg, "active_call_info", "0xffff"); !errors.Is(err, command.ErrNoEntry) {
		t.Errorf("unknown call: err = %v, want ErrNoEntry", err)
	}
	// No reference finds no call, as with the sniffer.
	if _, err := run(t, reg, "active_call_info"); !errors.Is(err, command.ErrNoEntry) {
		t.Errorf("no ref: err = %v, want ErrNoEntry", err)
	}
}

func TestTotalCalls(t *testing.T) {
	res, err := run(t, newReg(testCalls()), "totalcalls")
	if err != nil || res != command.Text("3") {
		t.Errorf("totalcalls = %#v, %v; want 3", res, err)
	}
	_, err = run(t, newReg(nil), "listcalls")
	if !errors.Is(err, command.ErrUnavailable) {
		t.Errorf("no source: err = %v, want ErrUnavailable", err)
	}
}

func TestLike(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"12345", "%23%", true}, {"12345", "123", false}, {"12345", "1_3%", true}, {"12345", "%5", true},
		{"12345", "%4", false}, {"", "%", true}, {"abc", "a%c%", true}, {"abc", "_", false}, {"aXbXc", "a%b%c", true},
	}
	for _, tt := range tests {
		if got := like(tt.s, tt.p); got != tt.want {
			t.Errorf("like(%q, %q) = %v, want %v", tt.s, tt.p, got, tt.want)
		}
	}
}

// TestFillRowMatchesColumns checks that the one-pass row fill used for
// rendering gives, cell by cell, what the per-column accessors (used for
// sorting) give, on calls covering every branch: with and without RTP in
// each direction, proxies, 0x references, VLANs, sensor ids, answer times.
func TestFillRowMatchesColumns(t *testing.T) {
	cs := []Call(testCalls())
	q := Quality{Present: true, Received: 900, Lost: 12, LossPct: 1.3, LossLast10Sec: 0.4,
		Jitter: 3.25, JitterAvg: 2.5, JitterMax: 9, MOSF1: 4.1, MOSF2: 4.0, MOSAD: 4.2,
		MOSF1Avg: 4.05, MOSF2Avg: 3.95, MOSADAvg: 4.15, MOSF1Min: 3.1, MOSF2Min: 3.0, MOSADMin: 3.2}
	cs = append(cs,
		Call{CallRef: "0xdead", CallID: "p@x", Caller: "+1", Called: "+2", Start: t0, LastPacket: t0.Add(9 * time.Second),
			SIPProxies: []netip.Addr{netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("2001:db8::9")},
			RTPSrc:     netip.MustParseAddr("10.0.0.1"), RTPDst: netip.MustParseAddr("10.0.0.2"),
			A: q, SensorID: 7, VLAN: 0, LastSIPCode: 183},
		Call{CallRef: "e", CallID: "q@x", Start: t0.Add(2 * time.Minute), Answer: t0.Add(3 * time.Minute), B: q, VLAN: -1},
	)
	now := t0.Add(time.Minute)
	l := newListing(cs, now)
	tb := l.table()
	row := make([]command.Cell, len(tb.Columns))
	for i := range cs {
		tb.Fill(i, row)
		for c, col := range tb.Columns {
			if got, want := row[c], l.cell(c, i); got != want {
				t.Errorf("call %d column %s: row fill %+v, accessor %+v", i, col.Name, got, want)
			}
		}
	}
}
