package cdr

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Errors a [Store] may wrap.
var (
	// ErrRejected marks a store error caused by the data rather than the
	// connection (for example a constraint the server refused): retrying
	// the same batch cannot succeed, so the [Writer] writes its records one
	// by one and sets aside those that are still rejected.
	ErrRejected = errors.New("cdr: rejected by store")
	// ErrClosed is returned by [Writer.Close] when called twice.
	ErrClosed = errors.New("cdr: writer closed")
)

// Hangup says which side ended a call (VoIPmonitor's whohanged).
type Hangup string

// Hangup values.
const (
	HangupNone   Hangup = ""       // unknown, timeout or never answered
	HangupCaller Hangup = "caller" // BYE/CANCEL from the caller
	HangupCallee Hangup = "callee" // BYE from the callee
)

// State is how a call attempt ended.
type State string

// State values.
const (
	StateAnswered  State = "answered"  // 2xx to the INVITE
	StateCancelled State = "cancelled" // CANCEL before any final answer
	StateBusy      State = "busy"      // 486 or 600
	StateNoAnswer  State = "noanswer"  // 408/480/487 after ringing, or timed out ringing
	StateFailed    State = "failed"    // any other final error response, or no response
)

// Stream is the RTP/RTCP quality of one direction of a call, with
// VoIPmonitor's column meanings (a_… for the caller's stream, b_… for the
// callee's); see specs/capture-quality.md §1d and §2.7.
type Stream struct {
	Saddr, Daddr netip.AddrPort // source and destination of the RTP
	SSRC         uint32
	Payload      int    // RTP payload type of the main codec (1000 = T.38)
	Codec        string // codec name from SDP ("PCMU", "G729", …)

	Received         int64 // packets received (+2 for probation as VoIPmonitor does)
	Lost             int64 // packets lost, never negative
	Duplicates       int64
	Reordered        int64
	LossPercMult1000 int // round(lost/(received+lost)·100·1000)
	AvgJitterMult10  int // ceil(10 · the sniffer's avgjitter, ms): rtp.VMStats
	MaxJitter        int // ceil(the sniffer's maxjitter), ms
	MaxDelta         int // largest inter-arrival gap, ms

	// MOS×10 through the fixed 50 ms (f1, truncated), fixed 200 ms (f2)
	// and adaptive jitter buffers, and their lowest 10 s interval, computed
	// the sniffer's way (rtp.VMStats).
	MOSF1Mult10       int
	MOSF2Mult10       int
	MOSAdaptMult10    int
	MOSF1MinMult10    int
	MOSF2MinMult10    int
	MOSAdaptMinMult10 int

	SL [10]int64 // loss bursts: SL[i] counts bursts of i+1 packets, SL[9] ≥ 10

	RTCPLoss            int64 // last cumulative lost from RTCP RR/SR
	RTCPMaxFR           int   // max fraction lost 0–255
	RTCPAvgFRMult10     int
	RTCPMaxJitter       int // ms
	RTCPAvgJitterMult10 int
	RTCPAvgRTDMult10    int // round-trip delay, ms×10
	RTCPMaxRTDMult10    int

	// The fields below serve VoIPmonitor's own schema (sqlstore with
	// cdr_schema = voipmonitor), which rounds the figures its own way.

	Index       int       // position among the call's streams in order of first packet (a_index)
	FromCaller  bool      // sent by the caller
	First, Last time.Time // first and last packet
	Events      int64     // RFC 4733 telephone-event packets among Received
	PtimeMS     int       // packetization from RTP timestamps, 0 when unknown
	SDPPtimeMS  int       // a=ptime of the sender's SDP, 0 when absent
	MaxJitterMS float64   // the sniffer's maximum jitter before rounding
	Delay       [7]int64  // packets by delay: d50, d70, d90, d120, d150, d200, d300
	// MOSMeasured tells whether a 10 s MOS interval closed, so that the
	// MOS×10 averages are measured; the sniffer stores them as NULL
	// otherwise (the fields above then hold 45).
	MOSMeasured bool
	TTL         TTL
	// RTCPReports counts the report blocks about this stream; without
	// any the RTCP figures mean nothing. RTCPFracLostReports counts
	// those with a non-zero fraction lost. The jitter and round-trip
	// figures are in ms, unrounded.
	RTCPReports, RTCPFracLostReports int
	RTCPJitterMaxMS, RTCPJitterAvgMS float64
	RTCPRTTCount                     int
	RTCPRTTMaxMS, RTCPRTTAvgMS       float64
}

// TTL summarises the IP TTLs (IPv6 hop limits) of some packets; Count 0
// means none were seen.
type TTL struct {
	Min, Max int
	Count    int64
	Sum      int64
}

// Ending is why a call's record was written.
type Ending uint8

// Ending values.
const (
	EndingNormal          Ending = iota // the call finished: BYE, a final answer, or a cancel
	EndingShutdown                      // still open or lingering when the capture ended or the sensor stopped
	EndingAbsoluteTimeout               // absolute_timeout
	EndingRTPTimeout                    // answered, then silent for rtptimeout
	EndingSetupTimeout                  // unanswered, no SIP for sipwithoutrtptimeout
)

// CallFlags are facts about a call that VoIPmonitor's cdr.flags encodes.
type CallFlags uint16

// CallFlags values.
const (
	FlagEventsOffered  CallFlags = 1 << iota // telephone-event in the caller's SDP
	FlagEventsAnswered                       // telephone-event in the callee's SDP
	FlagSDPAudio                             // an SDP offered audio
	FlagSDPImage                             // an SDP offered image (T.38)
	FlagSDPVideo                             // an SDP offered video
	FlagRTCP                                 // RTCP packets reached the call
	FlagRTPDuplicates                        // a stream repeated sequence numbers
)

// Record is the CDR: one per ended call or failed/cancelled attempt.
// Times are in UTC with microsecond precision once stored.
type Record struct {
	IDSensor int    // -1 when unset (stored as NULL)
	CallID   string // SIP Call-ID

	CallDate        time.Time     // time of the first INVITE
	CallEnd         time.Time     // time the call ended
	Duration        time.Duration // CallEnd − CallDate
	ConnectDuration time.Duration // from the 2xx to the end, 0 if unanswered
	ProgressTime    time.Duration // INVITE → first 18x, 0 if none
	RingingTime     time.Duration // first 18x → final response, 0 if none

	Caller, CallerDomain, CallerName string // From user, host, display name
	Called, CalledDomain             string // To (or R-URI) user and host
	CallerUA, CalledUA               string // User-Agent / Server headers

	SIPCallerAddr netip.AddrPort // source of the INVITE
	SIPCalledAddr netip.AddrPort // destination of the INVITE

	LastSIPCode   int    // last final response code (lastSIPresponseNum)
	LastSIPReason string // its reason phrase
	WhoHanged     Hangup
	State         State

	A *Stream // caller → callee, nil when no RTP was seen
	B *Stream // callee → caller

	// The fields below serve VoIPmonitor's own schema (sqlstore with
	// cdr_schema = voipmonitor). Absolute times are zero when not seen.

	LastPacketAt time.Time // last SIP, RTP or RTCP packet: the sniffer's duration ends there
	LastSIPAt    time.Time // last SIP message
	AnsweredAt   time.Time // the 2xx to the INVITE
	ProgressAt   time.Time // first 18x, or 2xx not answering a BYE
	ByeAt        time.Time // first BYE
	ByeOKAt      time.Time // first 2xx to a BYE
	// Response100 and ResponseOther are the shortest times from an
	// initial INVITE to its first 100 and to its first other response;
	// negative when none came.
	Response100, ResponseOther time.Duration
	Ending                     Ending
	// SensorDropped is set when the sensor itself lost frames (kernel
	// ring or packet buffer full) while the call was in progress: its
	// lost packets may then be the sensor's, not the network's.
	SensorDropped bool
	Transport     string // "udp", "tcp" or "sctp" of the first INVITE
	VLAN          int    // 802.1Q VLAN of the first INVITE, -1 untagged
	Flags         CallFlags
	SIPTTL        TTL // of the call's SIP packets
	// CallerUserAgent and CalleeUserAgent are the first User-Agent header
	// each side sent in any message, without CalledUA's fallback to the
	// Server header: VoIPmonitor's a_ua and b_ua.
	CallerUserAgent, CalleeUserAgent string
	// Streams holds every RTP stream of the call in order of its first
	// packet; A and B are copies of two of them (see Stream.Index).
	Streams []Stream
}

// JitterMult10 returns max(a, b) of AvgJitterMult10, VoIPmonitor's call-level
// jitter_mult10; 0 without streams.
func (r *Record) JitterMult10() int {
	return max(streamVal(r.A, func(s *Stream) int { return s.AvgJitterMult10 }),
		streamVal(r.B, func(s *Stream) int { return s.AvgJitterMult10 }))
}

// LossPercMult1000 returns max(a, b) of the streams' loss, VoIPmonitor's
// call-level packet_loss_perc_mult1000.
func (r *Record) LossPercMult1000() int {
	return max(streamVal(r.A, func(s *Stream) int { return s.LossPercMult1000 }),
		streamVal(r.B, func(s *Stream) int { return s.LossPercMult1000 }))
}

// MOSMinMult10 returns min(a, b) of the f2 MOS, VoIPmonitor's default
// mos_min_mult10, and false when the call has no stream.
func (r *Record) MOSMinMult10() (int, bool) {
	switch {
	case r.A != nil && r.B != nil:
		return min(r.A.MOSF2Mult10, r.B.MOSF2Mult10), true
	case r.A != nil:
		return r.A.MOSF2Mult10, true
	case r.B != nil:
		return r.B.MOSF2Mult10, true
	}
	return 0, false
}

func streamVal(s *Stream, f func(*Stream) int) int {
	if s == nil {
		return 0
	}
	return f(s)
}

// RegState is a registration state, numbered as VoIPmonitor's register_state.state.
type RegState int

// RegState values (VoIPmonitor numbering).
const (
	RegOK         RegState = 1
	RegFailed     RegState = 2
	RegExpired    RegState = 5
	RegUnregister RegState = 6
)

// String returns VoIPmonitor's state name ("OK", "Failed", "Expired",
// "Unregister").
func (s RegState) String() string {
	switch s {
	case RegOK:
		return "OK"
	case RegFailed:
		return "Failed"
	case RegExpired:
		return "Expired"
	case RegUnregister:
		return "Unregister"
	}
	return "Unknown"
}

// Registration is one registration state change.
type Registration struct {
	IDSensor  int       // -1 when unset
	Time      time.Time // time of the state change
	CallID    string
	User      string // AOR user (To user, VoIPmonitor to_num)
	Domain    string // AOR domain
	FromUser  string // From user (VoIPmonitor from_num)
	AuthUser  string // digest username
	VLAN      int    // 802.1Q VLAN of the REGISTER, -1 untagged
	Contact   string // Contact URI
	State     RegState
	Expires   int // granted expiry, seconds
	Attempts  int // REGISTER requests in this transaction (auth challenges count)
	UserAgent string
	Src, Dst  netip.AddrPort // REGISTER source and destination
	RRD       time.Duration  // REGISTER → final response round trip
}

// Store persists Records and Registrations. A Store is safe for concurrent
// use. A write either stores the whole batch or returns an error; an error
// wrapping [ErrRejected] means the data, not the connection, was refused.
type Store interface {
	WriteRecords(ctx context.Context, recs []Record) error
	WriteRegistrations(ctx context.Context, regs []Registration) error
	Close() error
}
