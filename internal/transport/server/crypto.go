package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Crypto errors.
var (
	// ErrDecrypt means an AES payload did not decrypt (bad length or
	// PKCS#7 padding) or an RSA block did not decrypt under the key.
	ErrDecrypt = errors.New("server: decrypt failed")
	// ErrBadKey means a session key or an RSA public key is unusable.
	ErrBadKey = errors.New("server: bad key")
)

// Key lengths of the socket AES session (spec 2.2): a 32-character
// aes_ckey of which the first 16 bytes key AES-128, and a 16-character
// aes_ivec.
const (
	ckeyLen = 32
	ivecLen = 16
)

// SessionKey is the AES-128-CBC key a sensor sends inside the RSA block:
// printable characters '0'…'z'. Only CKey[:16] keys the cipher; IVec is
// the IV of every block (each block is its own CBC message). Its LogValue
// hides the material.
type SessionKey struct {
	CKey, IVec string
}

// NewSessionKey draws a random key: 32 and 16 characters in '0'…'z'.
func NewSessionKey() SessionKey {
	return SessionKey{CKey: printable(ckeyLen), IVec: printable(ivecLen)}
}

func printable(n int) string {
	const lo, span = '0', 'z' - '0' + 1
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = lo + b[i]%span
	}
	return string(b)
}

// LogValue redacts the key.
func (SessionKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Valid reports whether the key can drive AES-128-CBC.
func (k SessionKey) Valid() bool { return len(k.CKey) >= 16 && len(k.IVec) >= aes.BlockSize }

func (k SessionKey) block() (cipher.Block, error) {
	if !k.Valid() {
		return nil, ErrBadKey
	}
	return aes.NewCipher([]byte(k.CKey[:16]))
}

// Encrypt encrypts pt as one AES-128-CBC message with PKCS#7 padding.
func (k SessionKey) Encrypt(pt []byte) ([]byte, error) {
	b, err := k.block()
	if err != nil {
		return nil, err
	}
	n := len(pt)/aes.BlockSize*aes.BlockSize + aes.BlockSize
	out := make([]byte, n)
	copy(out, pt)
	pad := byte(n - len(pt))
	for i := len(pt); i < n; i++ {
		out[i] = pad
	}
	cipher.NewCBCEncrypter(b, []byte(k.IVec[:aes.BlockSize])).CryptBlocks(out, out)
	return out, nil
}

// Decrypt decrypts one AES-128-CBC message and removes its PKCS#7
// padding. Errors wrap [ErrDecrypt].
func (k SessionKey) Decrypt(ct []byte) ([]byte, error) {
	b, err := k.block()
	if err != nil {
		return nil, err
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext length %d", ErrDecrypt, len(ct))
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, []byte(k.IVec[:aes.BlockSize])).CryptBlocks(out, ct)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	for _, c := range out[len(out)-pad:] {
		if int(c) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
	}
	return out[:len(out)-pad], nil
}

// NewWriter returns a writer that encrypts everything written to it as one
// continuous AES-128-CBC stream into w (the response connection's body);
// Close writes the PKCS#7-padded last block. It does not close w.
func (k SessionKey) NewWriter(w io.Writer) (io.WriteCloser, error) {
	b, err := k.block()
	if err != nil {
		return nil, err
	}
	return &cbcWriter{w: w, m: cipher.NewCBCEncrypter(b, []byte(k.IVec[:aes.BlockSize]))}, nil
}

type cbcWriter struct {
	w   io.Writer
	m   cipher.BlockMode
	buf []byte // plaintext not yet a whole block
	out []byte
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	n := len(c.buf) / aes.BlockSize * aes.BlockSize
	if n < 4096 {
		return len(p), nil
	}
	if err := c.emit(c.buf[:n]); err != nil {
		return 0, err
	}
	c.buf = append(c.buf[:0], c.buf[n:]...)
	return len(p), nil
}

func (c *cbcWriter) emit(p []byte) error {
	c.out = append(c.out[:0], p...)
	c.m.CryptBlocks(c.out, c.out)
	_, err := c.w.Write(c.out)
	return err
}

func (c *cbcWriter) Close() error {
	pad := aes.BlockSize - len(c.buf)%aes.BlockSize
	for range pad {
		c.buf = append(c.buf, byte(pad))
	}
	return c.emit(c.buf)
}

// Service and other connections use RSA keys of these sizes (spec 2.2).
const (
	ServiceRSABits = 4096
	OtherRSABits   = 2048
)

// DefaultKeyRotation is how long the service RSA key pair is used before a
// fresh one replaces it.
const DefaultKeyRotation = time.Hour

// keyHolder holds the one service RSA key pair every handshake uses. The
// legacy server generates a key per connection (RSA_generate_key in
// cp_service), which lets anyone who can open a TCP connection spend
// seconds of the server's CPU before any password is checked; here the
// pair is made once (started by [Server.Listen], or on first use) and
// replaced in the background when it is older than every. The key only
// carries a sensor's password and AES session key to the server and lives
// in memory only; sharing it across connections gives up little: each
// sensor still chooses its own session key, and rotation bounds what a
// stolen key would decrypt to the handshakes of one period. Safe for
// concurrent use.
type keyHolder struct {
	bits  int
	every time.Duration // <= 0: never rotate
	gen   func(bits int) (*rsa.PrivateKey, error)
	now   func() time.Time

	mu      sync.Mutex
	key     *rsa.PrivateKey
	made    time.Time
	pending *keyGen // the generation running, if any
}

// keyGen is one key generation; err is set before done is closed.
type keyGen struct {
	done chan struct{}
	err  error
}

func newKeyHolder(bits int, every time.Duration) *keyHolder {
	return &keyHolder{bits: bits, every: every, now: time.Now,
		gen: func(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }}
}

// start begins generating the first key in the background, if none
// exists or is being made.
func (h *keyHolder) start() {
	h.mu.Lock()
	if h.key == nil {
		h.generateLocked()
	}
	h.mu.Unlock()
}

// generateLocked starts one background generation unless one runs
// already, and returns it. h.mu must be held.
func (h *keyHolder) generateLocked() *keyGen {
	if h.pending != nil {
		return h.pending
	}
	g := &keyGen{done: make(chan struct{})}
	h.pending = g
	go func() {
		k, err := h.gen(h.bits)
		h.mu.Lock()
		if err == nil {
			h.key, h.made = k, h.now()
		}
		h.pending = nil
		h.mu.Unlock()
		g.err = err
		close(g.done)
	}()
	return g
}

// get returns the current key. Only callers that find no key at all wait
// (for at most ctx) for a generation; an expired key is still returned
// while its successor is made. Concurrent callers share one generation.
func (h *keyHolder) get(ctx context.Context) (*rsa.PrivateKey, error) {
	for {
		h.mu.Lock()
		if k := h.key; k != nil {
			if h.every > 0 && h.now().Sub(h.made) >= h.every {
				h.generateLocked()
			}
			h.mu.Unlock()
			return k, nil
		}
		g := h.generateLocked()
		h.mu.Unlock()
		select {
		case <-g.done:
			if g.err != nil {
				return nil, fmt.Errorf("server: rsa key generation: %w", g.err)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// PublicKeyPEM encodes pub as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo),
// the form sent in {"rsa_key":…}.
func PublicKeyPEM(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParsePublicKeyPEM decodes a PEM "PUBLIC KEY" (or PKCS#1 "RSA PUBLIC
// KEY") holding an RSA key.
func ParsePublicKeyPEM(s string) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadKey)
	}
	if blk.Type == "RSA PUBLIC KEY" {
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		return k, nil
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an RSA key", ErrBadKey)
	}
	return rk, nil
}

// RSAEncrypt encrypts msg with PKCS#1 v1.5 padding; msg must fit in the
// key size minus 11 bytes.
func RSAEncrypt(pub *rsa.PublicKey, msg []byte) ([]byte, error) {
	//lint:ignore SA1019 the legacy protocol uses PKCS#1 v1.5 (RSA_PKCS1_PADDING).
	return rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
}

// RSADecrypt decrypts a PKCS#1 v1.5 ciphertext. Errors wrap [ErrDecrypt].
func RSADecrypt(priv *rsa.PrivateKey, ct []byte) ([]byte, error) {
	//lint:ignore SA1019 the legacy protocol uses PKCS#1 v1.5 (RSA_PKCS1_PADDING).
	pt, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	if err != nil {
		return nil, fmt.Errorf("%w: rsa: %v", ErrDecrypt, err)
	}
	return pt, nil
}
