// Package sharedtest locates the team's shared test material — the lab
// captures in shared/pcaps — for tests. CI clones the repository with
// shared/ beside it; VOIPSENSOR_SHARED overrides the location.
//
// Import it from _test.go files only. Allowed imports: the standard library.
package sharedtest

import (
	"os"
	"os/exec"
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
				Missing(t, "no shared/pcaps beside the repository (%s); set VOIPSENSOR_SHARED", s)
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

// InCI reports whether the tests run in CI (CI set to anything but "" or
// "false"), where a missing tool or missing test material is a failure.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Missing reports that something a test needs is absent: outside CI the
// test is skipped with the message; in CI (see [InCI]) it fails, since CI
// installs everything the suite needs.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Tool returns the path of the executable name, or reports it [Missing].
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not installed (scripts/install-deps.sh installs it)", name)
	}
	return p
}

// Root reports [Missing] unless the test runs as root (live capture needs
// CAP_NET_RAW; CI runs as root).
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (CAP_NET_RAW for live capture)")
	}
}
