package calltable

import (
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// feedTTL is feed with an IP TTL on every datagram: sipTTL on SIP, rtpTTL
// on everything else.
func feedTTL(tab *Table, steps []step, sipTTL, rtpTTL uint8) {
	for _, s := range steps {
		ttl := rtpTTL
		if s.src.Port() >= 5060 && s.src.Port() < 5100 {
			ttl = sipTTL
		}
		dg := decode.Datagram{
			Flow: decode.Flow{Src: s.src, Dst: s.dst, Proto: decode.ProtoUDP},
			Time: t0.Add(s.at), Payload: s.payload, VLAN: decode.NoVLAN, TTL: ttl,
		}
		tab.HandleDatagram(&dg)
	}
}

// TestSnifferFacts checks what a call reports for VoIPmonitor's cdr
// columns: progress, BYE and its 2xx, response times, the last SIP
// message, why the call left the table, and IP TTLs.
func TestSnifferFacts(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	feedTTL(tab, answeredCall("facts@x", false), 60, 50)
	tab.Expire(t0.Add(time.Minute))
	if len(out.calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(out.calls))
	}
	c := out.calls[0]
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{
		{"ProgressTime", c.ProgressTime, t0.Add(50 * time.Millisecond)}, // 180
		{"ByeTime", c.ByeTime, t0.Add(4 * time.Second)},
		{"ByeOKTime", c.ByeOKTime, t0.Add(4010 * time.Millisecond)},
		{"LastSIP", c.LastSIP, t0.Add(4010 * time.Millisecond)},
	} {
		if !tt.got.Equal(tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if c.Response100 != 10*time.Millisecond || c.ResponseOther != 50*time.Millisecond {
		t.Errorf("Response100, ResponseOther = %v, %v; want 10ms, 50ms", c.Response100, c.ResponseOther)
	}
	if c.EndCause != EndNormal || c.RTCPSeen {
		t.Errorf("EndCause %v, RTCPSeen %v; want EndNormal, false", c.EndCause, c.RTCPSeen)
	}
	if want := (TTLStats{Min: 60, Max: 60, Count: 7, Sum: 420}); c.SIPTTL != want {
		t.Errorf("SIPTTL = %+v, want %+v", c.SIPTTL, want)
	}
	for _, s := range c.Streams {
		if s.TTL.Min != 50 || s.TTL.Max != 50 || int64(s.TTL.Count) != s.Stats.Received {
			t.Errorf("stream %v TTL = %+v, want 50 on each of %d packets", s.Src, s.TTL, s.Stats.Received)
		}
	}
}

// TestSnifferResponseTimes: after an auth challenge the shortest time over
// the INVITE transactions counts, each from its own INVITE.
func TestSnifferResponseTimes(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	id := "auth@x"
	feed(tab, []step{
		{0, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a1", "", 1, "INVITE", "", sdpBody(aliceRT))},
		{30 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 407 Proxy Authentication Required", id, "a1", "x", 1, "INVITE", "", "")},
		{100 * time.Millisecond, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a1", "", 2, "INVITE", "", sdpBody(aliceRT))},
		{105 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 100 Trying", id, "a1", "", 2, "INVITE", "", "")},
		{190 * time.Millisecond, bob, alice, sipMsg("SIP/2.0 486 Busy Here", id, "a1", "b1", 2, "INVITE", "", "")},
	})
	tab.CloseAll()
	if len(out.calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(out.calls))
	}
	c := out.calls[0]
	if c.Response100 != 5*time.Millisecond || c.ResponseOther != 30*time.Millisecond {
		t.Errorf("Response100, ResponseOther = %v, %v; want 5ms, 30ms", c.Response100, c.ResponseOther)
	}
	if !c.ProgressTime.IsZero() || !c.ByeTime.IsZero() || c.EndCause != EndShutdown {
		t.Errorf("ProgressTime %v, ByeTime %v, EndCause %v; want none, none, EndShutdown", c.ProgressTime, c.ByeTime, c.EndCause)
	}
}

// TestSnifferEndCauses: each timeout names itself.
func TestSnifferEndCauses(t *testing.T) {
	var out sink
	tab := New(Config{RTPTimeout: 10 * time.Second, SetupTimeout: 20 * time.Second}, &out)
	steps := answeredCall("rtp-timeout@x", false)
	feed(tab, steps[:len(steps)-2]) // no BYE
	feed(tab, []step{{5 * time.Second, alice, bob, sipMsg("INVITE sip:2002@example.com SIP/2.0", "setup@x", "a9", "", 1, "INVITE", "", "")}})
	tab.Expire(t0.Add(time.Minute))
	got := map[string]EndCause{}
	for _, c := range out.calls {
		got[c.CallID] = c.EndCause
	}
	if got["rtp-timeout@x"] != EndRTPTimeout || got["setup@x"] != EndSetupTimeout {
		t.Errorf("end causes = %v, want rtp-timeout@x %v, setup@x %v", got, EndRTPTimeout, EndSetupTimeout)
	}
}

// TestRegistrationFromUserAndVLAN: the From user and the VLAN of the
// REGISTER reach the registration.
func TestRegistrationFromUserAndVLAN(t *testing.T) {
	var out sink
	tab := New(Config{}, &out)
	for _, s := range []step{
		{0, alice, proxy, regMsg("REGISTER sip:example.com SIP/2.0", "rv@x", 1, "Contact: <sip:alice@10.0.0.1:5061>\r\nExpires: 60\r\n")},
		{5 * time.Millisecond, proxy, alice, regMsg("SIP/2.0 200 OK", "rv@x", 1, "")},
	} {
		dg := decode.Datagram{Flow: decode.Flow{Src: s.src, Dst: s.dst, Proto: decode.ProtoUDP}, Time: t0.Add(s.at), Payload: s.payload, VLAN: 42}
		tab.HandleDatagram(&dg)
	}
	if len(out.regs) != 1 || out.regs[0].FromUser != "alice" || out.regs[0].VLAN != 42 {
		t.Fatalf("registrations = %+v, want one from alice on VLAN 42", out.regs)
	}
}
