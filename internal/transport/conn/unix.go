package conn

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrPathInUse means a unix socket path is taken: by a file that is not a
// socket, a socket another user owns, or a socket somebody is serving.
var ErrPathInUse = errors.New("conn: path in use")

// ListenUnix binds a unix socket (network "unix" or "unixgram") at path
// with mode 0600, so that only this user can connect. It never takes over
// somebody else's path: an existing file is replaced only when it is a
// stale socket of this user's (nobody accepts on it any more), otherwise
// the error wraps [ErrPathInUse]. Closing the returned listener (or
// PacketConn) removes the socket file, and only while it is still the one
// bound here.
func ListenUnix(network, path string) (any, error) {
	if err := removeStale(network, path); err != nil {
		return nil, err
	}
	// Bind with a umask-independent mode: create, then tighten before
	// anyone can have connected (the directory should be private too).
	var (
		l   any
		err error
	)
	switch network {
	case "unix":
		var ul *net.UnixListener
		ul, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			ul.SetUnlinkOnClose(false) // ownedUnixListener removes it, checking the inode
			l = ul
		}
	case "unixgram":
		var uc *net.UnixConn
		uc, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err == nil {
			l = uc
		}
	default:
		return nil, fmt.Errorf("conn: ListenUnix: network %q", network)
	}
	if err != nil {
		return nil, fmt.Errorf("conn: listen %s %s: %w", network, path, err)
	}
	closeIt := func() {
		switch v := l.(type) {
		case *net.UnixListener:
			v.Close()
		case *net.UnixConn:
			v.Close()
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		closeIt()
		os.Remove(path)
		return nil, fmt.Errorf("conn: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		closeIt()
		return nil, fmt.Errorf("conn: %w", err)
	}
	switch v := l.(type) {
	case *net.UnixListener:
		return &ownedUnixListener{UnixListener: v, path: path, fi: fi}, nil
	case *net.UnixConn:
		return &ownedUnixConn{UnixConn: v, path: path, fi: fi}, nil
	}
	return l, nil
}

// ListenUnixStream is [ListenUnix] for a stream socket.
func ListenUnixStream(path string) (net.Listener, error) {
	l, err := ListenUnix("unix", path)
	if err != nil {
		return nil, err
	}
	return l.(net.Listener), nil
}

// ListenUnixgram is [ListenUnix] for a datagram socket.
func ListenUnixgram(path string) (net.PacketConn, error) {
	l, err := ListenUnix("unixgram", path)
	if err != nil {
		return nil, err
	}
	return l.(net.PacketConn), nil
}

// removeStale removes path when it is a socket of this user's that nobody
// serves; it fails with ErrPathInUse for anything else that exists.
func removeStale(network, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("conn: %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%w: %s exists and is not a socket", ErrPathInUse, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: socket %s belongs to uid %d", ErrPathInUse, path, st.Uid)
	}
	if c, err := net.DialTimeout(network, path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%w: somebody is serving on %s", ErrPathInUse, path)
	} else if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%w: %s: %v", ErrPathInUse, path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("conn: remove stale %s: %w", path, err)
	}
	return nil
}

// removeIfSame removes path if it is still the file fi describes.
func removeIfSame(path string, fi os.FileInfo) {
	if now, err := os.Lstat(path); err == nil && os.SameFile(now, fi) {
		os.Remove(path)
	}
}

type ownedUnixListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

func (l *ownedUnixListener) Close() error {
	err := l.UnixListener.Close()
	removeIfSame(l.path, l.fi)
	return err
}

type ownedUnixConn struct {
	*net.UnixConn
	path string
	fi   os.FileInfo
}

func (c *ownedUnixConn) Close() error {
	err := c.UnixConn.Close()
	removeIfSame(c.path, c.fi)
	return err
}
