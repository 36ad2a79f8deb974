package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignoreBookkeeping compares only the option values of two Configs.
var ignoreBookkeeping = cmp.Options{
	cmpopts.IgnoreFields(Config{}, "Sections", "Raw"),
	cmpopts.IgnoreUnexported(Config{}),
}

func TestDefault(t *testing.T) {
	c, warns, err := Parse(strings.NewReader(""), "empty.conf")
	if err != nil || len(warns) != 0 {
		t.Fatalf("Parse(empty) = %v, %v", warns, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	tests := []struct {
		name, got, want string
	}{
		{"manager", c.ManagerAddr(), "127.0.0.1:5029"},
		{"web", c.WebAddr(), "127.0.0.1:8090"},
		{"server", c.ServerAddr(), ""},
		{"dsn", c.DSN(), filepath.Join(DefaultSpoolDir, "voipsensor.db")},
		{"sipport", c.SIPPorts.String(), "5060"},
		{"driver", c.SQLDriver, "sqlite"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  func(c *Config)
		warns []string // Warning.String() values
	}{
		{
			name: "voipmonitor style with sections and comments",
			in: "[general]\n# comment\n; another\ninterface = eth1\nsipport = 5060,5080-5090\nsipport = 6060\n" +
				"id_sensor = 3\nspooldir = /tmp/spool\nsqldriver = mysql\nmysqlhost = db.local\nmysqlport = 3307\n" +
				"mysqldb = vm\nmysqlusername = vm\nmysqlpassword = p#ss;word\n",
			want: func(c *Config) {
				c.Interface = "eth1"
				c.SIPPorts = PortRanges{{5060, 5060}, {5080, 5090}, {6060, 6060}}
				c.IDSensor = 3
				c.SpoolDir = "/tmp/spool"
				c.SQLDriver = "mysql"
				c.MySQLHost = "db.local"
				c.MySQLPort = 3307
				c.MySQLDB = "vm"
				c.MySQLUsername = "vm"
				c.MySQLPassword = "p#ss;word"
			},
		},
		{
			name: "booleans in every spelling",
			in:   "promisc = off\nmanager_enable_unencrypted = YES\nsip-register = 0\n",
			want: func(c *Config) { c.Promisc = false; c.ManagerEnableUnencrypted = true; c.SIPRegister = false },
		},
		{
			name:  "true/on/1",
			in:    "promisc = false\npromisc = on\nmanager_enable_unencrypted = 1\nsip-register = True\n",
			want:  func(c *Config) { c.Promisc = true; c.ManagerEnableUnencrypted = true; c.SIPRegister = true },
			warns: []string{"t.conf:2: promisc: repeated key overrides line 1"},
		},
		{
			name: "durations: bare numbers in the key's unit or Go durations",
			in:   "rtptimeout = 60\nabsolute_timeout = 2h\ncdr_batch_interval = 250\nsipwithoutrtptimeout = 90s\n",
			want: func(c *Config) {
				c.RTPTimeout = time.Minute
				c.AbsoluteTimeout = 2 * time.Hour
				c.CDRBatchEvery = 250 * time.Millisecond
				c.SIPWithoutRTPTimeout = 90 * time.Second
			},
		},
		{
			name: "lists replace the default and append",
			in:   "mi_datagram = udp:127.0.0.1:8080\nmi_datagram = /run/mi.sock\nserver_destination = a.example, b.example\n",
			want: func(c *Config) {
				c.MIDatagram = []string{"udp:127.0.0.1:8080", "/run/mi.sock"}
				c.ServerDestination = []string{"a.example", "b.example"}
			},
		},
		{
			name: "quotes, case-insensitive keys, spacing",
			in:   "  Filter=\" udp port 5060 \"  \nLOGLEVEL = debug\nmi_http = 127.0.0.1:8888\n",
			want: func(c *Config) {
				c.Filter = " udp port 5060 "
				c.LogLevel = slog.LevelDebug
				c.MIHTTP = "127.0.0.1:8888"
			},
		},
		{
			name:  "unknown keys warn",
			in:    "[sec]\nsavegraph = yes\nmanagerport = 0\n",
			want:  func(c *Config) { c.ManagerPort = 0 },
			warns: []string{"t.conf:2: savegraph: unknown key ignored"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := Parse(strings.NewReader(tt.in), "t.conf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.want(want)
			if d := cmp.Diff(want, got, ignoreBookkeeping); d != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", d)
			}
			var ws []string
			for _, w := range warns {
				ws = append(ws, w.String())
			}
			if d := cmp.Diff(tt.warns, ws); d != "" {
				t.Errorf("warnings (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseSections(t *testing.T) {
	c, warns, err := Parse(strings.NewReader("a_unknown = 1\n[general]\ninterface = lo\n[ other ]\nsipport=5062\n"), "s.conf")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"general", "other"}, c.Sections); d != "" {
		t.Errorf("Sections (-want +got):\n%s", d)
	}
	want := []Entry{{"", "a_unknown", "1", 1}, {"general", "interface", "lo", 3}, {"other", "sipport", "5062", 5}}
	if d := cmp.Diff(want, c.Raw); d != "" {
		t.Errorf("Raw (-want +got):\n%s", d)
	}
	if len(warns) != 1 || warns[0].Section != "" || warns[0].Key != "a_unknown" {
		t.Errorf("warnings = %+v", warns)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		line    int
		key     string
		is      error
		errText string
	}{
		{"interface = eth0\nsipport = 5060,70000\n", 2, "sipport", ErrInvalid, `config: bad.conf:2: sipport: invalid value: bad port "70000"`},
		{"sipport = 5090-5080\n", 1, "sipport", ErrInvalid, "config: bad.conf:1: sipport: invalid value: range 5090-5080 is reversed"},
		{"\n\nmanagerport = http\n", 3, "managerport", ErrInvalid, "config: bad.conf:3: managerport: invalid value: not an integer"},
		{"promisc = maybe\n", 1, "promisc", ErrInvalid, "config: bad.conf:1: promisc: invalid value: want yes/no, true/false, on/off or 1/0"},
		{"sqldriver = postgres\n", 1, "sqldriver", ErrInvalid, "config: bad.conf:1: sqldriver: invalid value: want one of sqlite, mysql"},
		{"managerip = localhost\n", 1, "managerip", ErrInvalid, "config: bad.conf:1: managerip: invalid value: want an IP address"},
		{"cdr_batch_interval = 5s\n", 1, "cdr_batch_interval", ErrInvalid, "config: bad.conf:1: cdr_batch_interval: invalid value: 5s out of range [1ms, 1s]"},
		{"mi_datagram = tcp:1.2.3.4:5\n", 1, "mi_datagram", ErrInvalid, "config: bad.conf:1: mi_datagram: invalid value: want udp:IP:port, unix:/path or an absolute unix socket path"},
		{"interface eth0\n", 1, "", ErrSyntax, "config: bad.conf:1: syntax error: want key = value"},
		{"[general\n", 1, "", ErrSyntax, "config: bad.conf:1: syntax error: unterminated section header"},
		{" = x\n", 1, "", ErrSyntax, "config: bad.conf:1: syntax error: empty key"},
		{"filter = a\x00b\n", 1, "filter", ErrInvalid, "config: bad.conf:1: filter: invalid value: control character 0x00"},
		{"interface = lo\nfilter = " + strings.Repeat("x", MaxLineSize) + "\n", 2, "", ErrLineTooLong, "config: bad.conf:2: line too long"},
	}
	for _, tt := range tests {
		_, _, err := Parse(strings.NewReader(tt.in), "bad.conf")
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%.40q) error = %v, want *ParseError", tt.in, err)
			continue
		}
		if pe.File != "bad.conf" || pe.Line != tt.line || pe.Key != tt.key || !errors.Is(err, tt.is) {
			t.Errorf("Parse(%.40q) = {%q %d %q %v}, want {bad.conf %d %q %v}", tt.in, pe.File, pe.Line, pe.Key, pe.Err, tt.line, tt.key, tt.is)
		}
		if err.Error() != tt.errText {
			t.Errorf("Parse(%.40q).Error() = %q, want %q", tt.in, err.Error(), tt.errText)
		}
	}
}

func TestSet(t *testing.T) {
	c := Default()
	if err := c.Set("sipport", "5070-5071"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("SIPPORT", "5080"); err != nil { // Set replaces lists
		t.Fatal(err)
	}
	if got := c.SIPPorts.String(); got != "5080" {
		t.Errorf("SIPPorts = %q, want 5080", got)
	}
	err := c.Set("sipport", "5090,x")
	if !errors.Is(err, ErrInvalid) || c.SIPPorts.String() != "5080" {
		t.Errorf("Set(bad sipport) = %v, SIPPorts = %v; want ErrInvalid and no change", err, c.SIPPorts)
	}
	if err := c.Set("nosuchkey", "1"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Set(unknown) = %v, want ErrUnknownKey", err)
	}
	if err := c.Set("managerport", "65536"); err == nil || err.Error() != "config: managerport: invalid value: 65536 out of range [0, 65535]" {
		t.Errorf("Set(managerport=65536) = %v", err)
	}
	if got, _ := c.Get("sipport"); got != "5080" {
		t.Errorf("Get(sipport) = %q", got)
	}
}

func TestValidate(t *testing.T) {
	key16 := "MDEyMzQ1Njc4OWFiY2RlZg==" // base64("0123456789abcdef")
	tests := []struct {
		name string
		in   string
		want []string // error lines, "" for valid
	}{
		{"aes key and iv", "manager_aes_key = " + key16 + "\nmanager_aes_iv = " + key16 + "\n", nil},
		{"aes key without iv", "manager_aes_key = " + key16 + "\n", []string{"config: manager_aes_iv: invalid value: required when manager_aes_key is set"}},
		{"aes key short", "manager_aes_key = YWJj\nmanager_aes_iv = " + key16 + "\n", []string{"config: v.conf:1: manager_aes_key: invalid value: decodes to 3 bytes, want 16, 24 or 32"}},
		{"aes iv not base64", "manager_aes_key = " + key16 + "\nmanager_aes_iv = !!\n", []string{"config: v.conf:2: manager_aes_iv: invalid value: not base64"}},
		{"destination needs password", "server_destination = 10.0.0.1\n", []string{"config: server_password: invalid value: required when server_destination is set"}},
		{"mysql without host", "sqldriver = mysql\nmysqlhost =\n", []string{"config: v.conf:2: mysqlhost: invalid value: required when sqldriver = mysql"}},
		{"timeouts", "rtptimeout = 600\nabsolute_timeout = 300\n", []string{"config: v.conf:2: absolute_timeout: invalid value: 5m0s is shorter than rtptimeout 10m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse(strings.NewReader(tt.in), "v.conf")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := c.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
				var pe *ParseError
				if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
					t.Errorf("Validate error %v is not a *ParseError wrapping ErrInvalid", err)
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Validate (-want +got):\n%s", d)
			}
		})
	}
}

func TestSecretRedacted(t *testing.T) {
	c, _, err := Parse(strings.NewReader("mysqlpassword = hunter2\nserver_password = s3cr3t\nmanager_aes_key = a2V5a2V5\n"), "s.conf")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("config", "pw", c.MySQLPassword, "cfg", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "pw", c.ServerPassword, "key", c.ManagerAESKey)
	fmt.Fprintf(&buf, "%v %s %+v %#v %q", c.MySQLPassword, c.ServerPassword, *c, c.ManagerAESKey, c.MySQLPassword)
	out := buf.String()
	for _, s := range []string{"hunter2", "s3cr3t", "a2V5a2V5"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q leaked in:\n%s", s, out)
		}
	}
	if !strings.Contains(out, `"pw":"REDACTED"`) || !strings.Contains(out, "key=REDACTED") {
		t.Errorf("REDACTED missing in:\n%s", out)
	}
	if got, _ := c.Get("mysqlpassword"); got != "REDACTED" {
		t.Errorf("Get(mysqlpassword) = %q", got)
	}
	if got := c.MySQLPassword.Reveal(); got != "hunter2" {
		t.Errorf("Reveal() = %q", got)
	}
}

func TestReloadable(t *testing.T) {
	old := Default()
	nw := Default()
	for k, v := range map[string]string{
		"rtptimeout": "30", "loglevel": "debug", "manager_aes_key": "x", // live
		"managerport": "5030", "interface": "eth9", "mysqlpassword": "new", "sipport": "5060,5062", // restart
	} {
		if err := nw.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	applied, restart := Reloadable(old, nw)
	if d := cmp.Diff([]string{"loglevel", "manager_aes_key", "rtptimeout"}, applied); d != "" {
		t.Errorf("applied (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"interface", "managerport", "mysqlpassword", "sipport"}, restart); d != "" {
		t.Errorf("needRestart (-want +got):\n%s", d)
	}
	if a, r := Reloadable(old, Default()); a != nil || r != nil {
		t.Errorf("Reloadable(default, default) = %v, %v", a, r)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := Default()
	for k, v := range map[string]string{
		"filter": `"quoted" value`, "mysqlpassword": " spaced ", "sipport": "5060,6000-6010",
		"mi_datagram": "/run/a.sock", "server_destination": "h1,h2", "loglevel": "warn", "cdr_batch_interval": "300ms",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(k, err)
		}
	}
	got, _, err := Parse(bytes.NewReader(c.Marshal()), "marshal")
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v\n%s", err, c.Marshal())
	}
	if d := cmp.Diff(c, got, ignoreBookkeeping); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "voipsensor.conf")
	if err := os.WriteFile(path, []byte("sipport = 5070\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, warns, err := Load(path)
	if err != nil || len(warns) != 1 || warns[0].File != path || warns[0].Line != 2 {
		t.Fatalf("Load = %v, %v", warns, err)
	}
	if !c.SIPPorts.Contains(5070) || c.SIPPorts.Contains(5060) {
		t.Errorf("SIPPorts = %v", c.SIPPorts)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	if c, _, err := Load(""); err != nil || c.ManagerPort != 5029 {
		t.Errorf(`Load("") = %v, %v`, c, err)
	}
}

func TestPortRangesContains(t *testing.T) {
	rs, err := parsePortRanges("5060, 5080-5090")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		port uint16
		want bool
	}{{5060, true}, {5061, false}, {5079, false}, {5080, true}, {5085, true}, {5090, true}, {5091, false}} {
		if got := rs.Contains(tt.port); got != tt.want {
			t.Errorf("Contains(%d) = %v, want %v", tt.port, got, tt.want)
		}
	}
}

// FuzzParse checks that Parse never panics and that any Config it accepts
// survives Marshal → Parse unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte("interface = eth0\nsipport = 5060,5080-5090\n[general]\nmysqlpassword = \"x\"\n"))
	f.Add([]byte("; c\n# c\nmi_datagram = udp:::1:8080\nloglevel = INFO+2\ncdr_batch_interval = 1ms\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		_ = c.Validate()
		out := c.Marshal()
		c2, _, err := Parse(bytes.NewReader(out), "marshal")
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v\n%s", err, out)
		}
		if d := cmp.Diff(c, c2, ignoreBookkeeping); d != "" {
			t.Fatalf("round trip (-want +got):\n%s\nmarshalled:\n%s", d, out)
		}
	})
}

// TestSampleConfig: deploy/voipsensor.conf documents every option, and the
// default it shows for each is the real default (uncommenting every line
// gives the same configuration as no file).
func TestSampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../deploy/voipsensor.conf")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^# ([a-z_-]+) = ?(.*)$`)
	var body strings.Builder
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen[m[1]] = true
		if m[2] != "" {
			body.WriteString(m[1] + " = " + m[2] + "\n")
		}
	}
	for _, k := range Keys() {
		if !seen[k] {
			t.Errorf("deploy/voipsensor.conf does not document %s", k)
		}
	}
	c, warns, err := Parse(strings.NewReader(body.String()), "sample")
	if err != nil || len(warns) > 0 {
		t.Fatalf("the sample's lines, uncommented: %v %v", err, warns)
	}
	def := Default()
	for _, k := range Keys() {
		got, _ := c.Get(k)
		want, _ := def.Get(k)
		if got != want {
			t.Errorf("%s: the sample shows %q, the default is %q", k, got, want)
		}
	}
}
