package calltable

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzHandleDatagram throws an arbitrary payload at a table that has a call
// set up: on the SIP port, on the call's RTP address or on its RTCP
// address. Nothing may panic, the table stays within its caps, and the call
// still ends cleanly afterwards.
func FuzzHandleDatagram(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\nCall-ID: fz\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@b>;tag=a1\r\nTo: <sip:c@d>;tag=x\r\nContent-Length: 4\r\n\r\nv=0\n"), uint8(0))
	f.Add(rtpPacket(5, 800, 0x1111, 0), uint8(1))
	f.Add([]byte{0x81, 0xc8, 0x00, 0x06, 0, 0, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(2))
	f.Add([]byte("REGISTER sip:x SIP/2.0\r\nCall-ID: r\r\nCSeq: 1 REGISTER\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nContact: *\r\n\r\n"), uint8(0))
	f.Add([]byte("BYE sip:x SIP/2.0\r\nCall-ID: fz\r\nCSeq: 2 BYE\r\nFrom: <sip:a@b>;tag=a1\r\nTo: <sip:c@d>;tag=x\r\n\r\n"), uint8(0))
	rtcpAddr := netip.AddrPortFrom(aliceRT.Addr(), aliceRT.Port()+1)
	f.Fuzz(func(t *testing.T, payload []byte, where uint8) {
		var out sink
		tab := New(Config{MaxCalls: 4, MaxRegistrations: 4}, &out)
		feed(tab, answeredCall("fz", false)[:5])
		dst := []netip.AddrPort{bob, bobRT, rtcpAddr}[int(where)%3]
		src := []netip.AddrPort{alice, aliceRT, aliceRT}[int(where)%3]
		feed(tab, []step{{3 * time.Second, src, dst, payload}})
		if st := tab.Stats(); st.Calls > 4 || st.Registrations > 4 {
			t.Fatalf("caps exceeded: %+v", st)
		}
		tab.CloseAll()
		if tab.Stats().Calls != 0 {
			t.Fatal("calls left after CloseAll")
		}
		found := false
		for _, c := range out.calls {
			found = found || c.CallID == "fz"
		}
		if !found {
			t.Fatal("the set-up call never ended")
		}
	})
}
