package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// option describes one configuration key.
type option struct {
	key    string
	live   bool // a change can be applied without a restart
	secret bool // a password, token or key: never shown
	list   bool // repeated lines append instead of replacing
	// set parses v and stores it; for a list it appends.
	set func(c *Config, v string) error
	// reset clears a list before the first line of a file or a Set.
	reset func(c *Config)
	// get returns the canonical text of the current value, one element per
	// line for lists; secrets are revealed (used to compare and to marshal).
	get func(c *Config) []string
}

var options = buildOptions()

func lookup(key string) (*option, bool) {
	o, ok := options[key]
	return o, ok
}

// IsSecret reports whether key names a secret setting (a password, token,
// AES key or IV), whose value no output may show.
func IsSecret(key string) bool {
	o, ok := lookup(strings.ToLower(strings.TrimSpace(key)))
	return ok && o.secret
}

// SecretKeys returns the secret settings' keys, sorted.
func SecretKeys() []string {
	var out []string
	for _, k := range Keys() {
		if options[k].secret {
			out = append(out, k)
		}
	}
	return out
}

// RedactArgs returns a copy of a command line with the value of every
// secret setting replaced by "REDACTED": "-set server_password=x" (in one
// argument or two, with one dash or two, "-set=key=value" too) and a bare
// "key=value".
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		rest := a
		prefix := ""
		for _, p := range []string{"--set=", "-set="} {
			if r, ok := strings.CutPrefix(a, p); ok {
				prefix, rest = p, r
				break
			}
		}
		if k, _, ok := strings.Cut(rest, "="); ok && IsSecret(k) {
			out[i] = prefix + k + "=REDACTED"
		}
	}
	return out
}

// Keys returns every configuration key the parser knows, sorted.
func Keys() []string {
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func buildOptions() map[string]*option {
	list := []*option{
		// Capture.
		strOpt("interface", false, func(c *Config) *string { return &c.Interface }, checkNonEmpty),
		{key: "sipport", live: false, list: true,
			set: func(c *Config, v string) error {
				rs, err := parsePortRanges(v)
				if err != nil {
					return err
				}
				c.SIPPorts = append(c.SIPPorts, rs...)
				return nil
			},
			reset: func(c *Config) { c.SIPPorts = nil },
			get:   func(c *Config) []string { return oneOrNone(c.SIPPorts.String()) },
		},
		strOpt("filter", false, func(c *Config) *string { return &c.Filter }, nil),
		intOpt("id_sensor", false, func(c *Config) *int { return &c.IDSensor }, -1, 65535),
		strOpt("spooldir", false, func(c *Config) *string { return &c.SpoolDir }, checkNonEmpty),
		boolOpt("promisc", false, func(c *Config) *bool { return &c.Promisc }),
		intOpt("ringbuffer", false, func(c *Config) *int { return &c.Ringbuf }, 1, 4096),
		intOpt("max_buffer_mem", false, func(c *Config) *int { return &c.MaxBufferMem }, 0, 1<<20),

		// Storage.
		strOpt("sqldriver", false, func(c *Config) *string { return &c.SQLDriver }, checkOneOf("sqlite", "mysql")),
		strOpt("cdr_schema", false, func(c *Config) *string { return &c.CDRSchema }, checkOneOf("voipsensor", "voipmonitor")),
		strOpt("sqlitepath", false, func(c *Config) *string { return &c.SQLitePath }, nil),
		strOpt("mysqlhost", false, func(c *Config) *string { return &c.MySQLHost }, nil),
		intOpt("mysqlport", false, func(c *Config) *int { return &c.MySQLPort }, 1, 65535),
		strOpt("mysqldb", false, func(c *Config) *string { return &c.MySQLDB }, checkIdent),
		strOpt("mysqlusername", false, func(c *Config) *string { return &c.MySQLUsername }, nil),
		secretOpt("mysqlpassword", false, func(c *Config) *Secret { return &c.MySQLPassword }),
		intOpt("cdr_batch_size", false, func(c *Config) *int { return &c.CDRBatchSize }, 1, 100000),
		durOpt("cdr_batch_interval", false, func(c *Config) *time.Duration { return &c.CDRBatchEvery }, time.Millisecond, time.Millisecond, time.Second),
		intOpt("cdr_queue_size", false, func(c *Config) *int { return &c.CDRQueueSize }, 1, 10000000),
		boolOpt("sip-register", true, func(c *Config) *bool { return &c.SIPRegister }),

		// Manager.
		strOpt("managerip", false, func(c *Config) *string { return &c.ManagerIP }, checkIP),
		intOpt("managerport", false, func(c *Config) *int { return &c.ManagerPort }, 0, 65535),
		strOpt("managersocket", false, func(c *Config) *string { return &c.ManagerSocket }, nil),
		secretOpt("manager_aes_key", true, func(c *Config) *Secret { return &c.ManagerAESKey }),
		secretOpt("manager_aes_iv", true, func(c *Config) *Secret { return &c.ManagerAESIV }),
		boolOpt("manager_enable_unencrypted", true, func(c *Config) *bool { return &c.ManagerEnableUnencrypted }),
		intOpt("manager_max_connections", false, func(c *Config) *int { return &c.ManagerMaxConns }, 1, 1000000),
		strOpt("manager_file_dir", false, func(c *Config) *string { return &c.ManagerFileDir }, nil),

		// Limits and policy of every listener.
		durOpt("first_request_timeout", false, func(c *Config) *time.Duration { return &c.FirstRequestTimeout }, time.Second, 100*time.Millisecond, time.Hour),
		intOpt("max_connections_per_ip", false, func(c *Config) *int { return &c.MaxConnsPerIP }, 1, 1000000),
		boolOpt("allow_unauthenticated_remote", false, func(c *Config) *bool { return &c.AllowUnauthenticatedRemote }),
		{key: "web_hosts", list: true,
			set: func(c *Config, v string) error {
				for _, h := range strings.Split(v, ",") {
					if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
						c.HTTPHosts = append(c.HTTPHosts, h)
					}
				}
				return nil
			},
			reset: func(c *Config) { c.HTTPHosts = nil },
			get:   func(c *Config) []string { return c.HTTPHosts },
		},
		boolOpt("web_secure_cookie", false, func(c *Config) *bool { return &c.WebSecureCookie }),
		strOpt("log_format", false, func(c *Config) *string { return &c.LogFormat }, checkOneOf("text", "json")),
		strOpt("metrics_bind", false, func(c *Config) *string { return &c.MetricsBind }, checkHostPortOrEmpty),
		secretOpt("metrics_token", false, func(c *Config) *Secret { return &c.MetricsToken }),

		// Other transports.
		strOpt("amiconfig", false, func(c *Config) *string { return &c.AMIConfig }, nil),
		strOpt("mi_http", false, func(c *Config) *string { return &c.MIHTTP }, checkHostPortOrEmpty),
		strOpt("mi_fifo", false, func(c *Config) *string { return &c.MIFIFO }, nil),
		{key: "mi_datagram", list: true,
			set: func(c *Config, v string) error {
				if err := checkDatagram(v); err != nil {
					return err
				}
				c.MIDatagram = append(c.MIDatagram, v)
				return nil
			},
			reset: func(c *Config) { c.MIDatagram = nil },
			get:   func(c *Config) []string { return c.MIDatagram },
		},
		secretOpt("mi_http_token", false, func(c *Config) *Secret { return &c.MIHTTPToken }),
		strOpt("mi_readonly", false, func(c *Config) *string { return &c.MIReadOnly }, checkMIReadOnly),
		boolOpt("mi_datagram_allow_remote", false, func(c *Config) *bool { return &c.MIDatagramAllowRemote }),
		strOpt("web_bind", false, func(c *Config) *string { return &c.WebBind }, checkIP),
		secretOpt("web_token", false, func(c *Config) *Secret { return &c.WebToken }),
		strOpt("web_user", false, func(c *Config) *string { return &c.WebUser }, nil),
		secretOpt("web_password", false, func(c *Config) *Secret { return &c.WebPassword }),
		intOpt("web_port", false, func(c *Config) *int { return &c.WebPort }, 0, 65535),

		// Server API.
		strOpt("server_bind", false, func(c *Config) *string { return &c.ServerBind }, checkIPOrEmpty),
		intOpt("server_bind_port", false, func(c *Config) *int { return &c.ServerBindPort }, 1, 65535),
		secretOpt("server_password", false, func(c *Config) *Secret { return &c.ServerPassword }),
		{key: "server_destination", list: true,
			set: func(c *Config, v string) error {
				for _, d := range strings.Split(v, ",") {
					d = strings.TrimSpace(d)
					if d == "" {
						return errors.New("empty host in list")
					}
					c.ServerDestination = append(c.ServerDestination, d)
				}
				return nil
			},
			reset: func(c *Config) { c.ServerDestination = nil },
			get:   func(c *Config) []string { return oneOrNone(strings.Join(c.ServerDestination, ",")) },
		},
		intOpt("server_destination_port", false, func(c *Config) *int { return &c.ServerDestinationPort }, 1, 65535),

		// Call tracking.
		durOpt("rtptimeout", true, func(c *Config) *time.Duration { return &c.RTPTimeout }, time.Second, time.Second, 0),
		durOpt("sipwithoutrtptimeout", true, func(c *Config) *time.Duration { return &c.SIPWithoutRTPTimeout }, time.Second, time.Second, 0),
		durOpt("absolute_timeout", true, func(c *Config) *time.Duration { return &c.AbsoluteTimeout }, time.Second, time.Second, 0),
		intOpt("callslimit", true, func(c *Config) *int { return &c.CallsLimit }, 0, 100000000),
		{key: "loglevel", live: true,
			set: func(c *Config, v string) error {
				var l slog.Level
				if err := l.UnmarshalText([]byte(v)); err != nil {
					return errors.New("want debug, info, warn or error")
				}
				c.LogLevel = l
				return nil
			},
			get: func(c *Config) []string { return []string{strings.ToLower(c.LogLevel.String())} },
		},
	}
	list = append(list, recordingOptions()...)
	list = append(list, hepOptions()...)
	list = append(list, ladderOptions()...)
	list = append(list,
		boolOpt("active_call_info", false, func(c *Config) *bool { return &c.ActiveCallInfo }),
	)
	m := make(map[string]*option, len(list))
	for _, o := range list {
		if _, dup := m[o.key]; dup {
			panic("config: duplicate option " + o.key)
		}
		m[o.key] = o
	}
	return m
}

func oneOrNone(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func strOpt(key string, live bool, field func(*Config) *string, check func(string) error) *option {
	return &option{key: key, live: live,
		set: func(c *Config, v string) error {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) []string { return []string{*field(c)} },
	}
}

func secretOpt(key string, live bool, field func(*Config) *Secret) *option {
	return &option{key: key, live: live, secret: true,
		set: func(c *Config, v string) error { *field(c) = Secret(v); return nil },
		get: func(c *Config) []string { return []string{field(c).Reveal()} },
	}
}

func intOpt(key string, live bool, field func(*Config) *int, lo, hi int) *option {
	return &option{key: key, live: live,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("not an integer")
			}
			if n < lo || n > hi {
				return fmt.Errorf("%d out of range [%d, %d]", n, lo, hi)
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) []string { return []string{strconv.Itoa(*field(c))} },
	}
}

func boolOpt(key string, live bool, field func(*Config) *bool) *option {
	return &option{key: key, live: live,
		set: func(c *Config, v string) error {
			b, err := ParseBool(v)
			if err != nil {
				return err
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) []string {
			if *field(c) {
				return []string{"yes"}
			}
			return []string{"no"}
		},
	}
}

// durOpt parses a bare number in unit, or a Go duration ("500ms", "5m");
// lo and hi bound the result (hi 0 means no upper bound).
func durOpt(key string, live bool, field func(*Config) *time.Duration, unit, lo, hi time.Duration) *option {
	return &option{key: key, live: live,
		set: func(c *Config, v string) error {
			d, err := parseDuration(v, unit)
			if err != nil {
				return err
			}
			if d < lo || (hi > 0 && d > hi) {
				if hi > 0 {
					return fmt.Errorf("%v out of range [%v, %v]", d, lo, hi)
				}
				return fmt.Errorf("%v below minimum %v", d, lo)
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) []string { return []string{field(c).String()} },
	}
}

// ParseBool parses yes/no, true/false, on/off and 1/0, in any case.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, errors.New("want yes/no, true/false, on/off or 1/0")
}

func parseDuration(v string, unit time.Duration) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(1<<62)/int64(unit) {
			return 0, errors.New("duration out of range")
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want a number of %v or a duration like 500ms", unit)
	}
	return d, nil
}

// ParsePortRanges parses a `sipport` value: a comma list of ports and
// inclusive ranges, such as "5060,5080-5090". Ports are 1–65535.
func parsePortRanges(v string) (PortRanges, error) {
	var rs PortRanges
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePort(strings.TrimSpace(lo))
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(strings.TrimSpace(hi)); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %d-%d is reversed", a, b)
			}
		}
		rs = append(rs, PortRange{a, b})
	}
	return rs, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

func checkNonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkOneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
	}
}

func checkIdent(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	for _, r := range v {
		if !(r == '_' || r == '$' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("character %q not allowed in a database name", r)
		}
	}
	return nil
}

func checkIP(v string) error {
	if _, err := netip.ParseAddr(v); err != nil {
		return errors.New("want an IP address")
	}
	return nil
}

func checkIPOrEmpty(v string) error {
	if v == "" {
		return nil
	}
	return checkIP(v)
}

func checkHostPortOrEmpty(v string) error {
	if v == "" {
		return nil
	}
	if _, err := netip.ParseAddrPort(v); err != nil {
		return errors.New("want IP:port")
	}
	return nil
}

// checkDatagram accepts "udp:IP:port" or an absolute unix socket path, the
// forms OpenSIPS's mi_datagram socket_name takes.
func checkDatagram(v string) error {
	if rest, ok := strings.CutPrefix(v, "udp:"); ok {
		if _, err := netip.ParseAddrPort(rest); err != nil {
			// OpenSIPS writes IPv6 without brackets: udp:::1:8080.
			i := strings.LastIndexByte(rest, ':')
			if i < 0 {
				return errors.New("want udp:IP:port")
			}
			if _, err := netip.ParseAddr(rest[:i]); err != nil {
				return errors.New("want udp:IP:port")
			}
			if _, err := parsePort(rest[i+1:]); err != nil {
				return err
			}
		}
		return nil
	}
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "unix:/") {
		return nil
	}
	return errors.New("want udp:IP:port, unix:/path or an absolute unix socket path")
}

// checkMIReadOnly accepts a comma list of MI transports: http, fifo,
// datagram.
func checkMIReadOnly(v string) error {
	for _, t := range strings.Split(v, ",") {
		switch strings.TrimSpace(t) {
		case "", "http", "fifo", "datagram":
		default:
			return fmt.Errorf("unknown MI transport %q (want http, fifo, datagram)", strings.TrimSpace(t))
		}
	}
	return nil
}
