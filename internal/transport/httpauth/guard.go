package httpauth

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Guard is the browser threat model of every HTTP listener, stated once.
// A browser will send requests to 127.0.0.1 on behalf of any web page the
// user opens; the server must tell those apart from its own pages and
// from scripts:
//
//   - DNS rebinding: a page at evil.example re-resolves its name to
//     127.0.0.1 and reads the answers as same-origin. The Host header still
//     says evil.example, so a listener bound to loopback serves only
//     loopback names and addresses (localhost, *.localhost, 127.0.0.0/8,
//     [::1]) and the names the configuration lists (web_hosts); anything
//     else gets 421 Misdirected Request. A listener bound to another
//     address requires authentication anyway (and its cookies are scoped
//     to the real name), so any Host is served.
//   - Cross-site requests (CSRF): a request whose Origin is not the
//     listener's own, or that a browser marks Sec-Fetch-Site cross-site or
//     same-site (another port on localhost is same-site), is refused with
//     403 on API paths. Top-level navigation to a page stays possible.
//   - No CORS headers are ever sent, so no other origin may read a reply.
//
// Scripts (curl, Python, nc) send no Origin and no Sec-Fetch-* headers and
// are unaffected.
type Guard struct {
	// Loopback is set when the listener is bound to a loopback address.
	Loopback bool
	// Hosts are extra Host names (lower case, no port) to serve.
	Hosts []string
}

// NewGuard returns the Guard for a listener bound to addr ("host:port").
func NewGuard(addr string, hosts []string) Guard {
	return Guard{Loopback: IsLoopbackAddr(addr), Hosts: hosts}
}

// IsLoopbackAddr reports whether host:port names a loopback address
// ("localhost" counts; an empty host, which binds every address, does not).
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Check applies the rules to r; api marks paths that act or return data
// (as opposed to static pages a user may navigate to from elsewhere). When
// it returns false it has answered.
func (g Guard) Check(w http.ResponseWriter, r *http.Request, api bool) bool {
	if !g.hostAllowed(r.Host) {
		http.Error(w, "421 Misdirected Request: this server does not answer for "+r.Host, http.StatusMisdirectedRequest)
		return false
	}
	if !api {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		http.Error(w, "403 Forbidden: cross-origin request", http.StatusForbidden)
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		http.Error(w, "403 Forbidden: cross-site request", http.StatusForbidden)
		return false
	}
	return true
}

// Wrap returns h behind the guard; api tells which paths are API paths.
func (g Guard) Wrap(h http.Handler, api func(path string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Check(w, r, api(r.URL.Path)) {
			h.ServeHTTP(w, r)
		}
	})
}

func (g Guard) hostAllowed(hostport string) bool {
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	for _, h := range g.Hosts {
		if host == h {
			return true
		}
	}
	if !g.Loopback {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// sameOrigin reports whether the Origin header names the scheme and host
// the request came to.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" and garbage
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}
