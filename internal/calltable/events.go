package calltable

import (
	"encoding/binary"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/event"
)

// emit queues an event about c for publication after the lock is released.
// Must hold t.mu.
func (t *Table) emit(kind event.Kind, c *Call, at time.Time) *event.Event {
	if t.cfg.Events == nil {
		return nil
	}
	e := &event.Event{
		Kind: kind, Time: at,
		CallRef: c.Ref, CallID: c.CallID,
		Caller: c.Caller, CallerName: c.CallerName, Called: c.Called,
		SIPCaller: c.SIPCaller, SIPCalled: c.SIPCalled, Start: c.InviteTime,
	}
	t.outEv = append(t.outEv, e)
	return e
}

// Event builds an event of the given kind from a call copy, with both
// directions' quality filled in: CallEnd and Quality events are made this
// way.
func (ci *CallInfo) Event(kind event.Kind, at time.Time) *event.Event {
	e := &event.Event{
		Kind: kind, Time: at,
		CallRef: ci.Ref, CallID: ci.CallID,
		Caller: ci.Caller, CallerName: ci.CallerName, Called: ci.Called,
		SIPCaller: ci.SIPCaller, SIPCalled: ci.SIPCalled, Start: ci.InviteTime,
		Code: ci.LastCode, Reason: ci.LastReason, State: ci.State.String(), HangupBy: ci.HangupBy.String(),
		Duration: ci.Duration(), ConnectDuration: ci.ConnectDuration(),
	}
	for i, side := range [2]Side{SideCaller, SideCallee} {
		s := ci.Best(side)
		if s == nil {
			continue
		}
		st := &s.Stats
		q := event.StreamQuality{
			Present: true, Codec: st.Codec, SSRC: s.SSRC, Src: s.Src, Dst: s.Dst,
			Received: st.Received, Lost: st.Lost,
			JitterMS: st.JitterMeanMS, JitterMax: st.JitterMaxMS, MOS: st.MOSF2,
			RTTMS: st.RTCP.RTTAvgMS, RTCPLost: int64(st.RTCP.CumulativeLost), RTCPJitter: st.RTCP.JitterAvgMS,
		}
		if den := st.Received + st.Lost; den > 0 {
			q.LossPct = 100 * float64(st.Lost) / float64(den)
		}
		e.Streams[i] = q
	}
	return e
}

// dtmfDigits maps RFC 4733 §3.2 event codes 0–15 to their characters.
const dtmfDigits = "0123456789*#ABCD"

// handleEvent turns telephone-event packets into DTMFBegin/DTMFEnd events.
// An event is identified by its RTP timestamp (RFC 4733 §2.5.1.2); its end
// packet is sent three times and reported once. Must hold t.mu.
func (t *Table) handleEvent(c *Call, s *Stream, dg *decode.Datagram, ts uint32, payload []byte) {
	if t.cfg.Events == nil || len(payload) < 4 {
		return
	}
	code, end := payload[0], payload[1]&0x80 != 0
	dur := binary.BigEndian.Uint16(payload[2:4])
	digit := byte('?')
	if int(code) < len(dtmfDigits) {
		digit = dtmfDigits[code]
	}
	if !s.dtmfSeen || s.dtmfTS != ts {
		s.dtmfSeen, s.dtmfTS, s.dtmfEnded = true, ts, false
		e := t.emit(event.DTMFBegin, c, dg.Time)
		e.Direction, e.Digit = direction(s.Side), digit
	}
	if end && !s.dtmfEnded {
		s.dtmfEnded = true
		e := t.emit(event.DTMFEnd, c, dg.Time)
		e.Direction, e.Digit = direction(s.Side), digit
		rate := uint32(8000)
		if f, ok := c.format(s.eventPT); ok && f.Rate > 0 {
			rate = f.Rate
		}
		e.DTMFDur = time.Duration(dur) * time.Second / time.Duration(rate)
	}
}

func direction(s Side) string {
	switch s {
	case SideCaller:
		return "caller_to_callee"
	case SideCallee:
		return "callee_to_caller"
	}
	return "unknown"
}
