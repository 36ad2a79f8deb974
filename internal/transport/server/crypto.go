package server

import (
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

// keyPool hands out fresh RSA keys, generating the next one ahead in the
// background so that a connection rarely waits for key generation. Safe
// for concurrent use.
type keyPool struct {
	bits    int
	mu      sync.Mutex
	spare   *rsa.PrivateKey
	filling bool
}

// get returns a key no other connection has used.
func (p *keyPool) get() (*rsa.PrivateKey, error) {
	p.mu.Lock()
	k := p.spare
	p.spare = nil
	p.mu.Unlock()
	if k == nil {
		var err error
		if k, err = rsa.GenerateKey(rand.Reader, p.bits); err != nil {
			return nil, err
		}
	}
	p.refill()
	return k, nil
}

func (p *keyPool) refill() {
	p.mu.Lock()
	if p.filling || p.spare != nil {
		p.mu.Unlock()
		return
	}
	p.filling = true
	p.mu.Unlock()
	go func() {
		k, err := rsa.GenerateKey(rand.Reader, p.bits)
		p.mu.Lock()
		if err == nil {
			p.spare = k
		}
		p.filling = false
		p.mu.Unlock()
	}()
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
