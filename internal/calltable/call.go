package calltable

import (
	"net/netip"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// Side names a party of a call.
type Side uint8

// Sides of a call. The caller sent the initial INVITE.
const (
	SideNone Side = iota
	SideCaller
	SideCallee
)

// String returns "caller", "callee" or "none".
func (s Side) String() string {
	switch s {
	case SideCaller:
		return "caller"
	case SideCallee:
		return "callee"
	}
	return "none"
}

// other returns the opposite side.
func (s Side) other() Side {
	switch s {
	case SideCaller:
		return SideCallee
	case SideCallee:
		return SideCaller
	}
	return SideNone
}

// StreamKind tells what an RTP stream carries. Only voice streams have a
// voice quality: the a_/b_ streams of a CDR, the listcalls figures and the
// quality histograms come from voice streams alone.
type StreamKind uint8

// Stream kinds.
const (
	KindVoice StreamKind = iota // audio, with any telephone events and comfort noise among it
	KindDTMF                    // RFC 4733 (RFC 2833) telephone events and nothing else
	KindCN                      // comfort noise (RFC 3389) and nothing else
	KindVideo                   // on a video m-line, or of a static video payload type
)

var kindNames = [...]string{"voice", "dtmf", "cn", "video"}

// String returns "voice", "dtmf", "cn" or "video".
func (k StreamKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// State is where a call is in its life.
type State uint8

// Call states. Calling, Ringing and Answered are "in progress"; the others
// are final.
const (
	StateCalling   State = iota // INVITE seen, no provisional response with ringing yet
	StateRinging                // 180/183 seen
	StateAnswered               // 2xx to the initial INVITE seen
	StateEnded                  // BYE seen after answer
	StateFailed                 // final non-2xx response (not 487 after CANCEL)
	StateCancelled              // CANCEL seen, or 487
	StateTimeout                // closed by a timeout, never ended cleanly
)

var stateNames = [...]string{"calling", "ringing", "answered", "ended", "failed", "cancelled", "timeout"}

// String returns the lower-case state name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// InProgress reports whether the call has not reached a final state.
func (s State) InProgress() bool { return s <= StateAnswered }

// MediaEndpoint is one SDP media line of one side of a call: where that side
// wants to receive RTP and RTCP, and which payload types it offers.
type MediaEndpoint struct {
	Side      Side
	Type      string // audio, video, image
	Addr      netip.AddrPort
	RTCP      netip.AddrPort
	RTCPMux   bool
	Direction string // sendrecv, sendonly, recvonly, inactive
	PtimeMS   int
	Formats   []Format
}

// Format is a payload type an endpoint declared.
type Format struct {
	PT   uint8
	Name string
	Rate uint32
}

// Stream is one RTP SSRC on one Flow within a Call, with its statistics.
type Stream struct {
	Flow decode.Flow
	SSRC uint32
	Side Side // the side that sent it

	// The packet path reads these right after Flow and SSRC: keep them
	// before RTP, on the same cache lines.
	eventPT   uint8 // telephone-event payload type, when the SDP declared one
	hasEvent  bool
	dtmfSeen  bool
	dtmfEnded bool
	dtmfTS    uint32 // RTP timestamp of the current DTMF event

	RTP rtp.Stream

	codec string   // voice codec name from the SDP or the static table
	ttl   TTLStats // of the stream's packets
}

// Call is everything observed under one Call-ID.
//
// A Call belongs to its [Table]; its fields may be read only with the table's
// lock held. Readers outside the packet path use [Table.Snapshot].
type Call struct {
	Ref    uint64 // opaque, unique per table; shown as the manager API's callreference
	CallID string

	Caller, CallerName, CallerDomain string
	Called, CalledDomain             string
	CallerUA, CalledUA               string
	SIPCaller, SIPCalled             netip.AddrPort // first INVITE's source and destination
	Transport                        decode.Proto
	VLAN                             uint16 // of the first INVITE; decode.NoVLAN when untagged
	// SensorID is the id_sensor of the HEP agent whose packet created the
	// call ([Table.FeedSensor]); 0 for the sensor's own calls.
	SensorID int32
	// Encap is the tunnel the first INVITE came through, nil if none:
	// Src and Dst are VoIPmonitor's sipcallerip_encaps and
	// sipcalledip_encaps, IPProto() its *_encaps_prot.
	Encap *decode.Encap

	InviteTime, RingTime, AnswerTime, EndTime time.Time
	LastSIP, LastPacket                       time.Time
	// tap sits next to LastPacket: every RTP packet reads one and writes
	// the other, so they share a cache line.
	tap AudioTap // set while somebody listens

	State      State
	LastCode   int
	LastReason string
	HangupBy   Side

	Legs      []Leg // distinct SIP hops that carried the initial INVITE
	Media     []MediaEndpoint
	Streams   []*Stream
	Messages  uint32 // SIP messages seen
	Hold      bool   // a re-INVITE put media on hold and it was not resumed
	Reinvites uint16

	callerTag  string
	inviteCSeq uint32
	cancelSeen bool
	byeSeen    bool
	closeAt    time.Time // when a finished call leaves the table
	orderPos   int       // index in Table.order

	// What VoIPmonitor's cdr table needs beyond the fields above, kept
	// small (Unix nanoseconds, 0 when not seen) and exposed as times by
	// [CallInfo]: progressNs is the first 18x, or 2xx not answering a BYE;
	// byeNs the first BYE; byeOKNs the first 2xx to a BYE after it;
	// inviteNs the start of the current initial INVITE transaction.
	progressNs, byeNs, byeOKNs, inviteNs int64
	// resp100 and respOther are the shortest time from an initial INVITE
	// to its first 100 and to its first other response, over the INVITE
	// transactions (auth retries); negative when none came.
	resp100, respOther time.Duration
	sipTTL             TTLStats // of the call's SIP packets
	// userAgent holds the first User-Agent header the caller [0] and the
	// callee [1] sent, in any message (no Server header): VoIPmonitor's
	// a_ua and b_ua.
	userAgent        [2]string
	endCause         EndCause
	rtcpSeen         bool // an RTCP packet reached the call
	got100, gotOther bool // of the current initial INVITE transaction
	// sipPackets holds the call's SIP packet records with
	// Config.SIPPackets (sippackets.go), sipOmitted counts those left out
	// past MaxSIPPacketBytes.
	sipOmitted uint32
	sipPackets []byte
}

// EndCause is why a call left the table.
type EndCause uint8

// End causes.
const (
	EndNormal          EndCause = iota // finished (BYE, final response) and lingered
	EndShutdown                        // closed by [Table.CloseAll]: end of the capture, or the sensor stopped
	EndAbsoluteTimeout                 // [Config.AbsoluteTimeout]
	EndRTPTimeout                      // answered, then silent for [Config.RTPTimeout]
	EndSetupTimeout                    // unanswered, no SIP for [Config.SetupTimeout]
)

// TTLStats summarises the IP TTL (IPv6 hop limit) of a set of packets, as
// VoIPmonitor's ttl_min, ttl_max and ttl_avg_mult10 columns do.
type TTLStats struct {
	Min, Max uint8
	Count    uint32
	Sum      uint64
}

func (t *TTLStats) add(v uint8) {
	if t.Count == 0 || v < t.Min {
		t.Min = v
	}
	if v > t.Max {
		t.Max = v
	}
	t.Count++
	t.Sum += uint64(v)
}

// Leg is one SIP hop of a call: the source and destination of an INVITE.
type Leg struct {
	Src, Dst netip.AddrPort
}

// Duration is the time from INVITE to end (or to now for calls in progress).
func (c *Call) Duration(now time.Time) time.Duration {
	end := c.EndTime
	if end.IsZero() {
		end = now
	}
	if end.Before(c.InviteTime) {
		return 0
	}
	return end.Sub(c.InviteTime)
}

// ConnectDuration is the time from answer to end, 0 when never answered.
func (c *Call) ConnectDuration(now time.Time) time.Duration {
	if c.AnswerTime.IsZero() {
		return 0
	}
	end := c.EndTime
	if end.IsZero() {
		end = now
	}
	if end.Before(c.AnswerTime) {
		return 0
	}
	return end.Sub(c.AnswerTime)
}

// sideOfMedia returns the side that advertised ap in its SDP, or SideNone.
func (c *Call) sideOfMedia(ap netip.AddrPort) Side {
	for i := range c.Media {
		m := &c.Media[i]
		if m.Addr == ap || (m.RTCP == ap && m.RTCP.IsValid()) {
			return m.Side
		}
	}
	return SideNone
}

// mediaType returns the SDP media type (audio, video, …) of the m-line
// that advertised either end of f, or "".
func (c *Call) mediaType(f decode.Flow) string {
	for i := range c.Media {
		if m := &c.Media[i]; m.Addr == f.Dst || m.Addr == f.Src {
			return m.Type
		}
	}
	return ""
}

// StreamKind tells what s, one of c's streams, carries, from the SDP and
// from sum, s's summary (its payload type and packet counts). Lock must be
// held.
func (c *Call) StreamKind(s *Stream, sum *rtp.StreamSummary) StreamKind {
	return c.kindOf(s, sum.PayloadType, sum.Received, sum.Events, sum.CN)
}

// kindOf is StreamKind from the figures a summary or full statistics give:
// the payload type (the event type for a stream of events only) and the
// packets received, telephone events and comfort noise among them.
func (c *Call) kindOf(s *Stream, pt uint8, received int64, events, cn uint32) StreamKind {
	if c.mediaType(s.Flow) == "video" {
		return KindVideo
	}
	switch pt {
	case 25, 26, 28, 31, 32, 34: // CelB, JPEG, nv, H261, MPV, H263 (RFC 3551 table 5)
		return KindVideo
	}
	switch {
	case s.hasEvent && pt == s.eventPT && events > 0:
		return KindDTMF
	case (pt == rtp.PTCN || pt == rtp.PTCNOld || int(pt) == c.cnPT()) && cn > 0 && int64(cn)+int64(events) >= received:
		return KindCN
	}
	return KindVoice
}

// format looks up a payload type among the formats the given side (or any
// side) declared.
func (c *Call) format(pt uint8) (Format, bool) {
	for i := range c.Media {
		for _, f := range c.Media[i].Formats {
			if f.PT == pt {
				return f, true
			}
		}
	}
	return Format{}, false
}

// eventPT returns the telephone-event payload type declared in the call's
// SDP, or -1.
func (c *Call) eventPT() int {
	for i := range c.Media {
		for _, f := range c.Media[i].Formats {
			if strings.EqualFold(f.Name, "telephone-event") {
				return int(f.PT)
			}
		}
	}
	return -1
}

// cnPT returns the comfort-noise payload type, 13 unless declared otherwise.
func (c *Call) cnPT() int {
	for i := range c.Media {
		for _, f := range c.Media[i].Formats {
			if strings.EqualFold(f.Name, "CN") {
				return int(f.PT)
			}
		}
	}
	return 13
}
