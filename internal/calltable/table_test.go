package calltable

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// sink collects what leaves the table.
type sink struct {
	calls []*CallInfo
	regs  []*RegistrationInfo
}

func (s *sink) CallEnded(c *CallInfo)                   { s.calls = append(s.calls, c) }
func (s *sink) RegistrationChanged(r *RegistrationInfo) { s.regs = append(s.regs, r) }

var (
	alice   = netip.MustParseAddrPort("10.0.0.1:5061")
	proxy   = netip.MustParseAddrPort("10.0.0.2:5060")
	bob     = netip.MustParseAddrPort("10.0.0.3:5070")
	t0      = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	aliceRT = netip.MustParseAddrPort("10.0.0.1:7000")
	bobRT   = netip.MustParseAddrPort("10.0.0.3:6000")
)

// step is one datagram of a scripted exchange.
type step struct {
	at       time.Duration
	src, dst netip.AddrPort
	payload  []byte
}

func feed(tab *Table, steps []step) {
	for _, s := range steps {
		dg := decode.Datagram{
			Flow:    decode.Flow{Src: s.src, Dst: s.dst, Proto: decode.ProtoUDP},
			Time:    t0.Add(s.at),
			Payload: s.payload,
		}
		tab.HandleDatagram(&dg)
	}
}

// sipMsg builds a SIP message. first is the start line; the Call-ID, tags
// and CSeq are filled from the arguments.
func sipMsg(first, callID, fromTag, toTag string, cseq int, method string, extra string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\r\n", first)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-%s-%d\r\n", callID, cseq)
	fmt.Fprintf(&b, "From: \"Alice A\" <sip:1001@example.com>;tag=%s\r\n", fromTag)
	to := "To: <sip:2002@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	b.WriteString(to + "\r\n")
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\n", callID, cseq, method)
	b.WriteString(extra)
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	} else {
		b.WriteString("Content-Length: 0\r\n\r\n")
	}
	return []byte(b.String())
}

func sdpBody(ap netip.AddrPort) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n",
		ap.Addr(), ap.Addr(), ap.Port())
}

func rtpPacket(seq uint16, ts, ssrc uint32, pt uint8) []byte {
	p := make([]byte, 12+160)
	p[0] = 0x80
	p[1] = pt
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return p
}

// answeredCall is INVITE → 100 → 180 → 200 → ACK, then 50 RTP packets each
// way (one caller→callee packet lost), then BYE from hangup's side → 200.
func answeredCall(callID string, hangupByCallee bool) []step {
	inv := sipMsg("INVITE sip:2002@example.com SIP/2.0", callID, "a1", "", 1, "INVITE", "User-Agent: phoneA\r\n", sdpBody(aliceRT))
	s := []step{
		{0, alice, bob, inv},
		{10 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 100 Trying", callID, "a1", "", 1, "INVITE", "", "")},
		{50 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 180 Ringing", callID, "a1", "b1", 1, "INVITE", "", "")},
		{2 * time.Second, bob, alice, sipMsg("SIP/2.0 200 OK", callID, "a1", "b1", 1, "INVITE", "Server: phoneB\r\n", sdpBody(bobRT))},
		{2010 * time.Millisecond, alice, bob, sipMsg("ACK sip:2002@10.0.0.3:5070 SIP/2.0", callID, "a1", "b1", 1, "ACK", "", "")},
	}
	for i := 0; i < 50; i++ {
		at := 2100*time.Millisecond + time.Duration(i)*20*time.Millisecond
		if i != 20 {
			s = append(s, step{at, aliceRT, bobRT, rtpPacket(uint16(1000+i), uint32(160*i), 0x1111, 0)})
		}
		s = append(s, step{at + time.Millisecond, bobRT, aliceRT, rtpPacket(uint16(65520+i), uint32(160*i), 0x2222, 0)})
	}
	if hangupByCallee {
		s = append(s,
			step{4 * time.Second, bob, alice, sipMsg("BYE sip:1001@10.0.0.1:5061 SIP/2.0", callID, "b1", "a1", 1, "BYE", "", "")},
			step{4010 * time.Millisecond, alice, bob, sipMsg("SIP/2.0 200 OK", callID, "b1", "a1", 1, "BYE", "", "")})
	} else {
		s = append(s,
			step{4 * time.Second, alice, bob, sipMsg("BYE sip:2002@10.0.0.3:5070 SIP/2.0", callID, "a1", "b1", 2, "BYE", "", "")},
			step{4010 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 200 OK", callID, "a1", "b1", 2, "BYE", "", "")})
	}
	return s
}

func TestAnsweredCall(t *testing.T) {
	for _, byCallee := range []bool{false, true} {
		var out sink
		tab := New(Config{}, &out)
		feed(tab, answeredCall("call-1@x", byCallee))
		if n := tab.Stats().Calls; n != 1 {
			t.Fatalf("calls in table before linger = %d, want 1", n)
		}
		tab.Expire(t0.Add(20 * time.Second))
		if len(out.calls) != 1 {
			t.Fatalf("ended calls = %d, want 1", len(out.calls))
		}
		c := out.calls[0]
		wantHangup := SideCaller
		if byCallee {
			wantHangup = SideCallee
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"CallID", c.CallID, "call-1@x"},
			{"Caller", c.Caller, "1001"},
			{"CallerName", c.CallerName, "Alice A"},
			{"Called", c.Called, "2002"},
			{"CallerDomain", c.CallerDomain, "example.com"},
			{"CallerUA", c.CallerUA, "phoneA"},
			{"CalledUA", c.CalledUA, "phoneB"},
			{"State", c.State, StateEnded},
			{"LastCode", c.LastCode, 200},
			{"HangupBy", c.HangupBy, wantHangup},
			{"RingTime", c.RingTime.Sub(t0), 50 * time.Millisecond},
			{"AnswerTime", c.AnswerTime.Sub(t0), 2 * time.Second},
			{"Duration", c.Duration(), 4 * time.Second},
			{"ConnectDuration", c.ConnectDuration(), 2 * time.Second},
			{"Streams", len(c.Streams), 2},
			{"SIPCaller", c.SIPCaller, alice},
			{"SIPCalled", c.SIPCalled, bob},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("byCallee=%v: %s = %v, want %v", byCallee, ck.name, ck.got, ck.want)
			}
		}
		a, b := c.Best(SideCaller), c.Best(SideCallee)
		if a == nil || b == nil {
			t.Fatalf("streams per side: caller %v callee %v", a, b)
		}
		if a.SSRC != 0x1111 || a.Stats.Received != 49 || a.Stats.Lost != 1 {
			t.Errorf("caller stream: ssrc %#x received %d lost %d, want 0x1111 49 1", a.SSRC, a.Stats.Received, a.Stats.Lost)
		}
		if b.SSRC != 0x2222 || b.Stats.Received != 50 || b.Stats.Lost != 0 {
			t.Errorf("callee stream (seq wraps): ssrc %#x received %d lost %d, want 0x2222 50 0", b.SSRC, b.Stats.Received, b.Stats.Lost)
		}
		if a.Stats.Codec != "PCMU" {
			t.Errorf("codec = %q, want PCMU", a.Stats.Codec)
		}
	}
}

func TestFailedAndCancelled(t *testing.T) {
	tests := []struct {
		name      string
		steps     []step
		wantState State
		wantCode  int
	}{
		{
			name: "busy",
			steps: []step{
				{0, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", "c2", "a1", "", 1, "INVITE", "", sdpBody(aliceRT))},
				{time.Second, bob, alice, sipMsg("SIP/2.0 486 Busy Here", "c2", "a1", "b1", 1, "INVITE", "", "")},
				{time.Second + 5*time.Millisecond, alice, bob, sipMsg("ACK sip:2002@example.com SIP/2.0", "c2", "a1", "b1", 1, "ACK", "", "")},
			},
			wantState: StateFailed, wantCode: 486,
		},
		{
			name: "cancelled",
			steps: []step{
				{0, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", "c3", "a1", "", 1, "INVITE", "", sdpBody(aliceRT))},
				{100 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 180 Ringing", "c3", "a1", "b1", 1, "INVITE", "", "")},
				{3 * time.Second, alice, bob, sipMsg("CANCEL sip:2002@example.com SIP/2.0", "c3", "a1", "", 1, "CANCEL", "", "")},
				{3010 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 200 OK", "c3", "a1", "", 1, "CANCEL", "", "")},
				{3020 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 487 Request Terminated", "c3", "a1", "b1", 1, "INVITE", "", "")},
			},
			wantState: StateCancelled, wantCode: 487,
		},
		{
			name: "auth challenge then answered and never ended",
			steps: []step{
				{0, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", "c4", "a1", "", 1, "INVITE", "", sdpBody(aliceRT))},
				{10 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 407 Proxy Authentication Required", "c4", "a1", "p1", 1, "INVITE", "", "")},
				{20 * time.Millisecond, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", "c4", "a1", "", 2, "INVITE", "", sdpBody(aliceRT))},
				{time.Second, bob, alice, sipMsg("SIP/2.0 200 OK", "c4", "a1", "b1", 2, "INVITE", "", sdpBody(bobRT))},
			},
			wantState: StateTimeout, wantCode: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out sink
			tab := New(Config{}, &out)
			feed(tab, tt.steps)
			tab.Expire(t0.Add(time.Hour))
			if len(out.calls) != 1 {
				t.Fatalf("ended calls = %d, want 1", len(out.calls))
			}
			c := out.calls[0]
			if c.State != tt.wantState || c.LastCode != tt.wantCode {
				t.Errorf("state %v code %d, want %v %d", c.State, c.LastCode, tt.wantState, tt.wantCode)
			}
		})
	}
}

// TestProxyLegsAreOneCall: the same Call-ID seen on two hops is one call
// with two legs, not two calls.
func TestProxyLegsAreOneCall(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	inv := sipMsg("INVITE sip:2002@example.com SIP/2.0", "leg@x", "a1", "", 1, "INVITE", "", sdpBody(aliceRT))
	ok := sipMsg("SIP/2.0 200 OK", "leg@x", "a1", "b1", 1, "INVITE", "", sdpBody(bobRT))
	bye := sipMsg("BYE sip:2002@example.com SIP/2.0", "leg@x", "a1", "b1", 2, "BYE", "", "")
	byeOK := sipMsg("SIP/2.0 200 OK", "leg@x", "a1", "b1", 2, "BYE", "", "")
	feed(tab, []step{
		{0, alice, proxy, inv}, {time.Millisecond, proxy, bob, inv},
		{time.Second, bob, proxy, ok}, {time.Second + time.Millisecond, proxy, alice, ok},
		{5 * time.Second, alice, proxy, bye}, {5*time.Second + time.Millisecond, proxy, bob, bye},
		{5*time.Second + 2*time.Millisecond, bob, proxy, byeOK}, {5*time.Second + 3*time.Millisecond, proxy, alice, byeOK},
	})
	tab.CloseAll()
	if len(out.calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(out.calls))
	}
	c := out.calls[0]
	if len(c.Legs) != 2 || c.State != StateEnded || c.SIPCaller != alice || c.SIPCalled != proxy {
		t.Errorf("legs %d state %v caller %v called %v; want 2 ended %v %v", len(c.Legs), c.State, c.SIPCaller, c.SIPCalled, alice, proxy)
	}
}

func regMsg(first, callID string, cseq int, extra string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\r\nVia: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK%d\r\n", first, cseq)
	b.WriteString("From: <sip:alice@example.com>;tag=r1\r\nTo: <sip:alice@example.com>\r\n")
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d REGISTER\r\n%sContent-Length: 0\r\n\r\n", callID, cseq, extra)
	return []byte(b.String())
}

func TestRegistrations(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	contact := "Contact: <sip:alice@10.0.0.1:5061>\r\n"
	feed(tab, []step{
		// challenged, then accepted for 60 s
		{0, alice, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "r@x", 1, contact+"Expires: 60\r\nUser-Agent: phoneA\r\n")},
		{5 * time.Millisecond, proxy, alice, regMsg("SIP/2.0 401 Unauthorized", "r@x", 1, "")},
		{10 * time.Millisecond, alice, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "r@x", 2, contact+"Expires: 60\r\nAuthorization: Digest username=\"alice\", realm=\"x\"\r\n")},
		{25 * time.Millisecond, proxy, alice, regMsg("SIP/2.0 200 OK", "r@x", 2, "Contact: <sip:alice@10.0.0.1:5061>;expires=60\r\n")},
	})
	tab.Expire(t0.Add(30 * time.Second))
	tab.Expire(t0.Add(61 * time.Second))
	feed(tab, []step{
		{70 * time.Second, alice, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "r2@x", 1, contact+"Expires: 0\r\n")},
		{70*time.Second + 4*time.Millisecond, proxy, alice, regMsg("SIP/2.0 200 OK", "r2@x", 1, "")},
		{80 * time.Second, bob, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "r3@x", 1, "Contact: <sip:alice@10.0.0.3>\r\n")},
		{80*time.Second + 2*time.Millisecond, proxy, bob, regMsg("SIP/2.0 403 Forbidden", "r3@x", 1, "")},
	})
	type want struct {
		state    RegState
		attempts int
		expires  int
		rrd      time.Duration
	}
	wants := []want{
		{RegOK, 2, 60, 25 * time.Millisecond},
		{RegExpired, 2, 60, 25 * time.Millisecond},
		{RegUnregister, 1, 0, 4 * time.Millisecond},
		{RegFailed, 1, 0, 2 * time.Millisecond},
	}
	if len(out.regs) != len(wants) {
		t.Fatalf("registration changes = %d, want %d", len(out.regs), len(wants))
	}
	for i, w := range wants {
		r := out.regs[i]
		if r.State != w.state || r.Attempts != w.attempts || r.RRD != w.rrd || (w.state != RegFailed && r.Expires != w.expires) {
			t.Errorf("change %d: state %v attempts %d expires %d rrd %v; want %v %d %d %v",
				i, r.State, r.Attempts, r.Expires, r.RRD, w.state, w.attempts, w.expires, w.rrd)
		}
	}
	if out.regs[0].User != "alice" || out.regs[0].UA != "phoneA" || out.regs[0].AuthUser != "alice" {
		t.Errorf("first change: user %q ua %q auth %q", out.regs[0].User, out.regs[0].UA, out.regs[0].AuthUser)
	}
}

// TestBoundedTable: the call cap refuses new calls and counts them; calls
// that never end are timed out and leave the table.
func TestBoundedTable(t *testing.T) {
	var out sink
	tab := New(Config{MaxCalls: 10}, &out)
	for i := 0; i < 25; i++ {
		id := fmt.Sprintf("never-%d", i)
		feed(tab, []step{{time.Duration(i) * time.Millisecond, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a", "", 1, "INVITE", "", sdpBody(aliceRT))}})
	}
	st := tab.Stats()
	if st.Calls != 10 || st.CallsDropped != 15 {
		t.Errorf("calls %d dropped %d, want 10 15", st.Calls, st.CallsDropped)
	}
	tab.Expire(t0.Add(10 * time.Minute))
	if st := tab.Stats(); st.Calls != 0 || len(out.calls) != 10 {
		t.Errorf("after timeout: calls %d ended %d, want 0 10", st.Calls, len(out.calls))
	}
	for _, c := range out.calls {
		if c.State != StateTimeout {
			t.Errorf("call %s state %v, want timeout", c.CallID, c.State)
		}
	}
}

// TestGarbage: junk on SIP ports and media addresses is counted, never
// panics, and does not create calls.
func TestGarbage(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	junk := [][]byte{
		nil, {0}, []byte("INVITE"), []byte("INVITE sip:x SIP/2.0\r\n\r\n"),
		[]byte("SIP/2.0 200 OK\r\nCall-ID: zz\r\nContent-Length: 99999999\r\n\r\n"),
		[]byte("\x80\x00\x00"), make([]byte, 1500),
	}
	for _, j := range junk {
		feed(tab, []step{{0, alice, bob, j}})
	}
	if st := tab.Stats(); st.Calls != 0 || st.SIPMessages != 0 {
		t.Errorf("calls %d SIP messages %d after junk, want 0 0", st.Calls, st.SIPMessages)
	}
}
