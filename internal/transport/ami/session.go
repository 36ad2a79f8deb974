package ami

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Session is one client connection. Actions run on its reader (the kit's
// handler goroutine), in order; the session's [conn.Outbox] writes
// everything it sends, from one goroutine, under the write timeout.
type Session struct {
	srv *Server
	c   *conn.Conn
	out *conn.Outbox
	ctx context.Context // cancelled when the listener shuts down

	mask   atomic.Uint32 // event classes; 0 before login or with Events: off
	authOK atomic.Bool

	// Set by the reader only.
	user      *User
	challenge string
	write     Perm
	loggedOff bool
	// The action being run, answered with an error if it panics.
	curID    string
	curHasID bool

	fmu     sync.RWMutex
	filters []*Filter

	evWake chan struct{} // WaitEvent: an event was queued
}

func newSession(s *Server, c *conn.Conn, ctx context.Context) *Session {
	return &Session{
		srv: s, c: c, ctx: ctx,
		out:    conn.NewOutbox(c, s.opts.QueueMessages, s.opts.QueueBytes, s.cfg.WriteTimeout),
		evWake: make(chan struct{}, 1),
	}
}

func (x *Session) pass(r *Rendered) bool {
	x.fmu.RLock()
	defer x.fmu.RUnlock()
	return passFilters(x.filters, r.Name, r.Bytes)
}

// send queues one whole message; a message that overflows the queue closes
// the session as a slow consumer. It reports whether b was queued.
func (x *Session) send(b []byte) bool { return x.out.Send(b) }

// sendEvent queues an event and wakes a WaitEvent.
func (x *Session) sendEvent(b []byte) bool {
	if !x.out.Send(b) {
		return false
	}
	select {
	case x.evWake <- struct{}{}:
	default:
	}
	return true
}

// finish lets the writer send what is queued, then closes the session
// with reason (at the latest after drainLimit).
func (x *Session) finish(reason conn.ClosedState) { x.out.Finish(reason, drainLimit) }

// serve writes the banner in one write and reads actions until the client
// leaves. Not logging in within authtimeout is the kit's first-request
// deadline: it closes the connection, which ends the read.
func (x *Session) serve() {
	x.send([]byte("Asterisk Call Manager/" + x.srv.opts.Version + "\r\n"))
	if x.srv.cfg.DisplayConnects {
		x.srv.log.Info("AMI connection", "remote", x.c.RemoteString())
	}
	var fr Framer
	buf := make([]byte, 4096)
	for {
		n, err := x.c.Read(buf)
		if n > 0 {
			stop := false
			fr.Feed(buf[:n], func(m *Message, ferr error) {
				if !stop && !x.handle(m, ferr) {
					stop = true
				}
			})
			if stop {
				return
			}
		}
		if err != nil {
			switch {
			case x.c.Closed():
				// Closed under the reader: authtimeout, slow consumer,
				// or the end of a drain; the reason is recorded.
			case x.c.Draining():
				// The server is stopping: deliver the events the bus
				// still held and what is queued, then close.
				x.srv.waitDispatched(dispatchWait)
				x.finish(conn.ClosedShutdown)
			case errors.Is(err, io.EOF):
				// The client shut its sending side: every action it sent
				// has run (actions run on this goroutine); deliver their
				// responses, bounded by the write timeout, then close.
				x.finish(conn.ClosedClient)
			default:
				x.c.Close(conn.ClosedReadError)
			}
			return
		}
	}
}

// internalError answers the action that panicked, "Internal error", and
// closes the session once that is written: its reader's state may be
// broken. The panic itself goes on to the kit.
func (x *Session) internalError() {
	w := &builder{}
	w.add("Response", "Error")
	w.addID(x.curID, x.curHasID)
	w.add("Message", "Internal error")
	w.end()
	x.send(w.b)
	x.finish(conn.ClosedPanic)
}

// logClosed logs the end of the session (a logoff only with
// displayconnects).
func (x *Session) logClosed() {
	if x.loggedOff && !x.srv.cfg.DisplayConnects {
		return
	}
	user := ""
	if x.user != nil && x.authOK.Load() {
		user = x.user.Name
	}
	reason := x.c.Reason().String()
	if x.loggedOff {
		reason = "logoff"
	}
	x.srv.log.Info("AMI session closed", "remote", x.c.RemoteString(), "user", user, "reason", reason)
}
