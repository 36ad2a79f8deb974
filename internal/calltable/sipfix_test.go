package calltable

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// TestAuthRetryIsOneCall: an INVITE challenged with 407 and retried with
// the same Call-ID and a higher CSeq long after the linger (a person typing
// a password) is one call, whose outcome is the retry's.
func TestAuthRetryIsOneCall(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	const id = "auth@x"
	feed(tab, []step{
		{0, alice, proxy, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a", "", 1, "INVITE", "", sdpBody(aliceRT))},
		{100 * time.Millisecond, proxy, alice, sipMsg("SIP/2.0 407 Proxy Authentication Required", id, "a", "p1", 1, "INVITE", "", "")},
		{150 * time.Millisecond, alice, proxy, sipMsg("ACK sip:2002@example.com SIP/2.0", id, "a", "p1", 1, "ACK", "", "")},
	})
	tab.Expire(t0.Add(20 * time.Second)) // time passes (other traffic) while the user types
	feed(tab, []step{
		{32 * time.Second, alice, proxy, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a", "", 2, "INVITE", "Proxy-Authorization: Digest username=\"1001\"\r\n", sdpBody(aliceRT))},
		{32*time.Second + 200*time.Millisecond, proxy, alice, sipMsg("SIP/2.0 403 Wrong password", id, "a", "p2", 2, "INVITE", "", "")},
	})
	tab.Expire(t0.Add(time.Minute))
	if len(out.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(out.calls))
	}
	c := out.calls[0]
	if c.State != StateFailed || c.LastCode != 403 || !c.InviteTime.Equal(t0) {
		t.Errorf("state %v code %d invite %v; want failed 403 at %v", c.State, c.LastCode, c.InviteTime, t0)
	}
}

// TestChallengeWithoutRetryTimesOut: a 407 nobody answers leaves the call
// to SetupTimeout, still reporting the 407.
func TestChallengeWithoutRetryTimesOut(t *testing.T) {
	var out sink
	tab := New(Config{SetupTimeout: time.Minute}, &out)
	feed(tab, []step{
		{0, alice, proxy, sipMsg("INVITE sip:2002@example.com SIP/2.0", "c@x", "a", "", 1, "INVITE", "", "")},
		{time.Second, proxy, alice, sipMsg("SIP/2.0 407 Proxy Authentication Required", "c@x", "a", "p", 1, "INVITE", "", "")},
	})
	tab.Expire(t0.Add(30 * time.Second))
	if len(out.calls) != 0 {
		t.Fatalf("call ended %v after the 407, want it open until SetupTimeout", out.calls[0].EndTime)
	}
	tab.Expire(t0.Add(2 * time.Minute))
	if len(out.calls) != 1 || out.calls[0].State != StateTimeout || out.calls[0].LastCode != 407 {
		t.Fatalf("calls %d; want one timed out with 407", len(out.calls))
	}
}

// TestLastProvisional: with no final response, last_sip_code is the last
// provisional, 100 included when it is the only one, and a later 100
// (a retransmitted Trying) does not hide a 180.
func TestLastProvisional(t *testing.T) {
	tests := []struct {
		name  string
		codes []string
		want  int
	}{
		{"100 only", []string{"100 Trying"}, 100},
		{"100 then 180", []string{"100 Trying", "180 Ringing"}, 180},
		{"180 then 100", []string{"180 Ringing", "100 Trying"}, 180},
		{"183 then 180", []string{"183 Session Progress", "180 Ringing"}, 180},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out sink
			tab := New(Config{SetupTimeout: time.Minute}, &out)
			steps := []step{{0, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", "p@x", "a", "", 1, "INVITE", "", "")}}
			for i, code := range tt.codes {
				steps = append(steps, step{time.Duration(i+1) * time.Second, bob, alice, sipMsg("SIP/2.0 "+code, "p@x", "a", "b", 1, "INVITE", "", "")})
			}
			feed(tab, steps)
			tab.Expire(t0.Add(5 * time.Minute))
			if len(out.calls) != 1 || out.calls[0].LastCode != tt.want {
				t.Fatalf("calls %d, last code %v; want %d", len(out.calls), out.calls, tt.want)
			}
		})
	}
}

// TestRegisterRefusedChallenges: a REGISTER chain answered only with 401s
// ends Failed at the second challenge (VoIPmonitor's register_failed),
// instead of leaving no registration at all.
func TestRegisterRefusedChallenges(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	contact := "Contact: <sip:alice@10.0.0.1:5061>\r\n"
	var steps []step
	for i := 1; i <= 3; i++ {
		at := time.Duration(i) * 30 * time.Millisecond
		steps = append(steps,
			step{at, alice, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "reg@x", i, contact)},
			step{at + 2*time.Millisecond, proxy, alice, regMsg("SIP/2.0 401 Unauthorized", "reg@x", i, "")})
	}
	feed(tab, steps)
	if len(out.regs) == 0 {
		t.Fatal("no registration change, want Failed")
	}
	r := out.regs[0]
	if r.State != RegFailed || r.LastCode != 401 || r.Attempts != 2 || r.RRD != 32*time.Millisecond {
		t.Errorf("state %v code %d attempts %d rrd %v; want failed 401 2 32ms", r.State, r.LastCode, r.Attempts, r.RRD)
	}
}

// TestLenientContentLength: over UDP, a message whose only fault is its
// Content-Length still makes its call (Wireshark reads it the same way).
func TestLenientContentLength(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	inv := string(sipMsg("INVITE sip:2002@example.com SIP/2.0", "cl@x", "a", "", 1, "INVITE", "", sdpBody(aliceRT)))
	inv = strings.Replace(inv, "Content-Length: ", "Content-Length: bad", 1)
	feed(tab, []step{
		{0, alice, bob, []byte(inv)},
		{time.Second, bob, alice, sipMsg("SIP/2.0 486 Busy Here", "cl@x", "a", "b", 1, "INVITE", "", "")},
	})
	tab.Expire(t0.Add(time.Minute))
	if len(out.calls) != 1 || out.calls[0].LastCode != 486 || len(out.calls[0].Media) != 1 {
		t.Fatalf("calls %d (%v); want one with code 486 and the SDP's media", len(out.calls), out.calls)
	}
	if st := tab.Stats(); st.SIPMalformed != 0 || st.SIPLenient != 1 {
		t.Errorf("SIPMalformed %d SIPLenient %d, want 0 1", st.SIPMalformed, st.SIPLenient)
	}
}

// TestKeepalives: keepalives on a SIP port are counted as such, not as
// malformed SIP; a cut SIP message still is malformed.
func TestKeepalives(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	for _, k := range []string{"\r\n", "\r\n\r\n", "    ", "hello", "\x00\x00\x00\x00"} {
		feed(tab, []step{{0, alice, proxy, []byte(k)}})
	}
	feed(tab, []step{{0, alice, proxy, []byte("INVITE sip:x SIP/2.0\r\n\r\n")}})
	if st := tab.Stats(); st.SIPKeepalives != 5 || st.SIPMalformed != 1 {
		t.Errorf("SIPKeepalives %d SIPMalformed %d, want 5 1", st.SIPKeepalives, st.SIPMalformed)
	}
}

// TestCallEncap: the first INVITE's VLAN and tunnel are the call's.
func TestCallEncap(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	enc := decode.Encap{Src: netip.MustParseAddr("203.0.113.1"), Dst: netip.MustParseAddr("203.0.113.2"), Proto: 47, Layers: decode.EncapGRE}
	dg := decode.Datagram{
		Flow: decode.Flow{Src: alice, Dst: bob, Proto: decode.ProtoUDP}, Time: t0, VLAN: 42, Encap: enc,
		Payload: sipMsg("INVITE sip:2002@example.com SIP/2.0", "e@x", "a", "", 1, "INVITE", "", ""),
	}
	tab.HandleDatagram(&dg)
	plain := decode.Datagram{
		Flow: decode.Flow{Src: alice, Dst: bob, Proto: decode.ProtoUDP}, Time: t0, VLAN: decode.NoVLAN,
		Payload: sipMsg("INVITE sip:2002@example.com SIP/2.0", "p@x", "a", "", 1, "INVITE", "", ""),
	}
	tab.HandleDatagram(&plain)
	tab.Expire(t0.Add(time.Hour))
	byID := map[string]*CallInfo{}
	for _, c := range out.calls {
		byID[c.CallID] = c
	}
	if c := byID["e@x"]; c == nil || c.VLAN != 42 || c.Encap != enc || c.Encap.IPProto() != 47 {
		t.Errorf("tunneled call %+v; want VLAN 42, encap %+v", c, enc)
	}
	if c := byID["p@x"]; c == nil || c.VLAN != decode.NoVLAN || c.Encap.IPProto() != decode.EncapNoProto {
		t.Errorf("plain call %+v; want NoVLAN and no encapsulation (proto 255)", c)
	}
}
