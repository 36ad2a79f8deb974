package hepfeed

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/tableview"
)

// newFeeder is a feeder into a fresh call table; the tests hand it
// packets as the collector's goroutines would. sensorIDs is hep_id_sensor.
func newFeeder(sensorIDs map[uint32]int) (*Feeder, *calltable.Table) {
	tab := calltable.New(calltable.Config{}, nil)
	return NewFeeder(tab, sensorIDs), tab
}

var (
	hepA, hepB           = netip.MustParseAddrPort("192.0.2.10:5060"), netip.MustParseAddrPort("192.0.2.20:5060")
	hepMediaA, hepMediaB = netip.MustParseAddrPort("192.0.2.10:4000"), netip.MustParseAddrPort("192.0.2.20:6000")
	hepT0                = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// hepCall sends, as agent captureID, a call with SDP both ways and 50
// PCMU packets from each side: A sends SSRC 0x1111, B 0x2222.
func hepCall(t *testing.T, f *Feeder, captureID uint32, callID string) {
	t.Helper()
	sdp := func(ap netip.AddrPort) string {
		return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio %[2]d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", ap.Addr(), ap.Port())
	}
	msg := func(first, to, cseq string, body string) []byte {
		return []byte(first + "\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>" + to +
			"\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq + "\r\nContent-Type: application/sdp\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body)
	}
	send := func(typ hep.ProtoType, src, dst netip.AddrPort, at time.Time, payload []byte) {
		t.Helper()
		p := hep.Packet{Version: 3, IPProto: 17, Type: typ, CaptureID: captureID, Src: src, Dst: dst, Time: at, Payload: payload}
		if !f.Packet(&p) {
			t.Fatalf("packet of type %v not analysed", typ)
		}
	}
	send(hep.TypeSIP, hepA, hepB, hepT0, msg("INVITE sip:bob@example.com SIP/2.0", "", "1 INVITE", sdp(hepMediaA)))
	send(hep.TypeSIP, hepB, hepA, hepT0.Add(100*time.Millisecond), msg("SIP/2.0 200 OK", ";tag=2", "1 INVITE", sdp(hepMediaB)))
	for i := range 50 {
		at := hepT0.Add(200*time.Millisecond + time.Duration(i)*20*time.Millisecond)
		for _, d := range []struct {
			src, dst netip.AddrPort
			ssrc     uint32
		}{{hepMediaA, hepMediaB, 0x1111}, {hepMediaB, hepMediaA, 0x2222}} {
			pkt := make([]byte, 12+160)
			pkt[0] = 0x80
			binary.BigEndian.PutUint16(pkt[2:], uint16(100+i))
			binary.BigEndian.PutUint32(pkt[4:], uint32(160*i))
			binary.BigEndian.PutUint32(pkt[8:], d.ssrc)
			send(hep.TypeRTP, d.src, d.dst, at, pkt)
		}
	}
}

// TestHEPRTCPJSON: RTCP that an agent sends as JSON (heplify's and
// rtpengine's form) reaches the statistics of the stream it reports on,
// as the same report in binary would; one that does not parse is counted
// and changes nothing.
func TestHEPRTCPJSON(t *testing.T) {
	f, tab := newFeeder(nil)
	hepCall(t, f, 1, "json-rtcp-call")
	rtcpA := netip.AddrPortFrom(hepMediaA.Addr(), hepMediaA.Port()+1)
	rtcpB := netip.AddrPortFrom(hepMediaB.Addr(), hepMediaB.Port()+1)
	at := hepT0.Add(time.Second + 500*time.Millisecond)
	// B reports on A's stream (SSRC 0x1111 = 4369): 2/256 lost, 3
	// packets lost, jitter 80 timestamp units = 10 ms at 8 kHz.
	reports := []string{
		`{"sender_information":{"ntp_timestamp_sec":3900000000,"ntp_timestamp_usec":0,"rtp_timestamp":8000,"packets":50,"octets":8000},` +
			`"ssrc":8738,"type":200,"report_count":1,"report_blocks":[{"source_ssrc":4369,"fraction_lost":2,"packets_lost":3,` +
			`"highest_seq_no":149,"ia_jitter":80,"lsr":0,"dlsr":0}],"report_blocks_xr":{"type":0},"sdes_ssrc":0}`,
		`{"ssrc":8738,"type":201,"report_count":1,"report_blocks":[{"source_ssrc":4369,"highest_seq_no":149,` +
			`"fraction_lost":4,"ia_jitter":160,"packets_lost":5,"lsr":0,"dlsr":0},],}`,
	}
	for i, r := range reports {
		p := hep.Packet{Version: 3, IPProto: 17, Type: hep.TypeRTCP, CaptureID: 1, Src: rtcpB, Dst: rtcpA,
			Time: at.Add(time.Duration(i) * time.Second), Payload: []byte(r), CorrelationID: []byte("json-rtcp-call")}
		if !f.Packet(&p) {
			t.Fatalf("report %d not analysed", i)
		}
	}
	bad := hep.Packet{Version: 3, IPProto: 17, Type: hep.TypeRTCP, Src: rtcpB, Dst: rtcpA, Time: at, Payload: []byte(`{"ssrc":8738,"report_blocks":[{"source_ssrc":4369,`)}
	if f.Packet(&bad) {
		t.Error("a truncated JSON report was analysed")
	}
	if got, bad := f.JSONRTCP(); got != 2 || bad != 1 {
		t.Errorf("JSON RTCP counted %d analysed, %d malformed; want 2, 1", got, bad)
	}
	c := oneCall(t, tab)
	var found bool
	for _, st := range c.Streams {
		r := st.Stats.RTCP
		switch st.SSRC {
		case 0x1111:
			found = true
			if r.Reports != 2 || r.FractionLostMax != 4 || r.CumulativeLost != 5 || r.JitterMaxMS != 20 || r.JitterAvgMS != 15 {
				t.Errorf("A's stream RTCP = %+v; want 2 reports, fraction max 4, lost 5, jitter max 20 ms avg 15 ms", r)
			}
		case 0x2222:
			if r.Reports != 0 {
				t.Errorf("B's stream got %d reports, want none", r.Reports)
			}
		}
	}
	if !found {
		t.Fatalf("no stream of SSRC 0x1111 in %+v", c.Streams)
	}
	var fams []string
	for _, f := range Families(nil, f, nil) {
		if f.Name == "voipsensor_hep_rtcp_json_total" {
			for _, smp := range f.Samples {
				fams = append(fams, fmt.Sprintf("%s=%v", smp.Labels["outcome"], smp.Value))
			}
		}
	}
	if fmt.Sprint(fams) != "[analysed=2 malformed=1]" {
		t.Errorf("voipsensor_hep_rtcp_json_total samples %v", fams)
	}
}

// TestHEPIDSensor: the calls of an agent listed in hep_id_sensor carry
// its id_sensor into the CDR and listcalls; other agents' calls keep the
// sensor's.
func TestHEPIDSensor(t *testing.T) {
	const idSensor = 5 // the sensor's own
	f, tab := newFeeder(map[uint32]int{2001: 42, 2002: 43})
	hepCall(t, f, 2001, "agent-2001-call")
	hepCall(t, f, 7, "agent-7-call")
	want := map[string]int{"agent-2001-call": 42, "agent-7-call": 5}
	snap := tab.Snapshot()
	if len(snap.Calls) != 2 {
		t.Fatalf("%d calls, want 2", len(snap.Calls))
	}
	for _, ci := range snap.Calls {
		if got := tableview.NewRecord(ci, idSensor).IDSensor; got != want[ci.CallID] {
			t.Errorf("%s: CDR id_sensor %d, want %d", ci.CallID, got, want[ci.CallID])
		}
	}
	rows := tableview.NewSource(tab, idSensor, false).ActiveCalls(false)
	if len(rows) != 2 {
		t.Fatalf("%d listcalls rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.SensorID != want[r.CallID] {
			t.Errorf("%s: listcalls id_sensor %d, want %d", r.CallID, r.SensorID, want[r.CallID])
		}
	}
}

func oneCall(t *testing.T, tab *calltable.Table) *calltable.CallInfo {
	t.Helper()
	snap := tab.Snapshot()
	if len(snap.Calls) != 1 {
		t.Fatalf("%d calls, want 1", len(snap.Calls))
	}
	return snap.Calls[0]
}
