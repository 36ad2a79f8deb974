package conn

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`{}`, 2},
		{`{"a":1}rest`, 7},
		{`[1,[2,{"b":"}"}]]x`, 17},
		{`{"s":"a\"}b"}`, 13},
		{`{"s":"a\\"}`, 11},
		{`{"a":{"b":`, 0},
		{``, 0},
		{`"str"`, -1},
		{` {}`, -1},
		{strings.Repeat("[", MaxJSONDepth+1), -1},
		{strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth), 2 * MaxJSONDepth},
	}
	for _, tt := range tests {
		if got := JSONEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("JSONEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// FuzzJSONEnd: whenever JSONEnd reports a complete value of valid JSON
// input, it is exactly the first value encoding/json reads.
func FuzzJSONEnd(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":"}"}]} {"c":2}`, `[["\"]"]]`, `{"x":"\\\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := JSONEnd(b)
		if n < -1 || n > len(b) {
			t.Fatalf("JSONEnd = %d for %d bytes", n, len(b))
		}
		if n <= 0 {
			return
		}
		if json.Valid(b[:n]) {
			var v any
			d := json.NewDecoder(strings.NewReader(string(b)))
			if err := d.Decode(&v); err != nil || d.InputOffset() != int64(n) {
				t.Fatalf("JSONEnd = %d, decoder read %d (%v)", n, d.InputOffset(), err)
			}
		}
	})
}
