package conn

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Outbox is a session's bounded outbound queue with its single writer
// (NATS' queueOutbound and writeLoop): producers never wait for the
// client. Messages are queued whole; the writer sends what is queued with
// one writev per batch, each under the write deadline. A message that
// would take the queue over its bounds, or a write that misses its
// deadline, closes the session as a slow consumer.
//
// Safe for concurrent use. Create it with [NewOutbox] and run [Outbox.Run]
// on its own goroutine.
type Outbox struct {
	c                  *Conn
	maxMsgs, maxBytes  int
	mu                 sync.Mutex
	queue              [][]byte
	bytes              int
	writeTimeout       time.Duration
	finishing, stopped bool
	finish             ClosedState // close with this once the queue is empty
	wake               chan struct{}
	done               chan struct{}
	sent               chan struct{} // a message was queued (for waiters such as AMI's WaitEvent)
}

// NewOutbox returns a queue writing to c, bounded to maxMsgs messages and
// maxBytes bytes, each write bounded by writeTimeout.
func NewOutbox(c *Conn, maxMsgs, maxBytes int, writeTimeout time.Duration) *Outbox {
	return &Outbox{
		c: c, maxMsgs: maxMsgs, maxBytes: maxBytes, writeTimeout: writeTimeout,
		wake: make(chan struct{}, 1), done: make(chan struct{}), sent: make(chan struct{}, 1),
	}
}

// SetWriteTimeout changes the write deadline (a per-user setting known
// after login).
func (o *Outbox) SetWriteTimeout(d time.Duration) {
	o.mu.Lock()
	o.writeTimeout = d
	o.mu.Unlock()
}

// Send queues b, which must not be modified afterwards. It reports whether
// b was queued: false once the session is closed, and when b would take
// the queue over its bounds, which closes the session as
// [ClosedSlowConsumer].
func (o *Outbox) Send(b []byte) bool {
	o.mu.Lock()
	if o.stopped || o.finishing || o.c.Closed() {
		o.mu.Unlock()
		return false
	}
	if len(o.queue) >= o.maxMsgs || o.bytes+len(b) > o.maxBytes {
		o.stopped = true
		o.queue = nil
		o.mu.Unlock()
		o.c.Close(ClosedSlowConsumer)
		o.kick()
		return false
	}
	o.queue = append(o.queue, b)
	o.bytes += len(b)
	o.mu.Unlock()
	o.kick()
	select {
	case o.sent <- struct{}{}:
	default:
	}
	return true
}

// Sent is signalled (without blocking, at most one pending) each time a
// message is queued.
func (o *Outbox) Sent() <-chan struct{} { return o.sent }

// Done is closed when the writer has stopped.
func (o *Outbox) Done() <-chan struct{} { return o.done }

func (o *Outbox) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Finish stops accepting messages, lets the writer send what is queued
// and then close the session with reason, and waits for it at most
// bound; after that the session is closed anyway.
func (o *Outbox) Finish(reason ClosedState, bound time.Duration) {
	o.mu.Lock()
	if !o.finishing {
		o.finishing = true
		o.finish = reason
	}
	o.mu.Unlock()
	o.kick()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
		o.c.Close(reason)
	}
}

// Run is the writer loop; it returns when the session is closed (by the
// writer itself after [Outbox.Finish], on a write error, or by anyone).
func (o *Outbox) Run() {
	defer close(o.done)
	var bufs net.Buffers
	for {
		select {
		case <-o.wake:
		case <-o.c.Done():
			return
		}
		for {
			if o.c.Closed() {
				return
			}
			o.mu.Lock()
			if len(o.queue) == 0 {
				finishing, reason := o.finishing, o.finish
				o.mu.Unlock()
				if finishing {
					o.c.Close(reason)
					return
				}
				break
			}
			batch := o.queue
			o.queue = make([][]byte, 0, min(len(batch), 64))
			o.bytes = 0
			timeout := o.writeTimeout
			o.mu.Unlock()
			o.c.SetWriteDeadline(time.Now().Add(timeout))
			bufs = append(bufs[:0], batch...)
			if _, err := bufs.WriteTo(o.c.Conn); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					o.c.Close(ClosedWriteTimeout)
				} else {
					o.c.Close(ClosedWriteError)
				}
				return
			}
		}
	}
}
