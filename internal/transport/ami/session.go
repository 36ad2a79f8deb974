package ami

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Session is one client connection. Actions run on its reader goroutine,
// in order; one writer goroutine drains its bounded queue.
type Session struct {
	srv    *Server
	conn   net.Conn
	remote netip.AddrPort

	mask atomic.Uint32 // event classes; 0 before login or with Events: off

	// Set by the reader only.
	user      *User
	challenge string
	write     Perm

	fmu     sync.RWMutex
	filters []*Filter

	qmu     sync.Mutex
	queue   [][]byte
	qbytes  int
	wake    chan struct{}
	closed  bool
	reason  string
	finish  string // close once the queue is drained
	done    chan struct{}
	evWake  chan struct{} // WaitEvent: an event was queued
	authOK  atomic.Bool
	closeMu sync.Once
}

func newSession(s *Server, c net.Conn) *Session {
	x := &Session{srv: s, conn: c, wake: make(chan struct{}, 1), done: make(chan struct{}), evWake: make(chan struct{}, 1)}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		x.remote = ap
	}
	return x
}

func (x *Session) pass(r *Rendered) bool {
	x.fmu.RLock()
	defer x.fmu.RUnlock()
	return passFilters(x.filters, r.Name, r.Bytes)
}

// enqueue adds b to the queue. An event that overflows the queue closes
// the session as a slow consumer. It reports whether b was queued.
func (x *Session) enqueue(b []byte, isEvent bool) bool {
	x.qmu.Lock()
	if x.closed {
		x.qmu.Unlock()
		return false
	}
	if len(x.queue) >= x.srv.opts.QueueMessages || x.qbytes+len(b) > x.srv.opts.QueueBytes {
		x.qmu.Unlock()
		x.slowConsumer("queue full")
		return false
	}
	x.queue = append(x.queue, b)
	x.qbytes += len(b)
	x.qmu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
	if isEvent {
		select {
		case x.evWake <- struct{}{}:
		default:
		}
	}
	return true
}

func (x *Session) slowConsumer(why string) {
	if x.close("slow consumer: " + why) {
		x.srv.slow.Add(1)
	}
}

// close shuts the session once and logs the reason; it reports whether
// this call closed it.
func (x *Session) close(reason string) bool {
	first := false
	x.closeMu.Do(func() {
		first = true
		x.qmu.Lock()
		x.closed = true
		x.reason = reason
		x.queue = nil
		x.qmu.Unlock()
		close(x.done)
		x.conn.Close()
		x.srv.forget(x, x.authOK.Load())
		lvl := x.srv.log.Info
		if x.srv.cfg.DisplayConnects || reason != "logoff" {
			user := ""
			if x.user != nil && x.authOK.Load() {
				user = x.user.Name
			}
			lvl("AMI session closed", "remote", x.remote.String(), "user", user, "reason", reason)
		}
	})
	return first
}

// writer drains the queue, one writev per batch of whole messages, each
// with the write deadline.
func (x *Session) writer() {
	timeout := x.srv.cfg.WriteTimeout
	var bufs net.Buffers
	for {
		select {
		case <-x.done:
			return
		case <-x.wake:
		}
		for {
			x.qmu.Lock()
			if x.closed || len(x.queue) == 0 {
				finish := x.finish
				x.qmu.Unlock()
				if finish != "" {
					x.close(finish)
					return
				}
				break
			}
			batch := x.queue
			x.queue = make([][]byte, 0, min(len(batch), 64))
			x.qbytes = 0
			x.qmu.Unlock()
			if x.user != nil && x.user.WriteTimeout > 0 {
				timeout = x.user.WriteTimeout
			}
			x.conn.SetWriteDeadline(time.Now().Add(timeout))
			bufs = append(bufs[:0], batch...)
			if _, err := bufs.WriteTo(x.conn); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					x.slowConsumer("write timeout")
				} else {
					x.close("write error")
				}
				return
			}
		}
	}
}

// serve writes the banner in one write and reads actions until the client
// leaves.
func (x *Session) serve() {
	go x.writer()
	x.enqueue([]byte("Asterisk Call Manager/"+x.srv.opts.Version+"\r\n"), false)
	if x.srv.cfg.DisplayConnects {
		x.srv.log.Info("AMI connection", "remote", x.remote.String())
	}
	x.conn.SetReadDeadline(time.Now().Add(x.srv.cfg.AuthTimeout))
	var fr Framer
	buf := make([]byte, 4096)
	for {
		n, err := x.conn.Read(buf)
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
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && !x.authOK.Load():
				x.close("authtimeout")
			case errors.Is(err, io.EOF):
				// The client shut its sending side: every action it sent
				// has run (actions run on this goroutine); deliver their
				// responses, bounded by the write timeout, then close.
				x.flushAndClose("client closed")
			default:
				x.close("client closed")
			}
			return
		}
	}
}

// flushAndClose asks the writer to send what is queued, then close. The
// writer cuts a client that does not read within the write timeout; as a
// last bound the session is closed after drainLimit whatever the writer is
// doing.
func (x *Session) flushAndClose(reason string) {
	x.qmu.Lock()
	x.finish = reason
	x.qmu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(drainLimit)
	defer t.Stop()
	select {
	case <-x.done:
	case <-t.C:
		x.close(reason)
	}
}

// drainLimit bounds how long a closing session may spend writing its queue.
const drainLimit = 2 * time.Second
