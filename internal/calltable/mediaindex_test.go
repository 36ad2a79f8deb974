package calltable

import (
	"net/netip"
	"testing"
)

// TestMediaIndex: IPv4, IPv6 and IPv4-mapped IPv6 addresses are distinct
// keys; the unspecified address and port 0 work as keys too.
func TestMediaIndex(t *testing.T) {
	m := newMediaIndex()
	a, b := &Call{Ref: 1}, &Call{Ref: 2}
	v4 := netip.MustParseAddrPort("10.0.0.1:4000")
	mapped := netip.MustParseAddrPort("[::ffff:10.0.0.1]:4000")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:4000")
	zero := netip.MustParseAddrPort("0.0.0.0:0")
	m.set(v4, a)
	m.set(v6, b)
	tests := []struct {
		ap   netip.AddrPort
		want *Call
	}{
		{v4, a}, {v6, b}, {mapped, nil}, {zero, nil}, {netip.AddrPort{}, nil},
		{netip.MustParseAddrPort("10.0.0.1:4001"), nil},
	}
	for _, tt := range tests {
		if got := m.get(tt.ap); got != tt.want {
			t.Errorf("get(%v) = %v, want %v", tt.ap, got, tt.want)
		}
	}
	m.set(zero, a)
	m.del(v4)
	if m.get(v4) != nil || m.get(zero) != a || m.len() != 2 {
		t.Errorf("after del: get(v4) = %v, get(zero) = %v, len = %d; want nil, a, 2", m.get(v4), m.get(zero), m.len())
	}
}
