package server

import (
	"context"
	"crypto/subtle"
	"net/netip"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Defaults of the failed-login delay ([Config.AuthDelay]).
const (
	DefaultAuthDelay    = time.Second
	DefaultAuthDelayMax = 30 * time.Second
	// authQuiet is how long an address must go without a failed login to
	// start again from the first delay.
	authQuiet = 5 * time.Minute
	// maxAuthAddrs bounds the addresses whose failures are remembered.
	maxAuthAddrs = 4096
)

// authorize is the server API's rule for the requests that reach sensors
// or list them (gui_command, manager_command). The legacy server checks
// nothing for them (server.cpp cp_gui_command and cp_manager_command read
// only sensor_id and command, and the GUI sends no credential), so anyone
// who reached port 60024 could run any manager command on any connected
// sensor. A request is allowed when one of these holds:
//
//   - no server_password is configured: config.CheckExposure then allows
//     only a loopback bind, or an explicit allow_unauthenticated_remote;
//   - the client is on this host (loopback), where the VoIPmonitor GUI
//     usually runs beside the central server (a proxy on this host that
//     forwards remote clients would make them local: put none in front);
//   - the request was wrapped with the manager AES key and decrypted
//     under it, as the GUI sends it when manager_aes_key is configured:
//     the key is a secret shared with the GUI, as on the manager API;
//   - its JSON carries "password" equal to server_password (this
//     implementation's extension; the legacy server ignores unknown keys,
//     so a tool may always send it).
//
// The need-AES rule still applies after this one, as in the legacy
// server.
func (s *Server) authorize(c *conn.Conn, op opening, wrapped bool) (ok, byPassword bool) {
	switch {
	case s.cfg.Password == "", s.local(c), wrapped:
		return true, false
	}
	ok = op.Password != "" && subtle.ConstantTimeCompare([]byte(op.Password), []byte(s.cfg.Password)) == 1
	return ok, ok
}

// failLogin answers a refused login after the client's address has waited
// its delay (see [authBackoff]), and closes the session. answer writes
// the refusal; it is skipped when the server shuts down during the wait.
// The session keeps its unauthenticated slot while it waits, so one
// address can have at most MaxUnauthPerAddr guesses in flight.
func (s *Server) failLogin(ctx context.Context, c *conn.Conn, kind string, answer func()) {
	d := s.auth.failed(c.Remote().Addr())
	if ok, n := s.authLog.Allow(time.Now()); ok {
		s.log.Info("login refused", "remote", c.RemoteString(), "type", kind, "delay", d, "suppressed", n)
	}
	if !s.wait(ctx, d) {
		c.Close(conn.ClosedShutdown)
		return
	}
	answer()
	c.Close(conn.ClosedAuthFailed)
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// authBackoff makes failed logins cost the guesser time, as Asterisk's
// delay after a failed manager login does, but per address: the first
// failure from an address waits base, each further one twice as long up
// to max. A successful password login, or quiet without failures, clears
// the address. IPv6 clients are counted per /64, the block one host
// usually holds. Safe for concurrent use.
type authBackoff struct {
	base, max, quiet time.Duration
	now              func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]authFailures
}

type authFailures struct {
	n    int
	last time.Time
}

func newAuthBackoff(base, max time.Duration) *authBackoff {
	return &authBackoff{base: base, max: max, quiet: authQuiet, now: time.Now, m: map[netip.Addr]authFailures{}}
}

// backoffKey is the bucket of a: the address itself, or its /64.
func backoffKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// failed records a failure from a and returns how long to wait before
// answering it.
func (b *authBackoff) failed(a netip.Addr) time.Duration {
	if b.base <= 0 {
		return 0
	}
	k, now := backoffKey(a), b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f, seen := b.m[k]
	if seen && now.Sub(f.last) >= b.quiet {
		f = authFailures{}
	}
	if !seen && len(b.m) >= maxAuthAddrs {
		b.pruneLocked(now)
	}
	f.n++
	f.last = now
	b.m[k] = f
	d := b.base
	for i := 1; i < f.n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// pruneLocked forgets the quiet addresses, or, when none is quiet, an
// arbitrary one: the map stays bounded whatever the number of guessers.
// b.mu must be held.
func (b *authBackoff) pruneLocked(now time.Time) {
	for k, f := range b.m {
		if now.Sub(f.last) >= b.quiet {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) < maxAuthAddrs {
			break
		}
		delete(b.m, k)
	}
}

// succeeded clears a's failures.
func (b *authBackoff) succeeded(a netip.Addr) {
	b.mu.Lock()
	delete(b.m, backoffKey(a))
	b.mu.Unlock()
}
