package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// Call is the JSON Lines object `voipsensor read --json` prints per call.
// The schema is documented in README.md; field names are stable.
type Call struct {
	Type             string   `json:"type"` // "call"
	CallID           string   `json:"callid"`
	Caller           string   `json:"caller"`
	CallerName       string   `json:"caller_name,omitempty"`
	CallerDomain     string   `json:"caller_domain,omitempty"`
	Called           string   `json:"called"`
	CalledDomain     string   `json:"called_domain,omitempty"`
	CallDate         string   `json:"calldate"`
	RingTime         string   `json:"ring_time,omitempty"`
	AnswerTime       string   `json:"answer_time,omitempty"`
	EndTime          string   `json:"end_time,omitempty"`
	DurationS        float64  `json:"duration_s"`
	ConnectDurationS float64  `json:"connect_duration_s"`
	LastSIPCode      int      `json:"last_sip_code"`
	LastSIPReason    string   `json:"last_sip_reason,omitempty"`
	State            string   `json:"state"`
	HangupBy         string   `json:"hangup_by"`
	CallerUA         string   `json:"caller_ua,omitempty"`
	CalledUA         string   `json:"called_ua,omitempty"`
	SIPCaller        string   `json:"sip_caller"`
	SIPCalled        string   `json:"sip_called"`
	Transport        string   `json:"transport"`
	Legs             int      `json:"legs"`
	Messages         int      `json:"sip_messages"`
	Streams          []Stream `json:"streams"`
}

// Stream is one RTP stream of a [Call].
type Stream struct {
	Src          string  `json:"src"`
	Dst          string  `json:"dst"`
	SSRC         string  `json:"ssrc"`      // 0x-prefixed hex, as tshark prints it
	Direction    string  `json:"direction"` // caller_to_callee, callee_to_caller, unknown
	PayloadType  int     `json:"payload_type"`
	Codec        string  `json:"codec"`
	PtimeMS      int     `json:"ptime_ms"`
	Received     int64   `json:"received"`
	Expected     int64   `json:"expected"`
	Lost         int64   `json:"lost"`
	LostRFC      int64   `json:"lost_rfc"`
	Duplicates   int64   `json:"duplicates"`
	Reordered    int64   `json:"reordered"`
	JitterMeanMS float64 `json:"jitter_mean_ms"`
	JitterMaxMS  float64 `json:"jitter_max_ms"`
	MaxDeltaMS   float64 `json:"max_delta_ms"`
	MOSF1        float64 `json:"mos_f1"`
	MOSF2        float64 `json:"mos_f2"`
	MOSAdapt     float64 `json:"mos_adapt"`
	// The VoIPmonitor sniffer's own figures, as its cdr columns hold them
	// (a_/b_mos_*_mult10, a_/b_avgjitter_mult10, a_/b_maxjitter); the MOS
	// averages are absent where the sniffer stores NULL.
	VMMOSF1Mult10       *int    `json:"vm_mos_f1_mult10,omitempty"`
	VMMOSF2Mult10       *int    `json:"vm_mos_f2_mult10,omitempty"`
	VMMOSAdaptMult10    *int    `json:"vm_mos_adapt_mult10,omitempty"`
	VMMOSF1MinMult10    int     `json:"vm_mos_f1_min_mult10"`
	VMMOSF2MinMult10    int     `json:"vm_mos_f2_min_mult10"`
	VMMOSAdaptMinMult10 int     `json:"vm_mos_adapt_min_mult10"`
	VMMOSMinMult10      *int    `json:"vm_mos_min_mult10,omitempty"`
	VMJitterAvgMS       float64 `json:"vm_jitter_avg_ms"`
	VMJitterAvgMult10   int     `json:"vm_jitter_avg_mult10"`
	VMJitterMax         int     `json:"vm_jitter_max"`
	Events              uint32  `json:"dtmf_events"`
	RTCP                *RTCP   `json:"rtcp,omitempty"`
}

// RTCP is what the receiver of a stream reported about it.
type RTCP struct {
	Reports         int     `json:"reports"`
	CumulativeLost  int64   `json:"cumulative_lost"`
	FractionLostMax float64 `json:"fraction_lost_max"` // 0..1
	FractionLostAvg float64 `json:"fraction_lost_avg"` // 0..1
	JitterMaxMS     float64 `json:"jitter_max_ms"`
	JitterAvgMS     float64 `json:"jitter_avg_ms"`
	RTTAvgMS        float64 `json:"rtt_avg_ms"`
	RTTMaxMS        float64 `json:"rtt_max_ms"`
	XRMOSLQ         float64 `json:"xr_mos_lq,omitempty"`
}

// Registration is the JSON Lines object printed per registration state
// change.
type Registration struct {
	Type      string  `json:"type"` // "registration"
	Time      string  `json:"time"`
	User      string  `json:"user"`
	Domain    string  `json:"domain"`
	Contact   string  `json:"contact"`
	State     string  `json:"state"`
	Expires   int     `json:"expires"`
	Attempts  int     `json:"attempts"`
	RRDMS     float64 `json:"rrd_ms"`
	LastCode  int     `json:"last_sip_code"`
	UserAgent string  `json:"user_agent,omitempty"`
	Src       string  `json:"src"`
	Dst       string  `json:"dst"`
}

// NewCall converts a call to its JSON form.
func NewCall(c *calltable.CallInfo) Call {
	out := Call{
		Type: "call", CallID: c.CallID,
		Caller: c.Caller, CallerName: c.CallerName, CallerDomain: c.CallerDomain,
		Called: c.Called, CalledDomain: c.CalledDomain,
		CallDate:         stamp(c.InviteTime),
		RingTime:         stamp(c.RingTime),
		AnswerTime:       stamp(c.AnswerTime),
		EndTime:          stamp(c.EndTime),
		DurationS:        round3(c.Duration().Seconds()),
		ConnectDurationS: round3(c.ConnectDuration().Seconds()),
		LastSIPCode:      c.LastCode, LastSIPReason: c.LastReason,
		State: c.State.String(), HangupBy: c.HangupBy.String(),
		CallerUA: c.CallerUA, CalledUA: c.CalledUA,
		SIPCaller: addr(c.SIPCaller), SIPCalled: addr(c.SIPCalled),
		Transport: transport(c), Legs: len(c.Legs), Messages: c.Messages,
		Streams: make([]Stream, 0, len(c.Streams)),
	}
	for i := range c.Streams {
		out.Streams = append(out.Streams, newStream(&c.Streams[i]))
	}
	return out
}

func newStream(s *calltable.StreamInfo) Stream {
	st := &s.Stats
	out := Stream{
		Src: addr(s.Src), Dst: addr(s.Dst), SSRC: fmt.Sprintf("0x%08X", s.SSRC),
		Direction:   direction(s.Side),
		PayloadType: int(st.PayloadType), Codec: st.Codec, PtimeMS: st.PtimeMS,
		Received: st.Received, Expected: st.Expected, Lost: st.Lost, LostRFC: st.LostRFC,
		Duplicates: st.Duplicates, Reordered: st.Reordered,
		JitterMeanMS: round3(st.JitterMeanMS), JitterMaxMS: round3(st.JitterMaxMS),
		MaxDeltaMS: round3(st.MaxDeltaMS),
		MOSF1:      round2(st.MOSF1), MOSF2: round2(st.MOSF2), MOSAdapt: round2(st.MOSAdapt),
		Events: st.Events,

		VMMOSF1Mult10: nonNeg(st.VM.MOSF1Mult10), VMMOSF2Mult10: nonNeg(st.VM.MOSF2Mult10),
		VMMOSAdaptMult10: nonNeg(st.VM.MOSAdaptMult10), VMMOSMinMult10: nonNeg(st.VM.MOSMinMult10),
		VMMOSF1MinMult10: st.VM.MOSF1MinMult10, VMMOSF2MinMult10: st.VM.MOSF2MinMult10,
		VMMOSAdaptMinMult10: st.VM.MOSAdaptMinMult10,
		VMJitterAvgMS:       round3(st.VM.AvgJitterMS), VMJitterAvgMult10: st.VM.AvgJitterMult10,
		VMJitterMax: st.VM.MaxJitter,
	}
	if r := rtcpOf(st); r != nil {
		out.RTCP = r
	}
	return out
}

// nonNeg returns &v, or nil for a negative v (the sniffer's NULL).
func nonNeg(v int) *int {
	if v < 0 {
		return nil
	}
	return &v
}

func rtcpOf(st *rtp.StreamStats) *RTCP {
	r := &st.RTCP
	if r.Reports == 0 {
		return nil
	}
	return &RTCP{
		Reports: int(r.Reports), CumulativeLost: int64(r.CumulativeLost),
		FractionLostMax: round3(float64(r.FractionLostMax) / 256),
		FractionLostAvg: round3(r.FractionLostAvg / 256),
		XRMOSLQ:         r.XRMOSLQ,
		JitterMaxMS:     round3(r.JitterMaxMS), JitterAvgMS: round3(r.JitterAvgMS),
		RTTAvgMS: round3(r.RTTAvgMS), RTTMaxMS: round3(r.RTTMaxMS),
	}
}

// NewRegistration converts a registration state change to its JSON form.
func NewRegistration(r *calltable.RegistrationInfo) Registration {
	return Registration{
		Type: "registration", Time: stamp(r.StateTime),
		User: r.User, Domain: r.Domain, Contact: r.Contact,
		State: r.State.String(), Expires: r.Expires, Attempts: r.Attempts,
		RRDMS: round3(float64(r.RRD) / float64(time.Millisecond)), LastCode: r.LastCode,
		UserAgent: r.UA, Src: addr(r.Src), Dst: addr(r.Dst),
	}
}

// JSONWriter writes JSON Lines. Not safe for concurrent use.
type JSONWriter struct {
	enc *json.Encoder
}

// NewJSONWriter returns a writer of JSON Lines to w.
func NewJSONWriter(w io.Writer) *JSONWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONWriter{enc: enc}
}

// Call writes one call object.
func (j *JSONWriter) Call(c *calltable.CallInfo) error { return j.enc.Encode(NewCall(c)) }

// Registration writes one registration object.
func (j *JSONWriter) Registration(r *calltable.RegistrationInfo) error {
	return j.enc.Encode(NewRegistration(r))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

func addr(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

func direction(s calltable.Side) string {
	switch s {
	case calltable.SideCaller:
		return "caller_to_callee"
	case calltable.SideCallee:
		return "callee_to_caller"
	}
	return "unknown"
}

func transport(c *calltable.CallInfo) string {
	if c.Transport == 0 {
		return "udp"
	}
	return c.Transport.String() // udp, tcp or sctp
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
func round2(f float64) float64 { return math.Round(f*100) / 100 }
