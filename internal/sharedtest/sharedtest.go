// Package sharedtest locates the team's shared test material — the lab
// captures in shared/pcaps — for tests. CI clones the repository with
// shared/ beside it; VOIPSENSOR_SHARED overrides the location.
//
// Import it from _test.go files only. Allowed imports: the standard library.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared/ directory beside the repository root, or skips
// the test when it is absent.
func Dir(t testing.TB) string {
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
				t.Skipf("no shared/pcaps beside the repository (%s); set VOIPSENSOR_SHARED", s)
			}
			return s
		}
		if filepath.Dir(d) == d {
			t.Fatalf("go.mod not found above %s", wd)
		}
	}
}

// Pcaps returns the shared/pcaps directory, or skips the test.
func Pcaps(t testing.TB) string { return filepath.Join(Dir(t), "pcaps") }

// Pcap returns the path of one shared capture, or skips the test.
func Pcap(t testing.TB, name string) string { return filepath.Join(Pcaps(t), name) }
