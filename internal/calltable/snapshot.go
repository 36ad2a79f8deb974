package calltable

import (
	"net/netip"
	"slices"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// CallInfo is an immutable copy of a [Call], taken under the table lock and
// read without it.
type CallInfo struct {
	Ref    uint64
	CallID string

	Caller, CallerName, CallerDomain string
	Called, CalledDomain             string
	CallerUA, CalledUA               string
	SIPCaller, SIPCalled             netip.AddrPort
	Transport                        decode.Proto
	VLAN                             uint16       // of the first INVITE; decode.NoVLAN when untagged
	SensorID                         int32        // see Call.SensorID; 0 for the sensor's own
	Encap                            decode.Encap // tunnel of the first INVITE; zero if none (see Call.Encap)

	InviteTime, RingTime, AnswerTime, EndTime time.Time
	LastPacket                                time.Time

	State      State
	LastCode   int
	LastReason string
	HangupBy   Side
	Hold       bool
	Reinvites  int
	Messages   int

	Legs    []Leg
	Media   []MediaEndpoint
	Streams []StreamInfo

	// What VoIPmonitor's cdr table records besides the above (zero times
	// when not seen). LastSIP is the last SIP message of the call;
	// ProgressTime the first 18x, or 2xx not answering a BYE (its
	// progress_time); ByeTime the first BYE and ByeOKTime the first 2xx
	// to a BYE after it. Response100 and ResponseOther are the shortest
	// time from an initial INVITE to its first 100 and to its first
	// other response (response_time_100, response_time_xxx), negative
	// when none came. SIPTTL covers the call's SIP packets.
	// CallerUserAgent and CalleeUserAgent are the first User-Agent header
	// each side sent in any message, Server headers aside (a_ua, b_ua).
	LastSIP                          time.Time
	CallerUserAgent, CalleeUserAgent string
	ProgressTime, ByeTime, ByeOKTime time.Time
	Response100, ResponseOther       time.Duration
	EndCause                         EndCause
	RTCPSeen                         bool // an RTCP packet reached the call
	SIPTTL                           TTLStats

	// Now is the capture time the copy was taken at; durations of calls
	// in progress run to it.
	Now time.Time
}

// StreamInfo is an immutable copy of a [Stream].
type StreamInfo struct {
	Src, Dst netip.AddrPort
	SSRC     uint32
	Side     Side // the sender
	Kind     StreamKind
	Stats    rtp.StreamStats
	TTL      TTLStats
	// Intervals are the stream's closed 10 s MOS intervals kept (the
	// newest rtp.MaxIntervals), IntervalsClosed how many closed in all.
	// Only [Table.Call] fills them.
	Intervals       []rtp.Interval
	IntervalsClosed int
}

// Duration is INVITE to end, or to the snapshot time for calls in progress.
func (c *CallInfo) Duration() time.Duration {
	end := c.EndTime
	if end.IsZero() {
		end = c.Now
	}
	if end.Before(c.InviteTime) {
		return 0
	}
	return end.Sub(c.InviteTime)
}

// ConnectDuration is answer to end, 0 when never answered.
func (c *CallInfo) ConnectDuration() time.Duration {
	if c.AnswerTime.IsZero() {
		return 0
	}
	end := c.EndTime
	if end.IsZero() {
		end = c.Now
	}
	if end.Before(c.AnswerTime) {
		return 0
	}
	return end.Sub(c.AnswerTime)
}

// Best returns the voice stream of side with the most packets (received +
// lost), which is what VoIPmonitor puts in its a_/b_ columns, or nil.
// Telephone events, comfort noise and video on streams of their own are
// not voice.
func (c *CallInfo) Best(side Side) *StreamInfo {
	var best *StreamInfo
	for i := range c.Streams {
		s := &c.Streams[i]
		if s.Side != side || s.Kind != KindVoice {
			continue
		}
		if best == nil || s.Stats.Received+s.Stats.Lost > best.Stats.Received+best.Stats.Lost {
			best = s
		}
	}
	return best
}

// info copies c. Must hold t.mu.
func (c *Call) info(now time.Time) *CallInfo {
	ci := &CallInfo{
		Ref: c.Ref, CallID: c.CallID,
		Caller: c.Caller, CallerName: c.CallerName, CallerDomain: c.CallerDomain,
		Called: c.Called, CalledDomain: c.CalledDomain,
		CallerUA: c.CallerUA, CalledUA: c.CalledUA,
		SIPCaller: c.SIPCaller, SIPCalled: c.SIPCalled,
		Transport: c.Transport, VLAN: c.VLAN, SensorID: c.SensorID,
		InviteTime: c.InviteTime, RingTime: c.RingTime, AnswerTime: c.AnswerTime, EndTime: c.EndTime,
		LastPacket: c.LastPacket,
		Encap:      derefEncap(c.Encap),
		State:      c.State, LastCode: c.LastCode, LastReason: c.LastReason, HangupBy: c.HangupBy,
		Hold: c.Hold, Reinvites: int(c.Reinvites), Messages: int(c.Messages),
		Legs:  slices.Clone(c.Legs),
		Media: make([]MediaEndpoint, len(c.Media)),
		Now:   now,

		LastSIP:      c.LastSIP,
		ProgressTime: nsTime(c.progressNs), ByeTime: nsTime(c.byeNs), ByeOKTime: nsTime(c.byeOKNs),
		Response100: c.resp100, ResponseOther: c.respOther,
		EndCause: c.endCause, RTCPSeen: c.rtcpSeen, SIPTTL: c.sipTTL,
		CallerUserAgent: c.userAgent[0], CalleeUserAgent: c.userAgent[1],
	}
	for i, m := range c.Media {
		m.Formats = slices.Clone(m.Formats)
		ci.Media[i] = m
	}
	ci.Streams = make([]StreamInfo, len(c.Streams))
	for i, s := range c.Streams {
		st := s.RTP.Stats()
		ci.Streams[i] = StreamInfo{Src: s.Flow.Src, Dst: s.Flow.Dst, SSRC: s.SSRC, Side: s.Side, Stats: st, TTL: s.ttl,
			Kind: c.kindOf(s, st.PayloadType, st.Received, st.Events, st.CN)}
	}
	return ci
}

// nsTime turns Unix nanoseconds into a UTC time, 0 into the zero time.
func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// RegistrationInfo is an immutable copy of a [Registration].
type RegistrationInfo struct {
	ID                     uint64
	User, Domain, FromName string
	FromUser               string // user part of the last REGISTER's From
	VLAN                   uint16 // of the last REGISTER; decode.NoVLAN when untagged
	Contact, AuthUser, UA  string
	Src, Dst               netip.AddrPort
	State                  RegState
	StateTime              time.Time
	Expires                int
	ExpiresAt              time.Time
	Attempts               int
	RRD                    time.Duration
	LastCode               int
}

func (r *Registration) info() *RegistrationInfo {
	return &RegistrationInfo{
		ID: r.ID, User: r.User, Domain: r.Domain, FromName: r.FromName, FromUser: r.FromUser, VLAN: r.VLAN,
		Contact: r.Contact, AuthUser: r.AuthUser, UA: r.UA,
		Src: r.Src, Dst: r.Dst, State: r.State, StateTime: r.StateTime,
		Expires: r.Expires, ExpiresAt: r.ExpiresAt, Attempts: r.Attempts,
		RRD: r.RRD, LastCode: r.LastCode,
	}
}

// Snapshot is a consistent copy of the table's state.
type Snapshot struct {
	Time          time.Time
	Calls         []*CallInfo // calls in the table, in progress and lingering
	Registrations []*RegistrationInfo
	Stats         Stats
}

// Snapshot copies the table. The lock is held only while copying.
func (t *Table) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Snapshot{
		Time:          t.now,
		Calls:         make([]*CallInfo, 0, len(t.calls)),
		Registrations: make([]*RegistrationInfo, 0, len(t.regs)),
		Stats:         t.stats,
	}
	s.Stats.Calls, s.Stats.Registrations = len(t.calls), len(t.regs)
	for _, c := range t.calls {
		s.Calls = append(s.Calls, c.info(t.now))
	}
	for _, r := range t.regs {
		if r.State != RegNone {
			s.Registrations = append(s.Registrations, r.info())
		}
	}
	slices.SortFunc(s.Calls, func(a, b *CallInfo) int { return a.InviteTime.Compare(b.InviteTime) })
	slices.SortFunc(s.Registrations, func(a, b *RegistrationInfo) int { return a.StateTime.Compare(b.StateTime) })
	return s
}

func derefEncap(e *decode.Encap) decode.Encap {
	if e == nil {
		return decode.Encap{}
	}
	return *e
}

// Counts is how many calls are in progress and how many bindings are in
// each registration state, for gauges.
type Counts struct {
	InProgress    int
	Registrations map[RegState]int
}

// Counts walks the table under its lock without copying anything: one
// pass over the calls and the bindings, for gauges read every second
// (metrics, charts) where a Snapshot would copy every call.
func (t *Table) Counts() Counts {
	out := Counts{Registrations: map[RegState]int{}}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.order.list {
		if s.c != nil && s.c.State.InProgress() {
			out.InProgress++
		}
	}
	for _, r := range t.regs {
		if r.State != RegNone {
			out.Registrations[r.State]++
		}
	}
	return out
}
