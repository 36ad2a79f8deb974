package tableview

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/history"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// pageStore answers every search with its calls.
type pageStore []history.Call

func (p pageStore) Search(context.Context, history.Query) (history.Page, error) {
	return history.Page{Total: len(p), Calls: p}, nil
}

func (p pageStore) Call(context.Context, int64, string) (history.Call, []history.Stream, error) {
	return history.Call{}, nil, command.ErrNoEntry
}

// TestHistorySearchFiles: cdr_search over a real spool says which
// recordings of each row are on disk, and stops saying so once they are
// removed; a call whose CDR time is cut to the second finds its files.
func TestHistorySearchFiles(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 12, 30, 59, 600e6, time.Local)
	calls := pageStore{
		{ID: 1, CallID: "kept@example.org", CallDate: start.Truncate(time.Second)},
		{ID: 2, CallID: "cleaned@example.org", CallDate: start.Truncate(time.Second)},
		{ID: 3, CallID: "never@example.org", CallDate: start},
	}
	write := func(rel string) string {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(spool.CallPath(spool.TypeSIP, calls[0].CallID, start, nil))
	write(spool.CallPath(spool.TypeRTP, calls[0].CallID, start, nil))
	write(spool.AudioPath(calls[0].CallID, start, nil))
	// The second call's first recorded packet came in the next minute.
	next := start.Add(500 * time.Millisecond)
	if spool.MinuteDir(next, nil) == spool.MinuteDir(calls[1].CallDate, nil) {
		t.Fatal("the test wants the files one minute after the CDR's date")
	}
	cleaned := []string{
		write(spool.CallPath(spool.TypeSIP, calls[1].CallID, next, nil)),
		write(spool.AudioPath(calls[1].CallID, next, nil)),
	}

	reg := command.NewRegistry()
	history.Register(reg, history.Deps{Store: calls, Spool: HistorySpool(spool.NewDir(dir), new(decode.PortSet))})
	search := func() map[string]history.Recordings {
		t.Helper()
		res, err := reg.Run(context.Background(), &command.Request{Name: "cdr_search", Perm: command.PermCall})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]history.Recordings{}
		for _, r := range res.(command.Value).V.(history.SearchResult).Calls {
			if r.Files == nil {
				t.Fatalf("%s: files null with a spool", r.CallID)
			}
			out[r.CallID] = *r.Files
		}
		return out
	}
	want := map[string]history.Recordings{
		"kept@example.org":    {SIP: true, RTP: true, Audio: true},
		"cleaned@example.org": {SIP: true, Audio: true},
		"never@example.org":   {},
	}
	if d := cmp.Diff(want, search()); d != "" {
		t.Errorf("before cleaning (-want +got):\n%s", d)
	}
	for _, p := range cleaned {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	want["cleaned@example.org"] = history.Recordings{}
	if d := cmp.Diff(want, search()); d != "" {
		t.Errorf("after cleaning (-want +got):\n%s", d)
	}
}
