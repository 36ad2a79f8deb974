package manager

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// StoredKeyType is the `system` table type under which the GUI stores the
// manager key (`store_aes_key`).
const StoredKeyType = "manager_key"

// ParseStoredKey decodes the content of the `system` row of type
// [StoredKeyType]: `{"key":"<base64>","iv":"<base64>"}`.
func ParseStoredKey(content string) (Key, error) {
	if strings.TrimSpace(content) == "" {
		return Key{}, fmt.Errorf("manager: stored key: empty content")
	}
	var j struct {
		Key string `json:"key"`
		IV  string `json:"iv"`
	}
	if err := json.Unmarshal([]byte(content), &j); err != nil {
		return Key{}, fmt.Errorf("manager: stored key: %w", err)
	}
	return DecodeKey(j.Key, j.IV)
}

// MarshalStored encodes k as the `system` row content the GUI writes.
func (k Key) MarshalStored() string {
	b, _ := json.Marshal(struct {
		Key string `json:"key"`
		IV  string `json:"iv"`
	}{base64.StdEncoding.EncodeToString(k.Key), base64.StdEncoding.EncodeToString(k.IV)})
	return string(b)
}

// GenerateKey returns a new random AES-128 key and IV (16 bytes each) read
// from r, or from crypto/rand when r is nil: what the GUI's
// generate_aes_key makes for the default aes-128-cbc.
func GenerateKey(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return Key{}, fmt.Errorf("manager: generate key: %w", err)
	}
	return Key{Key: b[:16:16], IV: b[16:]}, nil
}
