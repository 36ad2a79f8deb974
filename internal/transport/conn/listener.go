package conn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for [Limits] zero values.
const (
	DefaultMaxConns         = 1024
	DefaultMaxUnauthPerAddr = 32
	DefaultFirstRequest     = 5 * time.Second
	DefaultDrain            = 2 * time.Second
)

// Limits bound what one listener's clients may hold. Zero values take the
// defaults above; a negative value means no limit.
type Limits struct {
	// MaxConns caps the sessions open at once on this listener.
	MaxConns int
	// MaxUnauth caps the sessions that have not authenticated yet (see
	// [Conn.Authenticated]); by default it is MaxConns. Asterisk calls it
	// authlimit. Keeping it below MaxConns leaves room for clients that
	// logged in while others flood the port.
	MaxUnauth int
	// MaxUnauthPerAddr caps the unauthenticated sessions from one remote
	// IP address (TCP; unix sockets have no address).
	MaxUnauthPerAddr int
	// FirstRequest is how long a new session has to deliver its first
	// complete request ([Conn.Started]) or to log in ([Conn.Authenticated]);
	// after that it is closed with [ClosedFirstRequest].
	FirstRequest time.Duration
	// Drain is how long sessions get to finish (their blocked reads are
	// woken) when the listener shuts down, before they are closed.
	Drain time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxConns, DefaultMaxConns)
	def(&l.MaxUnauth, l.MaxConns)
	def(&l.MaxUnauthPerAddr, DefaultMaxUnauthPerAddr)
	if l.FirstRequest == 0 {
		l.FirstRequest = DefaultFirstRequest
	}
	if l.Drain <= 0 {
		l.Drain = DefaultDrain
	}
	return l
}

// Handler serves one session. ctx is cancelled when the listener shuts
// down. The handler owns c until it returns; the kit closes c afterwards
// (with [ClosedDone] unless a reason was given).
type Handler func(ctx context.Context, c *Conn)

// Options tune a [Listener] beyond its limits.
type Options struct {
	// Name labels log lines and errors ("manager tcp").
	Name string
	// Logger receives accept errors, panics and refusals; nil discards.
	Logger *slog.Logger
	// OnPanic, when set, is called after a handler panicked, before the
	// connection is closed, to answer with the protocol's internal error
	// (best effort: c has a short write deadline).
	OnPanic func(c *Conn)
}

// Stats are a listener's counters. Safe to copy.
type Stats struct {
	Accepted uint64 // connections accepted from the kernel
	Active   int    // sessions open now
	Unauth   int    // of which not authenticated
	Panics   uint64 // handlers that panicked
	// Closed counts ended sessions and refused connections by reason.
	Closed [numClosedStates]uint64
	// AcceptRetries counts temporary accept errors waited out.
	AcceptRetries uint64
}

// Sum adds the counters of several listeners (a transport's TCP and unix
// listeners, say) into one Stats.
func Sum(ls []*Listener) Stats {
	var sum Stats
	for _, l := range ls {
		st := l.Stats()
		sum.Accepted += st.Accepted
		sum.Active += st.Active
		sum.Unauth += st.Unauth
		sum.Panics += st.Panics
		sum.AcceptRetries += st.AcceptRetries
		for i := range st.Closed {
			sum.Closed[i] += st.Closed[i]
		}
	}
	return sum
}

// Refused sums the connections refused by a limit.
func (s Stats) Refused() uint64 {
	return s.Closed[ClosedRefusedCap] + s.Closed[ClosedRefusedUnauth] + s.Closed[ClosedRefusedPerAddr]
}

// ErrClosed is returned by [Listener.Serve] when it stopped because its
// context ended (or Serve was called on a listener already served).
var ErrClosed = errors.New("conn: listener closed")

// Listener serves one bound net.Listener under its [Limits]. Create it
// with [New]; Serve runs it. Safe for concurrent use.
type Listener struct {
	l    net.Listener
	lim  Limits
	opts Options
	log  *slog.Logger
	unix bool

	mu       sync.Mutex
	sessions map[*Conn]struct{}
	plain    int // connections handed out by Limited
	unauth   int
	perAddr  map[netip.Addr]int
	serving  bool
	draining bool

	accepted, panics, retries atomic.Uint64
	closed                    [numClosedStates]atomic.Uint64
	stackLogged               atomic.Bool
	wg                        sync.WaitGroup
}

// New wraps l, which the caller bound, with lim. It starts nothing.
func New(l net.Listener, lim Limits, opts Options) *Listener {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Name == "" {
		opts.Name = l.Addr().Network()
	}
	return &Listener{
		l: l, lim: lim.withDefaults(), opts: opts, log: log,
		unix:     l.Addr().Network() == "unix",
		sessions: make(map[*Conn]struct{}),
		perAddr:  make(map[netip.Addr]int),
	}
}

// Addr returns the listener's address.
func (x *Listener) Addr() net.Addr { return x.l.Addr() }

// Limits returns the limits in force, defaults filled in.
func (x *Listener) Limits() Limits { return x.lim }

// Stats returns the counters.
func (x *Listener) Stats() Stats {
	x.mu.Lock()
	st := Stats{Active: len(x.sessions) + x.plain, Unauth: x.unauth + x.plain}
	x.mu.Unlock()
	st.Accepted, st.Panics, st.AcceptRetries = x.accepted.Load(), x.panics.Load(), x.retries.Load()
	for i := range st.Closed {
		st.Closed[i] = x.closed[i].Load()
	}
	return st
}

// Close closes the underlying listener without serving it (for a
// transport discarded before it ran).
func (x *Listener) Close() error { return x.l.Close() }

// Serve accepts connections and runs h on each in its own goroutine until
// ctx is done; then it stops accepting, drains the sessions (see
// [Limits.Drain]) and returns nil. A permanent accept error is returned
// after the same drain. Temporary errors are retried with backoff.
func (x *Listener) Serve(ctx context.Context, h Handler) error {
	x.mu.Lock()
	if x.serving {
		x.mu.Unlock()
		return ErrClosed
	}
	x.serving = true
	x.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { x.l.Close() })
	defer stop()
	var err error
	var backoff time.Duration
	for {
		c, aerr := x.l.Accept()
		if aerr != nil {
			if ctx.Err() != nil || errors.Is(aerr, net.ErrClosed) {
				break
			}
			if isTemporary(aerr) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if n := x.retries.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th... retry
					x.log.Warn("accept failed, retrying", "listener", x.opts.Name, "err", aerr, "retry_in", backoff)
				}
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				continue
			}
			err = fmt.Errorf("conn: %s: accept: %w", x.opts.Name, aerr)
			break
		}
		backoff = 0
		x.accepted.Add(1)
		x.admit(ctx, c, h)
	}
	x.l.Close()
	x.drain()
	return err
}

// admit applies the limits to a new connection and starts its session.
func (x *Listener) admit(ctx context.Context, nc net.Conn, h Handler) {
	c := &Conn{Conn: nc, x: x, done: make(chan struct{})}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	x.mu.Lock()
	refuse := ClosedNone
	switch {
	case x.draining:
		refuse = ClosedShutdown
	case x.lim.MaxConns > 0 && len(x.sessions) >= x.lim.MaxConns:
		refuse = ClosedRefusedCap
	case x.lim.MaxUnauth > 0 && x.unauth >= x.lim.MaxUnauth:
		refuse = ClosedRefusedUnauth
	case !x.unix && c.remote.IsValid() && x.lim.MaxUnauthPerAddr > 0 && x.perAddr[c.remote.Addr()] >= x.lim.MaxUnauthPerAddr:
		refuse = ClosedRefusedPerAddr
	}
	if refuse != ClosedNone {
		x.mu.Unlock()
		x.closed[refuse].Add(1)
		nc.Close() // before a byte is written, as Asterisk does past authlimit
		return
	}
	x.sessions[c] = struct{}{}
	x.unauth++
	c.unauth = true
	if c.remote.IsValid() && !x.unix {
		x.perAddr[c.remote.Addr()]++
	}
	x.wg.Add(1)
	x.mu.Unlock()
	if x.lim.FirstRequest > 0 {
		c.first = time.AfterFunc(x.lim.FirstRequest, func() { c.Close(ClosedFirstRequest) })
	}
	go x.run(ctx, c, h)
}

func (x *Listener) run(ctx context.Context, c *Conn, h Handler) {
	defer x.wg.Done()
	defer x.forget(c)
	defer func() {
		if v := recover(); v != nil {
			x.panics.Add(1)
			if !x.stackLogged.Swap(true) {
				x.log.Error("session panicked", "listener", x.opts.Name, "remote", c.RemoteString(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			} else {
				x.log.Error("session panicked", "listener", x.opts.Name, "remote", c.RemoteString(), "panic", fmt.Sprint(v), "panics", x.panics.Load())
			}
			if x.opts.OnPanic != nil {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				func() {
					defer func() { recover() }() // the answer must not panic the process either
					x.opts.OnPanic(c)
				}()
			}
			c.Close(ClosedPanic)
		}
	}()
	h(ctx, c)
}

// forget removes an ended session and closes it.
func (x *Listener) forget(c *Conn) {
	c.Started() // stop the first-request timer
	c.Close(ClosedDone)
	x.mu.Lock()
	delete(x.sessions, c)
	x.releaseUnauthLocked(c)
	x.mu.Unlock()
}

// releaseUnauthLocked takes c out of the unauthenticated counts. x.mu
// must be held.
func (x *Listener) releaseUnauthLocked(c *Conn) {
	if !c.unauth {
		return
	}
	c.unauth = false
	x.unauth--
	if c.remote.IsValid() && !x.unix {
		a := c.remote.Addr()
		if x.perAddr[a]--; x.perAddr[a] <= 0 {
			delete(x.perAddr, a)
		}
	}
}

// drain wakes every session's blocked read, waits up to Drain for the
// handlers to return, then closes what is left.
func (x *Listener) drain() {
	x.mu.Lock()
	x.draining = true
	ss := make([]*Conn, 0, len(x.sessions))
	for c := range x.sessions {
		ss = append(ss, c)
	}
	x.mu.Unlock()
	now := time.Now()
	for _, c := range ss {
		c.draining.Store(true)
		c.SetReadDeadline(now)
	}
	done := make(chan struct{})
	go func() { x.wg.Wait(); close(done) }()
	t := time.NewTimer(x.lim.Drain)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	x.mu.Lock()
	for c := range x.sessions {
		c.Close(ClosedShutdown)
	}
	x.mu.Unlock()
	<-done
}

// isTemporary reports accept errors worth retrying (EMFILE, ENFILE,
// ECONNABORTED...), as net/http does.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Conn is one session: the net.Conn plus what the kit tracks about it.
// Its methods are safe for concurrent use.
type Conn struct {
	net.Conn
	x        *Listener
	remote   netip.AddrPort
	first    *time.Timer
	unauth   bool // guarded by x.mu
	draining atomic.Bool

	closeOnce sync.Once
	reason    atomic.Uint32
	done      chan struct{} // closed by Close
}

// Done is closed when the session is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Remote returns the client's address; invalid on a unix socket.
func (c *Conn) Remote() netip.AddrPort { return c.remote }

// RemoteString returns the remote address for logs ("unix" on a socket).
func (c *Conn) RemoteString() string {
	if c.remote.IsValid() {
		return c.remote.String()
	}
	return c.RemoteAddr().Network()
}

// Local reports whether the client is on this host: a unix socket, or a
// loopback address.
func (c *Conn) Local() bool {
	return c.x.unix || (c.remote.IsValid() && c.remote.Addr().IsLoopback())
}

// Unix reports whether the session came in over a unix socket.
func (c *Conn) Unix() bool { return c.x.unix }

// Started tells the kit that the first complete request arrived: the
// first-request deadline no longer applies.
func (c *Conn) Started() {
	if c.first != nil {
		c.first.Stop()
	}
}

// Authenticated tells the kit the client logged in: the first-request
// deadline stops and the session no longer counts against the
// unauthenticated limits.
func (c *Conn) Authenticated() {
	c.Started()
	c.x.mu.Lock()
	c.x.releaseUnauthLocked(c)
	c.x.mu.Unlock()
}

// Draining reports whether the listener is shutting down: a read that
// failed with a timeout was woken by the drain, and the handler should
// finish what it has to write and return.
func (c *Conn) Draining() bool { return c.draining.Load() }

// Close closes the connection once, recording why (the first reason
// wins) and counting it. It returns whether this call closed it.
func (c *Conn) Close(reason ClosedState) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		if reason == ClosedNone {
			reason = ClosedDone
		}
		c.reason.Store(uint32(reason))
		c.x.closed[reason].Add(1)
		c.Conn.Close()
		close(c.done)
	})
	return first
}

// Reason returns why the session ended, or [ClosedNone] while it is open.
func (c *Conn) Reason() ClosedState { return ClosedState(c.reason.Load()) }

// Closed reports whether the session has been closed.
func (c *Conn) Closed() bool { return c.Reason() != ClosedNone }
