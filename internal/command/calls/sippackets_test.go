package calls

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

// packetSource keeps SIP packets, by CallRef (the sniffer's
// active_call_info = yes); asked tells which call they were asked for.
type packetSource struct {
	fakeSource
	packets map[string][]SIPPacket
	asked   *[]string
}

func (p packetSource) SIPPackets(ref string) ([]SIPPacket, bool) {
	*p.asked = append(*p.asked, ref)
	return p.packets[ref], true
}

// noPackets is a source that offers SIPPackets but keeps none (the
// option off).
type noPackets struct{ fakeSource }

func (noPackets) SIPPackets(string) ([]SIPPacket, bool) { return nil, false }

func TestActiveCallInfoSIPPackets(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	pk := []SIPPacket{
		{Time: t0.UnixMicro(), SrcIP: a, SrcPort: 5060, DstIP: b, DstPort: 5062, Line: "INVITE sip:2@b SIP/2.0", SIPLen: 700, PacketLen: 742, CSeqMethod: 1, CSeq: 3},
		{Time: t0.UnixMicro() + 1500, SrcIP: b, SrcPort: 5062, DstIP: a, DstPort: 5060, Line: "SIP/2.0 100 Trying", SIPLen: 300, PacketLen: 342, CSeqMethod: 1, CSeq: 3},
	}
	var asked []string
	src := packetSource{fakeSource: testCalls(), packets: map[string][]SIPPacket{"b2": pk}, asked: &asked}
	reg := newReg(src)

	res, err := run(t, reg, "active_call_info", "0xB2")
	if err != nil {
		t.Fatal(err)
	}
	info := res.(command.Value).V.(Info)
	if info.SIPPackets != "" || len(info.Packets) != 2 || info.SIPPacketsText() != "" || len(asked) != 1 || asked[0] != "b2" {
		t.Fatalf("info = text %q, %d packets; asked for %q; want the call's 2 packets asked for by its CallRef", info.SIPPackets, len(info.Packets), asked)
	}
	pt := info.SIPPacketTable()
	if pt == nil || pt.Len != 2 || strings.Join(pt.Names(), ",") != "time,src_ip,src_port,dst_ip,dst_port,sip,sip_len,packet_len,cseq_m,cseq_n" {
		t.Fatalf("packet table = %+v, want 2 rows in the sniffer's member order", pt)
	}
	row := []string{}
	for c := range pt.Columns {
		row = append(row, fmt.Sprint(pt.Cell(c, 1).Any()))
	}
	if got, want := strings.Join(row, "|"), "1776160800001500|10.0.0.2|5062|10.0.0.1|5060|SIP/2.0 100 Trying|300|342|1|3"; got != want {
		t.Errorf("row 1 = %s, want %s", got, want)
	}

	// The JSON of other transports: the array in place of the text.
	bs, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"sip_packets":[{"time":1776160800000000,"src_ip":"10.0.0.1","src_port":5060,"dst_ip":"10.0.0.2","dst_port":5062,"sip":"INVITE sip:2@b SIP/2.0","sip_len":700,"packet_len":742,"cseq_m":1,"cseq_n":3},`; !strings.Contains(string(bs), want) {
		t.Errorf("JSON %s\nwant it to hold %s", bs, want)
	}

	// A call with no packets (it left the table meanwhile) has an empty
	// array, not the text.
	res, _ = run(t, reg, "active_call_info", "a1")
	if info := res.(command.Value).V.(Info); info.SIPPacketTable() == nil || info.SIPPacketTable().Len != 0 {
		t.Errorf("call without packets: text %q, table %+v; want an empty table", info.SIPPackets, info.SIPPacketTable())
	} else if bs, _ := json.Marshal(info); !strings.Contains(string(bs), `"sip_packets":[],`) {
		t.Errorf("call without packets: JSON %s", bs)
	}

	// A source that keeps none answers with the sniffer's text.
	res, _ = run(t, newReg(noPackets{testCalls()}), "active_call_info", "b2")
	if info := res.(command.Value).V.(Info); info.SIPPackets != SIPPacketsDisabled || info.SIPPacketTable() != nil {
		t.Errorf("option off: text %q, table %v; want %q and none", info.SIPPackets, info.SIPPacketTable(), SIPPacketsDisabled)
	}
}
