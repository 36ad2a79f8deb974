package manager

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
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
