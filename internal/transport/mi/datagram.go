package mi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// MaxDatagram is mi_datagram's buffer size: the largest request and reply
// (bytes). A larger reply is replaced by the text "500 Internal error".
const MaxDatagram = 65457

// datagramReplyTimeout is mi_datagram's socket_timeout for one reply.
const datagramReplyTimeout = 2 * time.Second

// ParseDatagramAddr splits an mi_datagram value into a network and an
// address: "udp:IP:PORT" (IPv6 with or without brackets) gives "udp",
// "unix:PATH" or an absolute "PATH" gives "unixgram".
func ParseDatagramAddr(v string) (network, addr string, err error) {
	if rest, ok := strings.CutPrefix(v, "udp:"); ok {
		if ap, err := netip.ParseAddrPort(rest); err == nil {
			return "udp", ap.String(), nil
		}
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return "", "", fmt.Errorf("mi: bad datagram address %q", v)
		}
		a, err := netip.ParseAddr(rest[:i])
		if err != nil {
			return "", "", fmt.Errorf("mi: bad datagram address %q", v)
		}
		return "udp", net.JoinHostPort(a.String(), rest[i+1:]), nil
	}
	p := strings.TrimPrefix(v, "unix:")
	if !strings.HasPrefix(p, "/") {
		return "", "", fmt.Errorf("mi: bad datagram address %q (want udp:IP:PORT, unix:PATH or /PATH)", v)
	}
	return "unixgram", p, nil
}

// DatagramConfig configures a [Datagram] listener.
type DatagramConfig struct {
	ReadOnly bool
	// AllowRemoteAmplification lets replies larger than their request go
	// to non-loopback UDP senders (off: such replies are dropped, so a
	// spoofed source cannot be flooded).
	AllowRemoteAmplification bool
	Logger                   *slog.Logger
}

// Datagram is the MI datagram listener over UDP or a unix datagram
// socket: one bare JSON-RPC request per datagram, the reply sent to the
// datagram's source. Invalid JSON is answered with the text
// "400 Parse_error" as OpenSIPS does. Create it with [NewDatagram], bind
// with [Datagram.Listen], serve with [Datagram.Run].
type Datagram struct {
	spec    string
	pc      net.PacketConn
	d       *Dispatcher
	cfg     DatagramConfig
	dropped atomic.Uint64
	once    sync.Once
	workers *conn.Workers
	warn    conn.Throttle
}

// NewDatagram returns the listener for an mi_datagram address (see
// [ParseDatagramAddr]) over d. It binds nothing.
func NewDatagram(d *Dispatcher, spec string, cfg DatagramConfig) *Datagram {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Datagram{spec: spec, d: d, cfg: cfg, workers: conn.NewWorkers("mi datagram", fifoWorkers, cfg.Logger)}
}

// Listen binds the address. A unix socket gets mode 0600, is never bound
// over another service's socket (a stale one is replaced) and is removed
// on Close.
func (x *Datagram) Listen() error {
	network, addr, err := ParseDatagramAddr(x.spec)
	if err != nil {
		return err
	}
	var pc net.PacketConn
	if network == "unixgram" {
		pc, err = conn.ListenUnixgram(addr)
	} else {
		pc, err = net.ListenPacket(network, addr)
	}
	if err != nil {
		return fmt.Errorf("mi: %w", err)
	}
	x.pc = pc
	return nil
}

// Addr returns the bound address (nil before Listen).
func (x *Datagram) Addr() net.Addr {
	if x.pc == nil {
		return nil
	}
	return x.pc.LocalAddr()
}

// Dropped counts replies withheld by the amplification rule.
func (x *Datagram) Dropped() uint64 { return x.dropped.Load() }

// Close closes the socket Listen bound (and removes a unix socket file
// it created). Safe to call more than once.
func (x *Datagram) Close() error {
	if x.pc == nil {
		return nil
	}
	x.once.Do(func() { x.pc.Close() })
	return nil
}

// Panics counts the requests whose command panicked.
func (x *Datagram) Panics() uint64 { return x.workers.Panics() }

// Run serves until ctx is done, then waits for the requests in flight.
// Requests run on a bounded pool of workers; one that panics is answered
// with JSON-RPC's internal error.
func (x *Datagram) Run(ctx context.Context) error {
	if x.pc == nil {
		return errors.New("mi: datagram Run before Listen")
	}
	return serveUntil(ctx, x.Close, x.workers, func() error { return x.read(ctx) })
}

// read hands each datagram to the workers until a read fails (Close, when
// ctx is done).
func (x *Datagram) read(ctx context.Context) error {
	perm := ListenerPerm(x.cfg.ReadOnly)
	buf := make([]byte, MaxDatagram+1)
	for {
		n, from, err := x.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("mi: datagram read: %w", err)
		}
		req := append([]byte(nil), buf[:n]...)
		x.workers.Go(func() { x.handle(ctx, req, from, perm) }, func() { x.reply(internalErrorReply, len(req), from) })
	}
}

func (x *Datagram) handle(ctx context.Context, req []byte, from net.Addr, perm command.Perm) {
	var reply []byte
	if len(req) > MaxDatagram {
		reply = []byte("400 Request too large")
	} else {
		var code int
		reply, code = x.d.Serve(ctx, req, perm, "mi-datagram")
		switch {
		case code == CodeParseError:
			reply = []byte("400 Parse_error")
		case len(reply) > MaxDatagram:
			reply = []byte("500 Internal error")
		}
	}
	if reply == nil {
		return // a notification
	}
	x.reply(reply, len(req), from)
}

// reply sends reply to from, unless there is nowhere to send it or the
// amplification rule withholds it.
func (x *Datagram) reply(reply []byte, reqLen int, from net.Addr) {
	if from == nil || from.String() == "" || from.String() == "@" {
		return // an unbound unix client: nowhere to reply
	}
	if !ReplyAllowed(from, reqLen, len(reply), x.cfg.AllowRemoteAmplification) {
		x.dropped.Add(1)
		if ok, n := x.warn.Allow(time.Now()); ok {
			x.cfg.Logger.Warn("reply to non-loopback sender withheld (larger than request)", "from", from.String(), "request", reqLen, "reply", len(reply), "repeated", n)
		}
		return
	}
	x.pc.SetWriteDeadline(time.Now().Add(datagramReplyTimeout))
	if _, err := x.pc.WriteTo(reply, from); err != nil {
		x.cfg.Logger.Debug("reply not sent", "to", from.String(), "err", err)
	}
}

// ReplyAllowed is the amplification rule: unix senders and loopback UDP
// senders always get their reply; another UDP sender only when the reply
// is no larger than its request, unless allowRemote.
func ReplyAllowed(from net.Addr, reqLen, replyLen int, allowRemote bool) bool {
	ua, ok := from.(*net.UDPAddr)
	if !ok || allowRemote || replyLen <= reqLen {
		return true
	}
	a, ok := netip.AddrFromSlice(ua.IP)
	return ok && a.Unmap().IsLoopback()
}
