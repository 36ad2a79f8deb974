package server

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		sharedtest.Missing(t, "openssl not installed")
	}
}

func openssl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// RFC 3602 section 4, case #1: AES-128-CBC, one block, no padding. Our
// Encrypt adds a PKCS#7 block, so the first 16 bytes must match.
func TestAESVectorRFC3602(t *testing.T) {
	key, _ := hex.DecodeString("06a9214036b8a15b512e03d534120006")
	iv, _ := hex.DecodeString("3dafba429d9eb430b422da802c9fac41")
	want, _ := hex.DecodeString("e353779c1079aeb82708942dbe77181a")
	k := SessionKey{CKey: string(key) + "ignored-tail-of-32-char-key", IVec: string(iv)}
	ct, err := k.Encrypt([]byte("Single block msg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) != 32 || !bytes.Equal(ct[:16], want) {
		t.Errorf("Encrypt = %x, want first block %x", ct, want)
	}
	pt, err := k.Decrypt(ct)
	if err != nil || string(pt) != "Single block msg" {
		t.Errorf("Decrypt = %q, %v", pt, err)
	}
}

// Both directions against openssl enc -aes-128-cbc (PKCS#7 padding), for
// lengths around the block size; the response stream writer too.
func TestAESAgainstOpenSSL(t *testing.T) {
	needOpenSSL(t)
	k := NewSessionKey()
	kh, ivh := hex.EncodeToString([]byte(k.CKey[:16])), hex.EncodeToString([]byte(k.IVec))
	for _, n := range []int{0, 1, 15, 16, 17, 100, 5000} {
		pt := make([]byte, n)
		rand.Read(pt)
		ct, _ := k.Encrypt(pt)
		if got := openssl(t, ct, "enc", "-d", "-aes-128-cbc", "-K", kh, "-iv", ivh); !bytes.Equal(got, pt) {
			t.Errorf("n=%d: openssl decrypt of ours differs", n)
		}
		theirs := openssl(t, pt, "enc", "-aes-128-cbc", "-K", kh, "-iv", ivh)
		if !bytes.Equal(theirs, ct) {
			t.Errorf("n=%d: openssl ciphertext differs from ours", n)
		}
		if got, err := k.Decrypt(theirs); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("n=%d: Decrypt(openssl) = %v", n, err)
		}
		var stream bytes.Buffer
		w, _ := k.NewWriter(&stream)
		for i := 0; i < n; i += 7 { // odd write sizes
			w.Write(pt[i:min(i+7, n)])
		}
		w.Close()
		if !bytes.Equal(stream.Bytes(), theirs) {
			t.Errorf("n=%d: stream writer output differs from openssl", n)
		}
	}
}

func TestAESErrors(t *testing.T) {
	k := NewSessionKey()
	for _, tt := range []struct {
		name string
		ct   []byte
	}{
		{"empty", nil},
		{"short", make([]byte, 15)},
		{"unaligned", make([]byte, 33)},
		{"bad padding", func() []byte { c, _ := NewSessionKey().Encrypt([]byte("x")); return c }()},
	} {
		if _, err := k.Decrypt(tt.ct); err == nil {
			t.Errorf("%s: Decrypt succeeded", tt.name)
		}
	}
	if _, err := (SessionKey{CKey: "short", IVec: "x"}).Encrypt(nil); err != ErrBadKey {
		t.Errorf("short key: %v, want ErrBadKey", err)
	}
	for _, c := range NewSessionKey().CKey + NewSessionKey().IVec {
		if c < '0' || c > 'z' {
			t.Errorf("session key character %q outside '0'…'z'", c)
		}
	}
}

// RSA PKCS#1 v1.5 both ways: openssl encrypts to our PEM public key and we
// decrypt; we encrypt to an openssl-generated key and openssl decrypts.
func TestRSAAgainstOpenSSL(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	msg := []byte(`{"sensor_id":3,"password":"pw","aes_ckey":"0123456789abcdef0123456789abcdef","aes_ivec":"0123456789abcdef"}`)

	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := PublicKeyPEM(&priv.PublicKey)
	if !bytes.HasPrefix([]byte(pubPEM), []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Errorf("PEM starts %.30q", pubPEM)
	}
	pubFile := filepath.Join(dir, "ours.pub")
	os.WriteFile(pubFile, []byte(pubPEM), 0o600)
	ct := openssl(t, msg, "pkeyutl", "-encrypt", "-pubin", "-inkey", pubFile, "-pkeyopt", "rsa_padding_mode:pkcs1")
	if got, err := RSADecrypt(priv, ct); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("RSADecrypt(openssl) = %q, %v", got, err)
	}

	keyFile := filepath.Join(dir, "theirs.key")
	openssl(t, nil, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyFile)
	theirPub := openssl(t, nil, "pkey", "-in", keyFile, "-pubout")
	pub, err := ParsePublicKeyPEM(string(theirPub))
	if err != nil {
		t.Fatal(err)
	}
	ct, err = RSAEncrypt(pub, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := openssl(t, ct, "pkeyutl", "-decrypt", "-inkey", keyFile, "-pkeyopt", "rsa_padding_mode:pkcs1"); !bytes.Equal(got, msg) {
		t.Errorf("openssl decrypt of ours = %q", got)
	}
	// PKCS#1 "RSA PUBLIC KEY" form parses too.
	pk1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
	if k, err := ParsePublicKeyPEM(string(pk1)); err != nil || !k.Equal(pub) {
		t.Errorf("PKCS#1 PEM: %v", err)
	}
	if _, err := ParsePublicKeyPEM("junk"); err == nil {
		t.Error("junk PEM parsed")
	}
	if _, err := RSADecrypt(priv, make([]byte, 256)); err == nil {
		t.Error("zero ciphertext decrypted")
	}
}
