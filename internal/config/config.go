package config

import (
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Default values used by [Default]. Listeners bind to loopback unless the
// configuration says otherwise.
const (
	DefaultSpoolDir    = "/var/spool/voipsensor"
	DefaultSQLiteFile  = "voipsensor.db" // inside SpoolDir when sqlitepath is empty
	DefaultManagerIP   = "127.0.0.1"
	DefaultManagerPort = 5029
	DefaultServerPort  = 60024
	DefaultWebPort     = 8090
	DefaultMySQLPort   = 3306
)

// Secret is a configuration value that must not appear in logs: a password,
// an AES key or IV. Its String, GoString, LogValue and MarshalText all
// return "REDACTED"; [Secret.Reveal] returns the value itself.
type Secret string

// String returns "REDACTED", so fmt's %v and %s never print the value.
func (s Secret) String() string { return "REDACTED" }

// GoString returns "REDACTED", so %#v never prints the value.
func (s Secret) GoString() string { return "REDACTED" }

// LogValue implements [slog.LogValuer]: a Secret logs as "REDACTED".
func (s Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalText returns "REDACTED", so JSON and text encodings of a [Config]
// never carry the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// PortRange is an inclusive range of ports; a single port has Lo == Hi.
type PortRange struct {
	Lo, Hi uint16
}

// String returns "5060" or "5080-5090".
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// PortRanges is a list of [PortRange], as given by repeated `sipport` lines.
type PortRanges []PortRange

// Contains reports whether port p is in one of the ranges.
func (rs PortRanges) Contains(p uint16) bool {
	for _, r := range rs {
		if p >= r.Lo && p <= r.Hi {
			return true
		}
	}
	return false
}

// String returns the ranges as a comma list, the form `sipport` accepts.
func (rs PortRanges) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Config is the whole sensor configuration. The comment on each field names
// its configuration key. Build one with [Default], [Load] or [Parse]; a
// Config is a plain value and is not safe for concurrent mutation.
type Config struct {
	// Capture.
	Interface string     // interface: capture device, "any" for all
	SIPPorts  PortRanges // sipport: ports treated as SIP (comma lists, ranges, may repeat)
	Filter    string     // filter: extra BPF filter expression
	IDSensor  int        // id_sensor: sensor id stored in CDRs, -1 when unset
	SpoolDir  string     // spooldir: directory for the database, spill files and captures
	Promisc   bool       // promisc: put the interface in promiscuous mode
	Ringbuf   int        // ringbuffer: kernel capture ring size in MB
	// max_buffer_mem: the packet buffer between the kernel ring and the
	// analysis, in MB (allocated as it fills); 0 analyses straight from
	// the ring.
	MaxBufferMem int

	// CDR storage.
	SQLDriver     string        // sqldriver: "sqlite" or "mysql"
	CDRSchema     string        // cdr_schema: "voipsensor" (default) or "voipmonitor" (the sniffer's tables, for its GUI)
	SQLitePath    string        // sqlitepath: database file; empty means SpoolDir/voipsensor.db
	MySQLHost     string        // mysqlhost
	MySQLPort     int           // mysqlport
	MySQLDB       string        // mysqldb
	MySQLUsername string        // mysqlusername
	MySQLPassword Secret        // mysqlpassword
	CDRBatchSize  int           // cdr_batch_size: records per INSERT transaction
	CDRBatchEvery time.Duration // cdr_batch_interval: longest time a record waits (≤ 1 s)
	CDRQueueSize  int           // cdr_queue_size: in-memory records before spilling to SpoolDir
	SIPRegister   bool          // sip-register: track REGISTER and store registration states

	// VoIPmonitor manager API.
	ManagerIP                string // managerip: TCP bind address
	ManagerPort              int    // managerport: TCP port, 0 disables TCP
	ManagerSocket            string // managersocket: unix socket path, empty disables
	ManagerAESKey            Secret // manager_aes_key: base64 AES key
	ManagerAESIV             Secret // manager_aes_iv: base64 AES IV
	ManagerEnableUnencrypted bool   // manager_enable_unencrypted: accept plaintext even with a key
	ManagerMaxConns          int    // manager_max_connections: TCP connections at once (the unix socket has its own cap)
	ManagerFileDir           string // manager_file_dir: where manager_file may create sockets; empty: beside managersocket

	// Limits shared by every TCP listener (manager, AMI, server API, MI
	// over HTTP, web console).
	FirstRequestTimeout time.Duration // first_request_timeout: time for a new connection to send a complete request (or log in)
	MaxConnsPerIP       int           // max_connections_per_ip: unauthenticated connections one address may hold, per listener
	// AllowUnauthenticatedRemote lets a listener bind a non-loopback
	// address without authentication (allow_unauthenticated_remote); the
	// default refuses to start.
	AllowUnauthenticatedRemote bool
	// MetricsBind is the Prometheus endpoint's host:port (metrics_bind;
	// empty disables it); MetricsToken, when set, is required as
	// "Authorization: Bearer TOKEN" (metrics_token).
	MetricsBind  string
	MetricsToken Secret
	// HTTPHosts lists extra Host names (and addresses) the HTTP listeners
	// answer besides loopback ones (web_hosts, comma list or repeated).
	HTTPHosts []string
	// WebSecureCookie marks the console's session cookie Secure even when
	// the request did not come in over HTTPS (web_secure_cookie; behind a
	// TLS-terminating proxy).
	WebSecureCookie bool

	// Other management transports.
	AMIConfig  string   // amiconfig: path of an Asterisk manager.conf-style file, empty disables AMI
	MIHTTP     string   // mi_http: host:port of the OpenSIPS MI JSON-RPC listener, empty disables
	MIFIFO     string   // mi_fifo: path of the MI FIFO, empty disables
	MIDatagram []string // mi_datagram: "udp:IP:port", "unix:/path" or a unix path (may repeat)
	// MIHTTPToken, when set, is required as "Authorization: Bearer TOKEN"
	// on /mi and /RPC2 (mi_http_token).
	MIHTTPToken Secret
	// MIReadOnly lists MI transports that may only run read commands:
	// "http,fifo,datagram" (mi_readonly).
	MIReadOnly string
	// MIDatagramAllowRemote lets MI datagram sockets reply to non-loopback
	// senders with replies larger than the request (mi_datagram_allow_remote).
	MIDatagramAllowRemote bool
	WebBind               string // web_bind: bind address of the web UI
	WebPort               int    // web_port: port of the web UI, 0 disables
	// WebToken, WebUser and WebPassword protect the web console (token or
	// basic auth); one of them is required when web_bind is not loopback.
	WebToken    Secret // web_token
	WebUser     string // web_user
	WebPassword Secret // web_password

	// VoIPmonitor server API.
	ServerBind            string   // server_bind: listener address, empty disables
	ServerBindPort        int      // server_bind_port
	ServerPassword        Secret   // server_password
	ServerDestination     []string // server_destination: servers to send to, failover order
	ServerDestinationPort int      // server_destination_port

	// Call tracking.
	RTPTimeout           time.Duration // rtptimeout: end a call after this long without RTP
	SIPWithoutRTPTimeout time.Duration // sipwithoutrtptimeout: end a call with no RTP at all
	AbsoluteTimeout      time.Duration // absolute_timeout: end any call after this long
	CallsLimit           int           // callslimit: maximum concurrent calls, 0 = unlimited
	ActiveCallInfo       bool          // active_call_info: keep each call's SIP packets for the manager's active_call_info
	LogLevel             slog.Level    // loglevel: debug, info, warn or error
	LogFormat            string        // log_format: "text" (logfmt) or "json", one format for every line

	// Recording is what of each call goes to the spool and its retention
	// (savesip, savertp, maxpoolsize, …; recording.go).
	Recording Recording

	// HEP is the HEP collector and sender (hep_*; hep.go).
	HEP HEP

	// Ladder sizes the memory keeping calls' SIP messages for the
	// console (ladder_*; ladder.go).
	Ladder Ladder

	// Sections lists the [section] headers in the order they were read.
	Sections []string
	// Raw lists every key/value line read, in order, with its section,
	// including unknown keys. Secret values are replaced by "REDACTED".
	Raw []Entry

	origin map[string]position // key → where it was last set
}

// Entry is one `key = value` line as read from a file.
type Entry struct {
	Section string // enclosing [section], "" before the first header
	Key     string // lower-cased key
	Value   string // value after trimming and unquoting; "REDACTED" for secrets
	Line    int    // 1-based line number
}

type position struct {
	file string
	line int
}

// DefaultMaxBufferMem is max_buffer_mem's default in MB: the sniffer's
// (voipmonitor.conf ships max_buffer_mem = 2000). The buffer grows only as
// far as the analysis falls behind, so an idle sensor holds 1 MiB of it;
// the sensor caps it at half the machine's memory.
const DefaultMaxBufferMem = 2000

// Default returns a Config that runs without a file: capture on "any",
// SIP on 5060, SQLite in [DefaultSpoolDir], manager on 127.0.0.1:5029, the
// web UI on 127.0.0.1:8090, everything else disabled.
func Default() *Config {
	return &Config{
		Interface:             "any",
		SIPPorts:              PortRanges{{5060, 5060}},
		IDSensor:              -1,
		SpoolDir:              DefaultSpoolDir,
		Promisc:               true,
		Ringbuf:               50,
		MaxBufferMem:          DefaultMaxBufferMem,
		SQLDriver:             "sqlite",
		CDRSchema:             "voipsensor",
		MySQLHost:             "127.0.0.1",
		MySQLPort:             DefaultMySQLPort,
		MySQLDB:               "voipmonitor",
		MySQLUsername:         "root",
		CDRBatchSize:          500,
		CDRBatchEvery:         500 * time.Millisecond,
		CDRQueueSize:          100000,
		SIPRegister:           true,
		ManagerIP:             DefaultManagerIP,
		ManagerPort:           DefaultManagerPort,
		ManagerMaxConns:       1024,
		FirstRequestTimeout:   5 * time.Second,
		MaxConnsPerIP:         64,
		MetricsBind:           "127.0.0.1:9102",
		WebBind:               "127.0.0.1",
		WebPort:               DefaultWebPort,
		ServerBindPort:        DefaultServerPort,
		ServerDestinationPort: DefaultServerPort,
		RTPTimeout:            300 * time.Second,
		SIPWithoutRTPTimeout:  3600 * time.Second,
		AbsoluteTimeout:       14400 * time.Second,
		LogLevel:              slog.LevelInfo,
		LogFormat:             "text",
		HEP:                   HEP{Port: DefaultHEPPort, DestinationPort: DefaultHEPPort, ServerTransport: "udp", CaptureID: 1},
	}
}

// SQLiteFile returns the SQLite database path: SQLitePath, or
// SpoolDir/voipsensor.db when it is empty.
func (c *Config) SQLiteFile() string {
	if c.SQLitePath != "" {
		return c.SQLitePath
	}
	return filepath.Join(c.SpoolDir, DefaultSQLiteFile)
}

// DSN returns the data source name for SQLDriver: the SQLite file path, or
// a go-sql-driver/mysql DSN. The result contains the MySQL password in clear:
// pass it to the driver, never to a logger.
func (c *Config) DSN() string {
	if c.SQLDriver != "mysql" {
		return c.SQLiteFile()
	}
	host := net.JoinHostPort(c.MySQLHost, strconv.Itoa(c.MySQLPort))
	userinfo := c.MySQLUsername
	if c.MySQLPassword.IsSet() {
		userinfo += ":" + c.MySQLPassword.Reveal()
	}
	return userinfo + "@tcp(" + host + ")/" + c.MySQLDB + "?parseTime=true&loc=UTC"
}

// ManagerAddr returns ManagerIP:ManagerPort, or "" when ManagerPort is 0.
func (c *Config) ManagerAddr() string {
	if c.ManagerPort == 0 {
		return ""
	}
	return net.JoinHostPort(c.ManagerIP, strconv.Itoa(c.ManagerPort))
}

// WebAddr returns WebBind:WebPort, or "" when WebPort is 0.
func (c *Config) WebAddr() string {
	if c.WebPort == 0 {
		return ""
	}
	return net.JoinHostPort(c.WebBind, strconv.Itoa(c.WebPort))
}

// ServerAddr returns ServerBind:ServerBindPort, or "" when ServerBind is empty.
func (c *Config) ServerAddr() string {
	if c.ServerBind == "" {
		return ""
	}
	return net.JoinHostPort(c.ServerBind, strconv.Itoa(c.ServerBindPort))
}
