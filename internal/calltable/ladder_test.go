package calltable

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ladderCall(id string, a, b netip.AddrPort, extraMsgs int) []step {
	steps := []step{
		{0, a, b, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a1", "", 1, "INVITE", "", "")},
		{time.Millisecond, b, a, sipMsg("SIP/2.0 180 Ringing", id, "a1", "b1", 1, "INVITE", "", "")},
		{2 * time.Millisecond, b, a, sipMsg("SIP/2.0 200 OK", id, "a1", "b1", 1, "INVITE", "", "")},
	}
	for i := 0; i < extraMsgs; i++ {
		steps = append(steps, step{time.Duration(3+i) * time.Millisecond, a, b,
			sipMsg("INFO sip:2002@example.com SIP/2.0", id, "a1", "b1", 2+i, "INFO", "", "")})
	}
	return steps
}

func TestLadder(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("[2001:db8::2]:5080")
	tab := New(Config{LadderRawBytes: 30}, nil)
	feed(tab, ladderCall("one@x", a, b, 0))
	feed(tab, ladderCall("two@x", b, a, 40))
	refs := map[string]uint64{}
	for _, c := range tab.Snapshot().Calls {
		refs[c.CallID] = c.Ref
	}

	got, ok := tab.Ladder(refs["one@x"])
	if !ok {
		t.Fatalf("Ladder(one) not found")
	}
	var lines []string
	for _, m := range got.Messages {
		lines = append(lines, fmt.Sprintf("%s %s>%s %s", m.Time.Sub(t0), m.Src, m.Dst, m.Line))
	}
	want := []string{
		"0s 10.0.0.1:5060>[2001:db8::2]:5080 INVITE sip:2002@example.com SIP/2.0",
		"1ms [2001:db8::2]:5080>10.0.0.1:5060 SIP/2.0 180 Ringing",
		"2ms [2001:db8::2]:5080>10.0.0.1:5060 SIP/2.0 200 OK",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("ladder (-want +got):\n%s", diff)
	}
	if m := got.Messages[0]; len(m.Raw) != 30 || !strings.HasPrefix(m.Raw, "INVITE sip:") || m.Size <= 30 {
		t.Errorf("raw = %q (size %d), want the first 30 bytes of a longer message", m.Raw, m.Size)
	}

	two, _ := tab.Ladder(refs["two@x"])
	if len(two.Messages) != MaxLadderMessages || two.Omitted != 43-MaxLadderMessages {
		t.Errorf("long call: %d messages, %d omitted; want %d, %d", len(two.Messages), two.Omitted, MaxLadderMessages, 43-MaxLadderMessages)
	}
	if first := two.Messages[0].Line; !strings.HasPrefix(first, "INVITE") {
		t.Errorf("long call starts with %q, want the INVITE", first)
	}
	if _, ok := tab.Ladder(12345); ok {
		t.Errorf("Ladder(unknown) found something")
	}
}

// TestLadderBudget checks that the log never exceeds its byte budget (plus
// one chunk) and reports the loss of old records.
func TestLadderBudget(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("10.0.0.2:5060")
	tab := New(Config{LadderBytes: 64 << 10}, nil)
	for i := 0; i < 2000; i++ {
		feed(tab, ladderCall(fmt.Sprintf("c%d@x", i), a, b, 0))
	}
	if tab.ladder.size > 64<<10+ladderChunk {
		t.Errorf("ladder log holds %d bytes, budget %d", tab.ladder.size, 64<<10)
	}
	if !tab.ladder.dropped {
		t.Errorf("2000 calls fit in 64 KiB: records are larger than expected or not stored")
	}
	var last uint64
	for _, c := range tab.Snapshot().Calls {
		last = max(last, c.Ref)
	}
	if l, ok := tab.Ladder(last); !ok || len(l.Messages) != 3 {
		t.Errorf("newest call's ladder = %+v, %v; want 3 messages", l, ok)
	}

	off := New(Config{LadderBytes: -1}, nil)
	feed(off, ladderCall("x@x", a, b, 0))
	if len(off.ladder.chunks) != 0 {
		t.Errorf("LadderBytes < 0 still logged %d chunks", len(off.ladder.chunks))
	}
}
