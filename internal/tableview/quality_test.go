package tableview

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// qualityCall feeds a call with audio (PCMU, telephone-event 101) and
// video (H264 96) offered and answered, and from t0+1s: 25 s of caller
// voice losing every 20th packet, 25 s of clean callee voice, a digit on
// an SSRC of its own from the caller and callee video at 100 packets a
// second (more packets than the voice). upTo cuts the capture short.
func qualityCall(tab *calltable.Table, t0 time.Time, upTo time.Duration) {
	sa, sb := netip.MustParseAddrPort("10.9.0.1:5060"), netip.MustParseAddrPort("10.9.0.2:5060")
	ma, mb := netip.MustParseAddrPort("10.9.0.1:20000"), netip.MustParseAddrPort("10.9.0.2:30000")
	va, vb := netip.MustParseAddrPort("10.9.0.1:20010"), netip.MustParseAddrPort("10.9.0.2:30010")
	sdp := func(a, v netip.AddrPort) string {
		return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
			"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"+
			"m=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", a.Addr(), a.Addr(), a.Port(), v.Port())
	}
	rtpp := func(seq uint16, ts, ssrc uint32, pt uint8) []byte {
		p := make([]byte, 12+160)
		p[0], p[1] = 0x80, pt
		binary.BigEndian.PutUint16(p[2:], seq)
		binary.BigEndian.PutUint32(p[4:], ts)
		binary.BigEndian.PutUint32(p[8:], ssrc)
		return p
	}
	type pkt struct {
		at       time.Duration
		src, dst netip.AddrPort
		p        []byte
	}
	id := "quality@test"
	pkts := []pkt{
		{0, sa, sb, benchSIP("INVITE sip:2002@example.com SIP/2.0", id, "", "INVITE", "", sdp(ma, va))},
		{500 * time.Millisecond, sb, sa, benchSIP("SIP/2.0 200 OK", id, "b1", "INVITE", "", sdp(mb, vb))},
	}
	for i := 0; i < 1250; i++ {
		at := time.Second + time.Duration(i)*20*time.Millisecond
		if i%20 != 10 {
			pkts = append(pkts, pkt{at, ma, mb, rtpp(uint16(i), uint32(160*i), 0xa, 0)})
		}
		pkts = append(pkts, pkt{at + time.Millisecond, mb, ma, rtpp(uint16(5000+i), uint32(160*i), 0xb, 0)})
		if i >= 100 && i < 110 {
			pkts = append(pkts, pkt{at + 2*time.Millisecond, ma, mb, rtpp(uint16(900+i), 16000, 0xd, 101)})
		}
		for k := 0; k < 2; k++ {
			pkts = append(pkts, pkt{at + time.Duration(3+10*k)*time.Millisecond, vb, va, rtpp(uint16(2*i+k), uint32(1800*i), 0xf, 96)})
		}
	}
	for _, p := range pkts {
		if p.at > upTo {
			break
		}
		dg := decode.Datagram{Flow: decode.Flow{Src: p.src, Dst: p.dst, Proto: decode.ProtoUDP}, Time: t0.Add(p.at), Payload: p.p}
		tab.HandleDatagram(&dg)
	}
}

// TestCallQuality: call_quality's figures are the CDR's and listcalls'
// (one computation), streams carry their sender and kind, and the voice
// figures never come from the DTMF or video stream. Before any RTP there
// is no stream and no MOS.
func TestCallQuality(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tab := calltable.New(calltable.Config{}, nil)
	src := NewSource(tab, -1, false)
	qualityCall(tab, t0, 600*time.Millisecond) // answered, no RTP yet
	rows := src.ActiveCalls(true)
	if len(rows) != 1 {
		t.Fatalf("%d calls, want 1", len(rows))
	}
	q, ok := src.CallQuality(rows[0].CallRef)
	if !ok || len(q.Streams) != 0 || rows[0].A.Present || rows[0].B.Present || q.State != "answered" || q.Answer == nil {
		t.Fatalf("before RTP: %+v, %v; listcalls A %+v B %+v", q, ok, rows[0].A, rows[0].B)
	}

	tab = calltable.New(calltable.Config{}, nil)
	src = NewSource(tab, -1, false)
	qualityCall(tab, t0, time.Hour)
	rows = src.ActiveCalls(true)
	q, ok = src.CallQuality(rows[0].CallRef)
	if !ok || len(q.Streams) != 4 {
		t.Fatalf("CallQuality: %+v, %v; want 4 streams", q, ok)
	}
	ci, _ := tab.Call(1)
	rec := NewRecord(ci, -1)
	for _, s := range q.Streams {
		switch s.SSRC {
		case 0xa, 0xb:
			side, cdrMOS, listMOS := "caller", rec.A.MOSF1Mult10, rows[0].A.MOSF1Avg
			if s.SSRC == 0xb {
				side, cdrMOS, listMOS = "callee", rec.B.MOSF1Mult10, rows[0].B.MOSF1Avg
			}
			if s.Side != side || s.Kind != "voice" || s.MOS == nil || s.IntervalsClosed != 2 || len(s.Intervals) != 2 {
				t.Errorf("voice stream %#x: %+v", s.SSRC, s)
				continue
			}
			if s.MOS.F1 != float64(cdrMOS)/10 || s.MOS.F1 != listMOS {
				t.Errorf("stream %#x: MOS %v, the CDR's %v, listcalls' %v", s.SSRC, s.MOS.F1, float64(cdrMOS)/10, listMOS)
			}
			if last := s.Intervals[1]; last.MOS != *s.MOSLast || math.Abs(last.LossPct-s.LossLastPct) > 0.005 || last.End.Before(s.First.Add(20*time.Second)) {
				t.Errorf("stream %#x: last interval %+v, MOS last %+v, loss last %v", s.SSRC, last, s.MOSLast, s.LossLastPct)
			}
		case 0xd:
			if s.Side != "caller" || s.Kind != "dtmf" || s.PayloadType != 101 || s.Codec != "telephone-event" || s.MOS != nil || s.DTMFPackets != 10 {
				t.Errorf("DTMF stream: %+v", s)
			}
		case 0xf:
			if s.Side != "callee" || s.Kind != "video" || s.MOS != nil || len(s.Intervals) != 0 {
				t.Errorf("video stream: %+v", s)
			}
		}
	}
	if a, b := rows[0].A, rows[0].B; a.Lost != 62 || b.Received != 1250 || rows[0].CalledCodec != 0 || a.MOSF1Avg >= b.MOSF1Avg {
		t.Errorf("listcalls: A %+v, B %+v, called codec %d; want the voice streams (62 caller packets lost, 1250 callee packets, PCMU)", a, b, rows[0].CalledCodec)
	}
	if _, ok := src.CallQuality("0xffff"); ok {
		t.Error("CallQuality of an unknown reference succeeded")
	}
}
