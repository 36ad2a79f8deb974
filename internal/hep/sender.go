package hep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// Sender defaults, for the zero values of [SenderConfig].
const (
	DefaultQueueBytes   = 16 << 20 // bytes of encoded packets waiting
	DefaultQueuePackets = 65536
	DefaultMaxBackoff   = 30 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	minBackoff          = 100 * time.Millisecond
	udpBatch            = 64 // datagrams per sendmmsg
)

// SenderConfig configures a [Sender].
type SenderConfig struct {
	// Network is "udp" (default) or "tcp".
	Network string
	// Addr is the collector's host:port.
	Addr string
	// CaptureID and Password go into every packet (chunks 0x000c and
	// 0x000e; no key chunk when Password is empty).
	CaptureID uint32
	Password  string
	// QueueBytes and QueuePackets bound the packets waiting to be written
	// (defaults DefaultQueueBytes, DefaultQueuePackets): a packet that
	// does not fit is dropped and counted.
	QueueBytes   int
	QueuePackets int
	// MaxBackoff caps the wait between connection attempts (default
	// DefaultMaxBackoff); the first retry waits 100 ms, doubling.
	MaxBackoff time.Duration
	// WriteTimeout bounds one write, and the dial (default
	// DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// SenderStats are a [Sender]'s counters.
type SenderStats struct {
	Queued     int    // packets waiting now
	Sent       uint64 // packets written to the socket
	Bytes      uint64 // bytes of those packets
	Dropped    uint64 // packets refused because the queue was full (or too large to encode)
	Failed     uint64 // packets lost in failed writes (some may have reached the peer on TCP)
	Connected  bool   // a connection is up (UDP: the socket is open)
	Reconnects uint64 // connections (re)established after the first
}

// Sender mirrors packets to a HEP collector. [Sender.Send] encodes a
// packet into a bounded in-memory queue and returns at once; the goroutine
// of [Sender.Run] writes the queue in batches (one TCP write, or one
// sendmmsg per 64 UDP datagrams) and, on TCP, reconnects with exponential
// backoff, keeping what is queued meanwhile. Safe for concurrent use.
type Sender struct {
	cfg  SenderConfig
	log  *slog.Logger
	key  []byte
	wake chan struct{} // capacity 1: the queue is not empty

	mu      sync.Mutex
	pend    []byte // encoded packets back to back
	ends    []int  // end offset of each packet in pend
	dropped uint64 // guarded by mu

	sent, bytes, failed, reconnects atomic.Uint64
	connected                       atomic.Bool

	// The writer's own state (Run's goroutine only).
	spare     []byte
	spareEnds []int
	msgs      []ipv4.Message
	pc        *ipv4.PacketConn // the UDP connection's batch writer
}

// NewSender checks cfg and returns a sender; it connects nothing yet.
func NewSender(cfg SenderConfig) (*Sender, error) {
	switch cfg.Network {
	case "":
		cfg.Network = "udp"
	case "udp", "tcp":
	default:
		return nil, fmt.Errorf("hep: network %q: want udp or tcp", cfg.Network)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("hep: collector address %q: %w", cfg.Addr, err)
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.QueuePackets <= 0 {
		cfg.QueuePackets = DefaultQueuePackets
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sender{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
	if cfg.Password != "" {
		s.key = []byte(cfg.Password)
	}
	return s, nil
}

// Send queues p, encoded as HEPv3 with the sender's capture id and key
// (p's own CaptureID and AuthKey are ignored; p is not modified). It never
// blocks and does no I/O: when the queue is full the packet is dropped and
// counted, and Send returns false. p is not retained. Once the queue has
// grown to its working size Send allocates nothing.
func (s *Sender) Send(p *Packet) bool {
	q := *p
	q.CaptureID, q.AuthKey = s.cfg.CaptureID, s.key
	n := q.MarshalSize()
	s.mu.Lock()
	if n > MaxPacketSize || len(s.pend)+n > s.cfg.QueueBytes || len(s.ends) >= s.cfg.QueuePackets {
		s.dropped++
		s.mu.Unlock()
		return false
	}
	off := len(s.pend)
	if cap(s.pend)-off < n {
		s.pend = append(s.pend, make([]byte, n)...)
	} else {
		s.pend = s.pend[:off+n]
	}
	q.MarshalTo(s.pend[off:]) // cannot fail: size checked, buffer sized
	s.ends = append(s.ends, off+n)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// Stats returns the counters.
func (s *Sender) Stats() SenderStats {
	s.mu.Lock()
	queued, dropped := len(s.ends), s.dropped
	s.mu.Unlock()
	return SenderStats{
		Queued: queued, Sent: s.sent.Load(), Bytes: s.bytes.Load(), Dropped: dropped, Failed: s.failed.Load(),
		Connected: s.connected.Load(), Reconnects: s.reconnects.Load(),
	}
}

// Run connects and writes the queue until ctx is done; then it writes
// what is still queued (one attempt, bounded by WriteTimeout), closes the
// connection and logs its counters. It returns nil.
func (s *Sender) Run(ctx context.Context) error {
	var (
		conn    net.Conn
		backoff time.Duration
		retry   <-chan time.Time
		timer   *time.Timer
		dials   int
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	connect := func() {
		c, err := net.DialTimeout(s.cfg.Network, s.cfg.Addr, s.cfg.WriteTimeout)
		if err != nil {
			backoff = min(max(2*backoff, minBackoff), s.cfg.MaxBackoff)
			if backoff == minBackoff || backoff == s.cfg.MaxBackoff {
				s.log.Warn("hep collector unreachable, retrying", "addr", s.cfg.Addr, "network", s.cfg.Network, "err", err, "backoff", backoff)
			}
			if timer == nil {
				timer = time.NewTimer(backoff)
			} else {
				timer.Reset(backoff)
			}
			retry = timer.C
			return
		}
		if dials++; dials > 1 {
			s.reconnects.Add(1)
		}
		s.log.Info("hep sender connected", "addr", s.cfg.Addr, "network", s.cfg.Network)
		backoff, retry, conn, s.pc = 0, nil, c, nil
		if u, ok := c.(*net.UDPConn); ok {
			s.pc = ipv4.NewPacketConn(u)
		}
		s.connected.Store(true)
	}
	disconnect := func(err error) {
		s.log.Warn("hep write failed, reconnecting", "addr", s.cfg.Addr, "network", s.cfg.Network, "err", err)
		conn.Close()
		conn = nil
		s.connected.Store(false)
		connect()
	}
	connect()
	for {
		select {
		case <-ctx.Done():
			if conn == nil && retry == nil {
				connect()
			}
			if conn != nil {
				if err := s.flush(conn); err != nil {
					s.log.Warn("hep final write failed", "addr", s.cfg.Addr, "err", err)
				}
				conn.Close()
				s.connected.Store(false)
			}
			st := s.Stats()
			s.log.Info("hep sender stopped", "addr", s.cfg.Addr, "sent", st.Sent, "dropped", st.Dropped, "failed", st.Failed, "queued", st.Queued)
			return nil
		case <-retry:
			retry = nil
			connect()
			if conn == nil {
				continue
			}
		case <-s.wake:
			if conn == nil {
				continue // kept queued until the connection is back
			}
		}
		if err := s.flush(conn); err != nil && s.cfg.Network == "tcp" {
			disconnect(err)
		}
	}
}

// flush writes everything queued now. A UDP error loses the datagram it
// hit and the writing goes on; a TCP error loses the batch and is returned.
func (s *Sender) flush(conn net.Conn) error {
	s.mu.Lock()
	batch, ends := s.pend, s.ends
	s.pend, s.ends = s.spare[:0], s.spareEnds[:0]
	s.mu.Unlock()
	defer func() { s.spare, s.spareEnds = batch[:0], ends[:0] }()
	if len(ends) == 0 {
		return nil
	}
	conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if s.cfg.Network == "tcp" {
		if _, err := conn.Write(batch); err != nil {
			s.failed.Add(uint64(len(ends)))
			return err
		}
		s.sent.Add(uint64(len(ends)))
		s.bytes.Add(uint64(len(batch)))
		return nil
	}
	return s.writeUDP(batch, ends)
}

// writeUDP sends each packet of batch as one datagram, udpBatch at a time
// (sendmmsg on Linux).
func (s *Sender) writeUDP(batch []byte, ends []int) error {
	if s.msgs == nil {
		s.msgs = make([]ipv4.Message, udpBatch)
		for i := range s.msgs {
			s.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	var lastErr error
	start := 0
	for i := 0; i < len(ends); {
		k := 0
		for ; k < udpBatch && i+k < len(ends); k++ {
			s.msgs[k].Buffers[0] = batch[start:ends[i+k]]
			start = ends[i+k]
		}
		ms := s.msgs[:k]
		for len(ms) > 0 {
			n, err := s.pc.WriteBatch(ms, 0)
			for _, m := range ms[:n] {
				s.bytes.Add(uint64(len(m.Buffers[0])))
			}
			s.sent.Add(uint64(n))
			ms = ms[n:]
			if err == nil && n == 0 {
				err = errors.New("hep: sendmmsg wrote nothing")
			}
			if err != nil && len(ms) > 0 {
				// The datagram at the head failed (ECONNREFUSED after
				// an ICMP unreachable, ENOBUFS): count it and go on.
				s.failed.Add(1)
				lastErr = err
				ms = ms[1:]
				if errors.Is(err, net.ErrClosed) {
					s.failed.Add(uint64(len(ms)))
					return err
				}
			}
		}
		i += k
	}
	return lastErr
}
