package calltable

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/sdp"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// handleSIP parses one SIP message and applies it. Must hold t.mu.
func (t *Table) handleSIP(dg *decode.Datagram) {
	m := &t.msg
	if err := m.Unmarshal(dg.Payload); err != nil {
		// A bad Content-Length alone leaves the message whole: its
		// datagram (or WebSocket message) bounds it, as Wireshark reads
		// it. TCP framing never delivers one, since it needs the length.
		if !errors.Is(err, sip.ErrBadContentLength) {
			if sip.IsKeepalive(dg.Payload) {
				t.stats.SIPKeepalives++
			} else {
				t.stats.SIPMalformed++
			}
			return
		}
		t.stats.SIPLenient++
	}
	t.stats.SIPMessages++
	method := m.CSeqMethod
	if m.Request {
		method = m.Method
	}
	switch method {
	case sip.MethodREGISTER:
		t.handleRegister(m, dg)
	case sip.MethodINVITE, sip.MethodACK, sip.MethodBYE, sip.MethodCANCEL,
		sip.MethodPRACK, sip.MethodUPDATE, sip.MethodINFO, sip.MethodREFER:
		t.handleDialog(m, dg)
	default:
		if c := t.calls[string(m.CallID)]; c != nil {
			t.record(RecordSIP, c, dg)
			t.addLadder(c.Ref, dg) // MESSAGE, NOTIFY, OPTIONS… of the call, in its ladder too
			t.addSIPPacket(c, m, dg)
			c.Messages++
			c.LastSIP, c.LastPacket = dg.Time, dg.Time
			c.sipTTL.add(dg.TTL)
			return
		}
		t.stats.SIPOther++
	}
}

// handleDialog applies an INVITE-dialog message. Must hold t.mu.
func (t *Table) handleDialog(m *sip.Message, dg *decode.Datagram) {
	c := t.calls[string(m.CallID)]
	if c == nil {
		if !m.Request || m.Method != sip.MethodINVITE || len(m.To.Tag) != 0 {
			t.stats.SIPOrphans++
			return
		}
		if len(t.calls) >= t.cfg.MaxCalls {
			t.stats.CallsDropped++
			return
		}
		c = t.newCall(m, dg)
	}
	t.record(RecordSIP, c, dg)
	c.Messages++
	c.LastSIP, c.LastPacket = dg.Time, dg.Time
	c.sipTTL.add(dg.TTL)
	t.addLadder(c.Ref, dg)
	t.addSIPPacket(c, m, dg)

	// Which side sent this message: a request from the dialog initiator
	// carries the caller's From tag; a response to it comes from the callee.
	fromCaller := string(m.From.Tag) == c.callerTag
	sender := SideCallee
	if fromCaller == m.Request {
		sender = SideCaller
	}
	if ua := &c.userAgent[sender-SideCaller]; *ua == "" && len(m.UserAgent) > 0 {
		*ua = t.intern.get(m.UserAgent)
	}

	if m.Request {
		t.handleDialogRequest(c, m, dg, sender)
	} else {
		t.handleDialogResponse(c, m, dg, sender)
	}
}

// newCall creates the call an initial INVITE starts. Must hold t.mu.
func (t *Table) newCall(m *sip.Message, dg *decode.Datagram) *Call {
	t.nextRef++
	from, to := &m.From, &m.To
	// A network-asserted identity is what the operator sees as the caller.
	caller, name := from.User, from.Display
	if id := &m.PAssertedIdentity; len(id.User) > 0 {
		caller = id.User
		if len(id.Display) > 0 {
			name = id.Display
		}
	} else if id := &m.RemotePartyID; len(id.User) > 0 {
		caller = id.User
		if len(id.Display) > 0 {
			name = id.Display
		}
	}
	called := to.User
	if len(called) == 0 {
		called = userOfURI(m.RequestURI)
	}
	// The call's own strings share one allocation: one per new call
	// instead of five, and a listing of every call finds them in one place
	// instead of five scattered ones.
	var sb strings.Builder
	sb.Grow(len(m.CallID) + len(caller) + len(called) + len(name) + len(from.Tag))
	sb.Write(m.CallID)
	sb.Write(caller)
	sb.Write(called)
	writeUnquoted(&sb, name)
	sb.Write(from.Tag)
	all := sb.String()
	cut := func(n int) string {
		s := all[:n]
		all = all[n:]
		return s
	}
	c := &Call{
		Ref:          t.nextRef,
		CallID:       cut(len(m.CallID)),
		Caller:       cut(len(caller)),
		Called:       cut(len(called)),
		CallerName:   cut(len(all) - len(from.Tag)),
		callerTag:    all,
		CallerDomain: t.intern.get(from.Host),
		CalledDomain: t.intern.get(to.Host),
		CallerUA:     t.intern.get(m.UserAgent),
		SIPCaller:    dg.Flow.Src,
		SIPCalled:    dg.Flow.Dst,
		Transport:    dg.Flow.Proto,
		VLAN:         dg.VLAN,
		SensorID:     t.feedSensorID,
		Encap:        encapOf(dg),
		InviteTime:   dg.Time,
		State:        StateCalling,
		inviteCSeq:   m.CSeq,
		inviteNs:     dg.Time.UnixNano(),
		resp100:      -1,
		respOther:    -1,
	}
	t.calls[c.CallID] = c
	t.byRef[c.Ref] = c
	t.order.add(c)
	t.stats.CallsStarted++
	t.emit(event.CallNew, c, dg.Time)
	return c
}

// encapOf returns a copy of the datagram's tunnel description, or nil when
// it came through none (most calls: the pointer keeps them small).
func encapOf(dg *decode.Datagram) *decode.Encap {
	if dg.Encap.Layers == 0 {
		return nil
	}
	e := dg.Encap
	return &e
}

// handleDialogRequest applies a request within a call's dialog (re-INVITE,
// ACK, BYE, CANCEL, ...). Must hold t.mu.
func (t *Table) handleDialogRequest(c *Call, m *sip.Message, dg *decode.Datagram, sender Side) {
	switch m.Method {
	case sip.MethodINVITE:
		if len(m.To.Tag) == 0 {
			// Initial INVITE: another hop of it, a retransmission, or a
			// new attempt after an auth challenge (higher CSeq).
			c.addLeg(dg.Flow.Src, dg.Flow.Dst)
			if m.CSeq > c.inviteCSeq {
				c.inviteCSeq = m.CSeq
				c.inviteNs = dg.Time.UnixNano()
				c.got100, c.gotOther = false, false
				if c.State.InProgress() {
					c.closeAt = time.Time{}
				}
			}
		} else {
			c.Reinvites++
		}
		t.applySDP(c, m, sender, true)
	case sip.MethodACK, sip.MethodPRACK, sip.MethodUPDATE:
		t.applySDP(c, m, sender, m.Method == sip.MethodUPDATE)
	case sip.MethodCANCEL:
		c.cancelSeen = true
		if c.HangupBy == SideNone {
			c.HangupBy = sender
		}
	case sip.MethodBYE:
		t.qualityReport(c, m, sender, dg.Time)
		if !c.byeSeen {
			c.byeSeen = true
			c.byeNs = dg.Time.UnixNano()
			c.HangupBy = sender
			c.EndTime = dg.Time
			if c.State == StateAnswered {
				c.State = StateEnded
			} else if c.State.InProgress() {
				c.State = StateCancelled
			}
			c.closeAt = dg.Time.Add(t.cfg.Linger)
		}
	}
}

// handleDialogResponse applies a response within a call's dialog. Must
// hold t.mu.
func (t *Table) handleDialogResponse(c *Call, m *sip.Message, dg *decode.Datagram, sender Side) {
	code := m.StatusCode
	if sender == SideCallee && c.CalledUA == "" {
		if len(m.Server) > 0 {
			c.CalledUA = t.intern.get(m.Server)
		} else if len(m.UserAgent) > 0 {
			c.CalledUA = t.intern.get(m.UserAgent)
		}
	}
	if m.CSeqMethod == sip.MethodBYE && code >= 200 && code < 300 {
		t.qualityReport(c, m, sender, dg.Time)
	}
	if m.CSeqMethod == sip.MethodBYE && code >= 200 && code < 300 && c.byeSeen {
		// The sniffer ignores the call's RTP after the confirmed BYE.
		for _, s := range c.Streams {
			s.RTP.EndVM(dg.Time)
		}
		if c.byeOKNs == 0 {
			c.byeOKNs = dg.Time.UnixNano()
		}
	}
	if c.progressNs == 0 && ((code >= 180 && code < 190) || (code >= 200 && code < 300 && m.CSeqMethod != sip.MethodBYE)) {
		c.progressNs = dg.Time.UnixNano()
	}
	if m.CSeqMethod != sip.MethodINVITE {
		return
	}
	if m.CSeq == c.inviteCSeq {
		c.responseTime(code, dg.Time)
	}
	initial := m.CSeq == c.inviteCSeq && c.State.InProgress() && c.AnswerTime.IsZero()
	if !initial {
		// A response to a re-INVITE: only its SDP matters.
		if code >= 200 && code < 300 {
			t.applySDP(c, m, sender, false)
		}
		return
	}
	if code < 200 {
		if (code == 180 || code == 183) && c.RingTime.IsZero() {
			c.RingTime = dg.Time
			c.State = StateRinging
			t.emit(event.CallRinging, c, dg.Time)
		}
		// The last provisional stands in for the final response until
		// one comes; 100 Trying only while nothing better was seen.
		if code > 100 || c.LastCode == 0 {
			c.LastCode, c.LastReason = code, t.intern.get(m.Reason)
		}
		t.applySDP(c, m, sender, false)
		return
	}
	c.LastCode, c.LastReason = code, t.intern.get(m.Reason)
	switch {
	case code < 300:
		c.AnswerTime = dg.Time
		c.State = StateAnswered
		c.closeAt = time.Time{}
		t.applySDP(c, m, sender, false)
		if e := t.emit(event.CallAnswered, c, dg.Time); e != nil {
			e.Code, e.Reason = code, c.LastReason
		}
	case code == 401 || code == 407:
		// An auth challenge: the caller retries with the same Call-ID and
		// a new CSeq, often only after a person typed a password, so the
		// call stays open (SetupTimeout ends it if no retry comes), as
		// VoIPmonitor sets no destroy timer on a 401/407.
	default:
		if code == 487 || c.cancelSeen {
			c.State = StateCancelled
		} else {
			c.State = StateFailed
		}
		c.EndTime = dg.Time
		c.closeAt = dg.Time.Add(t.cfg.Linger)
	}
}

// responseTime accounts a response to the current initial INVITE
// transaction in the shortest INVITE → first 100 and INVITE → first other
// response times (VoIPmonitor's response_time_100 and response_time_xxx).
func (c *Call) responseTime(code int, at time.Time) {
	first, d := &c.gotOther, &c.respOther
	if code == 100 {
		first, d = &c.got100, &c.resp100
	}
	if *first {
		return
	}
	*first = true
	if rt := time.Duration(at.UnixNano() - c.inviteNs); rt >= 0 && (*d < 0 || rt < *d) {
		*d = rt
	}
}

func (c *Call) addLeg(src, dst netip.AddrPort) {
	for _, l := range c.Legs {
		if l.Src == src && l.Dst == dst {
			return
		}
	}
	if len(c.Legs) < 8 {
		c.Legs = append(c.Legs, Leg{Src: src, Dst: dst})
	}
}

// applySDP records the media a side advertised. offer tells whether the
// message is an offer that may put the call on hold. Must hold t.mu.
func (t *Table) applySDP(c *Call, m *sip.Message, side Side, offer bool) {
	if len(m.Body) == 0 || !isSDP(m.ContentType) {
		return
	}
	s, err := sdp.Parse(m.Body)
	if err != nil {
		return
	}
	hold := false
	for i := range s.Media {
		md := &s.Media[i]
		if md.Direction == "sendonly" || md.Direction == "inactive" || (md.Addr.IsValid() && md.Addr.IsUnspecified()) {
			hold = true
		}
		if md.Port == 0 || !md.Addr.IsValid() || md.Addr.IsUnspecified() {
			continue
		}
		ep := MediaEndpoint{
			Side:      side,
			Type:      intern(md.Type),
			Addr:      netip.AddrPortFrom(md.Addr.Unmap(), md.Port),
			RTCPMux:   md.RTCPMux,
			Direction: intern(md.Direction),
			PtimeMS:   md.Ptime,
		}
		if md.RTCPPort != 0 && md.RTCPPort != md.Port {
			ep.RTCP = netip.AddrPortFrom(md.Addr.Unmap(), md.RTCPPort)
		}
		if len(md.Formats) > 0 {
			ep.Formats = make([]Format, len(md.Formats))
			for i, f := range md.Formats {
				ep.Formats[i] = Format{PT: f.PT, Name: intern(f.Name), Rate: f.Rate}
			}
		}
		t.addMedia(c, ep)
	}
	if offer && c.State == StateAnswered && c.Hold != hold {
		c.Hold = hold
		kind := event.CallUnhold
		if hold {
			kind = event.CallHold
		}
		if e := t.emit(kind, c, t.now); e != nil {
			e.Direction = direction(side)
		}
	}
}

// addMedia remembers an endpoint and indexes its addresses. Without an
// explicit a=rtcp and without rtcp-mux, RTCP is on the RTP port + 1 (RFC
// 3550 §11). Must hold t.mu.
func (t *Table) addMedia(c *Call, ep MediaEndpoint) {
	if !ep.RTCP.IsValid() && !ep.RTCPMux && ep.Addr.Port() < 65535 {
		ep.RTCP = netip.AddrPortFrom(ep.Addr.Addr(), ep.Addr.Port()+1)
	}
	i := 0
	for i < len(c.Media) && !(c.Media[i].Side == ep.Side && c.Media[i].Addr == ep.Addr) {
		i++
	}
	switch {
	case i < len(c.Media):
		c.Media[i] = ep
	case len(c.Media) >= t.cfg.MaxMediaPerCall:
		return
	default:
		c.Media = append(c.Media, ep)
	}
	t.media.set(ep.Addr, c)
	if ep.RTCP.IsValid() {
		t.media.set(ep.RTCP, c)
	}
}

// intern returns the common SDP words (media types, directions, codec
// names) as constants and copies any other: a call keeps the few bytes of
// the word, not the whole SDP line the parser cut it from.
func intern(s string) string {
	switch s {
	case "":
		return ""
	case "audio":
		return "audio"
	case "video":
		return "video"
	case "image":
		return "image"
	case "sendrecv":
		return "sendrecv"
	case "sendonly":
		return "sendonly"
	case "recvonly":
		return "recvonly"
	case "inactive":
		return "inactive"
	case "PCMU":
		return "PCMU"
	case "PCMA":
		return "PCMA"
	case "G722":
		return "G722"
	case "G729":
		return "G729"
	case "GSM":
		return "GSM"
	case "CN":
		return "CN"
	case "telephone-event":
		return "telephone-event"
	case "opus":
		return "opus"
	case "speex":
		return "speex"
	case "iLBC":
		return "iLBC"
	case "AMR":
		return "AMR"
	case "AMR-WB":
		return "AMR-WB"
	case "H264":
		return "H264"
	case "VP8":
		return "VP8"
	case "t38":
		return "t38"
	}
	return strings.Clone(s)
}

func isSDP(ct []byte) bool {
	if len(ct) == 0 {
		return true // bodies without Content-Type are SDP in practice
	}
	const want = "application/sdp"
	if len(ct) < len(want) {
		return false
	}
	return strings.EqualFold(string(ct[:len(want)]), want)
}

// userOfURI returns the user part of a SIP URI, or nil.
func userOfURI(u []byte) []byte {
	start := 0
	for i, b := range u {
		if b == ':' {
			start = i + 1
			break
		}
	}
	for i := start; i < len(u); i++ {
		switch u[i] {
		case '@':
			return u[start:i]
		case ';', '>', '?':
			return nil
		}
	}
	return nil
}

// writeUnquoted writes a display name with its quoted-pairs resolved
// (RFC 3261 §25.1: a backslash escapes the next character).
func writeUnquoted(sb *strings.Builder, b []byte) {
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		sb.WriteByte(b[i])
	}
}
