package mi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/command"
)

type fakeStats struct{ v map[string]int64 }

func (f *fakeStats) Statistics() []Statistic {
	return []Statistic{
		{Group: "dialog", Name: "active_dialogs", Value: f.v["active"]},
		{Group: "dialog", Name: "processed_dialogs", Value: f.v["processed"], Incremental: true},
		{Group: "core", Name: "bad_msg_hdr", Value: f.v["bad"], Incremental: true},
		{Group: "capture", Name: "frames", Value: f.v["frames"], Incremental: true},
	}
}

type fakeTable struct{}

func (fakeTable) Dialogs() []Dialog {
	return []Dialog{
		{ID: "0x1", State: DlgConfirmed, CallID: "a@h", Context: &DialogContext{Streams: []DialogStream{{SSRC: "0x00000001"}}}},
		{ID: "0x2", State: DlgEarly, CallID: "b@h", Context: &DialogContext{}},
	}
}

func (fakeTable) AORs() []AOR {
	return []AOR{{AOR: "alice@example.com", Contacts: []Contact{{Contact: "sip:alice@192.0.2.1", ContactID: "1", Expires: int64(60)}}}}
}

func setup(t *testing.T) (*command.Registry, *fakeStats, *slog.LevelVar) {
	reg := command.NewRegistry()
	st := &fakeStats{v: map[string]int64{"active": 2, "processed": 10, "bad": 1, "frames": 500}}
	lv := new(slog.LevelVar)
	t0 := time.Date(2026, 11, 23, 7, 50, 1, 0, time.UTC)
	Register(reg, Deps{Version: "1.2.3", Start: t0, Stats: st, Dialogs: fakeTable{}, Contacts: fakeTable{}, LogLevel: lv,
		Now: func() time.Time { return t0.Add(401 * time.Second) }})
	return reg, st, lv
}

func run(t *testing.T, reg *command.Registry, perm command.Perm, name string, args ...string) (string, error) {
	t.Helper()
	res, err := reg.Run(context.Background(), &command.Request{Name: name, Args: args, Perm: perm})
	if err != nil {
		return "", err
	}
	switch r := res.(type) {
	case command.Text:
		return string(r), nil
	case command.Value:
		b, err := json.Marshal(r.V)
		return string(b), err
	}
	t.Fatalf("%s: result %T", name, res)
	return "", nil
}

func TestCommands(t *testing.T) {
	reg, _, _ := setup(t)
	tests := []struct {
		name string
		args []string
		want string
		err  error
	}{
		// spec §5: uptime shape, ctime dates, " [sec]" suffix.
		{"uptime", nil, `{"Now":"Mon Nov 23 07:56:42 2026","Up since":"Mon Nov 23 07:50:01 2026","Up time":"401 [sec]"}`, nil},
		{"core.uptime", nil, `{"now":"Mon Nov 23 07:56:42 2026","up_since":"Mon Nov 23 07:50:01 2026","uptime":401}`, nil},
		{"get_statistics", []string{`["dialog:"]`}, `{"dialog:active_dialogs":2,"dialog:processed_dialogs":10}`, nil},
		{"get_statistics", []string{`["ACTIVE_DIALOGS","frames"]`}, `{"dialog:active_dialogs":2,"capture:frames":500}`, nil},
		{"get_statistics", []string{`"all"`}, `{"dialog:active_dialogs":2,"dialog:processed_dialogs":10,"core:bad_msg_hdr":1,"capture:frames":500}`, nil},
		{"get_statistics", []string{`["core:bad_msg_hdr","nosuch"]`}, `{"core:bad_msg_hdr":1}`, nil},
		{"get_statistics", []string{`["nosuch"]`}, ``, ErrStatsNotFound},
		{"get_statistics", []string{`[1]`}, ``, command.ErrBadParam},
		{"stats.get_statistics", []string{`["core:"]`}, `["core:bad_msg_hdr = 1"]`, nil},
		{"stats.fetch", []string{`"dialog:"`}, `{"dialog.active_dialogs":"2","dialog.processed_dialogs":"10"}`, nil},
		{"list_statistics", []string{`["dialog:"]`}, `{"dialog:active_dialogs":"non-incremental","dialog:processed_dialogs":"incremental"}`, nil},
		{"which", []string{"log_level"}, `[[],["level"],["level","pid"]]`, nil},
		{"which", []string{"ul_show_contact"}, `[["table_name","aor"]]`, nil},
		{"which", []string{"nope"}, ``, &Error{404, "unknown MI command"}},
		{"dlg_list", []string{"a@h"}, `{"Dialog":{"ID":"0x1","state":4,"timestart":0,"datestart":"","callid":"a@h","from_uri":"","to_uri":"","sensor_state":"","last_code":0,"caller_addr":"","callee_addr":""}}`, nil},
		{"dlg_list", []string{"zz"}, ``, ErrNoDialog},
		{"ul_show_contact", []string{"location", "ALICE@example.com"}, `{"AOR":"alice@example.com","Contacts":[{"Contact":"sip:alice@192.0.2.1","ContactID":"1","Expires":60,"sensor_state":""}]}`, nil},
		{"ul_show_contact", []string{"other", "a@b"}, ``, ErrNoTable},
		{"ul_show_contact", []string{"location", "alice"}, ``, ErrNoDomain},
		{"ul_show_contact", []string{"location", "bob@b"}, ``, ErrNoAOR},
		{"ul_dump", []string{"brief"}, `{"Domains":[{"name":"location","AORs":[{"AOR":"alice@example.com"}]}]}`, nil},
		{"version", nil, `{"Server":"voipsensor (1.2.3 (` + goarch() + `))"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, reg, command.PermAll, tt.name, tt.args...)
			if !errors.Is(err, tt.err) && !(tt.err != nil && err != nil && err.Error() == tt.err.Error()) {
				t.Fatalf("%s %q: err %v, want %v", tt.name, tt.args, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("%s %q\n got %s\nwant %s", tt.name, tt.args, got, tt.want)
			}
		})
	}
}

func TestDlgListCtxAndPaging(t *testing.T) {
	reg, _, _ := setup(t)
	res, _ := reg.Run(context.Background(), &command.Request{Name: "dlg_list_ctx", Perm: command.PermAll})
	b, _ := json.Marshal(res.(command.Value).V)
	var v struct{ Dialogs []Dialog }
	json.Unmarshal(b, &v)
	if len(v.Dialogs) != 2 || v.Dialogs[0].Context == nil || len(v.Dialogs[0].Context.Streams) != 1 {
		t.Errorf("dlg_list_ctx = %s", b)
	}
	got, err := run(t, reg, command.PermAll, "dlg_list")
	if err != nil || len(got) == 0 || json.Valid([]byte(got)) == false || strings.Contains(got, "context") {
		t.Errorf("dlg_list = %s, %v; want no context", got, err)
	}
	res, _ = reg.Run(context.Background(), &command.Request{Name: "dlg_list", Params: map[string]string{"index": "1", "counter": "5"}, Perm: command.PermAll})
	b, _ = json.Marshal(res.(command.Value).V)
	var p struct {
		Count   int
		Dialogs []Dialog
	}
	json.Unmarshal(b, &p)
	if p.Count != 2 || len(p.Dialogs) != 1 || p.Dialogs[0].ID != "0x2" {
		t.Errorf("page = %s", b)
	}
}

func TestResetStatistics(t *testing.T) {
	reg, st, _ := setup(t)
	if _, err := run(t, reg, command.PermReporting, "reset_statistics", `["processed_dialogs"]`); !errors.Is(err, command.ErrPermission) {
		t.Fatalf("reset without control perm: %v", err)
	}
	if _, err := run(t, reg, command.PermAll, "reset_statistics", `["dialog:"]`); err != nil {
		t.Fatal(err)
	}
	st.v["processed"] = 13
	st.v["active"] = 3
	got, _ := run(t, reg, command.PermAll, "get_statistics", `["dialog:"]`)
	// processed counts from the reset (13-10); the gauge is untouched.
	if want := `{"dialog:active_dialogs":3,"dialog:processed_dialogs":3}`; got != want {
		t.Errorf("after reset %s, want %s", got, want)
	}
	run(t, reg, command.PermAll, "reset_all_statistics")
	got, _ = run(t, reg, command.PermAll, "get_statistics", `["capture:frames"]`)
	if got != `{"capture:frames":0}` {
		t.Errorf("after reset_all: %s", got)
	}
}

func TestLogLevel(t *testing.T) {
	reg, _, lv := setup(t)
	got, _ := run(t, reg, command.PermAll, "log_level")
	if !strings.Contains(got, `"Log level":3`) {
		t.Errorf("log_level get = %s, want level 3 (info)", got)
	}
	if _, err := run(t, reg, PermRO, "log_level", "4"); !errors.Is(err, command.ErrPermission) {
		t.Errorf("set on read-only: %v", err)
	}
	if got, _ := run(t, reg, command.PermAll, "log_level", "4"); got != `{"New global log level":4}` || lv.Level() != slog.LevelDebug {
		t.Errorf("set 4 = %s, level %v; want debug", got, lv.Level())
	}
	if _, err := run(t, reg, command.PermAll, "log_level", "9"); !errors.Is(err, command.ErrBadParam) {
		t.Errorf("set 9: %v", err)
	}
	if _, err := run(t, reg, command.PermAll, "log_level", "1", "1"); !errors.Is(err, command.ErrBadParam) {
		t.Errorf("bad pid: %v", err)
	}
	for _, n := range []int{-3, -2, -1, 1, 2, 3, 4} {
		l, _ := SlogLevel(n)
		if back := OpenSIPSLevel(l); back != n {
			t.Errorf("OpenSIPSLevel(SlogLevel(%d)) = %d", n, back)
		}
	}
}

func TestRecipes(t *testing.T) {
	got := Recipes([]command.Param{{Name: "a", Required: true}, {Name: "b"}, {Name: "c"}})
	if diff := cmp.Diff([][]string{{"a"}, {"a", "b"}, {"a", "b", "c"}}, got); diff != "" {
		t.Error(diff)
	}
}

const PermRO = command.PermAll &^ command.PermSystem
