package tableview

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command/calls"
)

// TestSIPPackets checks the adapter on a real table: a call's packets in
// the sniffer's terms (µs, unmapped addresses, its method numbers), none
// for an unknown reference, and nothing at all with the option off.
func TestSIPPackets(t *testing.T) {
	tab := calltable.New(calltable.Config{SIPPackets: true}, nil)
	feedCall(tab, 1, benchT0.Add(1500*time.Microsecond))
	endCall(tab, 1, benchT0.Add(2*time.Second))
	src := NewSource(tab, -1, false)
	rows := src.ActiveCalls(false)
	// The call has seen its BYE: listcalls leaves it out, the table still
	// has it.
	if len(rows) != 0 {
		t.Fatalf("%d active calls, want 0 after BYE", len(rows))
	}
	ref := CallRef(tab.Snapshot().Calls[0].Ref)
	got, ok := src.SIPPackets(ref)
	if !ok {
		t.Fatal("SIPPackets: not kept")
	}
	sa, sb, ma, _ := benchAddrs(1)
	inv := benchSIP("INVITE sip:2002@example.com SIP/2.0", benchCallID(1), "", "INVITE", "User-Agent: bench-phone/1.0\r\n", benchSDP(ma))
	want := []calls.SIPPacket{
		{Time: benchT0.UnixMicro() + 1500, SrcIP: sa.Addr(), SrcPort: 5060, DstIP: sb.Addr(), DstPort: 5060,
			Line: "INVITE sip:2002@example.com SIP/2.0", SIPLen: len(inv), PacketLen: 14 + 20 + 8 + len(inv), CSeqMethod: 1, CSeq: 1},
		{Time: benchT0.UnixMicro() + 1500, SrcIP: sb.Addr(), SrcPort: 5060, DstIP: sa.Addr(), DstPort: 5060,
			Line: "SIP/2.0 200 OK", CSeqMethod: 1, CSeq: 1},
		{Time: benchT0.UnixMicro() + 2e6, SrcIP: sa.Addr(), SrcPort: 5060, DstIP: sb.Addr(), DstPort: 5060,
			Line: "BYE sip:2002@example.com SIP/2.0", CSeqMethod: 2, CSeq: 1},
	}
	if len(got) == 3 {
		want[1].SIPLen, want[1].PacketLen = got[1].SIPLen, got[1].PacketLen
		want[2].SIPLen, want[2].PacketLen = got[2].SIPLen, got[2].PacketLen
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b calls.SIPPacket) bool { return a == b })); diff != "" {
		t.Errorf("SIPPackets (-want +got):\n%s", diff)
	}
	if p, ok := src.SIPPackets("0xffff"); !ok || len(p) != 0 {
		t.Errorf("unknown ref: %v, %v; want none, true", p, ok)
	}

	off := calltable.New(calltable.Config{}, nil)
	feedCall(off, 1, benchT0)
	if p, ok := NewSource(off, -1, false).SIPPackets(CallRef(off.Snapshot().Calls[0].Ref)); ok || p != nil {
		t.Errorf("option off: %v, %v; want nil, false", p, ok)
	}
}
