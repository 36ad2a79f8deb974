package manager

import (
	"bytes"
	"errors"
	"testing"
)

func TestFramer(t *testing.T) {
	tests := []struct {
		name    string
		chunks  []string
		done    bool // complete without End
		cipher  string
		data    string
		wantErr error // from End
	}{
		{"lf", []string{"listcalls\n"}, true, "", "listcalls", nil},
		{"crlf", []string{"listcalls\r\n"}, true, "", "listcalls\r", nil},
		{"crlfcrlf", []string{"listcalls\r\n\r\n"}, true, "", "listcalls\r", nil},
		{"split", []string{"list", "ca", "lls\n"}, true, "", "listcalls", nil},
		{"no terminator", []string{"listcalls"}, false, "", "listcalls", nil},
		{"plain starting with aes", []string{"aesthetic\n"}, true, "", "aesthetic", nil},
		{"aes split", []string{"a", "es-128-cbc:", "0123456789abcdef", ":s", "ea"}, true, "aes-128-cbc", "0123456789abcdef", nil},
		{"aes upper", []string{"AES-256-CBC:0123456789abcdef:sea"}, true, "AES-256-CBC", "0123456789abcdef", nil},
		{"aes newline in ct", []string{"aes-128-cbc:0123456\n89abcdef:sea"}, true, "aes-128-cbc", "0123456\n89abcdef", nil},
		{"aes unaligned sea skipped", []string{"aes-128-cbc:0123:sea45678abc:sea"}, true, "aes-128-cbc", "0123:sea45678abc", nil},
		{"aes missing sea", []string{"aes-128-cbc:0123456789abcdef"}, false, "", "", ErrMissingSea},
		{"aes empty ct", []string{"aes-128-cbc::sea"}, false, "", "", ErrMissingSea},
		{"empty", nil, false, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Framer
			done := false
			for _, c := range tt.chunks {
				d, err := f.Write([]byte(c))
				if err != nil {
					t.Fatal(err)
				}
				done = d
			}
			if done != tt.done {
				t.Fatalf("done = %v, want %v", done, tt.done)
			}
			fr, err := f.End()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("End err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (fr.Cipher != tt.cipher || string(fr.Data) != tt.data) {
				t.Errorf("frame = %q %q, want %q %q", fr.Cipher, fr.Data, tt.cipher, tt.data)
			}
		})
	}
}

func TestFramerLimit(t *testing.T) {
	f := Framer{Max: 8}
	if _, err := f.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("6789")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestFramerAcceptFallback(t *testing.T) {
	// Accept rejects everything: End falls back to the first aligned candidate.
	f := Framer{Accept: func(string, []byte) bool { return false }}
	f.Write([]byte("aes-128-cbc:0123456789abcdef:sea0123456789abcde:sea"))
	fr, err := f.End()
	if err != nil || string(fr.Data) != "0123456789abcdef" {
		t.Errorf("End = %q, %v; want first candidate", fr.Data, err)
	}
}

// FuzzFramer feeds the input in two pieces at a fuzzed split point and
// checks the framer against a one-shot feed: same completion, same frame,
// and frame data always lies inside the input.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("listcalls\r\n\r\n"), 3)
	f.Add([]byte("aes-128-cbc:0123456789abcdef:sea"), 14)
	f.Add([]byte("aes:\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		var a, b Framer
		da, ea := a.Write(in)
		db, eb := b.Write(in[:split])
		if !db && eb == nil {
			db, eb = b.Write(in[split:])
		}
		if (ea == nil) != (eb == nil) || da != db {
			t.Fatalf("one-shot done=%v err=%v, split done=%v err=%v", da, ea, db, eb)
		}
		if ea != nil {
			return
		}
		fa, erra := a.End()
		fb, errb := b.End()
		if (erra == nil) != (errb == nil) || fa.Cipher != fb.Cipher || !bytes.Equal(fa.Data, fb.Data) {
			t.Fatalf("frames differ: %q %q %v / %q %q %v", fa.Cipher, fa.Data, erra, fb.Cipher, fb.Data, errb)
		}
		if !bytes.Contains(in, fa.Data) {
			t.Fatalf("frame data %q not in input", fa.Data)
		}
		if fa.Encrypted() && (len(fa.Data)%16 != 0 || len(fa.Data) == 0) {
			t.Fatalf("aes frame with %d-byte ciphertext", len(fa.Data))
		}
	})
}

// FuzzAESRequest runs the full request path (framing + decryption) on
// arbitrary input and checks that an encrypted command always round-trips.
func FuzzAESRequest(f *testing.F) {
	k := Key{Key: key16, IV: iv16}
	f.Add([]byte("getversion"), []byte("aes-128-cbc:"))
	f.Add([]byte("listcalls {\"limit\":1}"), []byte("AES-256-CBC:"))
	f.Add([]byte(":sea:sea"), []byte("aes:"))
	f.Fuzz(func(t *testing.T, pt, prefix []byte) {
		fr := Framer{Accept: func(c string, ct []byte) bool { _, err := k.Decrypt(c, ct); return err == nil }}
		// Arbitrary bytes never panic.
		fr.Write(append(append([]byte(nil), prefix...), pt...))
		if got, err := fr.End(); err == nil && got.Encrypted() {
			k.Decrypt(got.Cipher, got.Data)
		}
		// A well-formed request decrypts to its plaintext.
		ct, err := (Key{Key: key32, IV: iv16}).Encrypt("aes-128-cbc", pt)
		if err != nil {
			t.Fatal(err)
		}
		k2 := Key{Key: key32, IV: iv16}
		g := Framer{Accept: func(c string, ct []byte) bool { _, err := k2.Decrypt(c, ct); return err == nil }}
		done, err := g.Write(append(append([]byte("aes-128-cbc:"), ct...), ":sea"...))
		if err != nil || !done {
			t.Fatalf("well-formed request not complete: %v %v", done, err)
		}
		back, err := k2.Decrypt(g.Frame().Cipher, g.Frame().Data)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("round trip: %q, %v; want %q", back, err, pt)
		}
	})
}
