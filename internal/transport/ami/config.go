package ami

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Defaults of the [general] section (Asterisk's, except writetimeout,
// which Asterisk also defaults to 100 ms).
const (
	DefaultPort        = 5038
	DefaultBindAddr    = "127.0.0.1"
	DefaultAuthTimeout = 30 * time.Second
	DefaultAuthLimit   = 50
	// DefaultAuthLimitPerIP caps the sessions one address may hold before
	// logging in (authlimitperip, a voipsensor extension): it takes five
	// addresses, not one, to fill the default authlimit.
	DefaultAuthLimitPerIP = 10
	DefaultWriteTimeout   = 100 * time.Millisecond
	minWriteTimeout       = 100 * time.Millisecond
)

// Secret is an AMI password: it logs and prints as REDACTED.
type Secret string

// String returns "REDACTED".
func (Secret) String() string { return "REDACTED" }

// LogValue implements [slog.LogValuer].
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Config is a parsed manager.conf: the [general] section and the users.
type Config struct {
	Enabled         bool
	Port            int
	BindAddr        string
	AuthTimeout     time.Duration
	AuthLimit       int
	AuthLimitPerIP  int
	TimestampEvents bool
	DisplayConnects bool
	WriteTimeout    time.Duration
	Users           []*User
}

// User is one manager.conf user section.
type User struct {
	Name   string
	Secret Secret
	// Read is the event classes the user may receive, Write the action
	// classes it may run; both default to none.
	Read, Write command.Perm
	// ACL is the permit/deny rules in file order; the last matching rule
	// decides, and an address no rule matches is allowed (Asterisk's
	// ast_apply_ha).
	ACL []ACLRule
	// Filters are the eventfilter lines, compiled.
	Filters []*Filter
	// WriteTimeout overrides the general one when non-zero.
	WriteTimeout time.Duration
}

// ACLRule is one permit= or deny= line.
type ACLRule struct {
	Permit bool
	Prefix netip.Prefix
}

// Allowed applies the user's ACL to addr.
func (u *User) Allowed(addr netip.Addr) bool {
	ok := true
	addr = addr.Unmap()
	for _, r := range u.ACL {
		if r.Prefix.Contains(addr) {
			ok = r.Permit
		}
	}
	return ok
}

// Limits returns the session limits cfg asks for: authlimit caps the
// sessions not logged in yet and authlimitperip those from one address,
// authtimeout is the time to log in, and the sessions open at once are
// capped at [conn.DefaultMaxConns] beyond authlimit, so that logged-in
// clients always find room while unauthenticated ones flood the port.
func (c *Config) Limits() conn.Limits {
	authLimit, perIP, timeout := c.AuthLimit, c.AuthLimitPerIP, c.AuthTimeout
	if authLimit <= 0 {
		authLimit = DefaultAuthLimit
	}
	if perIP <= 0 {
		perIP = DefaultAuthLimitPerIP
	}
	if timeout <= 0 {
		timeout = DefaultAuthTimeout
	}
	return conn.Limits{
		MaxConns:         conn.DefaultMaxConns + authLimit,
		MaxUnauth:        authLimit,
		MaxUnauthPerAddr: perIP,
		FirstRequest:     timeout,
		Drain:            dispatchWait + drainLimit,
	}
}

// Addr returns bindaddr:port.
func (c *Config) Addr() string { return net.JoinHostPort(c.BindAddr, strconv.Itoa(c.Port)) }

// User returns the user with this name (case-insensitive), or nil.
func (c *Config) User(name string) *User {
	for _, u := range c.Users {
		if strings.EqualFold(u.Name, name) {
			return u
		}
	}
	return nil
}

// LoadConfig reads and parses the manager.conf-style file at path.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	defer f.Close()
	return ParseConfig(f)
}

// ParseConfig parses Asterisk's manager.conf format: ";" comments,
// "[section]" headers, "key = value" (or "key => value") lines. [general]
// holds enabled, port, bindaddr, authtimeout (s), authlimit,
// timestampevents, displayconnects, writetimeout (ms) and authlimitperip
// (voipsensor's own: the sessions one address may hold before logging in;
// Asterisk ignores it); every other section is a user with secret, read,
// write, permit, deny, eventfilter (legacy) or eventfilter(criteria)
// (advanced), and writetimeout. Unknown keys are
// ignored, as Asterisk does; a bad value is an error wrapping [ErrConfig]
// (a bad ACL or filter drops nothing silently: the file is refused).
func ParseConfig(r io.Reader) (*Config, error) {
	c := &Config{
		Enabled: true, Port: DefaultPort, BindAddr: DefaultBindAddr,
		AuthTimeout: DefaultAuthTimeout, AuthLimit: DefaultAuthLimit, AuthLimitPerIP: DefaultAuthLimitPerIP,
		DisplayConnects: true, WriteTimeout: DefaultWriteTimeout,
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	section := ""
	var user *User
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		if line == "" {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrConfig, n, fmt.Sprintf(format, a...))
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, bad("unterminated section %q", line)
			}
			section = strings.TrimSpace(line[1:end])
			user = nil
			if !strings.EqualFold(section, "general") {
				if c.User(section) != nil {
					return nil, bad("duplicate user %q", section)
				}
				user = &User{Name: section}
				c.Users = append(c.Users, user)
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			return nil, bad("expected key = value, got %q", line)
		}
		key := strings.TrimSpace(line[:eq])
		val := strings.TrimSpace(strings.TrimPrefix(line[eq+1:], ">"))
		if section == "" {
			return nil, bad("%q outside a section", key)
		}
		var err error
		if user == nil {
			err = c.setGeneral(strings.ToLower(key), val)
		} else {
			err = user.set(key, val)
		}
		if err != nil {
			return nil, bad("%s: %v", key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, nil
}

func stripComment(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// parseBool is Asterisk's ast_true/ast_false.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "y", "t", "1", "on":
		return true, nil
	case "no", "false", "n", "f", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", v)
}

func (c *Config) setGeneral(key, val string) error {
	var err error
	switch key {
	case "enabled":
		c.Enabled, err = parseBool(val)
	case "port":
		c.Port, err = strconv.Atoi(val)
		if err == nil && (c.Port < 0 || c.Port > 65535) {
			err = fmt.Errorf("port out of range")
		}
	case "bindaddr":
		if _, e := netip.ParseAddr(val); e != nil {
			err = e
		}
		c.BindAddr = val
	case "authtimeout":
		var s int
		s, err = strconv.Atoi(val)
		if err == nil && s <= 0 {
			err = fmt.Errorf("must be positive")
		}
		c.AuthTimeout = time.Duration(s) * time.Second
	case "authlimit":
		c.AuthLimit, err = strconv.Atoi(val)
		if err == nil && c.AuthLimit <= 0 {
			err = fmt.Errorf("must be positive")
		}
	case "authlimitperip":
		c.AuthLimitPerIP, err = strconv.Atoi(val)
		if err == nil && c.AuthLimitPerIP <= 0 {
			err = fmt.Errorf("must be positive")
		}
	case "timestampevents":
		c.TimestampEvents, err = parseBool(val)
	case "displayconnects":
		c.DisplayConnects, err = parseBool(val)
	case "writetimeout":
		c.WriteTimeout, err = parseWriteTimeout(val)
	}
	return err
}

func parseWriteTimeout(val string) (time.Duration, error) {
	ms, err := strconv.Atoi(val)
	if err != nil {
		return 0, err
	}
	if d := time.Duration(ms) * time.Millisecond; d >= minWriteTimeout {
		return d, nil
	}
	return 0, fmt.Errorf("below the minimum of 100 ms")
}

func (u *User) set(key, val string) error {
	var err error
	lk := strings.ToLower(key)
	switch {
	case lk == "secret":
		u.Secret = Secret(val)
	case lk == "read":
		u.Read, err = command.ParsePerm(val)
	case lk == "write":
		u.Write, err = command.ParsePerm(val)
	case lk == "permit" || lk == "deny":
		var p netip.Prefix
		if p, err = parseACL(val); err == nil {
			u.ACL = append(u.ACL, ACLRule{Permit: lk == "permit", Prefix: p})
		}
	case lk == "writetimeout":
		u.WriteTimeout, err = parseWriteTimeout(val)
	case lk == "eventfilter":
		var f *Filter
		if f, err = ParseFilter("", val); err == nil {
			u.Filters = append(u.Filters, f)
		}
	case strings.HasPrefix(lk, "eventfilter(") && strings.HasSuffix(lk, ")"):
		var f *Filter
		if f, err = ParseFilter(key[len("eventfilter("):len(key)-1], val); err == nil {
			u.Filters = append(u.Filters, f)
		}
	}
	return err
}

// parseACL accepts "addr", "addr/bits" and "addr/dotted-netmask".
func parseACL(v string) (netip.Prefix, error) {
	addrS, maskS, hasMask := strings.Cut(v, "/")
	a, err := netip.ParseAddr(strings.TrimSpace(addrS))
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	bits := a.BitLen()
	if hasMask {
		maskS = strings.TrimSpace(maskS)
		if m, err := netip.ParseAddr(maskS); err == nil && m.Is4() && a.Is4() {
			b := m.As4()
			ones, seenZero := 0, false
			for _, x := range b {
				for i := 7; i >= 0; i-- {
					if x&(1<<i) != 0 {
						if seenZero {
							return netip.Prefix{}, fmt.Errorf("non-contiguous netmask %q", maskS)
						}
						ones++
					} else {
						seenZero = true
					}
				}
			}
			bits = ones
		} else if bits, err = strconv.Atoi(maskS); err != nil || bits < 0 || bits > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("bad netmask %q", maskS)
		}
	}
	return a.Prefix(bits)
}
