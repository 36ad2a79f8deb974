package ami

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Queue bounds of a session's outbound queue.
const (
	DefaultQueueMessages = 8192
	DefaultQueueBytes    = 8 << 20
	busQueue             = 1 << 16 // events buffered between the bus and the dispatcher
)

// drainLimit bounds how long a closing session may spend writing its
// queue; dispatchWait how long a session stopped by a shutdown waits
// first for the dispatcher to hand it the events the bus still held.
const (
	drainLimit   = 2 * time.Second
	dispatchWait = time.Second
)

// Options tune a [Server] beyond the manager.conf file.
type Options struct {
	Logger *slog.Logger
	// Version is advertised in the banner ("Asterisk Call Manager/9.0.0").
	Version string
	// SensorVersion is reported as AsteriskVersion by CoreSettings.
	SensorVersion string
	// SystemName is reported by CoreSettings.
	SystemName string
	// QueueMessages and QueueBytes bound each session's outbound queue.
	QueueMessages, QueueBytes int
	// FailDelay is the pause before "Authentication failed" (Asterisk:
	// 1 s; default 500 ms so that clients with a 1 s read deadline, like
	// goami2, see the answer).
	FailDelay time.Duration
}

// Stats are the server's counters: the listener's sessions (accepted,
// open, closed by reason, refused by authlimit or the per-address cap,
// panics) and AMI's own.
type Stats struct {
	conn.Stats
	LoginsOK        uint64
	LoginsFailed    uint64
	EventsRendered  uint64 // AMI events rendered (once each)
	EventsDelivered uint64 // AMI event copies queued to sessions
	BusDropped      uint64 // internal events lost between bus and dispatcher
	RenderPanics    uint64 // events whose rendering panicked (dropped)
}

// SlowConsumers counts the sessions cut off for falling behind: their
// queue overflowed or a write missed the write timeout.
func (s Stats) SlowConsumers() uint64 {
	return s.Closed[conn.ClosedSlowConsumer] + s.Closed[conn.ClosedWriteTimeout]
}

// Server serves AMI on the session kit: [New], [Server.Listen],
// [Server.Run]. Safe for concurrent use.
type Server struct {
	reg  *command.Registry
	bus  *event.Bus
	cfg  *Config
	opts Options
	log  *slog.Logger
	rend Renderer
	boot time.Time

	ctx    context.Context // actions run their commands in it; cancelled when Run returns
	cancel context.CancelFunc

	mu       sync.Mutex
	l        *conn.Listener
	ran      bool
	sessions map[*Session]struct{}
	sub      *event.Subscriber

	// dispatched is closed once the dispatcher has handed out what the
	// bus held when Run was told to stop.
	dispatched chan struct{}

	loginsOK, loginsFailed atomic.Uint64
	rendered, delivered    atomic.Uint64
	renderPanics           atomic.Uint64
	renderStackLogged      atomic.Bool
}

// New returns a server for cfg serving reg's commands and bus's events.
// It binds and starts nothing.
func New(reg *command.Registry, bus *event.Bus, cfg *Config, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Version == "" {
		opts.Version = "9.0.0"
	}
	if opts.QueueMessages <= 0 {
		opts.QueueMessages = DefaultQueueMessages
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = DefaultQueueBytes
	}
	if opts.FailDelay == 0 {
		opts.FailDelay = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		reg: reg, bus: bus, cfg: cfg, opts: opts, log: opts.Logger,
		rend: Renderer{Timestamp: cfg.TimestampEvents}, boot: time.Now(),
		ctx: ctx, cancel: cancel,
		sessions:   make(map[*Session]struct{}),
		dispatched: make(chan struct{}),
	}
}

// Listen binds cfg's bindaddr:port, so that a bind error surfaces at
// start.
func (s *Server) Listen() error {
	l, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return fmt.Errorf("ami: %w", err)
	}
	x := conn.New(l, s.cfg.Limits(), conn.Options{Name: "ami", Logger: s.log})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l != nil {
		x.Close()
		return errors.New("ami: already listening")
	}
	s.l = x
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		return nil
	}
	return s.l.Addr()
}

// Close releases what Listen bound, for a server discarded before Run.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		return nil
	}
	return s.l.Close()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	l, sub := s.l, s.sub
	s.mu.Unlock()
	st := Stats{
		LoginsOK: s.loginsOK.Load(), LoginsFailed: s.loginsFailed.Load(),
		EventsRendered: s.rendered.Load(), EventsDelivered: s.delivered.Load(),
		RenderPanics: s.renderPanics.Load(),
	}
	if l != nil {
		st.Stats = l.Stats()
	}
	if sub != nil {
		st.BusDropped = sub.Dropped()
	}
	return st
}

// Run subscribes to the bus, dispatches events and serves the bound
// listener until ctx is done. Then it stops accepting, lets the
// dispatcher hand out what the bus still holds, gives every session the
// time to write its queue (the listener's drain) and returns. It returns
// [ErrServerClosed] when Listen was not called, or Run was called before.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	l, ran := s.l, s.ran
	s.ran = true
	if l != nil && !ran && s.bus != nil {
		s.sub = s.bus.Subscribe(busQueue)
	}
	sub := s.sub
	s.mu.Unlock()
	if l == nil || ran {
		return ErrServerClosed
	}
	defer s.cancel()
	stop := make(chan struct{})
	if sub != nil {
		go s.dispatch(sub, stop)
	} else {
		close(s.dispatched)
	}
	stopDispatch := context.AfterFunc(ctx, func() { close(stop) })
	err := l.Serve(ctx, s.handle)
	if stopDispatch() { // Serve failed on its own: stop the dispatcher too
		close(stop)
	}
	<-s.dispatched
	if sub != nil {
		sub.Close()
	}
	return err
}

// dispatch renders each bus event once and queues the bytes to every
// logged-in session whose read mask and filters let it through. Once stop
// is closed it hands out what the bus already holds and returns.
func (s *Server) dispatch(sub *event.Subscriber, stop <-chan struct{}) {
	defer close(s.dispatched)
	var out []Rendered
	var targets []*Session
	for {
		var e *event.Event
		select {
		case e = <-sub.C():
		case <-stop:
			select { // drain what is already queued, then stop
			case e = <-sub.C():
			default:
				return
			}
		}
		out, targets = s.deliver(e, out[:0], targets[:0])
	}
}

// deliver renders e and queues it to the sessions that want it. A panic
// while rendering or filtering is contained: the event is dropped, the
// panic counted and logged (its stack once), and the dispatcher, with the
// capture path behind it, goes on.
func (s *Server) deliver(e *event.Event, out []Rendered, targets []*Session) ([]Rendered, []*Session) {
	defer func() {
		if v := recover(); v != nil {
			n := s.renderPanics.Add(1)
			if !s.renderStackLogged.Swap(true) {
				s.log.Error("AMI event rendering panicked", "event", e.Kind.String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			} else {
				s.log.Error("AMI event rendering panicked", "event", e.Kind.String(), "panic", fmt.Sprint(v), "panics", n)
			}
		}
	}()
	out = s.rend.Render(out, e)
	if len(out) == 0 {
		return out, targets
	}
	s.rendered.Add(uint64(len(out)))
	targets = s.listening(targets)
	for i := range out {
		s.Broadcast(&out[i], targets)
	}
	return out, targets
}

// waitDispatched waits, at most d, for the dispatcher to finish handing
// out the bus's backlog after a stop.
func (s *Server) waitDispatched(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.dispatched:
	case <-t.C:
	}
}

// listening appends the sessions that receive events.
func (s *Server) listening(dst []*Session) []*Session {
	s.mu.Lock()
	for x := range s.sessions {
		if x.mask.Load() != 0 {
			dst = append(dst, x)
		}
	}
	s.mu.Unlock()
	return dst
}

// Broadcast queues r to every session in targets (all logged-in sessions
// when targets is nil) that may read it. It never blocks.
func (s *Server) Broadcast(r *Rendered, targets []*Session) {
	if targets == nil {
		targets = s.listening(nil)
	}
	for _, x := range targets {
		if Perm(x.mask.Load())&r.Perm != r.Perm {
			continue
		}
		if !x.pass(r) {
			continue
		}
		if x.sendEvent(r.Bytes) {
			s.delivered.Add(1)
		}
	}
}

// Perm is an alias kept short for masks stored in atomics.
type Perm = command.Perm

// handle serves one connection for the kit: the session's reader runs
// here, its writer on a goroutine of its own.
func (s *Server) handle(ctx context.Context, c *conn.Conn) {
	x := newSession(s, c, ctx)
	s.mu.Lock()
	s.sessions[x] = struct{}{}
	s.mu.Unlock()
	go x.out.Run()
	returned := false
	defer func() {
		s.mu.Lock()
		delete(s.sessions, x)
		s.mu.Unlock()
		if !returned {
			// A panic is on its way to the kit, which logs its stack
			// once, counts it and closes the session with ClosedPanic;
			// first answer the action it interrupted.
			x.internalError()
		}
		x.logClosed()
	}()
	x.serve()
	returned = true
}
