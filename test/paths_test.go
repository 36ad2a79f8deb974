package test

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir finds ../shared beside the repository root (CI clones main with
// shared/ beside it). VOIPSENSOR_SHARED overrides it.
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("VOIPSENSOR_SHARED"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(filepath.Dir(d), "shared")
			if _, err := os.Stat(filepath.Join(s, "pcaps")); err != nil {
				t.Skipf("no shared/pcaps beside the repository (%s): set VOIPSENSOR_SHARED", s)
			}
			return s
		}
		if filepath.Dir(d) == d {
			t.Fatal("go.mod not found above", wd)
		}
	}
}
