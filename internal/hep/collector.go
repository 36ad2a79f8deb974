package hep

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// Collector defaults, for the zero values of [CollectorConfig].
const (
	DefaultMaxConns   = 256
	DefaultReadBuffer = 8 << 20 // bytes of UDP socket receive buffer asked for
)

// CollectorConfig configures a [Collector].
type CollectorConfig struct {
	// Addr is the host:port bound for UDP and TCP both; port 0 picks a
	// free port (the same for both).
	Addr string
	// Password, when set, is the authentication key (chunk 0x000e) every
	// packet must carry; packets without it or with another are counted
	// as auth failures and dropped. HEPv1/v2 packets carry no key and are
	// then all refused.
	Password string
	// CaptureIDs, when not empty, are the only capture agent ids
	// accepted; packets of other agents are counted and dropped.
	CaptureIDs []uint32
	// MaxConns bounds the TCP connections served at once (default
	// DefaultMaxConns); more are closed on accept and counted.
	MaxConns int
	// ReadBuffer is the UDP socket receive buffer asked of the kernel
	// (default DefaultReadBuffer; without CAP_NET_ADMIN the kernel caps it
	// at net.core.rmem_max).
	ReadBuffer int
	// Handler receives every packet that parsed and passed the checks. It
	// is called from the collector's goroutines (one for UDP, one per TCP
	// connection), so it must be safe for concurrent use. p and its slices
	// are valid only until it returns. It reports whether it used the
	// packet (false: a type it ignores).
	Handler func(p *Packet) bool
	// Logger receives connection-level events; nil means slog.Default().
	Logger *slog.Logger
}

// CollectorStats are a [Collector]'s cumulative counters.
type CollectorStats struct {
	Received      uint64 // packets read (UDP datagrams, TCP frames)
	Bytes         uint64 // bytes of those packets
	Delivered     uint64 // packets the handler used
	Ignored       uint64 // packets the handler did not use (protocol types it does not analyse)
	Malformed     uint64 // packets that did not parse (Unmarshal's errors, broken TCP framing)
	BadChunks     uint64 // chunks of a wrong length skipped inside packets that parsed
	AuthFailures  uint64 // packets with a missing or wrong authentication key
	UnknownAgents uint64 // packets from a capture id not in CaptureIDs
	Conns         int    // TCP connections open now
	ConnsAccepted uint64 // TCP connections accepted
	ConnsRefused  uint64 // TCP connections closed over MaxConns
}

// Collector receives HEP packets on one address over UDP and TCP. Build it
// with [NewCollector], bind with [Collector.Listen], serve with
// [Collector.Run]. Safe for concurrent use.
type Collector struct {
	cfg  CollectorConfig
	log  *slog.Logger
	pass []byte
	ids  []uint32

	udp *net.UDPConn
	tcp *net.TCPListener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	once   sync.Once

	received, bytes, delivered, ignored       atomic.Uint64
	malformed, badChunks, authFail, unknownID atomic.Uint64
	accepted, refused                         atomic.Uint64
}

// NewCollector returns a collector for cfg; it binds nothing yet.
func NewCollector(cfg CollectorConfig) *Collector {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Collector{cfg: cfg, log: cfg.Logger, conns: map[net.Conn]struct{}{}, ids: slices.Clone(cfg.CaptureIDs)}
	if cfg.Password != "" {
		c.pass = []byte(cfg.Password)
	}
	return c
}

// Listen binds the TCP listener and the UDP socket on cfg.Addr. With port
// 0 the TCP port is chosen first and UDP binds the same number.
func (c *Collector) Listen() error {
	var lastErr error
	for range 5 { // port 0: the UDP port of the TCP one may be taken
		l, err := net.Listen("tcp", c.cfg.Addr)
		if err != nil {
			return fmt.Errorf("hep: listen tcp %s: %w", c.cfg.Addr, err)
		}
		tl := l.(*net.TCPListener)
		ua := &net.UDPAddr{IP: tl.Addr().(*net.TCPAddr).IP, Port: tl.Addr().(*net.TCPAddr).Port}
		u, err := net.ListenUDP("udp", ua)
		if err != nil {
			tl.Close()
			lastErr = fmt.Errorf("hep: listen udp %s: %w", ua, err)
			if _, port, _ := net.SplitHostPort(c.cfg.Addr); port == "0" {
				continue
			}
			return lastErr
		}
		setReadBuffer(u, c.cfg.ReadBuffer)
		c.udp, c.tcp = u, tl
		return nil
	}
	return lastErr
}

// UDPAddr returns the bound UDP address (nil before Listen).
func (c *Collector) UDPAddr() net.Addr {
	if c.udp == nil {
		return nil
	}
	return c.udp.LocalAddr()
}

// TCPAddr returns the bound TCP address (nil before Listen).
func (c *Collector) TCPAddr() net.Addr {
	if c.tcp == nil {
		return nil
	}
	return c.tcp.Addr()
}

// Run serves until ctx is done, then closes as [Collector.Close] does. It
// returns nil after a clean stop.
func (c *Collector) Run(ctx context.Context) error {
	if c.udp == nil {
		return errors.New("hep: Run before Listen")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.wg.Add(2)
	c.mu.Unlock()
	go c.serveUDP()
	go c.acceptTCP()
	<-ctx.Done()
	return c.Close()
}

// Close stops receiving: it closes the sockets and every connection and
// waits for the collector's goroutines, so the handler is not called
// after Close returns. It may be called more than once and without Run.
func (c *Collector) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		conns := make([]net.Conn, 0, len(c.conns))
		for cn := range c.conns {
			conns = append(conns, cn)
		}
		c.mu.Unlock()
		for _, cn := range conns {
			cn.Close()
		}
		if c.udp != nil {
			c.udp.Close()
		}
		if c.tcp != nil {
			c.tcp.Close()
		}
	})
	c.wg.Wait()
	return nil
}

// Stats returns the counters.
func (c *Collector) Stats() CollectorStats {
	c.mu.Lock()
	open := len(c.conns)
	c.mu.Unlock()
	return CollectorStats{
		Received: c.received.Load(), Bytes: c.bytes.Load(), Delivered: c.delivered.Load(), Ignored: c.ignored.Load(),
		Malformed: c.malformed.Load(), BadChunks: c.badChunks.Load(), AuthFailures: c.authFail.Load(),
		UnknownAgents: c.unknownID.Load(), Conns: open, ConnsAccepted: c.accepted.Load(), ConnsRefused: c.refused.Load(),
	}
}

// handle checks and delivers one packet read at now.
func (c *Collector) handle(p *Packet, b []byte, now time.Time) {
	c.received.Add(1)
	c.bytes.Add(uint64(len(b)))
	if err := p.Unmarshal(b); err != nil {
		c.malformed.Add(1)
		return
	}
	if p.BadChunks > 0 {
		c.badChunks.Add(uint64(p.BadChunks))
	}
	if c.pass != nil && subtle.ConstantTimeCompare(p.AuthKey, c.pass) != 1 {
		c.authFail.Add(1)
		return
	}
	if len(c.ids) > 0 && !slices.Contains(c.ids, p.CaptureID) {
		c.unknownID.Add(1)
		return
	}
	if p.Time.IsZero() {
		p.Time = now
	}
	if c.cfg.Handler != nil && c.cfg.Handler(p) {
		c.delivered.Add(1)
	} else {
		c.ignored.Add(1)
	}
}

// udpReadBatch is how many datagrams one recvmmsg may return.
const udpReadBatch = 16

// serveUDP reads datagrams, several per system call, until the socket is
// closed.
func (c *Collector) serveUDP() {
	defer c.wg.Done()
	pc := ipv4.NewPacketConn(c.udp)
	ms := make([]ipv4.Message, udpReadBatch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, MaxPacketSize+1)}
	}
	var p Packet
	for {
		n, err := pc.ReadBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (ICMP feedback) is not the end
		}
		now := time.Now()
		for _, m := range ms[:n] {
			c.handle(&p, m.Buffers[0][:m.N], now)
		}
	}
}

// acceptTCP accepts connections until the listener is closed.
func (c *Collector) acceptTCP() {
	defer c.wg.Done()
	for {
		cn, err := c.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and friends: do not spin
			continue
		}
		c.mu.Lock()
		if c.closed || len(c.conns) >= c.cfg.MaxConns {
			c.mu.Unlock()
			c.refused.Add(1)
			cn.Close()
			continue
		}
		c.conns[cn] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		c.accepted.Add(1)
		go c.serveConn(cn)
	}
}

// serveConn reads HEPv3 frames from one TCP connection until it ends or
// its framing breaks.
func (c *Collector) serveConn(cn net.Conn) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.conns, cn)
		c.mu.Unlock()
		cn.Close()
	}()
	sc := bufio.NewScanner(cn)
	sc.Buffer(make([]byte, 0, 64<<10), MaxPacketSize)
	sc.Split(SplitStream)
	var p Packet
	for sc.Scan() {
		c.handle(&p, sc.Bytes(), time.Now())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		if errors.Is(err, ErrNotHEP) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrBadLength) {
			c.malformed.Add(1)
		}
		c.log.Debug("hep connection closed", "remote", cn.RemoteAddr().String(), "err", err)
	}
}
