//go:build !linux

package hep

import "net"

// setReadBuffer asks for n bytes of socket receive buffer (the kernel may
// cap it).
func setReadBuffer(c *net.UDPConn, n int) { _ = c.SetReadBuffer(n) }
