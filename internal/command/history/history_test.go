package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/command"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeStore holds calls by Call-ID and records the last query.
type fakeStore struct {
	calls map[string]Call
	last  Query
	err   error
}

func (f *fakeStore) Search(_ context.Context, q Query) (Page, error) {
	f.last = q
	if f.err != nil {
		return Page{}, f.err
	}
	var out []Call
	for _, c := range f.calls {
		if q.Caller == "" || c.Caller == q.Caller {
			out = append(out, c)
		}
	}
	return Page{Total: len(out) + 100, Calls: out}, nil
}

func (f *fakeStore) Call(_ context.Context, id int64, callID string) (Call, []Stream, error) {
	for _, c := range f.calls {
		if (id > 0 && c.ID == id) || (id <= 0 && c.CallID == callID) {
			return c, []Stream{{Side: "caller", SSRC: 1}, {Side: "callee", SSRC: 2}}, nil
		}
	}
	return Call{}, nil, fmt.Errorf("fake: %w", command.ErrNoEntry)
}

// fakeLadders is the ladder log: by reference and Call-ID.
type fakeLadders map[uint64]Ladder

func (f fakeLadders) Ladder(ref uint64, callID string) (Ladder, bool) {
	if ref != 0 {
		l, ok := f[ref]
		return l, ok
	}
	for _, l := range f {
		if l.CallID == callID {
			return l, true
		}
	}
	return Ladder{}, false
}

// fakeSpool has files and a SIP pcap's ladder per Call-ID.
type fakeSpool struct {
	files   map[string][]File
	ladders map[string]Ladder
	starts  []time.Time // start times Files was asked with
	err     error
}

func (f *fakeSpool) Files(callID string, start time.Time) []File {
	f.starts = append(f.starts, start)
	return f.files[callID]
}

func (f *fakeSpool) Ladder(_ context.Context, callID string, files []File) (Ladder, bool, error) {
	if f.err != nil {
		return Ladder{}, false, f.err
	}
	l, ok := f.ladders[callID]
	return l, ok, nil
}

func msgs(lines ...string) []Message {
	var out []Message
	for i, l := range lines {
		raw := l + "\r\nCall-ID: x\r\n\r\n"
		out = append(out, Message{Time: t0.Add(time.Duration(i) * time.Second), Src: "10.0.0.1:5060", Dst: "10.0.0.2:5060",
			Line: l, Raw: raw, Size: len(raw)})
	}
	return out
}

func run(t *testing.T, reg *command.Registry, name string, params map[string]string, args ...string) (command.Result, error) {
	t.Helper()
	return reg.Run(context.Background(), &command.Request{Name: name, Args: args, Params: params, Perm: command.PermCall})
}

func TestParseQuery(t *testing.T) {
	for _, tt := range []struct {
		in   map[string]string
		want Query
		bad  string // the parameter an error names
	}{
		{in: map[string]string{}, want: Query{Limit: 50, Sort: "calldate"}},
		{in: map[string]string{"caller": "100%", "called": "2_2", "number": "%9", "callid": "abc%", "ip": "192.0.2.1",
			"from": "2026-03-01", "to": "2026-03-01T12:30:00Z", "code": "4xx", "state": "busy", "ending": "rtp_timeout",
			"mos_below": "3.6", "loss_above": "1.5", "sort": "mos", "dir": "ASC", "limit": "20", "offset": "40"},
			want: Query{Caller: "100%", Called: "2_2", Number: "%9", CallID: "abc%", IP: netip.MustParseAddr("192.0.2.1"),
				From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: t0.Add(30 * time.Minute), CodeMin: 400, CodeMax: 499,
				State: "busy", Ending: "rtp_timeout", MOSBelow: ptr(3.6), LossAbove: ptr(1.5), Sort: "mos", Asc: true, Limit: 20, Offset: 40}},
		{in: map[string]string{"code": "486"}, want: Query{CodeMin: 486, CodeMax: 486, Limit: 50, Sort: "calldate"}},
		{in: map[string]string{"code": "480-487", "from": "1772366400", "to": "2026-03-01 13:00"},
			want: Query{CodeMin: 480, CodeMax: 487, From: t0, To: t0.Add(time.Hour), Limit: 50, Sort: "calldate"}},
		{in: map[string]string{"ip": "300.1.1.1"}, bad: "ip"},
		{in: map[string]string{"from": "yesterday"}, bad: "from"},
		{in: map[string]string{"from": "2026-03-02", "to": "2026-03-01"}, bad: "to"},
		{in: map[string]string{"code": "99"}, bad: "code"},
		{in: map[string]string{"code": "500-400"}, bad: "code"},
		{in: map[string]string{"code": "7xx"}, bad: "code"},
		{in: map[string]string{"state": "ringing"}, bad: "state"},
		{in: map[string]string{"ending": "bye"}, bad: "ending"},
		{in: map[string]string{"mos_below": "6"}, bad: "mos_below"},
		{in: map[string]string{"loss_above": "x"}, bad: "loss_above"},
		{in: map[string]string{"sort": "callid"}, bad: "sort"},
		{in: map[string]string{"dir": "up"}, bad: "dir"},
		{in: map[string]string{"limit": "1001"}, bad: "limit"},
		{in: map[string]string{"limit": "0"}, bad: "limit"},
		{in: map[string]string{"offset": "-1"}, bad: "offset"},
		{in: map[string]string{"colour": "red"}, bad: "colour"},
	} {
		got, err := ParseQuery(tt.in)
		var pe *command.ParamError
		switch {
		case tt.bad != "":
			if !errors.As(err, &pe) || pe.Param != tt.bad || !errors.Is(err, command.ErrBadParam) {
				t.Errorf("ParseQuery(%v) = %v, want a bad %s", tt.in, err, tt.bad)
			}
		case err != nil:
			t.Errorf("ParseQuery(%v): %v", tt.in, err)
		default:
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("ParseQuery(%v) (-want +got):\n%s", tt.in, d)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSearch(t *testing.T) {
	st := &fakeStore{calls: map[string]Call{"a@x": {ID: 1, CallID: "a@x", Caller: "100", CallDate: t0}}}
	reg := command.NewRegistry()
	Register(reg, Deps{Store: st})

	// The JSON object and named parameters (which win), as the manager and
	// MI send them.
	res, err := run(t, reg, "cdr_search", map[string]string{"limit": "5"}, `{"caller":"100","state":"answered","limit":30,"dir":"asc"}`)
	if err != nil {
		t.Fatal(err)
	}
	if st.last.Caller != "100" || st.last.State != "answered" || st.last.Limit != 5 || !st.last.Asc {
		t.Errorf("query = %+v", st.last)
	}
	b, _ := json.Marshal(res)
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["total"] != 101.0 || got["limit"] != 5.0 || got["dir"] != "asc" || got["sort"] != "calldate" || len(got["calls"].([]any)) != 1 {
		t.Errorf("cdr_search = %s", b)
	}
	if !strings.Contains(string(b), `"callid":"a@x"`) || !strings.Contains(string(b), `"mos":null`) {
		t.Errorf("cdr_search row = %s", b)
	}
	// Nothing found is an empty list, not null.
	res, _ = run(t, reg, "cdr_search", nil, `{"caller":"999"}`)
	if b, _ := json.Marshal(res); !strings.Contains(string(b), `"calls":[]`) {
		t.Errorf("no match = %s", b)
	}

	for _, args := range [][]string{{`{"caller":`}, {`[1,2]`}, {`{"limit":"many"}`}, {`{"state":{"x":1}}`}} {
		if _, err := run(t, reg, "cdr_search", nil, args...); !errors.Is(err, command.ErrBadParam) {
			t.Errorf("cdr_search %v = %v, want a bad parameter", args, err)
		}
	}
	st.err = errors.New("database down")
	if _, err := run(t, reg, "cdr_search", nil); err == nil || !strings.Contains(err.Error(), "database down") {
		t.Errorf("store error = %v", err)
	}
	if _, err := reg.Run(context.Background(), &command.Request{Name: "cdr_search", Perm: command.PermReporting}); !errors.Is(err, command.ErrPermission) {
		t.Errorf("without the call class: %v, want ErrPermission", err)
	}

	none := command.NewRegistry()
	Register(none, Deps{})
	if _, err := run(t, none, "cdr_search", nil); !errors.Is(err, command.ErrUnavailable) {
		t.Errorf("without a store: %v, want ErrUnavailable", err)
	}
}

// TestSearchFiles checks that each row of a page says which of its
// recordings the spool still holds, looked up in the minute of its call
// date and only for the page's rows.
func TestSearchFiles(t *testing.T) {
	st := &fakeStore{calls: map[string]Call{
		"kept@x":    {ID: 1, CallID: "kept@x", Caller: "100", CallDate: t0},
		"cleaned@x": {ID: 2, CallID: "cleaned@x", Caller: "100", CallDate: t0.Add(time.Minute)},
		"nodate@x":  {ID: 3, CallID: "nodate@x", Caller: "100"},
	}}
	files := func(id string, types ...string) []File {
		var out []File
		for _, typ := range types {
			out = append(out, File{Type: typ, Name: "2026-03-01/12/00/" + typ + "/" + id, Size: 1})
		}
		return out
	}
	sp := &fakeSpool{files: map[string][]File{
		"kept@x":    files("kept@x", "SIP", "RTP", "AUDIO"),
		"cleaned@x": files("cleaned@x", "SIP", "RTP"),
		"nodate@x":  files("nodate@x", "SIP"),
	}}
	reg := command.NewRegistry()
	Register(reg, Deps{Store: st, Spool: sp})
	search := func() map[string]*Recordings {
		t.Helper()
		res, err := run(t, reg, "cdr_search", map[string]string{"caller": "100"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*Recordings{}
		for _, r := range res.(command.Value).V.(SearchResult).Calls {
			out[r.CallID] = r.Files
		}
		return out
	}
	got := search()
	want := map[string]*Recordings{"kept@x": {SIP: true, RTP: true, Audio: true}, "cleaned@x": {SIP: true, RTP: true}, "nodate@x": nil}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files before cleaning (-want +got):\n%s", d)
	}
	// Without a call date the spool is not searched (it would be every
	// minute of it); the others are looked up at their call date.
	if len(sp.starts) != 2 || sp.starts[0].IsZero() || sp.starts[1].IsZero() {
		t.Errorf("Files asked with %v, want the two call dates", sp.starts)
	}

	// The cleaner removes one call's files: the next search says so.
	delete(sp.files, "cleaned@x")
	got = search()
	want["cleaned@x"] = &Recordings{}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files after cleaning (-want +got):\n%s", d)
	}
	res, _ := run(t, reg, "cdr_search", map[string]string{"caller": "100"})
	b, _ := json.Marshal(res)
	for _, s := range []string{`"callid":"kept@x",`, `"files":{"sip":true,"rtp":true,"audio":true}`, `"files":{"sip":false,"rtp":false,"audio":false}`, `"files":null`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("cdr_search JSON lacks %s: %s", s, b)
		}
	}

	// No spool: null, as for a call without a date.
	bare := command.NewRegistry()
	Register(bare, Deps{Store: st})
	res, _ = run(t, bare, "cdr_search", nil)
	if b, _ := json.Marshal(res); strings.Contains(string(b), `"files":{`) || strings.Count(string(b), `"files":null`) != 3 {
		t.Errorf("without a spool: %s", b)
	}

	// Only the page's rows are looked up: the store returns the page.
	sp.starts = nil
	st.calls = map[string]Call{"kept@x": st.calls["kept@x"]}
	search()
	if len(sp.starts) != 1 {
		t.Errorf("Files asked %d times for a page of one row", len(sp.starts))
	}
}

func detail(t *testing.T, reg *command.Registry, params map[string]string) (Detail, error) {
	t.Helper()
	res, err := run(t, reg, "cdr_detail", params)
	if err != nil {
		return Detail{}, err
	}
	return res.(command.Value).V.(Detail), nil
}

func TestDetail(t *testing.T) {
	stored := Call{ID: 7, CallID: "stored@x", Caller: "100", CallDate: t0}
	st := &fakeStore{calls: map[string]Call{"stored@x": stored, "old@x": {ID: 8, CallID: "old@x", CallDate: t0.Add(-time.Hour)},
		"cut@x": {ID: 9, CallID: "cut@x", CallDate: t0}}}
	whole := msgs("INVITE sip:b@x SIP/2.0", "SIP/2.0 200 OK", "ACK sip:b@x SIP/2.0", "BYE sip:b@x SIP/2.0", "SIP/2.0 200 OK")
	cut := Ladder{CallID: "cut@x", Messages: whole[3:], Truncated: true}
	lad := fakeLadders{
		0x1f: {CallID: "stored@x", Messages: whole},
		0x20: {CallID: "pending@x", Messages: whole[:2]},
		0x21: cut,
	}
	sipFiles := func(id string) []File {
		return []File{{Type: "SIP", Name: "2026-03-01/12/00/SIP/" + id + ".pcap", Size: 900}, {Type: "RTP", Name: "2026-03-01/12/00/RTP/" + id + ".pcap", Size: 90000}}
	}
	sp := &fakeSpool{
		files:   map[string][]File{"stored@x": sipFiles("stored@x"), "old@x": sipFiles("old@x"), "cut@x": sipFiles("cut@x")},
		ladders: map[string]Ladder{"stored@x": {CallID: "stored@x", Messages: whole}, "old@x": {CallID: "old@x", Messages: whole}, "cut@x": {CallID: "cut@x", Messages: whole}},
	}
	reg := command.NewRegistry()
	Register(reg, Deps{Store: st, Ladders: lad, Spool: sp})

	for _, tt := range []struct {
		name    string
		params  map[string]string
		callID  string
		source  string // of the ladder, "" for none
		msgs    int
		pending bool
		files   int
	}{
		{"in memory, whole", map[string]string{"callid": "stored@x"}, "stored@x", "memory", 5, false, 2},
		{"by id", map[string]string{"id": "7"}, "stored@x", "memory", 5, false, 2},
		{"by reference after it ended", map[string]string{"callreference": "0x1F"}, "stored@x", "memory", 5, false, 2},
		{"gone from memory: the spool", map[string]string{"callid": "old@x"}, "old@x", "spool", 5, false, 2},
		{"truncated in memory: the spool", map[string]string{"callreference": "0x21"}, "cut@x", "spool", 5, false, 2},
		{"not stored yet", map[string]string{"callreference": "0x20"}, "pending@x", "memory", 2, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := detail(t, reg, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			src, n := "", 0
			if d.Ladder != nil {
				src, n = d.Ladder.Source, len(d.Ladder.Messages)
			}
			if d.CallID != tt.callID || src != tt.source || n != tt.msgs || d.Pending != tt.pending || (d.CDR == nil) != tt.pending || len(d.Files) != tt.files {
				t.Errorf("cdr_detail = callid %q, ladder %q with %d, pending %v, cdr %v, %d files; want %q, %q with %d, pending %v, %d files",
					d.CallID, src, n, d.Pending, d.CDR != nil, len(d.Files), tt.callID, tt.source, tt.msgs, tt.pending, tt.files)
			}
			if !tt.pending && len(d.Streams) != 2 {
				t.Errorf("streams = %+v", d.Streams)
			}
		})
	}
	// Files are looked up in the minute of the stored call date.
	sp.starts = nil
	detail(t, reg, map[string]string{"callid": "old@x"})
	if len(sp.starts) != 1 || !sp.starts[0].Equal(t0.Add(-time.Hour)) {
		t.Errorf("Files asked with %v, want the call date", sp.starts)
	}

	// The BYE's text is served whole.
	d, _ := detail(t, reg, map[string]string{"callid": "stored@x"})
	b, _ := json.Marshal(command.Value{V: d})
	if !strings.Contains(string(b), `"line":"BYE sip:b@x SIP/2.0","raw":"BYE sip:b@x SIP/2.0\r\nCall-ID: x\r\n\r\n"`) ||
		!strings.Contains(string(b), `"pending":false`) || !strings.Contains(string(b), `"source":"memory"`) {
		t.Errorf("cdr_detail JSON = %s", b)
	}
	d, _ = detail(t, reg, map[string]string{"callreference": "0x20"})
	if b, _ := json.Marshal(command.Value{V: d}); !strings.Contains(string(b), `"cdr":null`) || !strings.Contains(string(b), `"files":[]`) {
		t.Errorf("pending JSON = %s", b)
	}

	// A spool that cannot be read leaves the memory's ladder and says why.
	sp.err = errors.New("permission denied")
	d, err := detail(t, reg, map[string]string{"callreference": "0x21"})
	if err != nil || d.Ladder == nil || d.Ladder.Source != "memory" || !d.Ladder.Truncated || d.LadderError != "permission denied" {
		t.Errorf("unreadable spool: %+v, %v", d, err)
	}
	sp.err = nil

	for _, tt := range []struct {
		params map[string]string
		want   error
	}{
		{map[string]string{"callid": "none@x"}, command.ErrNoEntry},
		{map[string]string{"id": "99"}, command.ErrNoEntry},
		{map[string]string{"callreference": "0x99"}, command.ErrNoEntry},
		{map[string]string{}, command.ErrMissingParam},
		{map[string]string{"callreference": "zz"}, command.ErrBadParam},
		{map[string]string{"id": "-3"}, command.ErrBadParam},
	} {
		if _, err := detail(t, reg, tt.params); !errors.Is(err, tt.want) {
			t.Errorf("cdr_detail %v = %v, want %v", tt.params, err, tt.want)
		}
	}

	// Without a store: memory and spool still answer.
	bare := command.NewRegistry()
	Register(bare, Deps{Ladders: lad, Spool: sp})
	if d, err := detail(t, bare, map[string]string{"callid": "old@x"}); err != nil || d.Ladder == nil || d.Ladder.Source != "spool" || !d.Pending {
		t.Errorf("without a store: %+v, %v", d, err)
	}
}
