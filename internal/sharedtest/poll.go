package sharedtest

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds, and fails
// the test naming what it waited for when timeout passes first. Tests wait
// for a condition this way, never for a sleep to be long enough.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// FlakyListener fails its next Fails Accept calls with a temporary error,
// as a process out of file descriptors (EMFILE) sees them, then accepts.
type FlakyListener struct {
	net.Listener
	Fails atomic.Int32
}

// Accept implements net.Listener.
func (f *FlakyListener) Accept() (net.Conn, error) {
	if f.Fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: emfile{}}
	}
	return f.Listener.Accept()
}

// emfile is the temporary error FlakyListener returns.
type emfile struct{}

func (emfile) Error() string   { return "accept: too many open files" }
func (emfile) Temporary() bool { return true }
func (emfile) Timeout() bool   { return false }
