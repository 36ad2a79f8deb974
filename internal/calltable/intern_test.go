package calltable

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestInterner: equal values share one copy, the values are right, the
// table stops growing at maxInterned (later values are still returned,
// just not shared), and long values are never kept.
func TestInterner(t *testing.T) {
	in := make(interner)
	a, b := in.get([]byte("Linphone/5.2")), in.get([]byte("Linphone/5.2"))
	if a != "Linphone/5.2" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("equal values not shared: %q at %p, %q at %p", a, unsafe.StringData(a), b, unsafe.StringData(b))
	}
	if in.get(nil) != "" || len(in) != 1 {
		t.Errorf("empty value: table has %d entries", len(in))
	}
	long := strings.Repeat("x", maxInternLen+1)
	if in.get([]byte(long)) != long || len(in) != 1 {
		t.Errorf("a %d-byte value was kept", len(long))
	}
	for i := 0; i < 2*maxInterned; i++ {
		v := fmt.Sprintf("ua-%d", i)
		if got := in.get([]byte(v)); got != v {
			t.Fatalf("get(%q) = %q", v, got)
		}
	}
	if len(in) != maxInterned {
		t.Errorf("table holds %d values, want the cap %d", len(in), maxInterned)
	}
}

// TestCallsShareRepeatedStrings: two calls from the same phones share
// their User-Agent, Server and domain strings.
func TestCallsShareRepeatedStrings(t *testing.T) {
	tab := New(Config{}, nil)
	loadCalls(tab, 2)
	var cs []*Call
	tab.EachCall(nil, func(v CallView) { c := v.c; cs = append(cs, c) })
	if len(cs) != 2 {
		t.Fatalf("%d calls", len(cs))
	}
	for _, f := range []struct {
		name string
		get  func(c *Call) string
	}{
		{"CallerUA", func(c *Call) string { return c.CallerUA }},
		{"CalledUA", func(c *Call) string { return c.CalledUA }},
		{"CallerDomain", func(c *Call) string { return c.CallerDomain }},
		{"CalledDomain", func(c *Call) string { return c.CalledDomain }},
	} {
		a, b := f.get(cs[0]), f.get(cs[1])
		if a == "" || a != b || unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s: %q and %q not one shared string", f.name, a, b)
		}
	}
}
