package calltable

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Two parties on one host (one address, different ports), the way sipp or
// two softphones on a laptop call each other.
var (
	hostA    = netip.MustParseAddrPort("127.0.0.1:5060")
	hostB    = netip.MustParseAddrPort("127.0.0.1:5062")
	hostARTP = netip.MustParseAddrPort("127.0.0.1:16000")
	hostBRTP = netip.MustParseAddrPort("127.0.0.1:16002")
	hostAVid = netip.MustParseAddrPort("127.0.0.1:16010")
	hostBVid = netip.MustParseAddrPort("127.0.0.1:16012")
)

// sdpAV is an offer or answer with audio (PCMU, telephone-event 101, CN)
// and video (H264 96).
func sdpAV(audio, video netip.AddrPort) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:13 CN/8000\r\n"+
		"m=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
		audio.Addr(), audio.Addr(), audio.Port(), video.Port())
}

// rtcpRR is a receiver report from reporter about ssrc.
func rtcpRR(reporter, ssrc uint32) []byte {
	p := make([]byte, 32)
	p[0], p[1] = 0x81, 201 // V=2, RC=1, RR
	binary.BigEndian.PutUint16(p[2:], 7)
	binary.BigEndian.PutUint32(p[4:], reporter)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	p[12] = 12 // fraction lost
	return p
}

// TestStreamsOnOneHost: with both parties on 127.0.0.1 and one SSRC for
// both voice streams (as sipp sends), each stream's sender follows the
// SDP's ports, a receiver report goes to the stream its sender receives
// only, and streams of telephone events, comfort noise and video are
// labelled and left out of the CDR's a_/b_ streams, even the video stream
// with more packets than the voice.
func TestStreamsOnOneHost(t *testing.T) {
	const id = "onehost@test"
	const shared, dtmf, video, cn = 0x5afe5afe, 0xd7d7, 0x7777, 0xc0c0
	s := []step{
		{0, hostA, hostB, sipMsg("INVITE sip:2002@127.0.0.1:5062 SIP/2.0", id, "a1", "", 1, "INVITE", "", sdpAV(hostARTP, hostAVid))},
		{50 * time.Millisecond, hostB, hostA, sipMsg("SIP/2.0 180 Ringing", id, "a1", "b1", 1, "INVITE", "", "")},
		{time.Second, hostB, hostA, sipMsg("SIP/2.0 200 OK", id, "a1", "b1", 1, "INVITE", "", sdpAV(hostBRTP, hostBVid))},
		{1010 * time.Millisecond, hostA, hostB, sipMsg("ACK sip:2002@127.0.0.1:5062 SIP/2.0", id, "a1", "b1", 1, "ACK", "", "")},
	}
	at := func(i int) time.Duration { return 1100*time.Millisecond + time.Duration(i)*20*time.Millisecond }
	for i := 0; i < 50; i++ {
		s = append(s,
			step{at(i), hostARTP, hostBRTP, rtpPacket(uint16(100+i), uint32(160*i), shared, 0)},
			step{at(i) + time.Millisecond, hostBRTP, hostARTP, rtpPacket(uint16(900+i), uint32(160*i), shared, 0)})
	}
	for i := 0; i < 10; i++ { // a digit on an SSRC of its own
		s = append(s, step{at(20+i) + 5*time.Millisecond, hostARTP, hostBRTP, rtpPacket(uint16(7000+i), 8000, dtmf, 101)})
	}
	for i := 0; i < 120; i++ { // video at 100 packets a second
		s = append(s, step{at(0) + time.Duration(i)*8*time.Millisecond, hostBVid, hostAVid, rtpPacket(uint16(i), uint32(900*i), video, 96)})
	}
	for i := 0; i < 5; i++ {
		s = append(s, step{at(40+i) + 3*time.Millisecond, hostBRTP, hostARTP, rtpPacket(uint16(3000+i), uint32(160*i), cn, 13)})
	}
	// The callee's RTCP port reports on what it receives: the caller's
	// stream, not its own with the same SSRC and the same address.
	s = append(s, step{at(45), netip.AddrPortFrom(hostBRTP.Addr(), hostBRTP.Port()+1), netip.AddrPortFrom(hostARTP.Addr(), hostARTP.Port()+1), rtcpRR(0xb0b, shared)},
		step{3 * time.Second, hostA, hostB, sipMsg("BYE sip:2002@127.0.0.1:5062 SIP/2.0", id, "a1", "b1", 2, "BYE", "", "")},
		step{3010 * time.Millisecond, hostB, hostA, sipMsg("SIP/2.0 200 OK", id, "a1", "b1", 2, "BYE", "", "")})
	var out sink
	tab := New(Config{}, &out)
	feed(tab, s)
	tab.CloseAll()
	if len(out.calls) != 1 {
		t.Fatalf("%d calls ended, want 1", len(out.calls))
	}
	c := out.calls[0]
	type want struct {
		side    Side
		kind    StreamKind
		pt      uint8
		reports uint32
	}
	wants := map[netip.AddrPort]map[uint32]want{
		hostARTP: {shared: {SideCaller, KindVoice, 0, 1}, dtmf: {SideCaller, KindDTMF, 101, 0}},
		hostBRTP: {shared: {SideCallee, KindVoice, 0, 0}, cn: {SideCallee, KindCN, 13, 0}},
		hostBVid: {video: {SideCallee, KindVideo, 96, 0}},
	}
	if len(c.Streams) != 5 {
		t.Fatalf("%d streams, want 5: %+v", len(c.Streams), c.Streams)
	}
	for _, st := range c.Streams {
		w, ok := wants[st.Src][st.SSRC]
		if !ok {
			t.Errorf("unexpected stream %v ssrc %#x", st.Src, st.SSRC)
			continue
		}
		if st.Side != w.side || st.Kind != w.kind || st.Stats.PayloadType != w.pt || uint32(st.Stats.RTCP.Reports) != w.reports {
			t.Errorf("stream %v ssrc %#x: side %v kind %v PT %d, %d RTCP reports; want %v %v %d, %d",
				st.Src, st.SSRC, st.Side, st.Kind, st.Stats.PayloadType, st.Stats.RTCP.Reports, w.side, w.kind, w.pt, w.reports)
		}
	}
	if a, b := c.Best(SideCaller), c.Best(SideCallee); a == nil || b == nil || a.Src != hostARTP || a.SSRC != shared || b.Src != hostBRTP || b.SSRC != shared {
		t.Errorf("Best(caller), Best(callee) = %+v, %+v; want the two voice streams", a, b)
	}
}
