package hep

import (
	"net"
	"syscall"
)

// setReadBuffer asks for n bytes of socket receive buffer: beyond
// net.core.rmem_max when the process may (SO_RCVBUFFORCE needs
// CAP_NET_ADMIN, which a capturing sensor usually has), else up to it.
func setReadBuffer(c *net.UDPConn, n int) {
	if rc, err := c.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
		}); err == nil && serr == nil {
			return
		}
	}
	_ = c.SetReadBuffer(n)
}
