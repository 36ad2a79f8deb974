package httpauth

import (
	"context"
	"errors"
	"net"
	"net/http"
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

// Serve runs h on x (through [conn.Listener.Limited], so the kit's caps
// apply) until ctx is done, then shuts down, giving open requests
// t.Drain. net/http recovers a handler's panic (logging it) and closes
// that connection only.
func Serve(ctx context.Context, x *conn.Listener, h http.Handler, t Timeouts) error {
	t = t.withDefaults()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(x.Limited()) }()
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
