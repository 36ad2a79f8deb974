package server

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

const testPassword = "s3cret"

// testKey is a manager AES-128-CBC key for gui_command wrapping; it
// ignores the cipher name (the tests use aes-128-cbc only).
type testKey struct{ k SessionKey }

func (t testKey) Encrypt(_ string, pt []byte) ([]byte, error) { return t.k.Encrypt(pt) }
func (t testKey) Decrypt(_ string, ct []byte) ([]byte, error) { return t.k.Decrypt(ct) }

// startServer runs a Server on a loopback port with short timers.
func startServer(t *testing.T, mod func(*Config)) (*Server, string) {
	t.Helper()
	return startServerPrep(t, mod, nil)
}

// startServerPrep is startServer with prep run on the Server before it
// binds (to replace its hooks).
func startServerPrep(t *testing.T, mod func(*Config), prep func(*Server)) (*Server, string) {
	t.Helper()
	cfg := Config{
		Addr: "127.0.0.1:0", Password: testPassword, SensorID: 1000,
		ServiceRSABits: 2048, PingEvery: 200 * time.Millisecond, PongTimeout: 300 * time.Millisecond,
		TaskTimeout: 2 * time.Second, DuplicateDelay: 10 * time.Millisecond,
		AuthDelay: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(srv)
	}
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// fakeExec answers "listcalls" with a one-call legacy table naming the
// sensor, "echo X" with X, and "sleep" by blocking until ctx ends.
func fakeExec(id int) Exec {
	return func(ctx context.Context, line string, w io.Writer) error {
		switch {
		case line == "listcalls":
			fmt.Fprintf(w, `[["callreference","callid"],["0x%x","call-of-%d"]]`, id, id)
		case strings.HasPrefix(line, "echo "):
			io.WriteString(w, strings.TrimPrefix(line, "echo "))
		case strings.HasPrefix(line, "big "):
			n, _ := strconv.Atoi(strings.TrimPrefix(line, "big "))
			for i := range n {
				w.Write([]byte{byte('a' + i%26)})
			}
		case line == "sleep":
			<-ctx.Done()
			return ctx.Err()
		default:
			io.WriteString(w, "command not found\n")
		}
		return nil
	}
}

// startProbe runs a Probe until the test ends (or stop is called).
func startProbe(t *testing.T, dests []string, id int, password string) (p *Probe, stop func()) {
	t.Helper()
	p, err := NewProbe(ProbeConfig{
		Destinations: dests, Password: password, SensorID: id, Exec: fakeExec(id),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ReceiveTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return p, stop
}

func activeIDs(t *testing.T, addr string) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := Active(ctx, addr)
	if err != nil {
		t.Fatalf("Active: %v", err)
	}
	ids := []int{}
	for _, s := range r.Services {
		ids = append(ids, s.SensorID)
	}
	if r.Count != len(ids) {
		t.Errorf("active count %d, services %d", r.Count, len(ids))
	}
	return ids
}

func gui(t *testing.T, addr string, id int, line string, key Cipher) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := GUICommand(ctx, addr, id, line, key, "aes-128-cbc")
	if err != nil {
		t.Fatalf("GUICommand(%d, %.40q): %v", id, line, err)
	}
	return string(b)
}

func TestActiveAndRelay(t *testing.T) {
	srv, addr := startServer(t, nil)
	if got := activeIDs(t, addr); len(got) != 0 {
		t.Fatalf("active before any sensor = %v", got)
	}
	// The empty reply is exactly {"count":0} (spec 7).
	raw, _ := roundTrip(context.Background(), addr, []byte(`{"type_connection":"manager_command","command":"active"}`))
	if string(raw) != `{"count":0}` {
		t.Errorf("empty active = %q, want {\"count\":0}", raw)
	}
	for _, id := range []int{3, 1, 2} {
		startProbe(t, []string{addr}, id, testPassword)
	}
	sharedtest.Eventually(t, 10*time.Second, "three sensors active", func() bool { return len(srv.Active()) == 3 })
	if got, want := activeIDs(t, addr), []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("active ids = %v, want %v", got, want)
	}
	for _, id := range []int{1, 2, 3} {
		got := gui(t, addr, id, "listcalls", nil)
		want := fmt.Sprintf(`[["callreference","callid"],["0x%x","call-of-%d"]]`, id, id)
		if got != want {
			t.Errorf("gui_command %d listcalls = %q, want %q", id, got, want)
		}
	}
	if got := gui(t, addr, 9, "listcalls", nil); got != TextMissingService {
		t.Errorf("unknown sensor: %q, want %q", got, TextMissingService)
	}
	raw, _ = roundTrip(context.Background(), addr, []byte(`{"type_connection":"manager_command","command":"bogus"}`))
	if string(raw) != "unknown command: bogus" {
		t.Errorf("unknown manager_command = %q", raw)
	}
	// A large answer crosses many CBC blocks and writer flushes.
	const n = 1<<20 + 5
	got := gui(t, addr, 2, "big "+strconv.Itoa(n), nil)
	ok := len(got) == n
	for i := 0; ok && i < n; i++ {
		ok = got[i] == byte('a'+i%26)
	}
	if !ok {
		t.Errorf("large relay: got %d bytes (content ok: %v), want %d", len(got), ok, n)
	}
}

func TestGUICommandAES(t *testing.T) {
	key := testKey{SessionKey{CKey: "0123456789abcdef0123456789abcdef", IVec: "fedcba9876543210"}}
	_, addr := startServer(t, func(c *Config) { c.ManagerKey = key })
	startProbe(t, []string{addr}, 7, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor active", func() bool { return len(activeIDs(t, addr)) == 1 })
	if got := gui(t, addr, 7, "echo hi", key); got != "hi" {
		t.Errorf("AES gui_command = %q, want hi", got)
	}
	// The reply really is "aes:"-wrapped on the wire.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := GUICommand(ctx, addr, 7, "echo hi", nil, "")
	if err != nil || string(raw) != TextNeedAES {
		t.Errorf("plaintext gui_command with a key = %q, %v; want %q", raw, err, TextNeedAES)
	}
	msg := []byte(`{"type_connection":"gui_command","sensor_id":7,"command":"echo x"}`)
	ct, _ := key.Encrypt("", msg)
	raw, _ = roundTrip(ctx, addr, append(append([]byte("aes-128-cbc:"), ct...), ":sea"...))
	if !bytes.HasPrefix(raw, []byte("aes:")) {
		t.Fatalf("AES reply %q lacks aes: prefix", raw)
	}
	if pt, err := key.Decrypt("", raw[4:]); err != nil || string(pt) != "x" {
		t.Errorf("AES reply decrypts to %q, %v", pt, err)
	}
	// Exempt commands pass in plaintext.
	if got := gui(t, addr, 7, "getversion", nil); got != "command not found\n" {
		t.Errorf("exempt plaintext command = %q", got)
	}
	// A ciphertext under another key fails like the manager API.
	other := testKey{SessionKey{CKey: "ffffffffffffffffffffffffffffffff", IVec: "0000000000000000"}}
	ct, _ = other.Encrypt("", msg)
	raw, _ = roundTrip(ctx, addr, append(append([]byte("aes-128-cbc:"), ct...), ":sea"...))
	if string(raw) != TextFailedAES {
		t.Errorf("wrong key: %q, want %q", raw, TextFailedAES)
	}
}

func TestRefusals(t *testing.T) {
	srv, addr := startServer(t, nil)
	p, _ := startProbe(t, []string{addr}, 5, "wrong")
	sharedtest.Eventually(t, 10*time.Second, "bad password refusal", func() bool {
		var re *RefusedError
		return errors.As(p.LastError(), &re) && re.Reason == TextBadPassword
	})
	ok, _ := startProbe(t, []string{addr}, 6, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 6 active", func() bool { return ok.Connected() != "" })
	dup, _ := startProbe(t, []string{addr}, 6, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "duplicate refusal", func() bool {
		var re *RefusedError
		return errors.As(dup.LastError(), &re) && re.Reason == "client with sensor_id 6 is already connected, refusing connection"
	})
	same, _ := startProbe(t, []string{addr}, 1000, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "same-id refusal", func() bool {
		var re *RefusedError
		return errors.As(same.LastError(), &re) && re.Reason == TextSameSensorID
	})
	if got := srv.Active(); len(got) != 1 || got[0].SensorID != 6 {
		t.Errorf("active after refusals = %+v, want only sensor 6", got)
	}
	if got := gui(t, addr, 6, "echo still", nil); got != "still" {
		t.Errorf("sensor 6 after duplicate attempts = %q", got)
	}
}

// rawService opens a service connection by hand and returns the conn and
// the server's public key.
func rawService(t *testing.T, addr string) (net.Conn, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, `{"type_connection":"service"}`+"\r\n")
	b, err := readPlain(c, 0)
	if err != nil {
		t.Fatalf("rsa key block: %v", err)
	}
	return c, b
}

func TestMalformedInput(t *testing.T) {
	srv, addr := startServer(t, nil)
	startProbe(t, []string{addr}, 4, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 4 active", func() bool { return len(srv.Active()) == 1 })
	ctx := context.Background()
	for _, tt := range []struct{ in, want string }{
		{`{"type_connection":"manager_command",` + "\r\n", TextMalformed},
		{`{"type_connection":}`, TextMalformed},
		{"not json at all\r\n", TextMalformed},
		{`{"type_connection":"gui_command","sensor_id":"x","command":"echo"}`, TextNoSensorID},
		{`{"type_connection":"gui_command","command":"echo"}`, TextNoSensorID},
	} {
		if got, _ := roundTrip(ctx, addr, []byte(tt.in)); string(got) != tt.want {
			t.Errorf("%q → %q, want %q", tt.in, got, tt.want)
		}
	}
	// Unknown connection types close silently.
	if got, _ := roundTrip(ctx, addr, []byte(`{"type_connection":"nope"}`)); len(got) != 0 {
		t.Errorf("unknown type answered %q", got)
	}
	// A broken block instead of the RSA hello: an error block, no service.
	c, _ := rawService(t, addr)
	c.Write([]byte("this is not a block header at all, it is 48 bytes"))
	if b, err := readPlain(c, 0); err != nil || string(b) != TextBadBlock {
		t.Errorf("broken block → %q, %v; want %q", b, err, TextBadBlock)
	}
	// A well-formed block whose payload is not RSA ciphertext.
	c, _ = rawService(t, addr)
	c.Write(AppendBlock(nil, make([]byte, 256), 0))
	if b, err := readPlain(c, 0); err != nil || string(b) != TextBadBlock {
		t.Errorf("garbage RSA block → %q, %v; want %q", b, err, TextBadBlock)
	}
	// A block announcing more than the RSA size.
	c, _ = rawService(t, addr)
	c.Write(AppendBlock(nil, make([]byte, 4096), 0))
	if b, err := readPlain(c, 0); err != nil || string(b) != TextBadBlock {
		t.Errorf("oversized block → %q, %v; want %q", b, err, TextBadBlock)
	}
	// RSA-encrypted garbage JSON.
	c, kb := rawService(t, addr)
	var rk struct {
		RSAKey string `json:"rsa_key"`
	}
	json.Unmarshal(kb, &rk)
	pub, err := ParsePublicKeyPEM(rk.RSAKey)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"sensor_id":`)
	ct, _ := RSAEncrypt(pub, bad)
	c.Write(AppendBlock(nil, ct, Sum(bad)))
	if b, err := readPlain(c, 0); err != nil || string(b) != TextMalformed {
		t.Errorf("bad hello JSON → %q, %v; want %q", b, err, TextMalformed)
	}
	if got := srv.Active(); len(got) != 1 || got[0].SensorID != 4 {
		t.Errorf("active after malformed input = %+v", got)
	}
	if got := gui(t, addr, 4, "echo ok", nil); got != "ok" {
		t.Errorf("relay after malformed input = %q", got)
	}
}

func TestDisconnectAndSilence(t *testing.T) {
	srv, addr := startServer(t, nil)
	_, stop := startProbe(t, []string{addr}, 8, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 8 active", func() bool { return len(srv.Active()) == 1 })
	stop()
	sharedtest.Eventually(t, 2*time.Second, "sensor 8 gone after close", func() bool { return len(srv.Active()) == 0 })

	// A sensor that completes the handshake and then never answers a
	// ping is dropped after PingEvery+PongTimeout (500 ms here).
	c, kb := rawService(t, addr)
	var rk struct {
		RSAKey string `json:"rsa_key"`
	}
	json.Unmarshal(kb, &rk)
	pub, _ := ParsePublicKeyPEM(rk.RSAKey)
	h := []byte(`{"sensor_id":9,"password":"` + testPassword + `","aes_ckey":"0123456789abcdef0123456789abcdef","aes_ivec":"0123456789abcdef"}`)
	ct, _ := RSAEncrypt(pub, h)
	c.Write(AppendBlock(nil, ct, Sum(h)))
	if b, err := readPlain(c, 0); err != nil || string(b) != TextOK {
		t.Fatalf("hand handshake → %q, %v", b, err)
	}
	if b, err := readPlain(c, 0); err != nil || string(b) != "ping" {
		t.Errorf("expected a ping, got %q, %v", b, err)
	}
	start := time.Now()
	sharedtest.Eventually(t, 3*time.Second, "silent sensor dropped", func() bool { return len(srv.Active()) == 0 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent sensor dropped after %v", d)
	}
}

func TestTimeoutAndFanout(t *testing.T) {
	srv, addr := startServer(t, func(c *Config) { c.TaskTimeout = 300 * time.Millisecond })
	startProbe(t, []string{addr}, 1, testPassword)
	startProbe(t, []string{addr}, 2, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "two sensors", func() bool { return len(srv.Active()) == 2 })
	if got := gui(t, addr, 1, "sleep", nil); got != TextTimeout {
		t.Errorf("slow command = %q, want %q", got, TextTimeout)
	}
	reg := command.NewRegistry()
	Register(reg, srv)
	res, err := reg.Run(context.Background(), &command.Request{Name: "listcalls_all", Args: []string{"1000"}, Perm: command.PermAll})
	if err != nil {
		t.Fatal(err)
	}
	all := res.(command.Value).V.(AllCalls)
	if want := []string{"sensor_id", "callreference", "callid"}; !slices.Equal(all.Columns, want) {
		t.Errorf("columns %v, want %v", all.Columns, want)
	}
	var got []string
	for _, r := range all.Calls {
		got = append(got, string(r[0])+":"+string(r[2]))
	}
	if want := []string{`1:"call-of-1"`, `2:"call-of-2"`}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if !slices.Equal(all.Answered, []int{1, 2}) || len(all.Missing) != 0 {
		t.Errorf("answered %v missing %v", all.Answered, all.Missing)
	}
}

// A sensor whose relay hangs is listed as missing; the others still show.
func TestFanoutPartial(t *testing.T) {
	srv, addr := startServer(t, nil)
	startProbe(t, []string{addr}, 1, testPassword)
	// Sensor 2 is a hand-made service that never answers tasks.
	c, kb := rawService(t, addr)
	var rk struct {
		RSAKey string `json:"rsa_key"`
	}
	json.Unmarshal(kb, &rk)
	pub, _ := ParsePublicKeyPEM(rk.RSAKey)
	h := []byte(`{"sensor_id":2,"password":"` + testPassword + `","aes_ckey":"0123456789abcdef0123456789abcdef","aes_ivec":"0123456789abcdef"}`)
	ct, _ := RSAEncrypt(pub, h)
	c.Write(AppendBlock(nil, ct, Sum(h)))
	c.SetDeadline(time.Time{})
	go func() { // answer pings, ignore tasks
		for {
			b, err := readPlain(c, 0)
			if err != nil {
				return
			}
			if string(b) == "ping" {
				writePlain(c, []byte("pong"))
			}
		}
	}()
	sharedtest.Eventually(t, 10*time.Second, "two sensors", func() bool { return len(srv.Active()) == 2 })
	start := time.Now()
	all := srv.ListCallsAll(context.Background(), 400*time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("fan-out took %v with a 400 ms limit", d)
	}
	if !slices.Equal(all.Answered, []int{1}) || len(all.Missing) != 1 || all.Missing[0].SensorID != 2 {
		t.Errorf("answered %v missing %+v; want [1] and sensor 2 missing", all.Answered, all.Missing)
	}
	if len(all.Calls) != 1 {
		t.Errorf("calls %d, want 1", len(all.Calls))
	}
}

func TestFailoverAndReconnect(t *testing.T) {
	// The first destination refuses connections; the probe fails over.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	srv, addr := startServer(t, nil)
	p, _ := startProbe(t, []string{dead, addr}, 11, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "failover to the second server", func() bool { return p.Connected() == addr })

	// A restore handshake replaces the old connection: kill the service
	// socket on the server side and watch the probe come back.
	srv.mu.Lock()
	old := srv.services[11]
	srv.mu.Unlock()
	old.conn.Conn.Close() // the socket breaks under the session
	sharedtest.Eventually(t, 10*time.Second, "sensor 11 back", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		now := srv.services[11]
		return now != nil && now != old
	})
	if got := gui(t, addr, 11, "echo back", nil); got != "back" {
		t.Errorf("after reconnect = %q", got)
	}
}

// The probe uses the default port for a destination without one.
func TestProbeAddr(t *testing.T) {
	p, err := NewProbe(ProbeConfig{Destinations: []string{"x"}, Port: 1234, Exec: fakeExec(0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1:1234"},
		{"10.0.0.1:99", "10.0.0.1:99"},
		{"::1", "[::1]:1234"},
		{"[::1]:5", "[::1]:5"},
		{"server.example", "server.example:1234"},
	} {
		if got := p.addr(tt.in); got != tt.want {
			t.Errorf("addr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var _ = aes.BlockSize
var _ = cipher.NewCBCEncrypter
