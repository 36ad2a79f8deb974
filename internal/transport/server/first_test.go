package server

import (
	"bytes"
	"testing"
)

func TestFirstFramer(t *testing.T) {
	for _, tt := range []struct {
		name      string
		chunks    []string
		done      bool
		msg, rest string
	}{
		{"json object", []string{`{"a":1}`}, true, `{"a":1}`, ""},
		{"json then crlf and body", []string{`{"type_connection":"response"}` + "\r\nBODY"}, true, `{"type_connection":"response"}`, "\r\nBODY"},
		{"json split", []string{`{"a":`, `"}"`, `}`}, true, `{"a":"}"}`, ""},
		{"escaped quote", []string{`{"a":"\"}"}x`}, true, `{"a":"\"}"}`, "x"},
		{"nested", []string{`{"a":{"b":[1,{}]}}`}, true, `{"a":{"b":[1,{}]}}`, ""},
		{"incomplete", []string{`{"a":`}, false, "", ""},
		{"crlf ends broken json", []string{`{"a":` + "\r\nrest"}, true, `{"a":`, "rest"},
		{"text line", []string{"hello\r\nworld"}, true, "hello", "world"},
		{"lf only waits", []string{"hello\n"}, false, "", ""},
		{"aes", []string{"aes-128-cbc:", "0123456789abcdef", ":sea"}, true, "aes-128-cbc:0123456789abcdef:sea", ""},
		{"aes unaligned sea inside", []string{"aes:0123:sea89abcdef:sea"}, true, "aes:0123:sea89abcdef:sea", ""},
		{"aes crlf inside", []string{"aes:0123\r\n456789abcdef"}, false, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f firstFramer
			var done bool
			for _, c := range tt.chunks {
				var err error
				if done, err = f.Write([]byte(c)); err != nil {
					t.Fatal(err)
				}
			}
			if done != tt.done {
				t.Fatalf("done = %v, want %v", done, tt.done)
			}
			if done && (string(f.msg) != tt.msg || string(f.rest) != tt.rest) {
				t.Errorf("msg %q rest %q; want %q %q", f.msg, f.rest, tt.msg, tt.rest)
			}
		})
	}
	var f firstFramer
	if _, err := f.Write(make([]byte, MaxFirstMessage+1)); err != ErrFirstTooLarge {
		t.Errorf("oversized: %v", err)
	}
	f = firstFramer{}
	f.Write([]byte("partial"))
	if got := f.End(); string(got) != "partial" {
		t.Errorf("End = %q", got)
	}
}

func FuzzFirstFramer(f *testing.F) {
	f.Add([]byte(`{"type_connection":"service"}`+"\r\n"), 5)
	f.Add([]byte("aes-128-cbc:0123456789abcdef:sea"), 3)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		// Feeding in two pieces gives the same message as feeding at once.
		var one, two firstFramer
		d1, e1 := one.Write(b)
		if split < 0 {
			split = -split
		}
		split %= len(b) + 1
		d2, e2 := two.Write(b[:split])
		rest2 := func() []byte { return two.rest }
		if d2 {
			// Bytes after completion are not framed; the server reads
			// them from the connection after the rest.
			rest2 = func() []byte { return append(append([]byte{}, two.rest...), b[split:]...) }
		} else if e2 == nil {
			d2, e2 = two.Write(b[split:])
		}
		if (e1 == nil) != (e2 == nil) || d1 != d2 {
			t.Fatalf("whole: %v %v; split: %v %v", d1, e1, d2, e2)
		}
		if d1 && (!bytes.Equal(one.msg, two.msg) || !bytes.Equal(one.rest, rest2())) {
			t.Fatalf("whole %q|%q; split %q|%q", one.msg, one.rest, two.msg, rest2())
		}
		if d1 && len(one.msg)+len(one.rest) > len(b) {
			t.Fatal("message and rest longer than the input")
		}
	})
}
