package tableview

import (
	"math"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// NewRecord turns a finished call into its CDR, with VoIPmonitor's column
// meanings: a = the caller's best stream, b = the callee's. idSensor is the
// sensor's; a call collected from a HEP agent with its own id_sensor
// (CallInfo.SensorID) is recorded with that one.
func NewRecord(c *calltable.CallInfo, idSensor int) cdr.Record {
	if c.SensorID > 0 {
		idSensor = int(c.SensorID)
	}
	r := cdr.Record{
		IDSensor:        idSensor,
		CallID:          c.CallID,
		CallDate:        c.InviteTime,
		CallEnd:         c.EndTime,
		Duration:        c.Duration(),
		ConnectDuration: c.ConnectDuration(),
		Caller:          c.Caller, CallerDomain: c.CallerDomain, CallerName: c.CallerName,
		Called: c.Called, CalledDomain: c.CalledDomain,
		CallerUA: c.CallerUA, CalledUA: c.CalledUA,
		SIPCallerAddr: c.SIPCaller, SIPCalledAddr: c.SIPCalled,
		LastSIPCode: c.LastCode, LastSIPReason: c.LastReason,
		WhoHanged: hangup(c.HangupBy),
		State:     recordState(c),
	}
	if r.CallEnd.IsZero() {
		r.CallEnd = c.LastPacket
	}
	if !c.RingTime.IsZero() {
		r.ProgressTime = c.RingTime.Sub(c.InviteTime)
		final := c.AnswerTime
		if final.IsZero() {
			final = c.EndTime
		}
		if final.After(c.RingTime) {
			r.RingingTime = final.Sub(c.RingTime)
		}
	}
	if s := c.Best(calltable.SideCaller); s != nil {
		r.A = newStream(s)
	}
	if s := c.Best(calltable.SideCallee); s != nil {
		r.B = newStream(s)
	}
	addSnifferFields(&r, c)
	return r
}

func hangup(s calltable.Side) cdr.Hangup {
	switch s {
	case calltable.SideCaller:
		return cdr.HangupCaller
	case calltable.SideCallee:
		return cdr.HangupCallee
	}
	return cdr.HangupNone
}

func recordState(c *calltable.CallInfo) cdr.State {
	if !c.AnswerTime.IsZero() {
		return cdr.StateAnswered
	}
	switch c.State {
	case calltable.StateCancelled:
		return cdr.StateCancelled
	case calltable.StateFailed:
		switch c.LastCode {
		case 486, 600:
			return cdr.StateBusy
		case 408, 480, 487:
			return cdr.StateNoAnswer
		}
	case calltable.StateTimeout, calltable.StateRinging:
		if !c.RingTime.IsZero() {
			return cdr.StateNoAnswer
		}
	}
	return cdr.StateFailed
}

func newStream(s *calltable.StreamInfo) *cdr.Stream {
	st := &s.Stats
	out := &cdr.Stream{
		Saddr: s.Src, Daddr: s.Dst, SSRC: s.SSRC,
		Payload: int(st.PayloadType), Codec: st.Codec,
		Received: st.Received, Lost: st.Lost, Duplicates: st.Duplicates, Reordered: st.Reordered,
		AvgJitterMult10:   st.VM.AvgJitterMult10,
		MaxJitter:         st.VM.MaxJitter,
		MaxDelta:          int(math.Round(st.MaxDeltaMS)),
		MOSF1Mult10:       vmMOS(st.VM.MOSF1Mult10),
		MOSF2Mult10:       vmMOS(st.VM.MOSF2Mult10),
		MOSAdaptMult10:    vmMOS(st.VM.MOSAdaptMult10),
		MOSF1MinMult10:    st.VM.MOSF1MinMult10,
		MOSF2MinMult10:    st.VM.MOSF2MinMult10,
		MOSAdaptMinMult10: st.VM.MOSAdaptMinMult10,
	}
	if den := st.Received + st.Lost; den > 0 {
		out.LossPercMult1000 = int(math.Round(float64(st.Lost) / float64(den) * 100 * 1000))
	}
	for i, n := range st.LossBursts {
		out.SL[i] = int64(n)
	}
	addRTCP(out, &st.RTCP)
	return out
}

func addRTCP(out *cdr.Stream, r *rtp.RTCPStats) {
	if r.Reports == 0 {
		return
	}
	out.RTCPLoss = int64(r.CumulativeLost)
	out.RTCPMaxFR = int(r.FractionLostMax)
	out.RTCPAvgFRMult10 = int(math.Round(r.FractionLostAvg * 10))
	out.RTCPMaxJitter = int(math.Ceil(r.JitterMaxMS))
	out.RTCPAvgJitterMult10 = int(math.Ceil(r.JitterAvgMS * 10))
	if r.RTTCount > 0 {
		out.RTCPAvgRTDMult10 = int(math.Round(r.RTTAvgMS * 10))
		out.RTCPMaxRTDMult10 = int(math.Round(r.RTTMaxMS * 10))
	}
}

// vmMOS is a sniffer MOS×10 for the CDR. Where the sniffer stores NULL (no
// 10 s interval closed, -1) the record keeps 45 as before: its columns have
// no NULL yet.
func vmMOS(mult10 int) int {
	if mult10 < 0 {
		return 45
	}
	return mult10
}

// NewRegistration turns a registration state change into its stored form.
func NewRegistration(r *calltable.RegistrationInfo, idSensor int) cdr.Registration {
	g := cdr.Registration{
		IDSensor: idSensor, Time: r.StateTime,
		User: r.User, Domain: r.Domain, Contact: r.Contact,
		State:   r.State,
		Expires: r.Expires, Attempts: r.Attempts, UserAgent: r.UA,
		Src: r.Src, Dst: r.Dst, RRD: r.RRD,
	}
	addSnifferRegFields(&g, r)
	return g
}
