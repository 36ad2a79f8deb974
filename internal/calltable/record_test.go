package calltable

import (
	"net/netip"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// recording is a Recorder that notes what it is told.
type recording struct {
	got   []recorded
	ended []uint64
}

type recorded struct {
	kind   RecordKind
	ref    uint64
	callID string
	start  time.Time
}

func (r *recording) Record(kind RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram) {
	r.got = append(r.got, recorded{kind, ref, callID, start})
}
func (r *recording) Ended(ref uint64) { r.ended = append(r.ended, ref) }

// TestRecorder: every SIP message of a call, every datagram on its media
// addresses (RTP and RTCP told apart) and every message of a REGISTER
// chain reach the recorder with the call's reference, Call-ID and first
// packet; nothing else does; the call's end is told once.
func TestRecorder(t *testing.T) {
	rec := &recording{}
	tab := New(Config{}, nil)
	tab.SetRecorder(rec)
	steps := answeredCall("rec@x", false)
	rtcp := []byte{0x80, 200, 0, 6, 0, 0, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	aliceRTCP := netip.AddrPortFrom(aliceRT.Addr(), aliceRT.Port()+1)
	bobRTCP := netip.AddrPortFrom(bobRT.Addr(), bobRT.Port()+1)
	steps = append(steps[:6:6], append([]step{
		{2200 * time.Millisecond, aliceRTCP, bobRTCP, rtcp},
		{2300 * time.Millisecond, alice, bob, sipMsg("OPTIONS sip:x SIP/2.0", "other@x", "o1", "", 1, "OPTIONS", "", "")},
	}, steps[6:]...)...)
	contact := "Contact: <sip:alice@10.0.0.1:5061>\r\n"
	steps = append(steps,
		step{5 * time.Second, alice, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "reg@x", 1, contact)},
		step{5010 * time.Millisecond, proxy, alice, regMsg("SIP/2.0 200 OK", "reg@x", 1, contact+"Expires: 60\r\n")},
	)
	feed(tab, steps)
	tab.CloseAll()

	counts := map[RecordKind]int{}
	for _, r := range rec.got {
		counts[r.kind]++
		switch {
		case r.kind == RecordRegister:
			if r.ref != 1 || r.callID != "" || !r.start.Equal(t0.Add(5*time.Second)) {
				t.Errorf("register record %+v", r)
			}
		case r.ref != 1 || r.callID != "rec@x" || !r.start.Equal(t0):
			t.Errorf("record %+v, want call 1 rec@x started at %v", r, t0)
		}
	}
	// 7 SIP messages (INVITE, 100, 180, 200, ACK, BYE, 200), 99 RTP
	// packets (one of alice's lost), one RTCP packet, two REGISTER
	// messages; the OPTIONS of another Call-ID is nobody's.
	want := map[RecordKind]int{RecordSIP: 7, RecordRTP: 99, RecordRTCP: 1, RecordRegister: 2}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%v records: %d, want %d", k, counts[k], n)
		}
	}
	if len(rec.ended) != 1 || rec.ended[0] != 1 {
		t.Errorf("Ended %v, want [1]", rec.ended)
	}
}

// TestRecorderOffAllocs: a table without a recorder allocates nothing more
// on the media path than before the hook (the hook is a nil check).
func TestRecorderOffAllocs(t *testing.T) {
	tab := New(Config{}, nil)
	feed(tab, answeredCall("a@x", false)[:5]) // the call is set up, media known
	dg := decode.Datagram{Flow: decode.Flow{Src: aliceRT, Dst: bobRT, Proto: decode.ProtoUDP}, Time: t0.Add(3 * time.Second)}
	seq := uint16(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		dg.Payload = rtpPacket(seq, uint32(seq)*160, 0x1111, 0)
		tab.HandleDatagram(&dg)
	})
	if allocs > 1 { // rtpPacket's own buffer
		t.Errorf("%.1f allocations per RTP datagram, want only the test's buffer", allocs)
	}
}
