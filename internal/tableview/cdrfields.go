package tableview

import (
	"strings"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// The functions below add to NewRecord and NewRegistration the fields
// that only VoIPmonitor's own schema (cdr_schema = voipmonitor) stores.

// addSnifferFields fills the fields of r that serve VoIPmonitor's schema
// from the call c that r was projected from.
func addSnifferFields(r *cdr.Record, c *calltable.CallInfo) {
	r.LastPacketAt = c.LastPacket
	r.LastSIPAt = c.LastSIP
	r.AnsweredAt = c.AnswerTime
	r.ProgressAt = c.ProgressTime
	r.ByeAt, r.ByeOKAt = c.ByeTime, c.ByeOKTime
	r.Response100, r.ResponseOther = c.Response100, c.ResponseOther
	r.Ending = ending(c.EndCause)
	r.Transport = c.Transport.String()
	r.VLAN = vlan(c.VLAN)
	r.SIPTTL = ttl(c.SIPTTL)
	r.CallerUserAgent, r.CalleeUserAgent = c.CallerUserAgent, c.CalleeUserAgent
	if c.RTCPSeen {
		r.Flags |= cdr.FlagRTCP
	}
	for i := range c.Media {
		m := &c.Media[i]
		switch m.Type {
		case "audio":
			r.Flags |= cdr.FlagSDPAudio
		case "image":
			r.Flags |= cdr.FlagSDPImage
		case "video":
			r.Flags |= cdr.FlagSDPVideo
		}
		for _, f := range m.Formats {
			if !strings.EqualFold(f.Name, "telephone-event") {
				continue
			}
			if m.Side == calltable.SideCaller {
				r.Flags |= cdr.FlagEventsOffered
			} else if m.Side == calltable.SideCallee {
				r.Flags |= cdr.FlagEventsAnswered
			}
		}
	}

	r.Streams = make([]cdr.Stream, len(c.Streams))
	for i := range c.Streams {
		s := &c.Streams[i]
		st := &s.Stats
		out := &r.Streams[i]
		out.Saddr, out.Daddr, out.SSRC = s.Src, s.Dst, s.SSRC
		out.Payload, out.Codec = int(st.PayloadType), st.Codec
		out.Received, out.Lost, out.Duplicates, out.Reordered = st.Received, st.Lost, st.Duplicates, st.Reordered
		addStreamFields(out, c, i)
		if st.Duplicates > 0 {
			r.Flags |= cdr.FlagRTPDuplicates
		}
	}
	// A and B are the streams calltable.CallInfo.Best chose.
	for _, ab := range []struct {
		out  *cdr.Stream
		side calltable.Side
	}{{r.A, calltable.SideCaller}, {r.B, calltable.SideCallee}} {
		if ab.out == nil {
			continue
		}
		if best := c.Best(ab.side); best != nil {
			for i := range c.Streams {
				if &c.Streams[i] == best {
					addStreamFields(ab.out, c, i)
				}
			}
		}
	}
}

// addStreamFields fills the fields of out that serve VoIPmonitor's schema
// from stream i of c.
func addStreamFields(out *cdr.Stream, c *calltable.CallInfo, i int) {
	s := &c.Streams[i]
	st := &s.Stats
	out.Index = i
	out.FromCaller = s.Side == calltable.SideCaller
	out.First, out.Last = st.First, st.Last
	out.Events = int64(st.Events)
	out.PtimeMS = st.PtimeMS
	for j := range c.Media {
		if c.Media[j].Addr == s.Src {
			out.SDPPtimeMS = c.Media[j].PtimeMS
			break
		}
	}
	out.MaxJitterMS = st.VM.MaxJitterMS
	for j, n := range st.Delay {
		out.Delay[j] = int64(n)
	}
	out.MOSMeasured = st.VM.MOSF1Mult10 >= 0 || st.VM.MOSF2Mult10 >= 0 || st.VM.MOSAdaptMult10 >= 0
	out.TTL = ttl(s.TTL)
	rt := &st.RTCP
	out.RTCPReports, out.RTCPFracLostReports = int(rt.Reports), int(rt.FractionLostReports)
	out.RTCPJitterMaxMS, out.RTCPJitterAvgMS = rt.JitterMaxMS, rt.JitterAvgMS
	out.RTCPRTTCount = int(rt.RTTCount)
	out.RTCPRTTMaxMS, out.RTCPRTTAvgMS = rt.RTTMaxMS, rt.RTTAvgMS
}

// addSnifferRegFields fills the fields of g that serve VoIPmonitor's
// schema from the registration r.
func addSnifferRegFields(g *cdr.Registration, r *calltable.RegistrationInfo) {
	g.FromUser = r.FromUser
	g.AuthUser = r.AuthUser
	g.VLAN = vlan(r.VLAN)
}

func ending(e calltable.EndCause) cdr.Ending {
	switch e {
	case calltable.EndShutdown:
		return cdr.EndingShutdown
	case calltable.EndAbsoluteTimeout:
		return cdr.EndingAbsoluteTimeout
	case calltable.EndRTPTimeout:
		return cdr.EndingRTPTimeout
	case calltable.EndSetupTimeout:
		return cdr.EndingSetupTimeout
	}
	return cdr.EndingNormal
}

func vlan(v uint16) int {
	if v == decode.NoVLAN {
		return -1
	}
	return int(v)
}

func ttl(t calltable.TTLStats) cdr.TTL {
	return cdr.TTL{Min: int(t.Min), Max: int(t.Max), Count: int64(t.Count), Sum: int64(t.Sum)}
}
