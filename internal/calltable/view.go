package calltable

import (
	"net/netip"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// CallView is read-only access to one call of the table, for the listings
// that build their own rows under the table lock ([Table.EachCallBatch]):
// it copies nothing, so it is valid only inside the callback that received
// it, and nothing outside calltable can change a call through it. Each
// accessor is a field read the compiler inlines.
type CallView struct{ c *Call }

// Ref is the call's reference (callreference in listcalls).
func (v CallView) Ref() uint64 { return v.c.Ref }

// CallID is the SIP Call-ID.
func (v CallView) CallID() string { return v.c.CallID }

// Caller, CallerDomain, CallerName and CallerUA are the From side's user,
// domain, display name and User-Agent.
func (v CallView) Caller() string       { return v.c.Caller }
func (v CallView) CallerDomain() string { return v.c.CallerDomain }
func (v CallView) CallerName() string   { return v.c.CallerName }
func (v CallView) CallerUA() string     { return v.c.CallerUA }

// Called, CalledDomain and CalledUA are the To side's user, domain and
// User-Agent.
func (v CallView) Called() string       { return v.c.Called }
func (v CallView) CalledDomain() string { return v.c.CalledDomain }
func (v CallView) CalledUA() string     { return v.c.CalledUA }

// State is the call's state.
func (v CallView) State() State { return v.c.State }

// InviteTime, AnswerTime and LastPacket are the first INVITE's time, the
// 200 OK's (zero before it) and the last packet's.
func (v CallView) InviteTime() time.Time { return v.c.InviteTime }
func (v CallView) AnswerTime() time.Time { return v.c.AnswerTime }
func (v CallView) LastPacket() time.Time { return v.c.LastPacket }

// LastCode is the last final (or provisional) SIP response code.
func (v CallView) LastCode() int { return v.c.LastCode }

// SIPCaller and SIPCalled are the SIP addresses of the first leg.
func (v CallView) SIPCaller() netip.AddrPort { return v.c.SIPCaller }
func (v CallView) SIPCalled() netip.AddrPort { return v.c.SIPCalled }

// VLAN is the call's VLAN id (decode.NoVLAN when untagged).
func (v CallView) VLAN() uint16 { return v.c.VLAN }

// SensorID is a HEP agent's own id_sensor, 0 for the sensor's own calls.
func (v CallView) SensorID() int32 { return v.c.SensorID }

// Encap is the tunnel the call's SIP came in, nil when none; it is a copy.
func (v CallView) Encap() *decode.Encap {
	if v.c.Encap == nil {
		return nil
	}
	e := *v.c.Encap
	return &e
}

// NumLegs is the number of distinct SIP hops that carried the initial
// INVITE; Leg returns one of them.
func (v CallView) NumLegs() int  { return len(v.c.Legs) }
func (v CallView) Leg(i int) Leg { return v.c.Legs[i] }

// NumStreams is the number of RTP streams of the call; Stream returns one.
func (v CallView) NumStreams() int         { return len(v.c.Streams) }
func (v CallView) Stream(i int) StreamView { return StreamView{v.c, v.c.Streams[i]} }

// StreamView is read-only access to one RTP stream of a call, valid as
// long as the CallView it came from.
type StreamView struct {
	c *Call
	s *Stream
}

// Summary computes the stream's statistics so far.
func (v StreamView) Summary() rtp.StreamSummary { return v.s.RTP.Summary() }

// Side is the call side that sends the stream.
func (v StreamView) Side() Side { return v.s.Side }

// Flow is the stream's addresses and ports.
func (v StreamView) Flow() decode.Flow { return v.s.Flow }

// SSRC is the stream's synchronisation source.
func (v StreamView) SSRC() uint32 { return v.s.SSRC }

// Kind classifies the stream (voice, DTMF, comfort noise, video, ...) from
// sum, its Summary.
func (v StreamView) Kind(sum *rtp.StreamSummary) StreamKind { return v.c.StreamKind(v.s, sum) }
