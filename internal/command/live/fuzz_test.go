package live

import (
	"strconv"
	"testing"
)

// FuzzParseRef checks that ParseRef never panics, never accepts 0, and
// that what it accepts round-trips through the "0x%x" form listcalls uses.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"0x1f", "31", "4a3f7b2c1d", "0X", " 0x7f12ab34cd00 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ParseRef(s)
		if !ok {
			return
		}
		if v == 0 {
			t.Fatalf("ParseRef(%q) accepted 0", s)
		}
		back, ok := ParseRef("0x" + strconv.FormatUint(v, 16))
		if !ok || back != v {
			t.Fatalf("ParseRef(%q) = %d does not round-trip (%d, %v)", s, v, back, ok)
		}
	})
}
