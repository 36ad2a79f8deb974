package event

import (
	"net/netip"
	"time"
)

// Kind says what happened.
type Kind uint8

// Event kinds.
const (
	CallNew      Kind = iota + 1 // initial INVITE seen: a new call
	CallRinging                  // first 180/183
	CallAnswered                 // 2xx to the initial INVITE
	CallHold                     // a re-INVITE put the media on hold
	CallUnhold                   // a re-INVITE resumed it
	CallEnd                      // the call left the table (BYE, failure, cancel, timeout)
	DTMFBegin                    // first packet of an RFC 2833/4733 telephone-event
	DTMFEnd                      // its end packet
	RegChange                    // a registration binding changed state
	RTCPReport                   // an RTCP SR/RR report block about one of a call's streams
	Quality                      // periodic quality sample of a call in progress
)

var kindNames = [...]string{"", "CallNew", "CallRinging", "CallAnswered", "CallHold", "CallUnhold", "CallEnd",
	"DTMFBegin", "DTMFEnd", "RegChange", "RTCPReport", "Quality"}

// String returns the kind's Go name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "Unknown"
}

// Event is one fact. Events are immutable once published: subscribers share
// the same value and must not modify it.
type Event struct {
	Kind Kind
	Time time.Time // capture time of the packet that caused it (or of the sample)

	// Call identity (every kind but RegChange).
	CallRef    uint64 // the call table's reference, unique per sensor run
	CallID     string
	Caller     string
	CallerName string
	Called     string
	SIPCaller  netip.AddrPort
	SIPCalled  netip.AddrPort
	Start      time.Time // INVITE time

	// CallEnd: the final SIP code and reason, the call state name
	// ("ended", "failed", "cancelled", "timeout", …), who hung up
	// ("caller", "callee", "none") and the durations.
	Code            int
	Reason          string
	State           string
	HangupBy        string
	Duration        time.Duration
	ConnectDuration time.Duration

	// DTMF*, RTCPReport and Quality: the direction concerned,
	// "caller_to_callee" or "callee_to_caller".
	Direction string
	Digit     byte          // DTMF: '0'-'9', '*', '#', 'A'-'D', or '?' for other events
	DTMFDur   time.Duration // DTMFEnd: the event's duration

	// Quality per direction: [0] caller→callee, [1] callee→caller;
	// CallEnd carries the final figures too.
	Streams [2]StreamQuality

	// RTCPReport: what the receiver reported.
	RTCP RTCP

	// RegChange.
	Reg *Registration
}

// StreamQuality is one direction's voice quality.
type StreamQuality struct {
	Present    bool
	Codec      string
	SSRC       uint32
	Src, Dst   netip.AddrPort
	Received   int64
	Lost       int64
	LossPct    float64
	JitterMS   float64 // mean interarrival jitter
	JitterMax  float64
	MOS        float64 // f2 (200 ms fixed jitter buffer), VoIPmonitor's default
	RTTMS      float64 // from RTCP, 0 when unknown
	RTCPLost   int64
	RTCPJitter float64
}

// RTCP is one report block as seen on the wire.
type RTCP struct {
	Sent           bool   // true: from the stream's sender (SR); false: from its receiver (RR block)
	ReporterSSRC   uint32 // sender of the RTCP packet
	SourceSSRC     uint32 // the stream reported on
	FractionLost   float64
	CumulativeLost int32
	JitterMS       float64
	RTTMS          float64 // 0 when not computable
	PacketCount    uint32  // SR only
	OctetCount     uint32  // SR only
	From, To       netip.AddrPort
}

// Registration is a registration state change.
type Registration struct {
	User, Domain, Contact string
	State                 string // OK, Failed, Expired, Unregister
	Expires               int
	Attempts              int
	Code                  int
	UserAgent             string
	Src, Dst              netip.AddrPort
	RRD                   time.Duration
}
