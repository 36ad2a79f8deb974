package manager

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

var (
	key16 = []byte("0123456789abcdef")
	key32 = []byte("0123456789abcdef0123456789ABCDEF")
	iv16  = []byte("fedcba9876543210")
)

// opensslEnc runs `openssl enc` as the independent AES-CBC implementation.
func opensslEnc(t *testing.T, decrypt bool, cipherName string, key, iv, in []byte) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		sharedtest.Missing(t, "openssl not installed")
	}
	n := cipherKeyLen(cipherName)
	args := []string{"enc", "-" + cipherName, "-K", hex.EncodeToString(key[:n]), "-iv", hex.EncodeToString(iv)}
	if decrypt {
		args = append(args, "-d")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v: %s", args, err, stderr.String())
	}
	return out
}

func TestKeyMatchesOpenSSL(t *testing.T) {
	k := Key{Key: key32, IV: iv16}
	for _, c := range []string{"aes-128-cbc", "aes-192-cbc", "aes-256-cbc"} {
		for _, n := range []int{0, 1, 15, 16, 17, 4096 + 3} {
			pt := bytes.Repeat([]byte("x"), n)
			got, err := k.Encrypt(c, pt)
			if err != nil {
				t.Fatal(err)
			}
			if want := opensslEnc(t, false, c, key32, iv16, pt); !bytes.Equal(got, want) {
				t.Errorf("%s Encrypt(%d bytes) differs from openssl", c, n)
			}
			back, err := k.Decrypt(c, got)
			if err != nil || !bytes.Equal(back, pt) {
				t.Errorf("%s Decrypt round trip of %d bytes: %v", c, n, err)
			}
		}
	}
}

// TestCBCWriterSplits checks that the streaming writer gives the same
// bytes however the plaintext is split.
func TestCBCWriterSplits(t *testing.T) {
	k := Key{Key: key16, IV: iv16}
	pt := []byte(strings.Repeat("listcalls reply ", 100))
	want, _ := k.Encrypt("aes-128-cbc", pt)
	for _, step := range []int{1, 3, 15, 16, 17, 100} {
		var out bytes.Buffer
		w, _ := k.NewWriter(&out, "aes-128-cbc")
		for i := 0; i < len(pt); i += step {
			w.Write(pt[i:min(i+step, len(pt))])
		}
		w.Close()
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("step %d: stream differs from one-shot encryption", step)
		}
	}
}

func TestDecryptErrors(t *testing.T) {
	k := Key{Key: key16, IV: iv16}
	good, _ := k.Encrypt("aes-128-cbc", []byte("getversion"))
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff // garbles the padding of the last block
	for name, ct := range map[string][]byte{"empty": nil, "unaligned": good[:15], "bad padding": bad} {
		if _, err := k.Decrypt("aes-128-cbc", ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := (Key{Key: key16, IV: iv16}).Decrypt("aes-256-cbc", good); !errors.Is(err, ErrDecrypt) {
		t.Errorf("16-byte key with aes-256: err = %v, want ErrDecrypt", err)
	}
}

// TestServerAESWithOpenSSL builds the request and checks the reply with
// openssl only: aes-<n>-cbc:<ct>:sea in, aes:<one CBC stream> out.
func TestServerAESWithOpenSSL(t *testing.T) {
	env := newEnv(t, Config{Key: Key{Key: key32, IV: iv16}}, []calls.Call{oneCall()})
	for _, c := range []string{"aes-128-cbc", "AES-256-CBC", "aes-bogus"} {
		ct := opensslEnc(t, false, strings.ToLower(strings.Replace(c, "bogus", "128-cbc", 1)), key32, iv16, []byte("listcalls {\"limit\":0}"))
		req := append(append([]byte(c+":"), ct...), ":sea"...)
		got := exchange(t, "tcp", env.addr, req)
		if !bytes.HasPrefix(got, []byte("aes:")) {
			t.Fatalf("%s: reply %q lacks aes: prefix", c, got)
		}
		pt := opensslEnc(t, true, strings.ToLower(strings.Replace(c, "bogus", "128-cbc", 1)), key32, iv16, got[4:])
		if want := `{"total":1,"is_receiver":0,"is_server":0,"id_sensor":-1}`; string(pt) != want {
			t.Errorf("%s: decrypted reply %q, want %q", c, pt, want)
		}
	}
}

func TestAESGate(t *testing.T) {
	env := newEnv(t, Config{Key: Key{Key: key16, IV: iv16}}, []calls.Call{oneCall()})
	tests := []struct {
		name, network, req, want string
	}{
		{"plaintext needs aes", "tcp", "listcalls\n", "need aes!\n"},
		{"exempt command", "tcp", "getversion\n", "1.2.3"},
		{"exempt support_aes", "tcp", "support_aes\n", "yes"},
		{"exempt exists_aes_key", "tcp", "exists_aes_key\n", "yes"},
		{"unknown before gate", "tcp", "nosuch\n", "command not found\n"},
		{"unix never needs aes", "unix", "totalregisters\n", "1"},
		{"missing :sea", "tcp", "aes-128-cbc:0123456789abcdef", "failed aes decrypt!\n"},
		{"unaligned ciphertext", "tcp", "aes-128-cbc:0123456789:sea", "failed aes decrypt!\n"},
		{"wrong key", "tcp", "aes-128-cbc:0123456789abcdef:sea", "failed aes decrypt!\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := env.addr
			if tt.network == "unix" {
				addr = env.sock
			}
			if got := string(exchange(t, tt.network, addr, []byte(tt.req))); got != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
	open := newEnv(t, Config{Key: Key{Key: key16, IV: iv16}, EnableUnencrypted: true}, []calls.Call{oneCall()})
	if got := string(exchange(t, "tcp", open.addr, []byte("totalregisters\n"))); got != "1" {
		t.Errorf("enable_unencrypted: reply %q, want 1", got)
	}
}

// TestSeaInsideCiphertext builds a ciphertext whose second block starts
// with ":sea" (block-aligned, so a naive framer would stop there): choose
// C2, derive P2 = D(C2) xor C1. The framer must skip that candidate.
func TestSeaInsideCiphertext(t *testing.T) {
	k := Key{Key: key16, IV: iv16}
	env := newEnv(t, Config{Key: k}, []calls.Call{oneCall()})
	p1 := []byte("totalcalls      ") // one block; spaces end the command word
	b, _ := aes.NewCipher(key16)
	c1 := make([]byte, 16)
	for i := range c1 {
		c1[i] = p1[i] ^ iv16[i]
	}
	b.Encrypt(c1, c1)
	c2 := []byte(":sea-0123456789a")
	p2 := make([]byte, 16)
	b.Decrypt(p2, c2)
	for i := range p2 {
		p2[i] ^= c1[i]
	}
	ct, _ := k.Encrypt("aes-128-cbc", append(append([]byte(nil), p1...), p2...))
	if !bytes.Equal(ct[16:20], []byte(":sea")) {
		t.Fatalf("construction failed: block 2 = %q", ct[16:32])
	}
	req := append(append([]byte("aes-128-cbc:"), ct...), ":sea"...)
	got := exchange(t, "tcp", env.addr, req)
	pt, err := k.Decrypt("aes-128-cbc", bytes.TrimPrefix(got, []byte("aes:")))
	if err != nil || string(pt) != "1" {
		t.Errorf("reply %q (%v), want aes-encrypted 1", pt, err)
	}
}

type fakeStore struct {
	mu      sync.Mutex
	content string
	reads   int
}

func (f *fakeStore) GetSystem(_ context.Context, typ string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if typ != "manager_key" {
		return "", errors.New("no such row")
	}
	return f.content, nil
}

func (f *fakeStore) set(k, iv []byte) {
	f.mu.Lock()
	f.content = `{"key":"` + base64.StdEncoding.EncodeToString(k) + `","iv":"` + base64.StdEncoding.EncodeToString(iv) + `"}`
	f.mu.Unlock()
}

// TestKeyStoreRotation: the key comes from the store, is cached, and a
// request under a rotated key succeeds because a failed decryption
// reloads the key once.
func TestKeyStoreRotation(t *testing.T) {
	store := &fakeStore{}
	store.set(key16, iv16)
	env := newEnv(t, Config{KeyStore: store}, []calls.Call{oneCall()})
	c := &Client{Addr: env.addr, Key: Key{Key: key16, IV: iv16}}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if got, err := c.Do(ctx, "totalcalls"); err != nil || string(got) != "1" {
			t.Fatalf("Do = %q, %v", got, err)
		}
	}
	store.mu.Lock()
	reads := store.reads
	store.mu.Unlock()
	if reads > 2 {
		t.Errorf("store read %d times for 3 requests; want the key cached", reads)
	}
	newKey := []byte("FEDCBA9876543210")
	store.set(newKey, iv16)
	c2 := &Client{Addr: env.addr, Key: Key{Key: newKey, IV: iv16}}
	if got, err := c2.Do(ctx, "totalcalls"); err != nil || string(got) != "1" {
		t.Errorf("after rotation: Do = %q, %v", got, err)
	}
	if _, err := c.Do(ctx, "totalcalls"); !errors.Is(err, ErrServerDecrypt) {
		t.Errorf("old key after rotation: err = %v, want ErrServerDecrypt", err)
	}
	plain := &Client{Addr: env.addr}
	if _, err := plain.Do(ctx, "listcalls"); !errors.Is(err, ErrNeedAES) {
		t.Errorf("plaintext listcalls with a stored key: err = %v, want ErrNeedAES", err)
	}
	if got, err := plain.Do(ctx, "exists_aes_key"); err != nil || string(got) != "yes" {
		t.Errorf("exists_aes_key = %q, %v", got, err)
	}
	store.set(nil, nil)
	fresh := newEnv(t, Config{KeyStore: store}, nil)
	plain.Addr = fresh.addr
	if got, err := plain.Do(ctx, "totalcalls"); err != nil || string(got) != "0" {
		t.Errorf("empty store: plaintext allowed; Do = %q, %v", got, err)
	}
}

func TestStoredKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey(nil)
	if err != nil || len(k.Key) != 16 || len(k.IV) != 16 {
		t.Fatalf("GenerateKey = %d/%d bytes, %v; want 16/16", len(k.Key), len(k.IV), err)
	}
	content := k.MarshalStored()
	back, err := ParseStoredKey(content)
	if err != nil || !bytes.Equal(back.Key, k.Key) || !bytes.Equal(back.IV, k.IV) {
		t.Errorf("ParseStoredKey(%s) = %x/%x, %v; want %x/%x", content, back.Key, back.IV, err, k.Key, k.IV)
	}
	// The GUI's row, written by hand: 16 bytes 0x00..0x0f, IV 16 × 0x41.
	gui := `{"key":"AAECAwQFBgcICQoLDA0ODw==","iv":"QUFBQUFBQUFBQUFBQUFBQQ=="}`
	g, err := ParseStoredKey(gui)
	if err != nil || g.Key[15] != 0x0f || g.IV[0] != 'A' {
		t.Errorf("ParseStoredKey(gui) = %x/%x, %v", g.Key, g.IV, err)
	}
	for _, bad := range []string{"", "{", `{"key":"!!","iv":"QUFB"}`, `{"key":"QUFB","iv":"QUFB"}`} {
		if _, err := ParseStoredKey(bad); err == nil {
			t.Errorf("ParseStoredKey(%q) succeeded", bad)
		}
	}
}

// slowStore blocks every GetSystem until release is closed, counting the
// queries in flight and the most seen at once.
type slowStore struct {
	fakeStore
	release  chan struct{}
	inFlight atomic.Int32
	most     atomic.Int32
	started  atomic.Int32
}

func (s *slowStore) GetSystem(ctx context.Context, typ string) (string, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	s.started.Add(1)
	<-s.release
	return s.fakeStore.GetSystem(ctx, typ)
}

// TestKeyReloadOutsideTheLock: forced reloads (one per failed decryption,
// which any client can cause) run one store query at a time, and while it
// runs the cache still answers from memory (supported, a reload of the
// configured key) instead of queueing behind the database.
func TestKeyReloadOutsideTheLock(t *testing.T) {
	store := &slowStore{release: make(chan struct{})}
	store.set(key16, iv16)
	k := &keyCache{store: store, ttl: time.Minute}
	var wg sync.WaitGroup
	results := make(chan bool, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok := k.get(context.Background(), true)
			results <- ok
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for store.started.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no store query started")
		}
		time.Sleep(time.Millisecond)
	}
	// The query is blocked in the store: the cache's lock must be free.
	locked := make(chan struct{})
	go func() {
		k.supported()
		k.setStatic(Key{})
		close(locked)
	}()
	select {
	case <-locked:
	case <-time.After(5 * time.Second):
		t.Fatal("the cache's lock is held during the store query")
	}
	close(store.release)
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Error("a forced get found no key")
		}
	}
	if m := store.most.Load(); m != 1 {
		t.Errorf("%d store queries at once, want 1", m)
	}
}
