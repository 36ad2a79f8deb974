package httpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Timeouts of the HTTP listeners. ReadHeader is the first-request deadline
// of the session kit for HTTP.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
	Drain                         time.Duration // Shutdown's bound
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.ReadHeader, 5*time.Second)
	def(&t.Read, 30*time.Second)
	def(&t.Write, 60*time.Second)
	def(&t.Idle, 60*time.Second)
	def(&t.Drain, 2*time.Second)
	return t
}

// ServerConfig configures a [Server].
type ServerConfig struct {
	// Name labels the listener's logs and prefixes its errors ("web",
	// "metrics", "mi http").
	Name string
	// Addr is the host:port Listen binds (":0" picks a port).
	Addr string
	// Handler serves every request; the browser guard ([Guard]) is the
	// handler's business, since each transport decides which paths are
	// API paths and which headers its refusals carry.
	Handler http.Handler
	// Limits are the session kit's caps on the listener. Its FirstRequest
	// is the time to a complete request header unless
	// Timeouts.ReadHeader says otherwise.
	Limits   conn.Limits
	Timeouts Timeouts
	// Logger receives the panics of handlers; nil means slog.Default().
	Logger *slog.Logger
	// Internal, when set, answers a request whose handler panicked with
	// the protocol's internal error; it must only be set for handlers
	// that write their reply in one piece at the end (nothing has been
	// written when they panic). Without it the connection is dropped
	// without an answer, as net/http does.
	Internal func(w http.ResponseWriter, r *http.Request)
}

// Server is the lifecycle every HTTP transport shares (the web console,
// the metrics endpoint, MI over HTTP), with the one surface of the
// transports: [NewServer] binds nothing, [Server.Listen] binds the address
// under the session kit ([conn.Listener.Limited]: its caps apply),
// [Server.Run] serves until its context is done and then shuts down,
// giving open requests Timeouts.Drain, and [Server.Close] releases a
// listener that never ran.
//
// A handler's panic is contained: the stack is logged once per server,
// the panic counted ([conn.Stats].Panics), and the request answered by
// ServerConfig.Internal or its connection dropped. Safe for concurrent
// use once Listen has returned.
type Server struct {
	cfg         ServerConfig
	log         *slog.Logger
	l           *conn.Listener
	panics      atomic.Uint64
	stackLogged atomic.Bool
}

// NewServer returns a server for cfg. It binds nothing.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeouts.ReadHeader <= 0 {
		cfg.Timeouts.ReadHeader = cfg.Limits.FirstRequest
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	return &Server{cfg: cfg, log: cfg.Logger}
}

// Listen binds cfg.Addr.
func (s *Server) Listen() error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	s.l = conn.New(l, s.cfg.Limits, conn.Options{Name: s.cfg.Name, Logger: s.log})
	return nil
}

// Addr returns the bound address (nil before Listen).
func (s *Server) Addr() net.Addr {
	if s.l == nil {
		return nil
	}
	return s.l.Addr()
}

// Close releases what Listen bound, for a server discarded before Run.
func (s *Server) Close() error {
	if s.l == nil {
		return nil
	}
	return s.l.Close()
}

// Stats returns the listener's counters, the handlers' panics included
// (zero before Listen).
func (s *Server) Stats() conn.Stats {
	var st conn.Stats
	if s.l != nil {
		st = s.l.Stats()
	}
	st.Panics += s.panics.Load()
	return st
}

// Run serves until ctx is done, then shuts down, giving open requests
// Timeouts.Drain. It returns nil after a shutdown, or the error that
// stopped the listener.
func (s *Server) Run(ctx context.Context) error {
	if s.l == nil {
		return fmt.Errorf("%s: Run before Listen", s.cfg.Name)
	}
	t := s.cfg.Timeouts
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(s.l.Limited()) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), t.Drain)
	defer cancel()
	hs.Shutdown(sctx)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveHTTP runs the handler with its panic contained.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v) // a deliberate abort, not a bug
		}
		n := s.panics.Add(1)
		if !s.stackLogged.Swap(true) {
			s.log.Error("request panicked", "listener", s.cfg.Name, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		} else {
			s.log.Error("request panicked", "listener", s.cfg.Name, "path", r.URL.Path, "panic", fmt.Sprint(v), "panics", n)
		}
		if s.cfg.Internal == nil {
			panic(http.ErrAbortHandler) // net/http drops the connection, logging nothing
		}
		s.cfg.Internal(w, r)
	}()
	s.cfg.Handler.ServeHTTP(w, r)
}
