package sensor

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/command/registers"
	"github.com/voipsensor/voipsensor/internal/command/system"
)

// tableSource adapts the call table's snapshots to the command groups'
// row types. Every method takes one Snapshot (the table lock is held only
// while copying) and converts outside the lock.
type tableSource struct {
	t        *calltable.Table
	idSensor int
}

// ActiveCalls implements calls.Source: the calls in progress, as legacy
// listcalls shows them (ended calls still lingering are left out).
func (ts tableSource) ActiveCalls() []calls.Call {
	snap := ts.t.Snapshot()
	out := make([]calls.Call, 0, len(snap.Calls))
	for _, c := range snap.Calls {
		if !c.State.InProgress() {
			continue
		}
		out = append(out, newCallRow(c, ts.idSensor))
	}
	return out
}

// TotalCalls implements calls.Counter: every call in memory.
func (ts tableSource) TotalCalls() int { return ts.t.Stats().Calls }

// CallRef renders a table reference as the manager API's callreference.
func CallRef(ref uint64) string { return fmt.Sprintf("0x%x", ref) }

func newCallRow(c *calltable.CallInfo, idSensor int) calls.Call {
	row := calls.Call{
		CallRef: CallRef(c.Ref), CallID: c.CallID,
		Start: c.InviteTime, Answer: c.AnswerTime, LastPacket: c.LastPacket,
		Caller: c.Caller, Called: c.Called, CallerName: c.CallerName,
		CallerDomain: c.CallerDomain, CalledDomain: c.CalledDomain,
		CallerAgent: c.CallerUA, CalledAgent: c.CalledUA,
		SIPCallerIP: c.SIPCaller.Addr(), SIPCalledIP: c.SIPCalled.Addr(),
		SIPCallerPort: c.SIPCaller.Port(), SIPCalledPort: c.SIPCalled.Port(),
		State: c.State.String(), LastSIPCode: c.LastCode,
		CallerCodec: -1, CalledCodec: -1, VLAN: -1, SensorID: idSensor,
	}
	if c.VLAN != 0 {
		row.VLAN = int(c.VLAN)
	}
	for _, l := range c.Legs[min(1, len(c.Legs)):] {
		row.SIPProxies = append(row.SIPProxies, l.Src.Addr())
	}
	if a := c.Best(calltable.SideCaller); a != nil {
		row.A = quality(a)
		row.CallerCodec = int(a.Stats.PayloadType)
		row.RTPSrc, row.RTPDst = a.Src.Addr(), a.Dst.Addr()
	}
	if b := c.Best(calltable.SideCallee); b != nil {
		row.B = quality(b)
		row.CalledCodec = int(b.Stats.PayloadType)
		if !row.RTPSrc.IsValid() {
			row.RTPSrc, row.RTPDst = b.Dst.Addr(), b.Src.Addr()
		}
	}
	for _, s := range c.Streams {
		st := &s.Stats
		row.Streams = append(row.Streams, calls.Stream{
			SrcIP: s.Src.Addr(), SrcPort: s.Src.Port(), DstIP: s.Dst.Addr(), DstPort: s.Dst.Port(),
			Start: st.First.Unix(), Last: st.Last.Unix(), SSRC: s.SSRC, Codec: int(st.PayloadType),
			Received: uint64(st.Received), Lost: uint64(st.Lost),
			JitterAvg: st.JitterMeanMS, JitterMax: st.JitterMaxMS,
		})
	}
	return row
}

func quality(s *calltable.StreamInfo) calls.Quality {
	st := &s.Stats
	q := calls.Quality{
		Present: true, Received: uint64(st.Received), Lost: uint64(st.Lost),
		Jitter: st.JitterMeanMS, JitterAvg: st.JitterMeanMS, JitterMax: st.JitterMaxMS,
		MOSF1: st.MOSF1, MOSF2: st.MOSF2, MOSAD: st.MOSAdapt,
		MOSF1Avg: st.MOSF1, MOSF2Avg: st.MOSF2, MOSADAvg: st.MOSAdapt,
		MOSF1Min: st.MOSF1Min, MOSF2Min: st.MOSF2Min, MOSADMin: st.MOSAdaptMin,
	}
	if den := st.Received + st.Lost; den > 0 {
		q.LossPct = 100 * float64(st.Lost) / float64(den)
	}
	return q
}

// Registrations implements registers.Source.
func (ts tableSource) Registrations() []registers.Registration {
	snap := ts.t.Snapshot()
	out := make([]registers.Registration, 0, len(snap.Registrations))
	for _, r := range snap.Registrations {
		contactNum, contactDomain := splitURI(r.Contact)
		out = append(out, registers.Registration{
			ID: r.ID, SensorID: ts.idSensor, CallDate: r.StateTime,
			SIPCallerIP: r.Src.Addr(), SIPCalledIP: r.Dst.Addr(),
			SIPCallerPort: r.Src.Port(), SIPCalledPort: r.Dst.Port(),
			FromNum: r.User, FromName: r.FromName, FromDomain: r.Domain,
			ToNum: r.User, ToDomain: r.Domain,
			ContactNum: contactNum, ContactDomain: contactDomain,
			DigestUsername: r.AuthUser, Expires: r.Expires, ExpiresAt: r.ExpiresAt,
			State: registers.State(r.State), UA: r.UA,
			RRDAvg: int(r.RRD / time.Millisecond), VLAN: -1,
		})
	}
	return out
}

// splitURI returns the user and host of "sip:user@host:port;params".
func splitURI(u string) (user, host string) {
	if i := strings.IndexByte(u, ':'); i >= 0 && i < 5 {
		u = u[i+1:]
	}
	if i := strings.IndexAny(u, ";?>"); i >= 0 {
		u = u[:i]
	}
	user, host, ok := strings.Cut(u, "@")
	if !ok {
		return "", user
	}
	if h, _, err := netSplitHostPort(host); err == nil {
		host = h
	}
	return user, host
}

func netSplitHostPort(hp string) (string, string, error) {
	if ap, err := netip.ParseAddrPort(hp); err == nil {
		return ap.Addr().String(), fmt.Sprint(ap.Port()), nil
	}
	if i := strings.LastIndexByte(hp, ':'); i > 0 && !strings.Contains(hp[:i], ":") {
		return hp[:i], hp[i+1:], nil
	}
	return hp, "", fmt.Errorf("no port")
}

// statsSource implements system.Stats with per-second rates computed from
// the sensor's counters between two snapshots.
type statsSource struct {
	s *Sensor

	mu   sync.Mutex
	last struct {
		at                        time.Time
		frames, sip, rtp, started uint64
		ended, regs               uint64
	}
}

// Snapshot implements system.Stats.
func (ss *statsSource) Snapshot() system.SensorStats {
	st := ss.s.Status()
	now := time.Now()
	out := system.SensorStats{
		Start:         ss.s.start,
		ActiveCalls:   st.Table.Calls,
		CallsInMemory: st.Table.Calls,
		Registrations: st.Table.Registrations,
		CDRQueue:      st.CDR.Pending,
		Packets:       st.Frames,
		Drops:         st.Capture.KernelDropped,
		InterfaceDrops: []system.InterfaceDrops{
			{Name: ss.s.sourceName(), Drops: st.Capture.KernelDropped},
		},
		CaptureCPU: ss.s.cpu.percent(ss.s.captureTID.Load()),
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if dt := now.Sub(ss.last.at).Seconds(); !ss.last.at.IsZero() && dt > 0 {
		rate := func(cur, prev uint64) float64 { return float64(cur-prev) / dt }
		out.PacketsPerSec = rate(st.Frames, ss.last.frames)
		out.SIPPerSec = rate(st.Table.SIPMessages, ss.last.sip)
		out.RTPPerSec = rate(st.Table.RTPPackets, ss.last.rtp)
		out.NewCallsPerSec = rate(st.Table.CallsStarted, ss.last.started)
		out.ClosedCallsPerSec = rate(st.Table.CallsEnded, ss.last.ended)
		out.MbitPerSec = 0
	}
	ss.last.at = now
	ss.last.frames, ss.last.sip, ss.last.rtp = st.Frames, st.Table.SIPMessages, st.Table.RTPPackets
	ss.last.started, ss.last.ended = st.Table.CallsStarted, st.Table.CallsEnded
	return out
}
