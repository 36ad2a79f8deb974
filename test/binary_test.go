package test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// voipsensorBinary builds cmd/voipsensor once per test run and returns the
// path of the binary. Every black-box test uses this one build.
func voipsensorBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "voipsensor-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "voipsensor")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/voipsensor").CombinedOutput()
		if err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatalf("building voipsensor: %v", binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// freeTCPPort returns a loopback TCP port that was free a moment ago.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
