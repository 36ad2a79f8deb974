package main

import (
	"net"
	"os"
	"strconv"
	"time"
)

// systemd is the service manager's notification socket (sd_notify(3)),
// spoken without libsystemd: datagrams of "KEY=VALUE" lines to the unix
// socket $NOTIFY_SOCKET ("@" names an abstract socket). Without the
// variable (not started by systemd with Type=notify) it does nothing.
type systemd struct {
	addr *net.UnixAddr
}

func newSystemd() *systemd {
	p := os.Getenv("NOTIFY_SOCKET")
	if p == "" {
		return &systemd{}
	}
	if p[0] == '@' {
		p = "\x00" + p[1:]
	}
	return &systemd{addr: &net.UnixAddr{Name: p, Net: "unixgram"}}
}

// notify sends state; errors are ignored, as sd_notify's callers do.
func (s *systemd) notify(state string) {
	if s.addr == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, s.addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

// watchdog pings WATCHDOG=1 at half the interval systemd asked for
// (WATCHDOG_USEC) while alive() holds, until stop is closed. alive is the
// daemon's liveness check: a wedged packet loop stops the pings and
// systemd restarts the service.
func (s *systemd) watchdog(alive func() bool, stop <-chan struct{}) {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if s.addr == nil || err != nil || us <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	t := time.NewTicker(time.Duration(us) * time.Microsecond / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if alive() {
				s.notify("WATCHDOG=1")
			}
		}
	}
}
