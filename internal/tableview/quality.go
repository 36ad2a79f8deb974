package tableview

import (
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// CallQuality implements calls.QualitySource: the call with reference ref
// ("0x…" hex, as listcalls shows it), in progress or ended and still in
// the table, with its streams' quality and MOS intervals.
func (ts Source) CallQuality(ref string) (calls.CallQuality, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(ref)), "0x"), 16, 64)
	if err != nil {
		return calls.CallQuality{}, false
	}
	c, ok := ts.t.Call(n)
	if !ok {
		return calls.CallQuality{}, false
	}
	q := calls.CallQuality{CallRef: CallRef(c.Ref), CallID: c.CallID, State: c.State.String(), Start: c.InviteTime,
		Streams: make([]calls.StreamQuality, len(c.Streams))}
	if !c.AnswerTime.IsZero() {
		a := c.AnswerTime
		q.Answer = &a
	}
	for i := range c.Streams {
		q.Streams[i] = streamQuality(&c.Streams[i])
	}
	return q, true
}

// streamQuality converts one stream: the CDR's figures for a voice
// stream (NewRecord reads the same VMStats), none for other kinds.
func streamQuality(s *calltable.StreamInfo) calls.StreamQuality {
	st := &s.Stats
	out := calls.StreamQuality{
		Kind: s.Kind.String(), Src: s.Src, Dst: s.Dst, SSRC: s.SSRC,
		PayloadType: int(st.PayloadType), Codec: st.Codec, First: st.First, Last: st.Last,
		Received: uint64(st.Received), Lost: uint64(st.Lost), DTMFPackets: st.Events, CNPackets: st.CN,
		JitterMS: st.VM.Live.JitterMS, JitterAvgMS: st.VM.AvgJitterMS, JitterMaxMS: st.VM.MaxJitterMS,
		LossLastPct: st.VM.Live.LossLastPct, IntervalsClosed: s.IntervalsClosed,
	}
	if s.Side != calltable.SideNone {
		out.Side = s.Side.String()
	}
	if s.Kind == calltable.KindDTMF {
		out.Codec = "telephone-event"
	}
	if den := st.Received + st.Lost; den > 0 {
		out.LossPct = 100 * float64(st.Lost) / float64(den)
	}
	if s.Kind != calltable.KindVoice {
		out.Intervals = []calls.Interval{}
		return out
	}
	vm := &st.VM
	if vm.Intervals > 0 {
		out.MOS = &calls.MOS{F1: mos10(vm.MOSF1Mult10), F2: mos10(vm.MOSF2Mult10), Adapt: mos10(vm.MOSAdaptMult10)}
		out.MOSMin = &calls.MOS{F1: mos10(vm.MOSF1MinMult10), F2: mos10(vm.MOSF2MinMult10), Adapt: mos10(vm.MOSAdaptMinMult10)}
		l := vm.Live.MOSMult10
		out.MOSLast = &calls.MOS{F1: mos10(l[0]), F2: mos10(l[1]), Adapt: mos10(l[2])}
	}
	out.Intervals = make([]calls.Interval, len(s.Intervals))
	for i, iv := range s.Intervals {
		out.Intervals[i] = interval(st.First, iv)
	}
	return out
}

func mos10(mult10 int) float64 { return float64(mult10) / 10 }

func interval(first time.Time, iv rtp.Interval) calls.Interval {
	m := iv.MOSMult10
	return calls.Interval{End: first.Add(iv.End), MOS: calls.MOS{F1: mos10(m[0]), F2: mos10(m[1]), Adapt: mos10(m[2])},
		LossPct: iv.LossPct, JitterAvgMS: iv.JitterAvgMS, JitterMaxMS: iv.JitterMaxMS}
}

var _ calls.QualitySource = Source{}
