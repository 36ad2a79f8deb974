package ami

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/event"
)

// Queue bounds of a session's outbound queue.
const (
	DefaultQueueMessages = 8192
	DefaultQueueBytes    = 8 << 20
	busQueue             = 1 << 16 // events buffered between the bus and the dispatcher
)

// Calls lists the calls in progress for CoreShowChannels and Status; the
// sensor implements it. Each event describes one call (the Quality shape:
// identity, State "calling"/"ringing"/"answered", Duration, Streams).
type Calls interface {
	InProgress() []*event.Event
}

// Options tune a [Server] beyond the manager.conf file.
type Options struct {
	Logger *slog.Logger
	// Calls serves CoreShowChannels and Status; nil lists nothing.
	Calls Calls
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

// Stats are the server's counters.
type Stats struct {
	Sessions        int    // open sessions
	Accepted        uint64 // connections accepted
	Rejected        uint64 // closed before the banner (authlimit)
	LoginsOK        uint64
	LoginsFailed    uint64
	SlowConsumers   uint64 // sessions cut off: queue full or write deadline
	EventsRendered  uint64 // AMI events rendered (once each)
	EventsDelivered uint64 // AMI event copies queued to sessions
	BusDropped      uint64 // internal events lost between bus and dispatcher
}

// Server is the AMI listener's state. Safe for concurrent use.
type Server struct {
	reg  *command.Registry
	bus  *event.Bus
	cfg  *Config
	opts Options
	log  *slog.Logger
	rend Renderer
	boot time.Time

	mu       sync.Mutex
	sessions map[*Session]struct{}
	unauth   int
	closed   bool
	ls       []net.Listener

	accepted, rejected, loginsOK, loginsFailed atomic.Uint64
	slow, rendered, delivered                  atomic.Uint64
	sub                                        *event.Subscriber
}

// New returns a server for cfg serving reg's commands and bus's events.
// It starts nothing.
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
	return &Server{
		reg: reg, bus: bus, cfg: cfg, opts: opts, log: opts.Logger,
		rend: Renderer{Timestamp: cfg.TimestampEvents}, boot: time.Now(),
		sessions: make(map[*Session]struct{}),
	}
}

// Listen binds cfg's bindaddr:port.
func (s *Server) Listen() (net.Listener, error) {
	return net.Listen("tcp", s.cfg.Addr())
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	st := Stats{
		Sessions: n, Accepted: s.accepted.Load(), Rejected: s.rejected.Load(),
		LoginsOK: s.loginsOK.Load(), LoginsFailed: s.loginsFailed.Load(),
		SlowConsumers: s.slow.Load(), EventsRendered: s.rendered.Load(), EventsDelivered: s.delivered.Load(),
	}
	if s.sub != nil {
		st.BusDropped = s.sub.Dropped()
	}
	return st
}

// Run subscribes to the bus, dispatches events and serves l until ctx is
// done; then it closes l and every session.
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	if s.bus != nil && s.sub == nil {
		s.sub = s.bus.Subscribe(busQueue)
	}
	sub := s.sub
	s.mu.Unlock()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	if sub != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.dispatch(sub, stop)
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Stop accepting, let the dispatcher render what the bus still holds,
	// then give every session a moment to write its queue.
	s.mu.Lock()
	s.closed = true
	ls := s.ls
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	close(stop)
	wg.Wait()
	if sub != nil {
		sub.Close()
	}
	s.drainSessions()
	s.Shutdown()
	if errors.Is(err, ErrServerClosed) {
		err = nil
	}
	return err
}

// drainSessions flushes every session's queue (each bounded by the write
// deadline, all at most 2 s) and closes them.
func (s *Server) drainSessions() {
	s.mu.Lock()
	var ss []*Session
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, x := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.flushAndClose("server shutdown")
		}()
	}
	wg.Wait()
}

// Serve accepts connections on l until Shutdown. It returns
// [ErrServerClosed] after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.ls = append(s.ls, l)
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed || s.unauth >= s.cfg.AuthLimit {
			s.mu.Unlock()
			s.rejected.Add(1)
			c.Close() // before the banner, as Asterisk does
			continue
		}
		s.unauth++
		sess := newSession(s, c)
		s.sessions[sess] = struct{}{}
		s.mu.Unlock()
		go sess.serve()
	}
}

// Shutdown closes the listeners and every session.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.closed = true
	ls := s.ls
	var ss []*Session
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, x := range ss {
		x.close("server shutdown")
	}
}

// dispatch renders each bus event once and queues the bytes to every
// logged-in session whose read mask and filters let it through.
func (s *Server) dispatch(sub *event.Subscriber, stop <-chan struct{}) {
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
		out = s.rend.Render(out[:0], e)
		if len(out) == 0 {
			continue
		}
		s.rendered.Add(uint64(len(out)))
		targets = s.listening(targets[:0])
		for i := range out {
			s.Broadcast(&out[i], targets)
		}
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
		if x.enqueue(r.Bytes, true) {
			s.delivered.Add(1)
		}
	}
}

// Perm is an alias kept short for masks stored in atomics.
type Perm = command.Perm

func (s *Server) forget(x *Session, wasAuthed bool) {
	s.mu.Lock()
	if _, ok := s.sessions[x]; ok {
		delete(s.sessions, x)
		if !wasAuthed {
			s.unauth--
		}
	}
	s.mu.Unlock()
}

func (s *Server) authed(x *Session) {
	s.mu.Lock()
	if _, ok := s.sessions[x]; ok {
		s.unauth--
	}
	s.mu.Unlock()
}
