package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrExposed is wrapped by [CheckExposure]'s error: a listener would serve
// call data to the network without authentication.
var ErrExposed = errors.New("config: listener exposed without authentication")

// Exposure is one network listener the configuration opens, with whether
// its clients must authenticate. It is the input of the sensor's one
// listener policy, [CheckExposure].
type Exposure struct {
	Setting string // the key that binds it ("managerip")
	Addr    string // host:port, or "udp:IP:port" for MI datagrams
	// Authenticated is set when every client must prove who it is.
	Authenticated bool
	// Remedy names the setting that adds authentication.
	Remedy string
}

// Loopback reports whether the listener is bound to a loopback address
// only (127.0.0.0/8, ::1, localhost); an empty or wildcard host is not.
func (e Exposure) Loopback() bool {
	addr := strings.TrimPrefix(e.Addr, "udp:")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		if i := strings.LastIndexByte(addr, ':'); i > 0 { // udp:IPv6:port without brackets
			host = addr[:i]
		} else {
			host = addr
		}
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// Exposures lists the network listeners of c (unix sockets and FIFOs are
// local by nature, 0600, and not listed). managerKeyStored tells whether
// the database holds a manager AES key (the GUI's store_aes_key), which
// authenticates the manager API as well as manager_aes_key does. AMI is
// not listed: its users always log in with a secret.
func (c *Config) Exposures(managerKeyStored bool) []Exposure {
	var out []Exposure
	if a := c.ManagerAddr(); a != "" {
		out = append(out, Exposure{Setting: "managerip", Addr: a,
			Authenticated: (c.ManagerAESKey.IsSet() || managerKeyStored) && !c.ManagerEnableUnencrypted,
			Remedy:        "manager_aes_key and manager_aes_iv (or `voipsensor key store`), and manager_enable_unencrypted = no"})
	}
	if c.MIHTTP != "" {
		out = append(out, Exposure{Setting: "mi_http", Addr: c.MIHTTP, Authenticated: c.MIHTTPToken.IsSet(), Remedy: "mi_http_token"})
	}
	for _, d := range c.MIDatagram {
		if strings.HasPrefix(d, "udp:") {
			out = append(out, Exposure{Setting: "mi_datagram", Addr: d, Remedy: "none exists for MI datagrams (OpenSIPS has none either): use mi_http with mi_http_token"})
		}
	}
	if a := c.WebAddr(); a != "" {
		out = append(out, Exposure{Setting: "web_bind", Addr: a,
			Authenticated: c.WebToken.IsSet() || (c.WebUser != "" && c.WebPassword.IsSet()),
			Remedy:        "web_token, or web_user and web_password"})
	}
	if c.MetricsBind != "" {
		out = append(out, Exposure{Setting: "metrics_bind", Addr: c.MetricsBind, Authenticated: c.MetricsToken.IsSet(), Remedy: "metrics_token"})
	}
	if a := c.HEP.CollectorAddr(); a != "" {
		out = append(out, Exposure{Setting: "hep_bind", Addr: a, Authenticated: c.HEP.Password.IsSet(), Remedy: "hep_password"})
	}
	if a := c.ServerAddr(); a != "" {
		out = append(out, Exposure{Setting: "server_bind", Addr: a, Authenticated: c.ServerPassword.IsSet(), Remedy: "server_password"})
	}
	return out
}

// CheckExposure is the sensor's one listener policy: every listener binds
// loopback unless configured otherwise, and a listener bound to any other
// address must authenticate its clients; a sensor sees every call and its
// audio, so an open port is a wiretap. Unless allow
// (allow_unauthenticated_remote = yes), the first exposure that breaks the
// rule is an error naming the setting and the remedy; with allow, the
// exposures are returned so that the caller can warn about each.
func CheckExposure(es []Exposure, allow bool) ([]Exposure, error) {
	var open []Exposure
	for _, e := range es {
		if e.Loopback() || e.Authenticated {
			continue
		}
		if !allow {
			return nil, fmt.Errorf("%w: %s = %s would serve to the network without authentication; set %s, bind 127.0.0.1, or set allow_unauthenticated_remote = yes",
				ErrExposed, e.Setting, e.Addr, e.Remedy)
		}
		open = append(open, e)
	}
	return open, nil
}
