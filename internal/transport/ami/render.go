package ami

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/event"
)

// Rendered is one AMI event, rendered once and shared read-only by every
// session that receives it.
type Rendered struct {
	Name  string
	Perm  command.Perm // the event's classes; a session needs all of them
	Bytes []byte       // the whole message, closing empty line included
}

// QualityEvent is the name of the periodic quality event for calls in
// progress (class reporting).
const QualityEvent = "VoIPQuality"

// Channel naming. Each call has two channels, one per side:
//
//	SIP/<caller>-<ref as 8 hex digits>   the caller's (inbound) side
//	SIP/<called>-<ref as 8 hex digits>;2 the callee's (outbound) side
//
// Uniqueid is "<INVITE unix time>.<2*ref>" for the caller side and
// "<INVITE unix time>.<2*ref+1>" for the callee side; Linkedid is the
// caller side's Uniqueid for both, so it is shared by every event of the
// call. ref is the call table's reference, unique per sensor run.
type channel struct {
	name, uniqueid, linkedid string
	num, cidName             string // C-escaped
	exten                    string // C-escaped
	state                    int
}

const (
	stateDown    = 0
	stateRing    = 4
	stateRinging = 5
	stateUp      = 6
)

var stateDesc = [...]string{"Down", "Rsrvd", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy",
	"Dialing Offhook", "Pre-ring", "Mute"}

// party is what a call's two channels are named from: an event's call,
// or a row of the calls in progress.
type party struct {
	ref                        uint64
	start                      time.Time // the INVITE; its second prefixes the Uniqueids
	caller, callerName, called string
}

// eventParty is the party of e's call; an event without the INVITE time
// takes its own.
func eventParty(e *event.Event) party {
	start := e.Start
	if start.IsZero() {
		start = e.Time
	}
	return party{ref: e.CallRef, start: start, caller: e.Caller, callerName: e.CallerName, called: e.Called}
}

func channels(p party) (caller, callee channel) {
	base := p.start.Unix()
	ref := p.ref
	lid := strconv.FormatInt(base, 10) + "." + strconv.FormatUint(2*ref, 10)
	caller = channel{
		name:     "SIP/" + Escape(orUnknown(p.caller)) + "-" + fmt.Sprintf("%08x", ref),
		uniqueid: lid, linkedid: lid,
		num: Escape(orUnknown(p.caller)), cidName: Escape(orUnknown(p.callerName)), exten: Escape(p.called),
	}
	callee = channel{
		name:     "SIP/" + Escape(orUnknown(p.called)) + "-" + fmt.Sprintf("%08x", ref) + ";2",
		uniqueid: strconv.FormatInt(base, 10) + "." + strconv.FormatUint(2*ref+1, 10), linkedid: lid,
		num: Escape(orUnknown(p.called)), cidName: "<unknown>", exten: Escape(p.called),
	}
	return caller, callee
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

// snapshot writes Asterisk's channel snapshot block, with an optional
// prefix ("Dest") for the second party of dial events. conn is the other
// side (ConnectedLine*).
func (w *builder) snapshot(prefix string, c, conn channel) {
	w.add(prefix+"Channel", c.name)
	w.addInt(prefix+"ChannelState", int64(c.state))
	w.add(prefix+"ChannelStateDesc", stateDesc[c.state])
	w.add(prefix+"CallerIDNum", c.num)
	w.add(prefix+"CallerIDName", c.cidName)
	w.add(prefix+"ConnectedLineNum", conn.num)
	w.add(prefix+"ConnectedLineName", conn.cidName)
	w.add(prefix+"Language", "en")
	w.add(prefix+"AccountCode", "")
	w.add(prefix+"Context", "voipsensor")
	w.add(prefix+"Exten", c.exten)
	w.add(prefix+"Priority", "1")
	w.add(prefix+"Uniqueid", c.uniqueid)
	w.add(prefix+"Linkedid", c.linkedid)
}

// Renderer turns events into AMI messages. It is used by one goroutine
// (the server's dispatcher) and by tests.
type Renderer struct {
	// Timestamp adds "Timestamp: <unix>.<usec>" (timestampevents).
	Timestamp bool
	// Now stamps Timestamp; nil means time.Now.
	Now func() time.Time
}

func (r *Renderer) begin(name string, perm command.Perm) *builder {
	w := &builder{b: make([]byte, 0, 768)}
	w.add("Event", name)
	w.add("Privilege", perm.String()+",all")
	if r.Timestamp {
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		w.add("Timestamp", unixMicro(now()))
	}
	return w
}

func unixMicro(t time.Time) string {
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

func done(out []Rendered, name string, perm command.Perm, w *builder) []Rendered {
	w.end()
	return append(out, Rendered{Name: name, Perm: perm, Bytes: w.b})
}

// answered tells whether the call reached 2xx, from a CallEnd event.
func answered(e *event.Event) bool {
	return e.ConnectDuration > 0 || e.State == "ended" || e.State == "answered" || e.Code/100 == 2
}

// Render appends the AMI messages for e to out.
func (r *Renderer) Render(out []Rendered, e *event.Event) []Rendered {
	if e.Kind == event.RegChange {
		return r.renderReg(out, e)
	}
	caller, callee := channels(eventParty(e))
	switch e.Kind {
	case event.CallNew:
		caller.state = stateRing
		w := r.begin("Newchannel", command.PermCall)
		w.snapshot("", caller, callee)
		out = done(out, "Newchannel", command.PermCall, w)
		callee.state = stateDown
		w = r.begin("Newchannel", command.PermCall)
		w.snapshot("", callee, caller)
		out = done(out, "Newchannel", command.PermCall, w)
		w = r.begin("DialBegin", command.PermCall)
		w.snapshot("", caller, callee)
		w.snapshot("Dest", callee, caller)
		w.add("DialString", Escape(e.Called))
		out = done(out, "DialBegin", command.PermCall, w)
	case event.CallRinging:
		caller.state, callee.state = stateRing, stateRinging
		w := r.begin("Newstate", command.PermCall)
		w.snapshot("", callee, caller)
		out = done(out, "Newstate", command.PermCall, w)
		w = r.begin("DialState", command.PermCall)
		w.snapshot("", caller, callee)
		w.snapshot("Dest", callee, caller)
		w.add("DialStatus", "RINGING")
		out = done(out, "DialState", command.PermCall, w)
	case event.CallAnswered:
		caller.state, callee.state = stateUp, stateUp
		w := r.begin("Newstate", command.PermCall)
		w.snapshot("", callee, caller)
		out = done(out, "Newstate", command.PermCall, w)
		w = r.begin("DialEnd", command.PermCall)
		w.snapshot("", caller, callee)
		w.snapshot("Dest", callee, caller)
		w.add("DialStatus", "ANSWER")
		out = done(out, "DialEnd", command.PermCall, w)
		w = r.begin("Newstate", command.PermCall)
		w.snapshot("", caller, callee)
		out = done(out, "Newstate", command.PermCall, w)
	case event.CallHold, event.CallUnhold:
		name := "Hold"
		if e.Kind == event.CallUnhold {
			name = "Unhold"
		}
		caller.state, callee.state = stateUp, stateUp
		w := r.begin(name, command.PermCall)
		w.snapshot("", caller, callee)
		out = done(out, name, command.PermCall, w)
	case event.DTMFBegin, event.DTMFEnd:
		out = r.renderDTMF(out, e, caller, callee)
	case event.RTCPReport:
		out = r.renderRTCP(out, e, caller, callee)
	case event.Quality:
		out = r.renderQuality(out, e, caller, callee)
	case event.CallEnd:
		out = r.renderEnd(out, e, caller, callee)
	}
	return out
}

func (r *Renderer) renderDTMF(out []Rendered, e *event.Event, caller, callee channel) []Rendered {
	name := "DTMFBegin"
	if e.Kind == event.DTMFEnd {
		name = "DTMFEnd"
	}
	ch, other := caller, callee
	if e.Direction == "callee_to_caller" {
		ch, other = callee, caller
	}
	ch.state, other.state = stateUp, stateUp
	w := r.begin(name, command.PermDTMF)
	w.snapshot("", ch, other)
	w.add("Digit", Escape(string(rune(e.Digit))))
	w.add("Direction", "Received")
	if e.Kind == event.DTMFEnd {
		w.addInt("DurationMs", e.DTMFDur.Milliseconds())
	}
	return done(out, name, command.PermDTMF, w)
}

func (r *Renderer) renderRTCP(out []Rendered, e *event.Event, caller, callee channel) []Rendered {
	rt := &e.RTCP
	// The reporter is the stream's sender for an SR, its receiver for an RR.
	ch, other := caller, callee
	if (e.Direction == "callee_to_caller") == rt.Sent {
		ch, other = callee, caller
	}
	ch.state, other.state = stateUp, stateUp
	name := "RTCPReceived"
	if rt.Sent {
		name = "RTCPSent"
	}
	w := r.begin(name, command.PermReporting)
	w.snapshot("", ch, other)
	if rt.Sent {
		w.add("To", rt.To.String())
	} else {
		w.add("From", rt.From.String())
		w.add("RTT", fmt.Sprintf("%.4f", rt.RTTMS/1000))
	}
	w.add("SSRC", fmt.Sprintf("0x%08x", rt.ReporterSSRC))
	if rt.Sent {
		w.add("PT", "200(SR)")
	} else {
		w.add("PT", "201(RR)")
	}
	w.add("ReportCount", "1")
	if rt.Sent {
		w.addInt("SentPackets", int64(rt.PacketCount))
		w.addInt("SentOctets", int64(rt.OctetCount))
	}
	w.add("Report0SourceSSRC", fmt.Sprintf("0x%08x", rt.SourceSSRC))
	w.addInt("Report0FractionLost", int64(rt.FractionLost*256+0.5))
	w.addInt("Report0CumulativeLost", int64(rt.CumulativeLost))
	w.addInt("Report0IAJitter", int64(rt.JitterMS*8+0.5)) // 8 kHz timestamp units
	return done(out, name, command.PermReporting, w)
}

func (w *builder) quality(prefix string, q *event.StreamQuality) {
	if !q.Present {
		w.add(prefix+"Present", "No")
		return
	}
	w.add(prefix+"Present", "Yes")
	w.add(prefix+"Codec", Escape(q.Codec))
	w.add(prefix+"SSRC", fmt.Sprintf("0x%08x", q.SSRC))
	w.addInt(prefix+"Received", q.Received)
	w.addInt(prefix+"Lost", q.Lost)
	w.add(prefix+"LossPercent", fmt.Sprintf("%.2f", q.LossPct))
	w.add(prefix+"JitterMs", fmt.Sprintf("%.2f", q.JitterMS))
	w.add(prefix+"JitterMaxMs", fmt.Sprintf("%.2f", q.JitterMax))
	w.add(prefix+"MOS", fmt.Sprintf("%.2f", q.MOS))
	w.add(prefix+"RTTMs", fmt.Sprintf("%.2f", q.RTTMS))
}

func (r *Renderer) renderQuality(out []Rendered, e *event.Event, caller, callee channel) []Rendered {
	caller.state = stateOf(e.State)
	w := r.begin(QualityEvent, command.PermReporting)
	w.snapshot("", caller, callee)
	w.add("CallID", Escape(e.CallID))
	w.addInt("DurationSec", int64(e.Duration/time.Second))
	w.quality("CallerToCallee", &e.Streams[0])
	w.quality("CalleeToCaller", &e.Streams[1])
	return done(out, QualityEvent, command.PermReporting, w)
}

// stateOf maps a call's state (calling, ringing, answered) to the caller
// channel's.
func stateOf(callState string) int {
	switch callState {
	case "calling":
		return stateRing
	case "ringing":
		return stateRinging
	case "answered":
		return stateUp
	}
	return stateDown
}

// mes maps MOS (1–4.5) onto Asterisk's 0–100 media experience score.
func mes(mos float64) float64 {
	if mos <= 1 {
		return 0
	}
	return min(100, (mos-1)/3.5*100)
}

func (r *Renderer) renderEnd(out []Rendered, e *event.Event, caller, callee channel) []Rendered {
	ans := answered(e)
	if ans {
		caller.state, callee.state = stateUp, stateUp
	} else {
		caller.state, callee.state = stateRing, stateRinging
	}
	if !ans {
		w := r.begin("DialEnd", command.PermCall)
		w.snapshot("", caller, callee)
		w.snapshot("Dest", callee, caller)
		w.add("DialStatus", dialStatus(e))
		out = done(out, "DialEnd", command.PermCall, w)
	}
	// RTPAUDIOQOS from the caller channel's point of view: tx is the
	// caller's stream, rx the callee's.
	tx, rx := &e.Streams[0], &e.Streams[1]
	if tx.Present || rx.Present {
		w := r.begin("VarSet", command.PermDialplan)
		w.snapshot("", caller, callee)
		w.add("Variable", "RTPAUDIOQOS")
		w.add("Value", Escape(fmt.Sprintf("ssrc=%d;themssrc=%d;lp=%d;rxjitter=%.6f;rxcount=%d;txjitter=%.6f;txcount=%d;rlp=%d;rtt=%.6f;rxmes=%.1f;txmes=%.1f",
			tx.SSRC, rx.SSRC, rx.Lost, rx.JitterMS/1000, rx.Received, tx.JitterMS/1000, tx.Received+tx.Lost, tx.Lost,
			max(rx.RTTMS, tx.RTTMS)/1000, mes(rx.MOS), mes(tx.MOS))))
		out = done(out, "VarSet", command.PermDialplan, w)
	}
	cause := causeFromSIP(e.Code)
	for _, pair := range [2][2]channel{{callee, caller}, {caller, callee}} {
		w := r.begin("Hangup", command.PermCall)
		w.snapshot("", pair[0], pair[1])
		w.addInt("Cause", int64(cause))
		w.add("Cause-txt", causeText[cause])
		if e.Code > 0 {
			w.addInt("TechCause", int64(e.Code))
		}
		out = done(out, "Hangup", command.PermCall, w)
	}
	w := r.begin("Cdr", command.PermCDR)
	w.add("AccountCode", "")
	w.add("Source", caller.num)
	w.add("Destination", callee.num)
	w.add("DestinationContext", "voipsensor")
	w.add("CallerID", fmt.Sprintf("\"%s\" <%s>", caller.cidName, caller.num))
	w.add("Channel", caller.name)
	w.add("DestinationChannel", callee.name)
	w.add("LastApplication", "Dial")
	w.add("LastData", callee.name)
	w.add("StartTime", cdrTime(e.Start))
	var answer time.Time
	end := e.Start.Add(e.Duration)
	if e.ConnectDuration > 0 {
		answer = end.Add(-e.ConnectDuration)
	}
	w.add("AnswerTime", cdrTime(answer))
	w.add("EndTime", cdrTime(end))
	w.addInt("Duration", int64(e.Duration/time.Second))
	w.addInt("BillableSeconds", int64(e.ConnectDuration/time.Second))
	w.add("Disposition", disposition(e, ans))
	w.add("AMAFlags", "DOCUMENTATION")
	w.add("UniqueID", caller.uniqueid)
	w.add("UserField", Escape(e.CallID))
	return done(out, "Cdr", command.PermCDR, w)
}

func cdrTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func dialStatus(e *event.Event) string {
	switch {
	case e.State == "cancelled" || e.Code == 487:
		return "CANCEL"
	case e.Code == 486 || e.Code == 600:
		return "BUSY"
	case e.Code == 408 || e.Code == 480 || e.State == "timeout":
		return "NOANSWER"
	case e.Code == 503 || e.Code/100 == 5:
		return "CONGESTION"
	}
	return "CHANUNAVAIL"
}

func disposition(e *event.Event, ans bool) string {
	switch {
	case ans:
		return "ANSWERED"
	case e.Code == 486 || e.Code == 600:
		return "BUSY"
	case e.State == "cancelled" || e.Code == 487:
		return "CANCEL"
	case e.Code == 503:
		return "CONGESTION"
	case e.Code >= 400:
		return "FAILED"
	}
	return "NO ANSWER"
}

// causeFromSIP maps a final SIP response to a Q.850 cause as RFC 3398
// section 8.2.6.1 does; 2xx/none (a BYE) and 487 (the caller's CANCEL) are
// Normal Clearing.
func causeFromSIP(code int) int {
	switch code {
	case 400, 481, 500, 503:
		return 41
	case 401, 402, 403, 603:
		return 21
	case 404, 485, 604:
		return 1
	case 405:
		return 63
	case 406, 415, 501:
		return 79
	case 408, 504:
		return 102
	case 410:
		return 22
	case 480:
		return 18
	case 482, 483:
		return 25
	case 484:
		return 28
	case 486, 600:
		return 17
	case 502:
		return 38
	case 580:
		return 47
	case 606:
		return 58
	case 0, 487:
		return 16
	}
	if code/100 == 2 {
		return 16
	}
	return 127
}

// causeText is Asterisk's ast_cause2str wording for the causes used.
var causeText = map[int]string{
	1: "Unallocated (unassigned) number", 16: "Normal Clearing", 17: "User busy", 18: "No user responding",
	21: "Call Rejected", 22: "Number changed", 25: "Exchange routing error", 28: "Invalid number format (addr incomplete)",
	38: "Network out of order", 41: "Temporary failure", 47: "Resource unavailable, unspecified",
	58: "Bearer capability not available", 63: "Service or option not available",
	79: "Service or option not implemented", 102: "Recovery on timer expiry", 127: "Interworking, unspecified",
}

func (r *Renderer) renderReg(out []Rendered, e *event.Event) []Rendered {
	g := e.Reg
	if g == nil {
		return out
	}
	peer, contact := "Unknown", "Unknown"
	switch g.State {
	case "OK":
		peer, contact = "Registered", "Reachable"
	case "Unregister", "Expired":
		peer, contact = "Unregistered", "Removed"
	case "Failed":
		peer, contact = "Rejected", "Unreachable"
	}
	w := r.begin("PeerStatus", command.PermSystem)
	w.add("ChannelType", "SIP")
	w.add("Peer", "SIP/"+Escape(g.User))
	w.add("PeerStatus", peer)
	if g.Code > 0 {
		w.addInt("Cause", int64(g.Code))
	}
	if g.Src.IsValid() {
		w.add("Address", g.Src.Addr().String())
		w.addInt("Port", int64(g.Src.Port()))
	}
	if g.RRD > 0 {
		w.addInt("Time", g.RRD.Milliseconds())
	}
	out = done(out, "PeerStatus", command.PermSystem, w)
	w = r.begin("ContactStatus", command.PermSystem)
	w.add("URI", Escape(g.Contact))
	w.add("ContactStatus", contact)
	w.add("AOR", Escape(g.User))
	w.add("EndpointName", Escape(g.User))
	if g.RRD > 0 {
		w.addInt("RoundtripUsec", g.RRD.Microseconds())
	}
	w.add("UserAgent", Escape(g.UserAgent))
	return done(out, "ContactStatus", command.PermSystem, w)
}

// coreShowChannel writes one CoreShowChannel list item for a call in
// progress.
func coreShowChannel(w *builder, c *callRow, id string, hasID bool) {
	caller, callee := channels(c.party)
	caller.state = stateOf(c.state)
	w.add("Event", "CoreShowChannel")
	w.addID(id, hasID)
	w.snapshot("", caller, callee)
	w.add("Application", "Dial")
	w.add("ApplicationData", callee.name)
	d := int64(c.duration / time.Second)
	w.add("Duration", fmt.Sprintf("%02d:%02d:%02d", d/3600, d/60%60, d%60))
	w.add("BridgeId", "")
	w.add("CallID", Escape(c.callID))
	w.end()
}

// headerName turns a column name into an AMI header name ([A-Za-z0-9-]).
func headerName(s string) string {
	var b strings.Builder
	up := true
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			if up {
				c -= 'a' - 'A'
			}
			b.WriteRune(c)
			up = false
		case c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteRune(c)
			up = false
		default:
			up = true
		}
	}
	if b.Len() < 2 {
		return "Field" + b.String()
	}
	return b.String()
}
