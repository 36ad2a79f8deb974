package calltable

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// TestFeedMatchesHandleDatagram: feeding in batches under one lock gives
// the same calls as one HandleDatagram per datagram.
func TestFeedMatchesHandleDatagram(t *testing.T) {
	var steps []step
	for i := 0; i < 3; i++ {
		for _, s := range answeredCall(fmt.Sprintf("call-%d@x", i), i%2 == 0) {
			s.at += time.Duration(i) * 10 * time.Second
			steps = append(steps, s)
		}
	}
	var one, batched sink
	t1 := New(Config{}, &one)
	feed(t1, steps)
	t1.Expire(t0.Add(time.Minute))

	t2 := New(Config{}, &batched)
	for i := 0; i < len(steps); i += 7 {
		t2.Feed(func(h decode.Handler) {
			for _, s := range steps[i:min(i+7, len(steps))] {
				dg := decode.Datagram{Flow: decode.Flow{Src: s.src, Dst: s.dst, Proto: decode.ProtoUDP}, Time: t0.Add(s.at), Payload: s.payload}
				h.HandleDatagram(&dg)
			}
		})
	}
	t2.Expire(t0.Add(time.Minute))
	if len(one.calls) != 3 {
		t.Fatalf("HandleDatagram: %d calls, want 3", len(one.calls))
	}
	byID := func(a, b *CallInfo) int { return strings.Compare(a.CallID, b.CallID) }
	slices.SortFunc(one.calls, byID)
	slices.SortFunc(batched.calls, byID)
	addrs := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	if diff := cmp.Diff(one.calls, batched.calls, addrs); diff != "" {
		t.Errorf("Feed differs from HandleDatagram (-one +batched):\n%s", diff)
	}
}

// TestFeedHandlerExpires: the handler of a finished Feed refuses datagrams
// instead of touching the table without its lock.
func TestFeedHandlerExpires(t *testing.T) {
	tab := New(Config{}, nil)
	var kept decode.Handler
	tab.Feed(func(h decode.Handler) { kept = h })
	defer func() {
		if recover() == nil {
			t.Error("HandleDatagram after Feed returned did not panic")
		}
	}()
	kept.HandleDatagram(&decode.Datagram{Time: t0})
}

// TestMediaReusedByNextCall: a call that reuses the media addresses and
// SSRCs of an earlier call gets its own streams, whether the earlier call
// has left the table (30 s later) or still lingers after its BYE when the
// new SDP takes the addresses over (5 s later); the per-address stream hint
// of the first call must not leak into the second.
func TestMediaReusedByNextCall(t *testing.T) {
	for _, gap := range []time.Duration{30 * time.Second, 5 * time.Second} {
		var out sink
		tab := New(Config{}, &out)
		steps := answeredCall("first@x", false)
		second := answeredCall("second@x", false)
		for i := range second {
			second[i].at += gap
		}
		second = second[:len(second)-30] // the second call's last 28 RTP and 2 SIP stay out
		steps = append(steps, second...)
		slices.SortStableFunc(steps, func(a, b step) int { return int(a.at - b.at) })
		feed(tab, steps)
		tab.CloseAll()
		if len(out.calls) != 2 {
			t.Fatalf("gap %v: calls = %d, want 2", gap, len(out.calls))
		}
		got := map[string]int64{}
		for _, c := range out.calls {
			for _, s := range c.Streams {
				got[c.CallID] += s.Stats.Received
			}
		}
		want := map[string]int64{"first@x": 49 + 50, "second@x": 49 + 50 - 28}
		if !maps.Equal(got, want) {
			t.Errorf("gap %v: RTP packets per call %v, want %v", gap, got, want)
		}
	}
}
