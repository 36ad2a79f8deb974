package calltable

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/sip"
)

func refOf(t *testing.T, tab *Table, callID string) uint64 {
	t.Helper()
	for _, c := range tab.Snapshot().Calls {
		if c.CallID == callID {
			return c.Ref
		}
	}
	t.Fatalf("call %s not in the table", callID)
	return 0
}

func TestSIPPackets(t *testing.T) {
	tab := New(Config{SIPPackets: true}, nil)
	steps := answeredCall("keep@x", true)
	// An OPTIONS inside the call's Call-ID is one of its packets too, as
	// for the sniffer (every packet it hands to the call).
	steps = append(steps[:5:5], append([]step{{2020 * time.Millisecond, alice, bob,
		sipMsg("OPTIONS sip:2002@10.0.0.3:5070 SIP/2.0", "keep@x", "a1", "b1", 2, "OPTIONS", "", "")}}, steps[5:]...)...)
	// Another call's packets stay apart.
	steps = append(steps, ladderCall("other@x", bob, alice, 1)...)
	feed(tab, steps)

	if !tab.KeepsSIPPackets() {
		t.Fatal("KeepsSIPPackets() = false with Config.SIPPackets")
	}
	got, ok := tab.SIPPackets(refOf(t, tab, "keep@x"))
	if !ok {
		t.Fatal("SIPPackets: not found")
	}
	var lines []string
	for _, p := range got.Packets {
		lines = append(lines, fmt.Sprintf("%v %s>%s %q cseq=%d %s", p.Time.Sub(t0), p.Src, p.Dst, p.Line, p.CSeq, p.CSeqMethod))
	}
	want := []string{
		`0s 10.0.0.1:5061>10.0.0.3:5070 "INVITE sip:2002@example.com SIP/2.0" cseq=1 INVITE`,
		`10ms 10.0.0.3:5070>10.0.0.1:5061 "SIP/2.0 100 Trying" cseq=1 INVITE`,
		`50ms 10.0.0.3:5070>10.0.0.1:5061 "SIP/2.0 180 Ringing" cseq=1 INVITE`,
		`2s 10.0.0.3:5070>10.0.0.1:5061 "SIP/2.0 200 OK" cseq=1 INVITE`,
		`2.01s 10.0.0.1:5061>10.0.0.3:5070 "ACK sip:2002@10.0.0.3:5070 SIP/2.0" cseq=1 ACK`,
		`2.02s 10.0.0.1:5061>10.0.0.3:5070 "OPTIONS sip:2002@10.0.0.3:5070 SIP/2.0" cseq=2 OPTIONS`,
		`4s 10.0.0.3:5070>10.0.0.1:5061 "BYE sip:1001@10.0.0.1:5061 SIP/2.0" cseq=1 BYE`,
		`4.01s 10.0.0.1:5061>10.0.0.3:5070 "SIP/2.0 200 OK" cseq=1 BYE`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("packets (-want +got):\n%s", diff)
	}
	if got.Omitted != 0 {
		t.Errorf("Omitted = %d, want 0", got.Omitted)
	}
	var sizes []int
	for _, s := range steps {
		if s.payload[0] != 0x80 && strings.Contains(string(s.payload), "Call-ID: keep@x") {
			sizes = append(sizes, len(s.payload))
		}
	}
	for i, p := range got.Packets {
		if i < len(sizes) && p.Size != sizes[i] {
			t.Errorf("packet %d: Size = %d, want %d", i, p.Size, sizes[i])
		}
		// No frame length in the datagram: Ethernet, IPv4 and UDP
		// headers before the message.
		if p.FrameLen != 14+20+8+p.Size {
			t.Errorf("packet %d: FrameLen = %d, want %d", i, p.FrameLen, 14+20+8+p.Size)
		}
	}

	other, ok := tab.SIPPackets(refOf(t, tab, "other@x"))
	if !ok || len(other.Packets) != 4 || other.Packets[3].CSeqMethod != sip.MethodINFO || other.Packets[3].CSeq != 2 {
		t.Errorf("other call: %d packets (ok %v), want 4 ending with INFO cseq 2: %+v", len(other.Packets), ok, other.Packets)
	}
	if _, ok := tab.SIPPackets(12345); ok {
		t.Error("SIPPackets(unknown ref) ok")
	}
}

func TestSIPPacketsOff(t *testing.T) {
	tab := New(Config{}, nil)
	feed(tab, answeredCall("off@x", true))
	if tab.KeepsSIPPackets() {
		t.Error("KeepsSIPPackets() = true by default; the sniffer's active_call_info is off by default")
	}
	if p, ok := tab.SIPPackets(refOf(t, tab, "off@x")); ok || p.Packets != nil {
		t.Errorf("SIPPackets with the option off = %+v, %v; want none, false", p, ok)
	}
}

// TestSIPPacketsFrame checks the frame length from the datagram, the
// first line cut at a bare LF and at MaxSIPPacketLine, and IPv6 addresses.
func TestSIPPacketsFrame(t *testing.T) {
	a := netip.MustParseAddrPort("[2001:db8::1]:5060")
	b := netip.MustParseAddrPort("[2001:db8::2]:5062")
	tab := New(Config{SIPPackets: true}, nil)
	long := "INVITE sip:" + strings.Repeat("9", 2000) + "@example.com SIP/2.0"
	inv := sipMsg(long, "v6@x", "a1", "", 7, "INVITE", "", "")
	dg := decode.Datagram{Flow: decode.Flow{Src: a, Dst: b, Proto: decode.ProtoUDP}, Time: t0, Payload: inv, FrameLen: 4321}
	tab.HandleDatagram(&dg)
	lf := []byte(strings.ReplaceAll(string(sipMsg("SIP/2.0 180 Ringing", "v6@x", "a1", "b1", 7, "INVITE", "", "")), "\r\n", "\n"))
	dg = decode.Datagram{Flow: decode.Flow{Src: b, Dst: a, Proto: decode.ProtoTCP}, Time: t0.Add(time.Second), Payload: lf}
	tab.HandleDatagram(&dg)

	got, _ := tab.SIPPackets(refOf(t, tab, "v6@x"))
	if len(got.Packets) != 2 {
		t.Fatalf("%d packets, want 2", len(got.Packets))
	}
	p := got.Packets[0]
	if p.Line != long[:MaxSIPPacketLine] || p.FrameLen != 4321 || p.Size != len(inv) || p.Src != a || p.Dst != b || p.CSeq != 7 {
		t.Errorf("INVITE = line %d bytes, frame %d, size %d, %s>%s cseq %d; want %d bytes, 4321, %d, %s>%s 7",
			len(p.Line), p.FrameLen, p.Size, p.Src, p.Dst, p.CSeq, MaxSIPPacketLine, len(inv), a, b)
	}
	p = got.Packets[1]
	if p.Line != "SIP/2.0 180 Ringing" || p.FrameLen != 14+40+20+len(lf) || !p.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("180 = %q frame %d at %v; want the line without LF, frame %d", p.Line, p.FrameLen, p.Time, 14+40+20+len(lf))
	}
}

// TestSIPPacketsBound floods a call with in-dialog requests: its records
// stay within MaxSIPPacketBytes, the first ones kept, the rest counted.
func TestSIPPacketsBound(t *testing.T) {
	tab := New(Config{SIPPackets: true}, nil)
	a := netip.MustParseAddrPort("10.0.0.1:5060")
	b := netip.MustParseAddrPort("10.0.0.2:5060")
	const n = 3000
	feed(tab, ladderCall("flood@x", a, b, n))
	got, ok := tab.SIPPackets(refOf(t, tab, "flood@x"))
	if !ok {
		t.Fatal("not found")
	}
	kept := len(got.Packets)
	if kept < 500 || kept+got.Omitted != n+3 {
		t.Errorf("kept %d, omitted %d; want at least 500 kept and %d in all", kept, got.Omitted, n+3)
	}
	if st := tab.Stats(); st.SIPPacketsOmitted != uint64(got.Omitted) {
		t.Errorf("Stats.SIPPacketsOmitted = %d, want %d", st.SIPPacketsOmitted, got.Omitted)
	}
	if got.Packets[0].CSeqMethod != sip.MethodINVITE || got.Packets[kept-1].CSeq != uint32(2+kept-4) {
		t.Errorf("first %s, last cseq %d; want the INVITE first and the oldest INFOs kept (last cseq %d)",
			got.Packets[0].CSeqMethod, got.Packets[kept-1].CSeq, 2+kept-4)
	}
	ref := refOf(t, tab, "flood@x")
	tab.mu.Lock()
	size := len(tab.byRef[ref].sipPackets)
	tab.mu.Unlock()
	if size > MaxSIPPacketBytes {
		t.Errorf("records take %d bytes, want at most %d", size, MaxSIPPacketBytes)
	}
}
