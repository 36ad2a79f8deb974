package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// noWait replaces the failed-login delay: it records nothing and waits
// for nothing.
func noWait(context.Context, time.Duration) bool { return true }

// recordWaits replaces the failed-login delay with a recorder.
type recordWaits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recordWaits) wait(_ context.Context, d time.Duration) bool {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
	return true
}

func (r *recordWaits) got() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.d)
}

// dialFrom connects to addr from the loopback address src (127.0.0.0/8
// is all loopback on Linux), so that one test can be several clients.
func dialFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skipf("cannot use %s as a source address: %v", src, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login runs a service handshake by hand on c and returns the server's
// answer ("OK", "bad password", …) or the read error in angle brackets.
func login(t *testing.T, c net.Conn, password string, id int) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, `{"type_connection":"service"}`+"\r\n"); err != nil {
		t.Fatal(err)
	}
	kb, err := readPlain(c, 0)
	if err != nil {
		t.Fatalf("rsa key block: %v", err)
	}
	h, _ := json.Marshal(map[string]any{"sensor_id": id, "password": password,
		"aes_ckey": "0123456789abcdef0123456789abcdef", "aes_ivec": "0123456789abcdef"})
	ct, err := RSAEncrypt(publicKeyOf(t, kb), h)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(AppendBlock(nil, ct, Sum(h)))
	b, err := readPlain(c, 0)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func publicKeyOf(t *testing.T, keyBlock []byte) *rsa.PublicKey {
	t.Helper()
	var rk struct {
		RSAKey string `json:"rsa_key"`
	}
	if err := json.Unmarshal(keyBlock, &rk); err != nil {
		t.Fatalf("rsa key block %q: %v", keyBlock, err)
	}
	pub, err := ParsePublicKeyPEM(rk.RSAKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// Finding 4: every service opening used to generate a fresh 4096-bit RSA
// key before any password was checked. Twelve concurrent openings must
// share one key made once.
func TestServiceKeyMadeOnce(t *testing.T) {
	var made atomic.Int32
	release := make(chan struct{})
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(open)
	srv, addr := startServerPrep(t, func(c *Config) { c.ServiceRSABits = 1024 }, func(s *Server) {
		s.keys.gen = func(bits int) (*rsa.PrivateKey, error) {
			made.Add(1)
			<-release
			return rsa.GenerateKey(rand.Reader, bits)
		}
	})
	const n = 12
	keys := make(chan string, n)
	for range n {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				keys <- "dial: " + err.Error()
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, `{"type_connection":"service"}`+"\r\n")
			b, err := readPlain(c, 0)
			if err != nil {
				keys <- "read: " + err.Error()
				return
			}
			keys <- string(b)
		}()
	}
	// The twelve wait for the one generation Listen started.
	sharedtest.Eventually(t, 10*time.Second, "12 openings waiting for the key", func() bool { return srv.Stats().Active == n })
	open()
	var first string
	for i := range n {
		k := <-keys
		if i == 0 {
			first = k
		}
		if k != first || len(k) < 100 {
			t.Fatalf("opening %d got %.60q, opening 0 got %.60q; want the same RSA key block", i, k, first)
		}
	}
	if got := made.Load(); got != 1 {
		t.Fatalf("%d RSA keys generated for %d openings, want 1", got, n)
	}
	// Later handshakes, failed or not, reuse it too.
	srv.wait = noWait
	if got := login(t, dialFrom(t, addr, "127.0.0.1"), "guess", 31); got != TextBadPassword {
		t.Errorf("bad password login = %q", got)
	}
	if got := login(t, dialFrom(t, addr, "127.0.0.1"), testPassword, 31); got != TextOK {
		t.Errorf("login = %q, want OK", got)
	}
	if got := made.Load(); got != 1 {
		t.Errorf("%d RSA keys generated after two more handshakes, want 1", got)
	}
}

func TestServiceKeyRotation(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Unix(1000, 0).UnixNano())
	h := newKeyHolder(1024, time.Hour)
	h.now = func() time.Time { return time.Unix(0, clock.Load()) }
	var made atomic.Int32
	second := make(chan struct{})
	h.gen = func(int) (*rsa.PrivateKey, error) {
		if made.Add(1) == 1 {
			return k1, nil
		}
		<-second
		return k2, nil
	}
	ctx := context.Background()
	for range 5 {
		if k, err := h.get(ctx); k != k1 || err != nil {
			t.Fatalf("get = %p, %v; want the first key", k, err)
		}
	}
	clock.Add(int64(time.Hour))
	// An expired key is still served while its successor is made, and
	// the callers share one generation.
	for range 5 {
		if k, _ := h.get(ctx); k != k1 {
			t.Fatal("the expired key was not served while the next one is made")
		}
	}
	close(second)
	sharedtest.Eventually(t, 5*time.Second, "the rotated key", func() bool {
		k, _ := h.get(ctx)
		return k == k2
	})
	if got := made.Load(); got != 2 {
		t.Errorf("%d generations, want 2", got)
	}
}

func TestAuthBackoff(t *testing.T) {
	now := time.Unix(5000, 0)
	b := newAuthBackoff(time.Second, 30*time.Second)
	b.now = func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.1")
	for i, want := range []time.Duration{1, 2, 4, 8, 16, 30, 30} {
		if got := b.failed(a); got != want*time.Second {
			t.Fatalf("failure %d: delay %v, want %v", i+1, got, want*time.Second)
		}
	}
	if got := b.failed(netip.MustParseAddr("192.0.2.2")); got != time.Second {
		t.Errorf("another address: %v, want 1s", got)
	}
	// IPv6 clients count per /64, the block one host usually holds.
	b.failed(netip.MustParseAddr("2001:db8::1"))
	if got := b.failed(netip.MustParseAddr("2001:db8::ffff")); got != 2*time.Second {
		t.Errorf("second failure in the same /64: %v, want 2s", got)
	}
	if got := b.failed(netip.MustParseAddr("2001:db8:0:1::1")); got != time.Second {
		t.Errorf("another /64: %v, want 1s", got)
	}
	// An IPv4-mapped address is the IPv4 address.
	if got := b.failed(netip.MustParseAddr("::ffff:192.0.2.2")); got != 2*time.Second {
		t.Errorf("mapped address: %v, want 2s (its second failure)", got)
	}
	b.succeeded(a)
	if got := b.failed(a); got != time.Second {
		t.Errorf("after a success: %v, want 1s", got)
	}
	now = now.Add(authQuiet)
	if got := b.failed(a); got != time.Second {
		t.Errorf("after a quiet period: %v, want 1s", got)
	}
	for i := range maxAuthAddrs + 10 {
		b.failed(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if len(b.m) > maxAuthAddrs {
		t.Errorf("%d addresses remembered, bound %d", len(b.m), maxAuthAddrs)
	}
	if got := newAuthBackoff(-1, time.Second).failed(a); got != 0 {
		t.Errorf("disabled delay = %v", got)
	}
}

// Failed passwords cost the guesser time, per address, and a success
// clears its address.
func TestFailedLoginsWait(t *testing.T) {
	var rec recordWaits
	_, addr := startServerPrep(t, func(c *Config) {
		c.ServiceRSABits = 1024
		c.AuthDelay, c.AuthDelayMax = time.Second, 30*time.Second
	}, func(s *Server) { s.wait = rec.wait })
	for range 3 {
		if got := login(t, dialFrom(t, addr, "127.0.0.1"), "guess", 41); got != TextBadPassword {
			t.Fatalf("bad password → %q", got)
		}
	}
	if got := login(t, dialFrom(t, addr, "127.0.0.2"), "guess", 41); got != TextBadPassword {
		t.Fatalf("bad password → %q", got)
	}
	if got := login(t, dialFrom(t, addr, "127.0.0.1"), testPassword, 41); got != TextOK {
		t.Fatalf("good password → %q", got)
	}
	if got := login(t, dialFrom(t, addr, "127.0.0.1"), "guess", 42); got != TextBadPassword {
		t.Fatalf("bad password → %q", got)
	}
	s := time.Second
	if got, want := rec.got(), []time.Duration{s, 2 * s, 4 * s, s, s}; !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v (doubling per address, cleared by a success)", got, want)
	}

	// The real delay: the answer does not come before it.
	_, addr = startServer(t, func(c *Config) {
		c.ServiceRSABits = 1024
		c.AuthDelay = 80 * time.Millisecond
	})
	c := dialFrom(t, addr, "127.0.0.1")
	start := time.Now()
	if got := login(t, c, "guess", 43); got != TextBadPassword {
		t.Fatalf("bad password → %q", got)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("bad password answered after %v, before the 80ms delay", d)
	}
}

// The service handshake keeps a deadline: a client that takes the key
// and sends nothing is closed.
func TestServiceHandshakeDeadline(t *testing.T) {
	srv, addr := startServer(t, func(c *Config) { c.ServiceRSABits = 1024; c.ReadTimeout = 150 * time.Millisecond })
	// The deadline covers waiting for the key too: let it exist first.
	if _, err := srv.keys.get(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dialFrom(t, addr, "127.0.0.1")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, `{"type_connection":"service"}`+"\r\n")
	if _, err := readPlain(c, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("silent handshake: read %d, %v; want the server to close", n, err)
	}
	sharedtest.Eventually(t, 5*time.Second, "the close counted", func() bool { return srv.Stats().Closed[conn.ClosedFirstRequest] == 1 })
}

// Finding 5: a connection that sends nothing used to hold a slot for 30 s.
func TestFirstRequestDeadline(t *testing.T) {
	srv, addr := startServer(t, func(c *Config) {
		c.Limits.FirstRequest = 100 * time.Millisecond
	})
	silent := dialFrom(t, addr, "127.0.0.1")
	partial := dialFrom(t, addr, "127.0.0.1")
	io.WriteString(partial, `{"type_connection":`)
	for _, c := range []net.Conn{silent, partial} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 64)); n != 0 || err == nil {
			t.Fatalf("read %d, %v; want the server to close a connection without an opening message", n, err)
		}
	}
	sharedtest.Eventually(t, 5*time.Second, "both counted", func() bool { return srv.Stats().Closed[conn.ClosedFirstRequest] == 2 })
}

// Finding 5: 200 silent connections from one address used to take every
// slot. Now they hit the per-address cap, and sensors keep working:
// the one logged in relays, a new one logs in.
func TestFloodDoesNotStarveSensors(t *testing.T) {
	srv, addr := startServer(t, func(c *Config) {
		c.Limits = conn.Limits{MaxConns: 64, MaxUnauth: 32, MaxUnauthPerAddr: 8, FirstRequest: time.Minute}
	})
	startProbe(t, []string{addr}, 1, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 1 active", func() bool { return len(srv.Active()) == 1 })
	base := srv.Stats()
	const flood = 200
	for range flood {
		dialFrom(t, addr, "127.0.0.3")
	}
	sharedtest.Eventually(t, 10*time.Second, "the flood accepted, all but 8 refused", func() bool {
		st := srv.Stats()
		return st.Accepted-base.Accepted >= flood && st.Closed[conn.ClosedRefusedPerAddr]-base.Closed[conn.ClosedRefusedPerAddr] == flood-8
	})
	if got := gui(t, addr, 1, "echo alive", nil); got != "alive" {
		t.Errorf("relay to the logged-in sensor during the flood = %q", got)
	}
	startProbe(t, []string{addr}, 2, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "a new sensor logged in during the flood", func() bool { return len(srv.Active()) == 2 })
	if got := gui(t, addr, 2, "echo new", nil); got != "new" {
		t.Errorf("relay to the new sensor during the flood = %q", got)
	}
	// Logged-in sensors are not counted against the unauthenticated caps.
	if st := srv.Stats(); st.Unauth != 8 || st.Active < 10 {
		t.Errorf("Stats = %+v; want the 8 flooders unauthenticated and the 2 services beside them", st)
	}
}

type panicKey struct{}

func (panicKey) Decrypt(string, []byte) ([]byte, error) { panic("cipher exploded") }
func (panicKey) Encrypt(_ string, pt []byte) ([]byte, error) {
	return pt, nil
}

// A panic in a session is contained: the client gets the internal error,
// the panic is counted, and the server keeps serving.
func TestPanicContained(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		srv, addr := startServer(t, func(c *Config) { c.ManagerKey = panicKey{} })
		msg := append([]byte("aes-128-cbc:"), make([]byte, 16)...)
		got, _ := roundTrip(context.Background(), addr, append(msg, ":sea"...))
		if string(got) != TextInternal {
			t.Errorf("panicking request answered %q, want %q", got, TextInternal)
		}
		if ids := activeIDs(t, addr); len(ids) != 0 {
			t.Errorf("active after the panic = %v", ids)
		}
		if st := srv.Stats(); st.Panics != 1 || st.Closed[conn.ClosedPanic] != 1 {
			t.Errorf("Stats = %+v, want the panic counted", st)
		}
	})
	t.Run("service", func(t *testing.T) {
		var connects, disconnects atomic.Int32
		srv, addr := startServer(t, func(c *Config) {
			c.OnConnect = func(Service) {
				if connects.Add(1) == 1 {
					panic("sensors table update exploded")
				}
			}
			c.OnDisconnect = func(Service) { disconnects.Add(1) }
		})
		startProbe(t, []string{addr}, 3, testPassword)
		sharedtest.Eventually(t, 10*time.Second, "sensor 3 back after the panic", func() bool {
			return connects.Load() >= 2 && len(srv.Active()) == 1
		})
		if st := srv.Stats(); st.Panics != 1 || st.Closed[conn.ClosedPanic] != 1 {
			t.Errorf("Stats = %+v, want one panic counted", st)
		}
		if disconnects.Load() != 0 {
			t.Error("OnDisconnect called for a service whose OnConnect panicked")
		}
		if got := gui(t, addr, 3, "echo ok", nil); got != "ok" {
			t.Errorf("relay after the panic = %q", got)
		}
	})
}

// The accept loop used to return on any error: running out of file
// descriptors once stopped the server API for good.
func TestAcceptSurvivesTemporaryErrors(t *testing.T) {
	srv, err := New(Config{Password: testPassword, ServiceRSABits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &sharedtest.FlakyListener{Listener: l}
	fl.Fails.Store(5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, fl) }()
	if ids := activeIDs(t, l.Addr().String()); len(ids) != 0 {
		t.Errorf("active = %v", ids)
	}
	if st := srv.Stats(); st.AcceptRetries != 5 {
		t.Errorf("AcceptRetries = %d, want 5", st.AcceptRetries)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// Findings 7 and 1: gui_command and manager_command used to need nothing.
// From another host they need server_password (in the JSON) or the
// manager key's wrapping; from this host, nothing.
func TestGUICommandNeedsAuthentication(t *testing.T) {
	remote := func(s *Server) {
		s.local = func(*conn.Conn) bool { return false }
		s.wait = noWait
	}
	srv, addr := startServerPrep(t, nil, remote)
	startProbe(t, []string{addr}, 7, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 7 active", func() bool { return len(srv.Active()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name string
		cl   Client
		want string
	}{
		{"no password", Client{Addr: addr}, TextBadPassword},
		{"wrong password", Client{Addr: addr, Password: "guess"}, TextBadPassword},
		{"server password", Client{Addr: addr, Password: testPassword}, "hi"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cl.GUICommand(ctx, 7, "echo hi")
			if err != nil || string(got) != tt.want {
				t.Errorf("gui_command = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("manager_command", func(t *testing.T) {
		raw, _ := roundTrip(ctx, addr, []byte(`{"type_connection":"manager_command","command":"active"}`))
		if string(raw) != TextBadPassword {
			t.Errorf("active without a password = %q, want %q", raw, TextBadPassword)
		}
		r, err := Client{Addr: addr, Password: testPassword}.Active(ctx)
		if err != nil || r.Count != 1 {
			t.Errorf("active with the password = %+v, %v", r, err)
		}
	})
	t.Run("refusals counted", func(t *testing.T) {
		if st := srv.Stats(); st.Closed[conn.ClosedAuthFailed] != 3 {
			t.Errorf("Closed[auth failed] = %d, want 3", st.Closed[conn.ClosedAuthFailed])
		}
	})

	// The GUI wraps its requests with the manager key when one is
	// configured, and sends no password: the key is its credential.
	key := testKey{SessionKey{CKey: "0123456789abcdef0123456789abcdef", IVec: "fedcba9876543210"}}
	srv, addr = startServerPrep(t, func(c *Config) { c.ManagerKey = key }, remote)
	startProbe(t, []string{addr}, 8, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 8 active", func() bool { return len(srv.Active()) == 1 })
	if got, err := (Client{Addr: addr, Key: key, CipherName: "aes-128-cbc"}).GUICommand(ctx, 8, "echo wrapped"); err != nil || string(got) != "wrapped" {
		t.Errorf("wrapped gui_command = %q, %v", got, err)
	}
	if got, _ := (Client{Addr: addr}).GUICommand(ctx, 8, "getversion"); string(got) != TextBadPassword {
		t.Errorf("plaintext gui_command from another host = %q, want %q", got, TextBadPassword)
	}

	// From this host nothing is needed, as with the legacy server.
	srv, addr = startServerPrep(t, nil, nil)
	startProbe(t, []string{addr}, 9, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 9 active", func() bool { return len(srv.Active()) == 1 })
	if got := gui(t, addr, 9, "echo local", nil); got != "local" {
		t.Errorf("loopback gui_command = %q", got)
	}
}

// Finding 1: manager_file was on the no-AES list, so a plaintext relayed
// manager_file ran on the sensor whatever the manager key.
func TestRelayedManagerFileNeedsAES(t *testing.T) {
	key := testKey{SessionKey{CKey: "0123456789abcdef0123456789abcdef", IVec: "fedcba9876543210"}}
	srv, addr := startServer(t, func(c *Config) { c.ManagerKey = key })
	startProbe(t, []string{addr}, 7, testPassword)
	sharedtest.Eventually(t, 10*time.Second, "sensor 7 active", func() bool { return len(srv.Active()) == 1 })
	for _, line := range []string{"manager_file start /tmp/x.sock", "manager_file stop", "reload"} {
		if got := gui(t, addr, 7, line, nil); got != TextNeedAES {
			t.Errorf("plaintext %q = %q, want %q", line, got, TextNeedAES)
		}
		// Wrapped with the key it reaches the sensor (whose fake executor
		// does not know it).
		if got := gui(t, addr, 7, line, key); got != "command not found\n" {
			t.Errorf("wrapped %q = %q", line, got)
		}
	}
}
