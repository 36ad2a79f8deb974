package ami

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/event"
)

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", MaxLine+1)
	many := strings.Repeat("H: v\r\n", MaxHeaders+1)
	tests := []struct {
		name, in string
		want     []string // "err:<error>" or the Action of each message
	}{
		{"crlf", "Action: Ping\r\nActionID: 1\r\n\r\n", []string{"Ping"}},
		{"bare lf", "Action: Ping\n\n", []string{"Ping"}},
		{"no space, lower case", "action:login\r\n\r\n", []string{"login"}},
		{"empty action then real", "Action: \r\nAction: Ping\r\n\r\n", []string{"Ping"}},
		{"stray blank line", "\r\n", []string{""}},
		{"pipelined", "Action: A\r\n\r\nAction: B\n\n", []string{"A", "B"}},
		{"line too long", "Action: Ping\r\nX: " + long + "\r\n\r\nAction: B\r\n\r\n", []string{"err:" + ErrLineTooLong.Error(), "B"}},
		{"line exactly max", "Action: Ping\r\n" + strings.Repeat("y", MaxLine) + "\r\n\r\n", []string{"Ping"}},
		{"too many headers", "Action: Ping\r\n" + many + "\r\n", []string{"err:" + ErrTooManyHeaders.Error()}},
		{"space before colon does not match", "Action : Ping\r\n\r\n", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Feed byte by byte: split reads must not change the result.
			for _, step := range []int{len(tt.in), 1, 7} {
				var f Framer
				var got []string
				in := []byte(tt.in)
				for len(in) > 0 {
					n := min(step, len(in))
					f.Feed(in[:n], func(m *Message, err error) {
						if err != nil {
							got = append(got, "err:"+err.Error())
							return
						}
						got = append(got, m.Action())
					})
					in = in[n:]
				}
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("step %d: got %q, want %q", step, got, tt.want)
				}
			}
		})
	}
}

func TestFramerBoundedMemory(t *testing.T) {
	var f Framer
	chunk := []byte(strings.Repeat("z", 64<<10))
	for i := 0; i < 16; i++ { // 1 MiB without a newline
		f.Feed(chunk, func(*Message, error) { t.Fatal("no message expected") })
	}
	if cap(f.line) > 2*MaxLine+64 {
		t.Errorf("line buffer grew to %d bytes", cap(f.line))
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Alice", "Alice"},
		{"Eve\r\nEvent: Fake\r\n", `Eve\r\nEvent: Fake\r\n`},
		{`back\slash "q" it's?`, `back\\slash \"q\" it\'s\?`},
		{"tab\there\x01\x7f", `tab\there\x01\x7f`},
		{"Žofie", "Žofie"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

const testConf = `; test manager.conf
[general]
enabled = yes
port = 0
bindaddr = 127.0.0.1
authtimeout = 2
authlimit = 3
timestampevents = no
displayconnects = no
writetimeout = 200

[admin]
secret = s3cret
read = all
write = system,call,reporting,command,user
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.0

[nowrite]
secret = pw
read = call

[filtered]
secret = pw
read = all
write = system
eventfilter = !Event: Cdr
eventfilter(name(Newchannel),header(CallerIDNum),method(starts_with)) => 100
`

func parseTestConf(t *testing.T) *Config {
	t.Helper()
	c, err := ParseConfig(strings.NewReader(testConf))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseConfig(t *testing.T) {
	c := parseTestConf(t)
	if c.AuthTimeout != 2*time.Second || c.AuthLimit != 3 || c.WriteTimeout != 200*time.Millisecond || c.DisplayConnects {
		t.Errorf("general = %+v", c)
	}
	if len(c.Users) != 3 {
		t.Fatalf("users = %d, want 3", len(c.Users))
	}
	a := c.User("ADMIN")
	if a == nil || a.Secret != "s3cret" || a.Read != command.PermAll ||
		a.Write != command.PermSystem|command.PermCall|command.PermReporting|command.PermCommand|command.PermUser {
		t.Fatalf("admin = %+v", a)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{{"127.0.0.1", true}, {"127.0.0.200", true}, {"10.0.0.1", false}} {
		if got := a.Allowed(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Allowed(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if f := c.User("filtered"); len(f.Filters) != 2 || f.Filters[0].Include || f.Filters[1].Name != "Newchannel" {
		t.Errorf("filters = %+v", f.Filters)
	}
	if got := a.Secret.LogValue().String(); got != "REDACTED" {
		t.Errorf("secret logs as %q", got)
	}
	for _, bad := range []string{"[general]\nport = x\n", "[u]\npermit = nonsense\n", "[u]\nread = bogus\n",
		"[u]\neventfilter = (\n", "[general]\nwritetimeout = 50\n", "key = v\n"} {
		if _, err := ParseConfig(strings.NewReader(bad)); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%q) err = %v, want ErrConfig", bad, err)
		}
	}
}

func TestFilters(t *testing.T) {
	newch := []byte("Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/100-1\r\nCallerIDNum: 100\r\n\r\n")
	cdr := []byte("Event: Cdr\r\nPrivilege: cdr,all\r\nSource: 200\r\n\r\n")
	mk := func(crit, pat string) *Filter {
		f, err := ParseFilter(crit, pat)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name       string
		fs         []*Filter
		newch, cdr bool
	}{
		{"none", nil, true, true},
		{"legacy include across lines", []*Filter{mk("", "Event: Newchannel.*Channel: SIP/")}, true, false},
		{"legacy exclude", []*Filter{mk("", "!Event: Cdr")}, true, false},
		{"advanced header", []*Filter{mk("name(Cdr),header(Source),method(exact)", "200")}, false, true},
		{"include then exclude", []*Filter{mk("", "Event"), mk("action(exclude),header(CallerIDNum),method(contains)", "10")}, false, true},
	}
	for _, tt := range tests {
		if got := passFilters(tt.fs, "Newchannel", newch); got != tt.newch {
			t.Errorf("%s: Newchannel pass = %v, want %v", tt.name, got, tt.newch)
		}
		if got := passFilters(tt.fs, "Cdr", cdr); got != tt.cdr {
			t.Errorf("%s: Cdr pass = %v, want %v", tt.name, got, tt.cdr)
		}
	}
	for _, bad := range [][2]string{{"", "("}, {"method(regex)", ""}, {"bogus(x)", "a"}, {"name(a),name(b)", ""}} {
		if _, err := ParseFilter(bad[0], bad[1]); !errors.Is(err, ErrFilter) {
			t.Errorf("ParseFilter(%q, %q) err = %v", bad[0], bad[1], err)
		}
	}
}

func TestActionName(t *testing.T) {
	for in, want := range map[string]string{"listregisters": "ListRegisters", "sniffer_stat": "SnifferStat",
		"active_call_info": "ActiveCallInfo", "getverbuild": "GetVerBuild", "zzz": "Zzz",
		"listcalls_all": "ListCallsAll", "exists_aes_key": "ExistsAesKey", "manager_file": "ManagerFile"} {
		if got := ActionName(in); got != want {
			t.Errorf("ActionName(%q) = %q, want %q", in, got, want)
		}
	}
}

// inProgress registers a calls_in_progress command listing one answered
// call (the command/calls command's columns).
func inProgress(reg *command.Registry) {
	reg.Register(command.Command{Name: inProgressCommand, Perm: command.PermCall, Doc: "calls in progress",
		Run: func(ctx context.Context, req *command.Request) (command.Result, error) {
			return &command.Table{Columns: []command.Column{{Name: "callreference"}, {Name: "callid"}, {Name: "caller"},
				{Name: "callername"}, {Name: "called"}, {Name: "calldate"}, {Name: "state"}, {Name: "duration"}}, Len: 1,
				Emit: func(i int, w command.CellWriter) {
					w.Str("0x7")
					w.Str("c7@x")
					w.Str("100")
					w.Str("Al")
					w.Str("200")
					w.Time(time.Unix(1700000000, 0))
					w.Str("answered")
					w.Int(75)
				}}, nil
		}})
}

type harness struct {
	srv    *Server
	reg    *command.Registry
	bus    *event.Bus
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, mutate func(*Config, *Options)) *harness {
	t.Helper()
	h := newHarness(t, mutate)
	h.start(t)
	return h
}

// newHarness builds a server on a loopback port without running it.
func newHarness(t *testing.T, mutate func(*Config, *Options)) *harness {
	t.Helper()
	cfg := parseTestConf(t)
	reg := command.NewRegistry()
	reg.Register(command.Command{Name: "list_things", Perm: command.PermCall, Doc: "things",
		Run: func(ctx context.Context, req *command.Request) (command.Result, error) {
			return &command.Table{Columns: []command.Column{{Name: "name"}, {Name: "caller_name"}}, Len: 2,
				Emit: func(i int, w command.CellWriter) {
					w.Int(int64(i))
					w.Str("Eve\r\nEvent: Fake")
				}}, nil
		}})
	reg.Register(command.Command{Name: "hello", Perm: command.PermSystem, Doc: "greets",
		Run: func(ctx context.Context, req *command.Request) (command.Result, error) {
			return command.Text("hello\nworld " + strings.Join(req.Args, ",")), nil
		}})
	inProgress(reg)
	bus := event.NewBus()
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FailDelay: 10 * time.Millisecond}
	if mutate != nil {
		mutate(cfg, &opts)
	}
	srv := New(reg, bus, cfg, opts)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	return &harness{srv: srv, reg: reg, bus: bus, addr: srv.Addr().String()}
}

// start runs the server until the test ends; Run must return nil.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.srv.Run(ctx) }()
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// stop cancels Run and returns its result (once; later calls return nil).
func (h *harness) stop() error {
	h.cancel()
	if h.done == nil {
		return nil
	}
	err := <-h.done
	h.done = nil
	return err
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (h *harness) dial(t *testing.T) *client {
	t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	banner, err := cl.br.ReadString('\n')
	if err != nil || banner != "Asterisk Call Manager/9.0.0\r\n" {
		t.Fatalf("banner %q, %v", banner, err)
	}
	return cl
}

func (cl *client) send(s string) {
	if _, err := cl.c.Write([]byte(s)); err != nil {
		cl.t.Fatal(err)
	}
}

// read returns the next message as text, or "" on EOF.
func (cl *client) read() string {
	cl.t.Helper()
	cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for {
		line, err := cl.br.ReadString('\n')
		if err != nil {
			return b.String()
		}
		if !strings.HasSuffix(line, "\r\n") {
			cl.t.Fatalf("line without CRLF: %q", line)
		}
		if line == "\r\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

// readUntil reads messages until one contains sub and returns them all.
func (cl *client) readUntil(sub string) []string {
	cl.t.Helper()
	var out []string
	for {
		m := cl.read()
		if m == "" {
			cl.t.Fatalf("EOF before %q; got %q", sub, out)
		}
		out = append(out, m)
		if strings.Contains(m, sub) {
			return out
		}
	}
}

func (cl *client) login(user, secret string) {
	cl.t.Helper()
	cl.send("Action: Login\r\nUsername: " + user + "\r\nSecret: " + secret + "\r\nActionID: L\r\n\r\n")
	if m := cl.read(); m != "Response: Success\r\nActionID: L\r\nMessage: Authentication accepted\r\n" {
		cl.t.Fatalf("login reply %q", m)
	}
}

func TestSessionBasics(t *testing.T) {
	h := startServer(t, nil)
	cl := h.dial(t)
	// Before login only Login, Challenge and Logoff run.
	cl.send("Action: Ping\r\nActionID: p0\r\n\r\n")
	if m := cl.read(); m != "Response: Error\r\nActionID: p0\r\nMessage: Permission denied\r\n" {
		t.Errorf("ping before login: %q", m)
	}
	cl.send("\r\n")
	if m := cl.read(); m != "Response: Error\r\nMessage: Missing action in request\r\n" {
		t.Errorf("stray blank line: %q", m)
	}
	cl.login("admin", "s3cret")
	if m := cl.read(); !strings.HasPrefix(m, "Event: FullyBooted\r\nPrivilege: system,all\r\n") {
		t.Errorf("no FullyBooted: %q", m)
	}
	tests := []struct{ req, wantPrefix string }{
		{"action: ping\r\nActionID: a/b/1\r\n\r\n", "Response: Success\r\nActionID: a/b/1\r\nPing: Pong\r\nTimestamp: "},
		{"Action: Bogus\r\nActionID: 2\r\n\r\n", "Response: Error\r\nActionID: 2\r\nMessage: Invalid/unknown command: Bogus. Use Action: ListCommands"},
		{"Action: Login\r\nUsername: admin\r\nSecret: s3cret\r\n\r\n", "Response: Success\r\nMessage: Already authenticated\r\n"},
		{"Action: Ping\r\nX: " + strings.Repeat("a", 2000) + "\r\n\r\n", "Response: Error\r\nMessage: Failed to parse message: line too long\r\n"},
		{"Action: Ping\r\n" + strings.Repeat("H: v\r\n", 200) + "\r\n", "Response: Error\r\nMessage: Too many lines in message or allocation failure\r\n"},
		{"Action: Command\r\nActionID: c\r\nCommand: hello a b\r\n\r\n", "Response: Success\r\nActionID: c\r\nMessage: Command output follows\r\nOutput: hello\r\nOutput: world a,b\r\n"},
		{"Action: Command\r\nCommand: nosuch\r\n\r\n", "Response: Error\r\nMessage: Command output follows\r\nOutput: No such command 'nosuch'\r\n"},
		{"Action: Filter\r\nFilter: (\r\n\r\n", "Response: Error\r\nMessage: Filter did not compile.  Check the syntax of the filter given.\r\n"},
		{"Action: Events\r\nEventMask: foo\r\n\r\n", "Response: Success\r\nEvents: Off\r\n"},
		{"Action: Events\r\nEventMask: on\r\n\r\n", "Response: Success\r\nEvents: On\r\n"},
		{"Action: Challenge\r\n\r\n", "Response: Error\r\nMessage: Must specify AuthType\r\n"},
		{"Action: Ping\r\nActionID: %s%n%x\r\n\r\n", "Response: Success\r\nActionID: %s%n%x\r\n"},
	}
	for _, tt := range tests {
		cl.send(tt.req)
		if m := cl.read(); !strings.HasPrefix(m, tt.wantPrefix) {
			t.Errorf("%.40q: got %q, want prefix %q", tt.req, m, tt.wantPrefix)
		}
	}
	// A registry command as its own action, rendered as a list; the
	// values are escaped.
	cl.send("Action: ListThings\r\nActionID: lt\r\n\r\n")
	got := cl.readUntil("ListThingsComplete")
	if len(got) != 4 || !strings.Contains(got[0], "EventList: start\r\n") ||
		!strings.Contains(got[1], "Event: ListThingsEntry\r\nActionID: lt\r\nName: 0\r\nCallerName: Eve\\r\\nEvent: Fake\r\n") ||
		!strings.Contains(got[3], "EventList: Complete\r\nListItems: 2\r\n") {
		t.Errorf("ListThings: %q", got)
	}
	cl.send("Action: CoreShowChannels\r\nActionID: csc\r\n\r\n")
	got = cl.readUntil("CoreShowChannelsComplete")
	if len(got) != 3 || !strings.Contains(got[1], "Channel: SIP/100-00000007\r\nChannelState: 6\r\n") ||
		!strings.Contains(got[2], "ListItems: 1\r\n") {
		t.Errorf("CoreShowChannels: %q", got)
	}
	cl.send("Action: Logoff\r\n\r\n")
	if m := cl.read(); m != "Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n" {
		t.Errorf("logoff: %q", m)
	}
	if m := cl.read(); m != "" {
		t.Errorf("after logoff: %q, want EOF", m)
	}
}

func TestLoginFailures(t *testing.T) {
	h := startServer(t, nil)
	for _, req := range []string{
		"Action: Login\r\nUsername: admin\r\nSecret: wrong\r\n\r\n",
		"Action: Login\r\nUsername: nobody\r\nSecret: s3cret\r\n\r\n",
		"Action: Login\r\nAuthType: MD5\r\nUsername: admin\r\nKey: 00\r\n\r\n",
	} {
		cl := h.dial(t)
		cl.send(req)
		if m := cl.read(); m != "Response: Error\r\nMessage: Authentication failed\r\n" {
			t.Errorf("%q: %q", req, m)
		}
		if m := cl.read(); m != "" {
			t.Errorf("%q: socket still open, read %q", req, m)
		}
	}
	// MD5 challenge: Key = md5(challenge + secret) in lower-case hex;
	// upper case fails.
	for _, upper := range []bool{false, true} {
		cl := h.dial(t)
		cl.send("Action: Challenge\r\nAuthType: md5\r\nActionID: ch\r\n\r\n")
		m := cl.read()
		ch := strings.TrimSuffix(m[strings.Index(m, "Challenge: ")+len("Challenge: "):], "\r\n")
		sum := md5.Sum([]byte(ch + "s3cret"))
		key := hex.EncodeToString(sum[:])
		if upper {
			key = strings.ToUpper(key)
		}
		cl.send("Action: Login\r\nAuthType: MD5\r\nUsername: admin\r\nKey: " + key + "\r\n\r\n")
		m = cl.read()
		if ok := strings.Contains(m, "Authentication accepted"); ok == upper {
			t.Errorf("md5 upper=%v: %q", upper, m)
		}
	}
	if st := h.srv.Stats(); st.LoginsFailed != 4 || st.LoginsOK != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPermissions(t *testing.T) {
	h := startServer(t, nil)
	cl := h.dial(t)
	cl.login("nowrite", "pw")
	for _, a := range []string{"CoreShowChannels", "Command", "ListThings", "Status", "UserEvent", "Filter"} {
		cl.send("Action: " + a + "\r\n\r\n")
		if m := cl.read(); m != "Response: Error\r\nMessage: Permission denied\r\n" {
			t.Errorf("%s with empty write=: %q", a, m)
		}
	}
	for _, a := range []string{"Ping", "ListCommands", "Events\r\nEventMask: off"} {
		cl.send("Action: " + a + "\r\n\r\n")
		if m := cl.read(); !strings.HasPrefix(m, "Response: Success") {
			t.Errorf("%s with empty write=: %q", a, m)
		}
	}
}

func TestAuthLimitAndTimeout(t *testing.T) {
	h := startServer(t, func(c *Config, _ *Options) { c.AuthTimeout = 300 * time.Millisecond })
	var idle []*client
	for i := 0; i < 3; i++ {
		idle = append(idle, h.dial(t))
	}
	// The fourth unauthenticated connection is closed before the banner.
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Errorf("over authlimit: read %d bytes, want close before banner", n)
	}
	// Idle ones are closed after authtimeout (slow-loris: one byte at a time).
	idle[0].send("A")
	start := time.Now()
	if m := idle[0].read(); m != "" {
		t.Errorf("idle: %q", m)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closed after %v, want ~authtimeout", d)
	}
}

func TestEventsEscapedAndFiltered(t *testing.T) {
	h := startServer(t, nil)
	all := h.dial(t)
	all.login("admin", "s3cret")
	all.readUntil("FullyBooted")
	f := h.dial(t)
	f.login("filtered", "pw")
	f.readUntil("FullyBooted")
	start := time.Unix(1700000000, 0)
	h.bus.Publish(&event.Event{Kind: event.CallNew, CallRef: 1, Caller: "100", CallerName: "Eve\r\nEvent: Fake\r\n",
		Called: "200", Start: start, Time: start})
	h.bus.Publish(&event.Event{Kind: event.CallEnd, CallRef: 1, Caller: "100", Called: "200", Code: 486, State: "failed",
		Start: start, Time: start.Add(time.Second), Duration: time.Second})
	got := all.readUntil("Event: Cdr")
	var names []string
	for _, m := range got {
		if strings.Contains(m, "\r\nEvent: Fake") {
			t.Errorf("injected header: %q", m)
		}
		names = append(names, strings.TrimPrefix(strings.SplitN(m, "\r\n", 2)[0], "Event: "))
	}
	want := "Newchannel Newchannel DialBegin DialEnd Hangup Hangup Cdr"
	if strings.Join(names, " ") != want {
		t.Errorf("events %q, want %q", names, want)
	}
	if !strings.Contains(got[0], "CallerIDName: Eve\\r\\nEvent: Fake\\r\\n\r\n") ||
		!strings.Contains(got[0], "Linkedid: 1700000000.2\r\n") ||
		!strings.Contains(got[4], "Cause: 17\r\nCause-txt: User busy\r\nTechCause: 486\r\n") {
		t.Errorf("rendering: %q", got)
	}
	// The filtered user gets Newchannel only with CallerIDNum 100…, and
	// no Cdr (legacy exclude); the rest of its stream is what passes.
	m := f.read()
	if !strings.HasPrefix(m, "Event: Newchannel\r\n") || !strings.Contains(m, "CallerIDNum: 100") {
		t.Errorf("filtered first: %q", m)
	}
	h.bus.Publish(&event.Event{Kind: event.CallNew, CallRef: 2, Caller: "999", Called: "1", Start: start})
	all.readUntil("DialBegin")
	f.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		line, err := f.br.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "Event: Cdr") || strings.Contains(line, "CallerIDNum: 999") {
			t.Errorf("filtered session got %q", line)
		}
	}
}

func TestSlowConsumerCutOff(t *testing.T) {
	h := startServer(t, func(c *Config, o *Options) {
		c.WriteTimeout = 100 * time.Millisecond
		o.QueueMessages = 1 << 20
		o.QueueBytes = 1 << 30
	})
	stalled := h.dial(t)
	stalled.login("admin", "s3cret")
	if tc, ok := stalled.c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	start := time.Unix(1700000000, 0)
	deadline := time.Now().Add(10 * time.Second)
	for i := uint64(0); h.srv.Stats().SlowConsumers() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("stalled session never cut off")
		}
		h.bus.Publish(&event.Event{Kind: event.CallNew, CallRef: i, Caller: strings.Repeat("1", 200), Called: "2", Start: start})
		if i%256 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	sharedtest.Eventually(t, 5*time.Second, "the cut-off session to be gone", func() bool { return h.srv.Stats().Active == 0 })
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("Action: Login\r\nUsername: a\r\nSecret: b\r\n\r\n"))
	f.Add([]byte("\n\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fr Framer
		var whole []string
		fr.Feed(in, func(m *Message, err error) {
			if len(m.Headers) > MaxHeaders {
				t.Fatalf("%d headers", len(m.Headers))
			}
			for _, h := range m.Headers {
				if len(h.Name)+len(h.Value) > MaxLine+1 || strings.ContainsAny(h.Value, "\n") {
					t.Fatalf("bad header %q", h)
				}
			}
			whole = append(whole, m.Action())
		})
		// Split reads give the same messages.
		var split []string
		var fr2 Framer
		for i := range in {
			fr2.Feed(in[i:i+1], func(m *Message, err error) { split = append(split, m.Action()) })
		}
		if strings.Join(whole, "\x00") != strings.Join(split, "\x00") {
			t.Fatalf("split reads differ: %q vs %q", whole, split)
		}
		if e := Escape(string(in)); strings.ContainsAny(e, "\r\n") {
			t.Fatalf("Escape left CR/LF: %q", e)
		}
	})
}
