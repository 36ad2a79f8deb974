package tableview

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// TestHistorySpoolFiles: a call's recordings are found by its start
// minute, and without a start (a live call reference, a CDR without one)
// through its pcaps, its audio in their minute included.
func TestHistorySpoolFiles(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 12, 30, 15, 0, time.Local)
	const callID = "abc@example.org"
	var want []string
	for _, rel := range []string{
		spool.CallPath(spool.TypeSIP, callID, start, nil),
		spool.CallPath(spool.TypeRTP, callID, start, nil),
		spool.AudioPath(callID, start, nil),
	} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		want = append(want, rel)
	}
	slices.Sort(want)
	h := HistorySpool(spool.NewDir(dir), new(decode.PortSet))
	for _, at := range []time.Time{start, {}} {
		var got []string
		for _, f := range h.Files(callID, at) {
			got = append(got, f.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("Files(start %v) = %v, want %v", at, got, want)
		}
	}
}
