package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staskobzar/goami2"
	"github.com/voipsensor/voipsensor/internal/gen"
)

// amiCallEvent is one Newchannel/Newstate/Hangup as a client saw it.
type amiCallEvent struct {
	Event        string `json:"event"`
	Channel      string `json:"channel"`
	Linkedid     string `json:"linkedid"`
	CallerIDName string `json:"calleridname"`
}

// clientReport is what every client (script or in-process) reports.
type clientReport struct {
	Ping              string          `json:"ping"`
	CommandOutput     any             `json:"command_output"`
	BogusResponse     string          `json:"bogus_response"`
	CoreShowItems     int             `json:"coreshow_items"`
	CoreShowListItems int             `json:"coreshow_listitems"`
	WrongSecret       map[string]any  `json:"wrong_secret"`
	Events            []amiCallEvent  `json:"events"`
	Extra             json.RawMessage `json:"-"`
}

// TestAMIClients replays a generated capture (3 answered calls, talking
// 8–12 s, all in progress together) behind a hand-made call whose display
// name tries to inject "Event: Fake", and drives the daemon's AMI port
// with three real client libraries at once: goami2 (in process),
// panoramisk (Debian, /usr/bin/python3) and npm asterisk-manager 0.2.0.
// Each must log in, ping, run a Command, get an error for a bogus action,
// count CoreShowChannels items equal to the calls in progress, be refused
// with a wrong secret, and see every call as Newchannel → Newstate →
// Hangup with one Linkedid, the injected name arriving escaped.
func TestAMIClients(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 15 s of traffic in real time")
	}
	const calls = 3
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.CPS, cfg.TalkTime, cfg.RTCP = calls, 10, 10*time.Second, true
	pcap, truth := generateCapture(t, cfg)
	// Expected calls in progress once all three have started: every call
	// whose end is after the last start (the ground truth says when).
	last := truth[len(truth)-1].Start
	want := 0
	for _, c := range truth {
		if !c.Start.After(last) && c.End.After(last.Add(3*time.Second)) {
			want++
		}
	}
	if want != calls {
		t.Fatalf("ground truth has %d calls overlapping, want %d (generator changed?)", want, calls)
	}
	pcap = prefixCapture(t, pcap, 6*time.Second)
	conf, port := amiConf(t, "")
	d := startDaemon(t, "-r", pcap, "--realtime", "-set", "amiconfig="+conf)
	if !d.waitLog("AMI listening", 5*time.Second) {
		t.Fatal("AMI not listening")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)

	reports := map[string]*clientReport{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(name string, f func() (*clientReport, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			mu.Lock()
			reports[name] = r
			mu.Unlock()
		}()
	}
	run("goami2", func() (*clientReport, error) { return goami2Client(t, addr, calls) })
	script := func(name string, argv ...string) {
		if _, err := exec.LookPath(argv[0]); err != nil {
			t.Logf("%s: %s not installed, skipped (CI installs it)", name, argv[0])
			return
		}
		run(name, func() (*clientReport, error) {
			cmd := exec.Command(argv[0], append(argv[1:], strconv.Itoa(port), "admin", "amipass", strconv.Itoa(calls))...)
			out, err := cmd.Output()
			if err != nil {
				stderr := ""
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Errorf("%s: %v\n%s\n%s", name, err, out, stderr)
				return nil, err
			}
			var r clientReport
			if err := json.Unmarshal(out, &r); err != nil {
				return nil, err
			}
			return &r, nil
		})
	}
	if _, err := os.Stat("/usr/lib/python3/dist-packages/panoramisk"); err == nil {
		script("panoramisk", "/usr/bin/python3", "ami/panoramisk_client.py")
	} else {
		t.Log("panoramisk: python3-panoramisk not installed, skipped (CI installs it)")
	}
	if _, err := os.Stat("ami/node_modules/asterisk-manager"); err == nil {
		script("asterisk-manager", "node", "ami/asterisk_manager_client.js")
	} else {
		t.Log("asterisk-manager: not in test/ami/node_modules, skipped (CI installs it)")
	}
	wg.Wait()

	for name, r := range reports {
		t.Run(name, func(t *testing.T) {
			if r.Ping != "Pong" {
				t.Errorf("Ping = %q, want Pong", r.Ping)
			}
			if !strings.Contains(strings.Join(asStrings(r.CommandOutput), "\n"), ".") {
				t.Errorf("Command output %v, want the version", r.CommandOutput)
			}
			if r.BogusResponse != "Error" {
				t.Errorf("bogus action response %q, want Error", r.BogusResponse)
			}
			if r.CoreShowItems != calls || r.CoreShowListItems != calls {
				t.Errorf("CoreShowChannels items %d, ListItems %d, want %d (calls in progress)", r.CoreShowItems, r.CoreShowListItems, calls)
			}
			if name != "goami2" && r.WrongSecret != nil && r.WrongSecret["message"] != nil && r.WrongSecret["message"] != "Authentication failed" {
				t.Errorf("wrong secret: %v", r.WrongSecret)
			}
			checkCallSequences(t, r.Events, calls+1)
		})
	}
	if len(reports) == 0 {
		t.Fatal("no client ran")
	}
}

func asStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, asStrings(e)...)
		}
		return out
	}
	return nil
}

// checkCallSequences checks that events group into n calls by Linkedid,
// each with both channels going Newchannel → Newstate → Hangup, and that
// the injection call's name arrived escaped.
func checkCallSequences(t *testing.T, evs []amiCallEvent, n int) {
	t.Helper()
	byCall := map[string][]amiCallEvent{}
	for _, e := range evs {
		byCall[e.Linkedid] = append(byCall[e.Linkedid], e)
	}
	if len(byCall) != n {
		t.Errorf("%d Linkedids, want %d", len(byCall), n)
	}
	escaped := false
	for lid, es := range byCall {
		stage := map[string]int{}
		for _, e := range es {
			order := map[string]int{"Newchannel": 1, "Newstate": 2, "Hangup": 3}[e.Event]
			if order < stage[e.Channel] {
				t.Errorf("call %s channel %s: %s after a later stage", lid, e.Channel, e.Event)
			}
			stage[e.Channel] = order
			if e.Event == "Fake" || strings.ContainsAny(e.CallerIDName, "\r\n") {
				t.Errorf("injection got through: %+v", e)
			}
			if e.CallerIDName == `Mallory\rEvent: Fake\rX` {
				escaped = true
			}
		}
		if len(stage) != 2 {
			t.Errorf("call %s: %d channels, want 2", lid, len(stage))
		}
		for ch, s := range stage {
			if s != 3 {
				t.Errorf("call %s channel %s ended at stage %d, want Hangup", lid, ch, s)
			}
		}
	}
	if !escaped {
		t.Errorf("no event carried the escaped injection name %q", `Mallory\rEvent: Fake\rX`)
	}
}

// goami2Client does the checks with github.com/staskobzar/goami2; every
// message must parse (an error on Err() fails: a framing oracle).
func goami2Client(t *testing.T, addr string, calls int) (*clientReport, error) {
	r := &clientReport{}
	// Banner in one segment.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	n, err := raw.Read(buf)
	raw.Close()
	if err != nil || string(buf[:n]) != "Asterisk Call Manager/9.0.0\r\n" {
		t.Errorf("goami2: banner read %q, %v", buf[:n], err)
	}
	// Wrong secret: refused.
	bad, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := goami2.NewClient(bad, "admin", "nope"); err == nil {
		t.Error("goami2: wrong secret accepted")
	} else {
		r.WrongSecret = map[string]any{"error": err.Error()}
	}
	bad.Close()

	// The session itself is read here and every message parsed with
	// goami2.Parse: goami2's Client gives up on a message the application
	// has not taken within 10 ms (chanGiveup), so on a loaded machine its
	// event stream loses Hangups that the server sent.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	br := bufio.NewReader(conn)
	if banner, err := br.ReadString('\n'); err != nil || banner != "Asterisk Call Manager/9.0.0\r\n" {
		return nil, fmt.Errorf("goami2: banner %q, %v", banner, err)
	}
	msgs := make(chan *goami2.Message, 4096)
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				readErr <- err
				return
			}
			b.WriteString(line)
			if line != "\r\n" {
				continue
			}
			m, err := goami2.Parse(b.String())
			if err != nil {
				readErr <- fmt.Errorf("goami2: message %q does not parse: %w", b.String(), err)
				return
			}
			b.Reset()
			msgs <- m
		}
	}()
	var wmu sync.Mutex
	send := func(name, id string, kv ...string) {
		m := goami2.NewAction(name)
		m.AddField("ActionID", id)
		for i := 0; i+1 < len(kv); i += 2 {
			m.AddField(kv[i], kv[i+1])
		}
		wmu.Lock()
		conn.Write(m.Byte())
		wmu.Unlock()
	}
	send("Login", "login", "Username", "admin", "Secret", "amipass")
	send("Ping", "p")
	send("Command", "c", "Command", "sniffer_version")
	send("Bogus", "b")
	hangups, queried := 0, false
	newchan := map[string]bool{}
	items := 0
	for {
		m, ok := <-msgs
		if !ok {
			return nil, <-readErr
		}
		switch m.ActionID() {
		case "login":
			if !m.IsSuccess() {
				return nil, fmt.Errorf("goami2: login refused: %s", m.Field("Message"))
			}
		case "p":
			r.Ping = m.Field("Ping")
		case "c":
			if m.IsResponse() {
				r.CommandOutput = m.FieldValues("Output")
			}
		case "b":
			r.BogusResponse = m.Field("Response")
		case "csc":
			switch m.Field("Event") {
			case "CoreShowChannel":
				items++
			case "CoreShowChannelsComplete":
				r.CoreShowItems = items
				r.CoreShowListItems, _ = strconv.Atoi(m.Field("ListItems"))
			}
			continue
		}
		ev := m.Field("Event")
		switch ev {
		case "Newchannel", "Newstate", "Hangup":
			r.Events = append(r.Events, amiCallEvent{Event: ev, Channel: m.Field("Channel"),
				Linkedid: m.Field("Linkedid"), CallerIDName: m.Field("CallerIDName")})
		}
		if ev == "Hangup" {
			hangups++
			if hangups >= 2*(calls+1) {
				return r, nil
			}
		}
		if ev == "Newchannel" && m.Field("CallerIDNum") != "666" && !strings.HasSuffix(m.Field("Channel"), ";2") {
			newchan[m.Field("Linkedid")] = true
			if len(newchan) >= calls && !queried {
				queried = true
				go func() {
					time.Sleep(500 * time.Millisecond)
					send("CoreShowChannels", "csc")
				}()
			}
		}
	}
}

// TestAMIInjectionCaptureParses checks the crafted capture itself: the
// sensor reads the call with the CRs inside the caller name, so the AMI
// test really feeds the attack through.
func TestAMIInjectionCaptureParses(t *testing.T) {
	pcap, _ := generateCapture(t, gen.Config{Calls: 1, Concurrency: 1, TalkTime: time.Second, Codec: "PCMU",
		Ptime: 20 * time.Millisecond, Payload: "tone", Seed: 3})
	pcap = prefixCapture(t, pcap, 2*time.Second)
	out, err := exec.Command(voipsensorBinary(t), "read", "--json", "-q", pcap).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"Mallory\rEvent: Fake\rX"`) {
		t.Errorf("read --json has no caller name with the CRs:\n%s", out)
	}
}

// TestAMIBadInput sends spec §9 bad input to the daemon's AMI port:
// over-long lines, too many headers, a stray blank line, a slow-loris
// before login, and a flood of unauthenticated connections beyond
// authlimit; the port keeps serving a well-behaved client throughout.
func TestAMIBadInput(t *testing.T) {
	conf, port := amiConf(t, "authtimeout = 1\n")
	// authlimit in amiConf is 400; the flood below opens 450.
	pcap, _ := generateCapture(t, gen.Config{Calls: 1, Concurrency: 1, TalkTime: time.Second, Codec: "PCMU",
		Ptime: 20 * time.Millisecond, Payload: "tone", Seed: 2})
	startDaemon(t, "-r", pcap, "--realtime", "--loop", "-set", "amiconfig="+conf)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "Asterisk Call Manager/") {
			t.Fatalf("banner %q %v", l, err)
		}
		return c, br
	}
	read := func(c net.Conn, br *bufio.Reader) string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b strings.Builder
		for {
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				return b.String()
			}
			b.WriteString(l)
		}
	}
	c, br := dial()
	c.Write([]byte("Action: Login\r\nUsername: admin\r\nSecret: amipass\r\nEvents: off\r\n\r\n"))
	if m := read(c, br); !strings.Contains(m, "Authentication accepted") {
		t.Fatalf("login: %q", m)
	}
	// A 1 MiB line without a newline, then its end and a message end.
	big := strings.Repeat("A", 1<<20)
	c.Write([]byte("Action: Ping\r\nX-Junk: " + big + "\r\n\r\n"))
	if m := read(c, br); m != "Response: Error\r\nMessage: Failed to parse message: line too long\r\n" {
		t.Errorf("1 MiB line: %q", m)
	}
	c.Write([]byte("Action: Ping\r\n" + strings.Repeat("H: v\r\n", 10000) + "\r\n"))
	if m := read(c, br); m != "Response: Error\r\nMessage: Too many lines in message or allocation failure\r\n" {
		t.Errorf("10000 headers: %q", m)
	}
	c.Write([]byte("\r\n"))
	if m := read(c, br); m != "Response: Error\r\nMessage: Missing action in request\r\n" {
		t.Errorf("stray blank line: %q", m)
	}
	// Flood: 450 idle unauthenticated sockets, dialled at once, against a
	// second daemon whose authtimeout (10 s) cannot free a slot during the
	// flood: exactly those beyond authlimit (400) are closed before the
	// banner.
	floodConf, floodPort := amiConf(t, "authtimeout = 10\n")
	startDaemon(t, "-r", pcap, "--realtime", "--loop", "-set", "amiconfig="+floodConf)
	floodAddr := "127.0.0.1:" + strconv.Itoa(floodPort)
	flood := make([]net.Conn, 450)
	var dialWG sync.WaitGroup
	for i := range flood {
		dialWG.Add(1)
		go func() {
			defer dialWG.Done()
			if fc, err := net.Dial("tcp", floodAddr); err == nil {
				flood[i] = fc
			}
		}()
	}
	dialWG.Wait()
	// Read every socket before closing any: closing one frees a slot, and
	// the server may not have accepted the excess ones yet.
	refused, failed := 0, 0
	for _, fc := range flood {
		if fc == nil {
			failed++
			continue
		}
		fc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		if n, err := fc.Read(b); n == 0 && err != nil {
			refused++
		}
	}
	for _, fc := range flood {
		if fc != nil {
			fc.Close()
		}
	}
	if refused != 50 || failed != 0 {
		t.Errorf("%d of 450 flood sockets refused before the banner (%d dials failed), want 50 (authlimit 400)", refused, failed)
	}
	// Slow-loris before login: one byte every 300 ms is cut at authtimeout.
	sc, sbr := dial()
	start := time.Now()
	for i := 0; i < 20; i++ {
		if _, err := sc.Write([]byte("A")); err != nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	sc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := sbr.ReadByte(); err == nil {
		t.Error("slow-loris got data, want close")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("slow-loris lasted %v", d)
	}
	// The logged-in session still works.
	c.Write([]byte("Action: Ping\r\nActionID: after\r\n\r\n"))
	if m := read(c, br); !strings.Contains(m, "Ping: Pong") {
		t.Errorf("after bad input: %q", m)
	}
}
