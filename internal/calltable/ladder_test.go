package calltable

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/decode"
)

func ladderCall(id string, a, b netip.AddrPort, extraMsgs int) []step {
	steps := []step{
		{0, a, b, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a1", "", 1, "INVITE", "", sdpBody(aliceRT))},
		{time.Millisecond, b, a, sipMsg("SIP/2.0 180 Ringing", id, "a1", "b1", 1, "INVITE", "", "")},
		{2 * time.Millisecond, b, a, sipMsg("SIP/2.0 200 OK", id, "a1", "b1", 1, "INVITE", "", sdpBody(bobRT))},
	}
	for i := 0; i < extraMsgs; i++ {
		steps = append(steps, step{time.Duration(3+i) * time.Millisecond, a, b,
			sipMsg("INFO sip:2002@example.com SIP/2.0", id, "a1", "b1", 2+i, "INFO", "", "")})
	}
	return steps
}

// byeSteps ends a call of ladderCall: BYE from the caller and its 200.
func byeSteps(id string, a, b netip.AddrPort, at time.Duration) []step {
	return []step{
		{at, a, b, sipMsg("BYE sip:2002@example.com SIP/2.0", id, "a1", "b1", 900, "BYE", "", "")},
		{at + time.Millisecond, b, a, sipMsg("SIP/2.0 200 OK", id, "a1", "b1", 900, "BYE", "", "")},
	}
}

func TestLadder(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("[2001:db8::2]:5080")
	tab := New(Config{LadderRawBytes: 30}, nil)
	feed(tab, ladderCall("one@x", a, b, 0))
	feed(tab, ladderCall("two@x", b, a, 1100))
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
	if got.CallID != "one@x" {
		t.Errorf("CallID = %q, want one@x", got.CallID)
	}
	if m := got.Messages[0]; len(m.Raw) != 30 || !strings.HasPrefix(m.Raw, "INVITE sip:") || m.Size <= 30 {
		t.Errorf("raw = %q (size %d), want the first 30 bytes of a longer message", m.Raw, m.Size)
	}
	if got.Complete() {
		t.Errorf("Complete() with cut texts = true")
	}

	two, _ := tab.Ladder(refs["two@x"])
	if len(two.Messages) != MaxLadderMessages || two.Omitted != 1103-MaxLadderMessages {
		t.Errorf("long call: %d messages, %d omitted; want %d, %d", len(two.Messages), two.Omitted, MaxLadderMessages, 1103-MaxLadderMessages)
	}
	if first := two.Messages[0].Line; !strings.HasPrefix(first, "INVITE") {
		t.Errorf("long call starts with %q, want the INVITE", first)
	}
	if _, ok := tab.Ladder(12345); ok {
		t.Errorf("Ladder(unknown) found something")
	}
}

// TestLadderFullText checks that every message of a call, BYE included,
// keeps its whole text (headers and SDP) under the per-message cap, and
// that a call is found by its Call-ID after it left the table.
func TestLadderFullText(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("10.0.0.2:5060")
	tab := New(Config{Linger: time.Millisecond}, nil)
	tab.SetLadder(1<<20, 4096)
	steps := append(ladderCall("full@x", a, b, 0), byeSteps("full@x", a, b, 10*time.Millisecond)...)
	// A later datagram of another call moves capture time past the linger.
	for _, s := range ladderCall("later@x", a, b, 0) {
		s.at += time.Minute
		steps = append(steps, s)
	}
	feed(tab, steps)
	tab.Expire(t0.Add(2 * time.Minute))
	for _, c := range tab.Snapshot().Calls {
		if c.CallID == "full@x" {
			t.Fatalf("full@x still in the table")
		}
	}

	l, ok := tab.LadderByCallID("full@x")
	if !ok {
		t.Fatalf("LadderByCallID(full@x) found nothing")
	}
	if len(l.Messages) != 5 {
		t.Fatalf("%d messages, want 5", len(l.Messages))
	}
	for i, m := range l.Messages {
		if m.Raw != string(steps[i].payload) || m.Size != len(steps[i].payload) {
			t.Errorf("message %d: raw %d of %d bytes, want the whole %d", i, len(m.Raw), m.Size, len(steps[i].payload))
		}
	}
	bye := l.Messages[3]
	if !strings.HasPrefix(bye.Line, "BYE ") || !strings.Contains(bye.Raw, "CSeq: 900 BYE\r\n") {
		t.Errorf("4th message = %q, want the BYE with its headers", bye.Line)
	}
	if !strings.Contains(l.Messages[0].Raw, "m=audio 7000 RTP/AVP 0 101") {
		t.Errorf("INVITE text lacks its SDP:\n%s", l.Messages[0].Raw)
	}
	if !l.Complete() {
		t.Errorf("Complete() = false for %+v", l)
	}
	// A later call reusing the Call-ID is the one found.
	for _, s := range append(ladderCall("full@x", a, b, 1), byeSteps("full@x", a, b, 10*time.Millisecond)...) {
		s.at += 3 * time.Minute
		feed(tab, []step{s})
	}
	if l, ok := tab.LadderByCallID("full@x"); !ok || len(l.Messages) != 6 || !l.Messages[0].Time.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("reused Call-ID: %d messages from %v, want the 6 of the later call", len(l.Messages), l.Messages[0].Time)
	}
	if _, ok := tab.LadderByCallID("none@x"); ok {
		t.Errorf("LadderByCallID(none@x) found something")
	}
	// A Call-ID is compared by its first 255 bytes, as it is stored.
	long := strings.Repeat("x", 300)
	feed(tab, ladderCall(long, a, b, 0))
	if l, ok := tab.LadderByCallID(long); !ok || len(l.Messages) != 3 || l.CallID != long[:255] {
		t.Errorf("LadderByCallID(300 bytes) = %d messages, %v, CallID %d bytes", len(l.Messages), ok, len(l.CallID))
	}
}

// TestLadderBudget checks that the log never exceeds its byte budget (plus
// one chunk), with the text of each message kept, and reports the loss of
// old records.
func TestLadderBudget(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("10.0.0.2:5060")
	tab := New(Config{LadderBytes: 64 << 10, LadderRawBytes: MaxLadderRaw}, nil)
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
	if l, ok := tab.Ladder(last); !ok || len(l.Messages) != 3 || !l.Complete() {
		t.Errorf("newest call's ladder = %d messages, %v, complete %v; want 3 whole messages", len(l.Messages), ok, l.Complete())
	}
	if l, ok := tab.LadderByCallID("c0@x"); ok {
		t.Errorf("the first call is still in a 64 KiB log: %d messages", len(l.Messages))
	}

	// A message larger than a chunk gets a chunk of its own, and the
	// text is cut at the per-message cap.
	tab.SetLadder(1<<20, MaxLadderRaw)
	big := sipMsg("INFO sip:2002@example.com SIP/2.0", "big@x", "a1", "b1", 2, "INFO", "", strings.Repeat("z", 100<<10))
	feed(tab, []step{{0, a, b, sipMsg("INVITE sip:2002@example.com SIP/2.0", "big@x", "a1", "", 1, "INVITE", "", "")}, {time.Millisecond, a, b, big}})
	if l, ok := tab.LadderByCallID("big@x"); !ok || len(l.Messages[1].Raw) != MaxLadderRaw || l.Messages[1].Size != len(big) {
		t.Errorf("big message: %v, raw %d bytes of %d", ok, len(l.Messages[1].Raw), l.Messages[1].Size)
	}

	// A smaller budget drops the oldest records at once.
	tab.SetLadder(ladderChunk, MaxLadderRaw)
	if tab.ladder.size > 2*ladderChunk+MaxLadderRaw {
		t.Errorf("after SetLadder(%d): %d bytes", ladderChunk, tab.ladder.size)
	}

	off := New(Config{LadderBytes: -1}, nil)
	feed(off, ladderCall("x@x", a, b, 0))
	if len(off.ladder.chunks) != 0 {
		t.Errorf("LadderBytes < 0 still logged %d chunks", len(off.ladder.chunks))
	}
	tab.SetLadder(-1, 0)
	if len(tab.ladder.chunks) != 0 || tab.ladder.size != 0 {
		t.Errorf("SetLadder(-1) kept %d chunks", len(tab.ladder.chunks))
	}
}

// TestLadderBuilder builds a ladder from datagrams as a decoder delivers
// them from a SIP pcap: other Call-IDs and non-SIP payloads are left out,
// the text budget leaves later messages with their start line only.
func TestLadderBuilder(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("10.0.0.2:5060")
	steps := append(ladderCall("built@x", a, b, 0), byeSteps("built@x", a, b, time.Second)...)
	steps = append(steps, ladderCall("other@x", a, b, 0)...)
	steps = append(steps, step{2 * time.Second, a, b, []byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}})
	run := func(rawMax, budget int) (Ladder, bool) {
		lb := NewLadderBuilder("built@x", rawMax, budget)
		for _, s := range steps {
			dg := decode.Datagram{Flow: decode.Flow{Src: s.src, Dst: s.dst, Proto: decode.ProtoUDP}, Time: t0.Add(s.at), Payload: s.payload}
			lb.HandleDatagram(&dg)
		}
		return lb.Ladder()
	}
	l, ok := run(MaxLadderRaw, 1<<20)
	if !ok || len(l.Messages) != 5 || !l.Complete() || l.CallID != "built@x" {
		t.Fatalf("Ladder = %d messages, %v, complete %v, %q", len(l.Messages), ok, l.Complete(), l.CallID)
	}
	if m := l.Messages[3]; m.Raw != string(steps[3].payload) || m.Src != a || !m.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("BYE = %+v", m)
	}
	l, _ = run(MaxLadderRaw, len(steps[0].payload)+len(steps[1].payload))
	if l.Messages[1].Raw == "" || l.Messages[2].Raw != "" || l.Messages[2].Line != "SIP/2.0 200 OK" {
		t.Errorf("over the budget: texts %d, %d bytes; line %q", len(l.Messages[1].Raw), len(l.Messages[2].Raw), l.Messages[2].Line)
	}
	if _, ok := NewLadderBuilder("none@x", 10, 10).Ladder(); ok {
		t.Errorf("empty builder: ok")
	}

	// A call of 2,500 messages: the first and the last 500 are kept, with
	// their text within the budget.
	long := append(ladderCall("built@x", a, b, 2495), byeSteps("built@x", a, b, time.Hour)...)
	lb := NewLadderBuilder("built@x", MaxLadderRaw, 200<<10)
	for _, s := range long {
		dg := decode.Datagram{Flow: decode.Flow{Src: s.src, Dst: s.dst, Proto: decode.ProtoUDP}, Time: t0.Add(s.at), Payload: s.payload}
		lb.HandleDatagram(&dg)
	}
	l, _ = lb.Ladder()
	if len(l.Messages) != MaxLadderMessages || l.Omitted != len(long)-MaxLadderMessages {
		t.Fatalf("long call: %d messages, %d omitted", len(l.Messages), l.Omitted)
	}
	if !strings.HasPrefix(l.Messages[0].Line, "INVITE") || !strings.HasPrefix(l.Messages[MaxLadderMessages-2].Line, "BYE") ||
		l.Messages[MaxLadderMessages/2].Raw != string(long[len(long)-MaxLadderMessages/2].payload) {
		t.Errorf("long call: first %q, last but one %q", l.Messages[0].Line, l.Messages[MaxLadderMessages-2].Line)
	}
	if lb.used > 200<<10 {
		t.Errorf("text held %d bytes, budget %d", lb.used, 200<<10)
	}
	for i := 1; i < len(l.Messages); i++ {
		if l.Messages[i].Time.Before(l.Messages[i-1].Time) {
			t.Fatalf("message %d out of order", i)
		}
	}
}

// TestLadderOutOfDialogMethods: a MESSAGE, NOTIFY or OPTIONS carrying a
// call's Call-ID is one of its messages, in its ladder like the dialog's.
func TestLadderOutOfDialogMethods(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("10.0.0.2:5060")
	tab := New(Config{}, nil)
	steps := ladderCall("msg@x", a, b, 0)
	for i, m := range []string{"MESSAGE", "NOTIFY", "OPTIONS"} {
		steps = append(steps, step{time.Duration(10+i) * time.Millisecond, a, b,
			sipMsg(m+" sip:2002@example.com SIP/2.0", "msg@x", "a1", "b1", 10+i, m, "", "")})
	}
	feed(tab, steps)
	calls := tab.Snapshot().Calls
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	got, ok := tab.Ladder(calls[0].Ref)
	if !ok {
		t.Fatal("no ladder")
	}
	var methods []string
	for _, m := range got.Messages[3:] {
		methods = append(methods, strings.Fields(m.Line)[0])
	}
	if want := []string{"MESSAGE", "NOTIFY", "OPTIONS"}; !slices.Equal(methods, want) || len(got.Messages) != 6 {
		t.Errorf("ladder has %d messages, after the INVITE's three %v; want 6, %v", len(got.Messages), methods, want)
	}
}
