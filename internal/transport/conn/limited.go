package conn

import (
	"net"
	"net/netip"
	"sync"
)

// Limited returns x as a net.Listener for a server that owns its
// connections itself (net/http): Accept applies the listener's caps
// (sessions, per-address; every connection counts as unauthenticated,
// since HTTP authenticates requests, not connections) and closes the
// refused ones before a byte is written; closing an accepted connection
// frees its slot. Deadlines are the server's (http.Server's timeouts);
// Serve must not be called on x as well.
func (x *Listener) Limited() net.Listener { return limitedListener{x} }

type limitedListener struct{ x *Listener }

func (l limitedListener) Addr() net.Addr { return l.x.Addr() }
func (l limitedListener) Close() error   { return l.x.l.Close() }

func (l limitedListener) Accept() (net.Conn, error) {
	x := l.x
	for {
		nc, err := x.l.Accept()
		if err != nil {
			if isTemporary(err) {
				x.retries.Add(1) // net/http backs off itself
			}
			return nil, err
		}
		x.accepted.Add(1)
		var remote netip.AddrPort
		if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
			remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		x.mu.Lock()
		refuse := ClosedNone
		switch {
		case x.lim.MaxConns > 0 && len(x.sessions)+x.plain >= x.lim.MaxConns:
			refuse = ClosedRefusedCap
		case !x.unix && remote.IsValid() && x.lim.MaxUnauthPerAddr > 0 && x.perAddr[remote.Addr()] >= x.lim.MaxUnauthPerAddr:
			refuse = ClosedRefusedPerAddr
		}
		if refuse != ClosedNone {
			x.mu.Unlock()
			x.closed[refuse].Add(1)
			nc.Close()
			continue
		}
		x.plain++
		if remote.IsValid() && !x.unix {
			x.perAddr[remote.Addr()]++
		}
		x.mu.Unlock()
		return &limitedConn{Conn: nc, x: x, remote: remote}, nil
	}
}

// limitedConn frees its slot when closed.
type limitedConn struct {
	net.Conn
	x      *Listener
	remote netip.AddrPort
	once   sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		x := c.x
		x.mu.Lock()
		x.plain--
		if c.remote.IsValid() && !x.unix {
			a := c.remote.Addr()
			if x.perAddr[a]--; x.perAddr[a] <= 0 {
				delete(x.perAddr, a)
			}
		}
		x.mu.Unlock()
		x.closed[ClosedDone].Add(1)
	})
	return err
}
