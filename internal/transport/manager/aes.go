package manager

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// AES errors.
var (
	// ErrNoKey means no manager key is configured or stored.
	ErrNoKey = errors.New("manager: no aes key")
	// ErrDecrypt means a ciphertext did not decrypt under the key (wrong
	// key, bad length or bad PKCS#7 padding).
	ErrDecrypt = errors.New("manager: aes decrypt failed")
)

// DefaultCipher is the cipher the client uses and unknown names fall back to.
const DefaultCipher = "aes-128-cbc"

// Key is the shared manager AES key and IV (raw bytes). Its LogValue hides
// the bytes.
type Key struct {
	Key, IV []byte
}

// LogValue redacts the key material.
func (Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Valid reports whether the key can drive at least AES-128-CBC.
func (k Key) Valid() bool { return len(k.Key) >= 16 && len(k.IV) >= aes.BlockSize }

// DecodeKey decodes the base64 manager_aes_key and manager_aes_iv values.
func DecodeKey(b64Key, b64IV string) (Key, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64Key))
	if err != nil {
		return Key{}, fmt.Errorf("manager: aes key: %w", err)
	}
	iv, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64IV))
	if err != nil {
		return Key{}, fmt.Errorf("manager: aes iv: %w", err)
	}
	key := Key{Key: k, IV: iv}
	if !key.Valid() {
		return Key{}, fmt.Errorf("manager: aes key/iv too short (%d/%d bytes)", len(k), len(iv))
	}
	return key, nil
}

// cipherKeyLen maps an OpenSSL cipher name to its key length. Only the
// CBC AES ciphers are supported; any other name falls back to
// aes-128-cbc, as the legacy server does for names OpenSSL does not know.
func cipherKeyLen(name string) int {
	switch strings.ToLower(name) {
	case "aes-192-cbc", "aes192":
		return 24
	case "aes-256-cbc", "aes256":
		return 32
	}
	return 16
}

func (k Key) block(cipherName string) (cipher.Block, []byte, error) {
	n := cipherKeyLen(cipherName)
	if len(k.Key) < n || len(k.IV) < aes.BlockSize {
		return nil, nil, fmt.Errorf("%w: key too short for %s", ErrDecrypt, cipherName)
	}
	b, err := aes.NewCipher(k.Key[:n])
	if err != nil {
		return nil, nil, err
	}
	return b, k.IV[:aes.BlockSize], nil
}

// Decrypt decrypts one CBC message with PKCS#7 padding.
func (k Key) Decrypt(cipherName string, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext length %d", ErrDecrypt, len(ct))
	}
	b, iv, err := k.block(cipherName)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(pt, ct)
	p := int(pt[len(pt)-1])
	if p == 0 || p > aes.BlockSize {
		return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	for _, c := range pt[len(pt)-p:] {
		if int(c) != p {
			return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
	}
	return pt[:len(pt)-p], nil
}

// Encrypt encrypts pt as one CBC message with PKCS#7 padding.
func (k Key) Encrypt(cipherName string, pt []byte) ([]byte, error) {
	var out sliceWriter
	w, err := k.NewWriter(&out, cipherName)
	if err != nil {
		return nil, err
	}
	w.Write(pt)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

type sliceWriter []byte

func (s *sliceWriter) Write(p []byte) (int, error) { *s = append(*s, p...); return len(p), nil }

// NewWriter returns a writer that encrypts everything written to it as one
// continuous CBC stream into w; Close pads the last block (PKCS#7) and
// writes it. It does not close w.
func (k Key) NewWriter(w io.Writer, cipherName string) (io.WriteCloser, error) {
	b, iv, err := k.block(cipherName)
	if err != nil {
		return nil, err
	}
	return &cbcWriter{w: w, mode: cipher.NewCBCEncrypter(b, iv)}, nil
}

type cbcWriter struct {
	w       io.Writer
	mode    cipher.BlockMode
	pending []byte // < one block
	out     []byte
	err     error
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := len(p)
	if len(c.pending) > 0 {
		k := min(aes.BlockSize-len(c.pending), len(p))
		c.pending = append(c.pending, p[:k]...)
		p = p[k:]
		if len(c.pending) < aes.BlockSize {
			return n, nil
		}
		c.emit(c.pending)
		c.pending = c.pending[:0]
	}
	full := len(p) / aes.BlockSize * aes.BlockSize
	if full > 0 {
		c.emit(p[:full])
	}
	c.pending = append(c.pending, p[full:]...)
	return n, c.err
}

func (c *cbcWriter) emit(p []byte) {
	if c.err != nil {
		return
	}
	c.out = append(c.out[:0], p...)
	c.mode.CryptBlocks(c.out, c.out)
	_, c.err = c.w.Write(c.out)
}

func (c *cbcWriter) Close() error {
	pad := aes.BlockSize - len(c.pending)
	for range pad {
		c.pending = append(c.pending, byte(pad))
	}
	c.emit(c.pending)
	c.pending = c.pending[:0]
	return c.err
}

// KeyStore reads rows of the GUI database's `system` table: GetSystem
// returns the content column of the row with the given type, e.g.
// "manager_key" → `{"key":"<base64>","iv":"<base64>"}`.
type KeyStore interface {
	GetSystem(ctx context.Context, typ string) (string, error)
}

// DefaultKeyTTL is how long a key read from the [KeyStore] (or its absence)
// is cached before it is read again.
const DefaultKeyTTL = time.Minute

// keyCache serves the manager key: the configured one if any, otherwise
// the KeyStore's, cached for ttl and reloaded on demand (after a failed
// decryption). The store is queried outside mu, one query at a time:
// requests that need a reload while one is running wait for its result
// instead of starting another, so failed decryptions (which anybody can
// send) never queue the cache's readers behind the database. Safe for
// concurrent use.
type keyCache struct {
	store KeyStore
	ttl   time.Duration

	mu      sync.Mutex
	static  Key
	cur     Key
	loaded  time.Time
	loading chan struct{} // non-nil while a load runs; closed when it ends
}

// setStatic replaces the configured key (reload).
func (k *keyCache) setStatic(key Key) {
	k.mu.Lock()
	k.static = key
	k.mu.Unlock()
}

// get returns the current key; force bypasses the cache.
func (k *keyCache) get(ctx context.Context, force bool) (Key, bool) {
	k.mu.Lock()
	if k.static.Valid() {
		static := k.static
		k.mu.Unlock()
		return static, true
	}
	if k.store == nil {
		k.mu.Unlock()
		return Key{}, false
	}
	if !force && !k.loaded.IsZero() && time.Since(k.loaded) <= k.ttl {
		cur := k.cur
		k.mu.Unlock()
		return cur, cur.Valid()
	}
	if wait := k.loading; wait != nil {
		// A load is running: share its result (it began at most one
		// query before this call) rather than queue another query.
		k.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
		}
		k.mu.Lock()
		cur := k.cur
		k.mu.Unlock()
		return cur, cur.Valid()
	}
	done := make(chan struct{})
	k.loading = done
	k.mu.Unlock()

	key := k.load(ctx)

	k.mu.Lock()
	k.cur, k.loaded, k.loading = key, time.Now(), nil
	k.mu.Unlock()
	close(done)
	return key, key.Valid()
}

func (k *keyCache) load(ctx context.Context) Key {
	content, err := k.store.GetSystem(ctx, StoredKeyType)
	if err != nil {
		return Key{}
	}
	key, err := ParseStoredKey(content)
	if err != nil {
		return Key{}
	}
	return key
}

// supported reports whether AES can be used at all (a static key or a store).
func (k *keyCache) supported() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.static.Valid() || k.store != nil
}
