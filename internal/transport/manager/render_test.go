package manager

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// TestAppendFixed6 checks the fast float formatter against strconv, the
// reference it must match byte for byte: hand-picked ties and edge cases,
// then random values over the magnitudes listcalls carries.
func TestAppendFixed6(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 4.5, 0.0000005, 0.0000015, 0.0000025, -0.0000005,
		-0.0000001, 1.2345675, 2.5e-7, 999999.9999995, -999999.9999995, 1e6, -1e6, 123456789.123,
		0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 99.99999949999, 99.9999995, math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.Inf(1), math.Inf(-1), math.NaN()}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		switch r.IntN(4) {
		case 0:
			vals = append(vals, r.Float64()*5) // MOS
		case 1:
			vals = append(vals, (r.Float64()-0.5)*2e6)
		case 2: // near a 7th-decimal tie
			vals = append(vals, float64(r.IntN(1e9))/1e6+5e-7)
		default:
			vals = append(vals, math.Float64frombits(r.Uint64()))
		}
	}
	for _, f := range vals {
		got := string(appendFixed6(nil, f))
		want := strconv.FormatFloat(f, 'f', 6, 64)
		if got != want {
			t.Errorf("appendFixed6(%v) = %s, want %s (strconv)", f, got, want)
		}
	}
}

// FuzzAppendFixed6 compares the fast formatter with strconv on any float.
func FuzzAppendFixed6(f *testing.F) {
	f.Add(4.5)
	f.Add(0.0000005)
	f.Fuzz(func(t *testing.T, v float64) {
		if got, want := string(appendFixed6(nil, v)), strconv.FormatFloat(v, 'f', 6, 64); got != want {
			t.Errorf("appendFixed6(%v) = %s, want %s", v, got, want)
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain ascii", `"plain ascii"`},
		{`q"b\`, `"q\"b\\"`},
		{"a\r\n\tb\x01", `"a\r\n\tb\u0001"`},
		{"Žluťoučký", `"Žluťoučký"`},   // valid UTF-8 kept
		{"bad\xff\xfeutf", `"badutf"`}, // invalid UTF-8 stripped to ASCII
	}
	for _, tt := range tests {
		if got := string(appendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestAppendDateTime compares the hand-rolled date with time's layout
// formatting over many instants (including leap days and year edges).
func TestAppendDateTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ts := []time.Time{time.Unix(0, 0), time.Date(2024, 2, 29, 23, 59, 59, 999, time.Local),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for range 10000 {
		ts = append(ts, time.Unix(r.Int64N(4e9), r.Int64N(1e9)))
	}
	for _, tm := range ts {
		got := string(appendDateTime(nil, tm))
		want := `"` + tm.Format("2006-01-02 15:04:05") + `"`
		if got != want {
			t.Errorf("appendDateTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// TestAppendInt checks the integer formatters against strconv: every
// power-of-ten boundary, the extremes, and random values of every length,
// appended to buffers with and without spare capacity.
func TestAppendInt(t *testing.T) {
	vals := []int64{0, 1, -1, 9, 10, 99, 100, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for p := int64(1); p <= math.MaxInt64/10; p *= 10 {
		vals = append(vals, p-1, p, p+1, -p, -(p - 1), 10*p-1)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		vals = append(vals, r.Int64()>>r.IntN(63), -(r.Int64() >> r.IntN(63)))
	}
	for _, v := range vals {
		for _, prefix := range [][]byte{nil, []byte("x,"), make([]byte, 1, 64)} {
			want := strconv.AppendInt(append([]byte(nil), prefix...), v, 10)
			if got := appendInt(append(prefix[:len(prefix):len(prefix)], nil...), v); string(got) != string(want) {
				t.Fatalf("appendInt(%q, %d) = %q, want %q", prefix, v, got, want)
			}
			if got := appendInt(prefix, v); string(got) != string(want) {
				t.Fatalf("appendInt(%q with room, %d) = %q, want %q", prefix, v, got, want)
			}
		}
		if v >= 0 {
			u := uint64(v) << 1
			if got, want := appendUint(nil, u), strconv.FormatUint(u, 10); string(got) != want {
				t.Fatalf("appendUint(%d) = %q, want %q", u, got, want)
			}
		}
	}
	if got, want := appendUint(nil, math.MaxUint64), strconv.FormatUint(math.MaxUint64, 10); string(got) != want {
		t.Fatalf("appendUint(MaxUint64) = %q, want %q", got, want)
	}
}

// plainJSONRef is the byte-at-a-time definition plainJSON must agree with.
func plainJSONRef(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// TestPlainJSON checks the word-at-a-time test against the byte-wise one:
// every byte value at every position of strings of 1–19 bytes (so in
// each lane of a word and in the tail), pairs of neighbouring bytes
// around the borderline values, and random strings.
func TestPlainJSON(t *testing.T) {
	check := func(s string) {
		if got, want := plainJSON(s), plainJSONRef(s); got != want {
			t.Fatalf("plainJSON(%q) = %v, want %v", s, got, want)
		}
	}
	for n := 1; n < 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				check(string(b))
			}
		}
	}
	edge := []byte{0, 1, 0x1f, 0x20, 0x21, '"', '"' - 1, '"' + 1, '\\', '\\' - 1, '\\' + 1, 0x7f, 0x80, 0xff}
	for pos := 0; pos < 15; pos++ {
		for _, a := range edge {
			for _, c := range edge {
				b := []byte("0123456789abcdef")
				b[pos], b[pos+1] = a, c
				check(string(b))
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 100000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(0x20 + r.IntN(0x60))
			if r.IntN(50) == 0 {
				b[i] = byte(r.IntN(256))
			}
		}
		check(string(b))
	}
}

// FuzzPlainJSON compares plainJSON with the byte-wise definition.
func FuzzPlainJSON(f *testing.F) {
	f.Add("sip:alice@example.com")
	f.Add("x\"y\\z\x01\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := plainJSON(s), plainJSONRef(s); got != want {
			t.Errorf("plainJSON(%q) = %v, want %v", s, got, want)
		}
	})
}

// TestRenderSnifferThreads: the sniffer's fixed-width lines (recorded
// from it: a SCHED_OTHER thread at nice 0 has 11 blank columns), the nice
// value or the policy and priority in those columns, a blank line after an
// odd number of threads, the total in 5 columns (ostream's default form
// before any thread was printed), and the one-line form without a newline.
func TestRenderSnifferThreads(t *testing.T) {
	nice := 5
	threads := map[string]any{"cpu_all": 46.7, "threads": []map[string]any{
		{"description": "t2 rtp preprocess distribute", "tid": 25708, "cpu_perc": 7.8, "sched_type": "SCHED_OTHER",
			"sched_priority": 0, "nice": 0, "cs_non_voluntary": 104, "cs_voluntary": 30656},
		{"description": "capture", "tid": 7, "cpu_perc": 0.25, "sched_type": "SCHED_OTHER", "nice": nice,
			"cs_non_voluntary": 1, "cs_voluntary": 0},
		{"description": "rt", "tid": 8, "cpu_perc": 100, "sched_type": "SCHED_FIFO", "sched_priority": 10,
			"cs_non_voluntary": 3, "cs_voluntary": 4},
	}}
	for _, tt := range []struct {
		args []string
		v    any
		want string
	}{
		{nil, threads, "" +
			"t2 rtp preprocess distribute                  (  25708) :   7.8                  104 /    30656 /   0.003\n" +
			"capture                                       (      7) :   0.2  5                 1 /        0          \n" +
			"rt                                            (      8) : 100.0  fifo   10         3 /        4 /   0.750\n" +
			"\n" +
			"CPU ALL :  46.7\n"},
		{nil, map[string]any{"cpu_all": 0, "threads": []any{}}, "CPU ALL :     0\n"},
		{[]string{"line"}, threads, "ALL : 46.7; t2 rtp preprocess distribute (25708) : 7.8; capture (7) : 0.2; rt (8) : 100.0"},
	} {
		var b strings.Builder
		req := &command.Request{Name: "sniffer_threads", Args: tt.args}
		if err := renderSnifferThreads(&b, req, command.Value{V: tt.v}); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("sniffer_threads %v:\n got %q\nwant %q", tt.args, b.String(), tt.want)
		}
	}
}
