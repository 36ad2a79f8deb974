package tableview

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/voipsensor/voipsensor/internal/calltable"
	micmd "github.com/voipsensor/voipsensor/internal/command/mi"
)

// MIStats presents the sensor's counters to the MI statistics commands
// (micmd.StatSource), with the OpenSIPS names where the meaning matches
// and voipsensor groups for the rest.
type MIStats struct {
	Table    *calltable.Table
	Counters func() Counters
}

// Statistics implements micmd.StatSource.
func (m MIStats) Statistics() []micmd.Statistic {
	st := m.Counters()
	snap := m.Table.Snapshot()
	var active, early, streams int64
	for _, c := range snap.Calls {
		if !c.State.InProgress() {
			continue
		}
		active++
		if c.State == calltable.StateCalling || c.State == calltable.StateRinging {
			early++
		}
		streams += int64(len(c.Streams))
	}
	aors := map[string]bool{}
	for _, r := range snap.Registrations {
		aors[strings.ToLower(r.User+"@"+r.Domain)] = true
	}
	inc := func(g, n string, v uint64) micmd.Statistic {
		return micmd.Statistic{Group: g, Name: n, Value: int64(v), Incremental: true}
	}
	gauge := func(g, n string, v int64) micmd.Statistic {
		return micmd.Statistic{Group: g, Name: n, Value: v}
	}
	t, d, w := st.Table, st.Decode, st.CDR
	return []micmd.Statistic{
		gauge("dialog", "active_dialogs", active),
		gauge("dialog", "early_dialogs", early),
		inc("dialog", "processed_dialogs", t.CallsStarted),
		gauge("usrloc", "registered_users", int64(len(aors))),
		gauge("usrloc", "location-users", int64(len(aors))),
		gauge("usrloc", "location-contacts", int64(len(snap.Registrations))),
		inc("core", "bad_msg_hdr", t.SIPMalformed),
		inc("sip", "messages", t.SIPMessages),
		inc("sip", "malformed", t.SIPMalformed),
		inc("sip", "orphans", t.SIPOrphans),
		inc("sip", "other", t.SIPOther),
		inc("calls", "started", t.CallsStarted),
		inc("calls", "ended", t.CallsEnded),
		inc("calls", "dropped", t.CallsDropped),
		gauge("calls", "in_memory", int64(t.Calls)),
		inc("capture", "frames", st.Frames),
		inc("capture", "bytes", st.Bytes),
		inc("capture", "drops", st.Capture.KernelDropped),
		inc("capture", "if_drops", st.Capture.IfDropped),
		inc("capture", "datagrams", d.Datagrams),
		inc("capture", "malformed", d.Malformed),
		inc("capture", "unsupported", d.Unsupported),
		inc("capture", "truncated", d.Truncated),
		inc("capture", "fragments", d.Fragments),
		inc("capture", "reassembled", d.Reassembled),
		inc("capture", "fragments_dropped", d.FragmentsDropped),
		inc("capture", "tcp_messages", d.TCPMessages),
		inc("capture", "tcp_dropped", d.TCPDropped),
		gauge("rtp", "active_streams", streams),
		inc("rtp", "packets", t.RTPPackets),
		inc("rtp", "malformed", t.RTPMalformed),
		inc("rtp", "rtcp_packets", t.RTCPPackets),
		inc("rtp", "rtcp_malformed", t.RTCPMalformed),
		inc("rtp", "unmatched", t.Unmatched),
		inc("rtp", "streams_dropped", t.StreamsDropped),
		inc("storage", "cdr_queued", w.Queued),
		inc("storage", "cdr_written", w.Written),
		inc("storage", "cdr_spilled", w.Spilled),
		inc("storage", "cdr_replayed", w.Replayed),
		inc("storage", "cdr_retried", w.Retried),
		inc("storage", "cdr_failed", w.Failed),
		gauge("storage", "cdr_pending", int64(w.Pending)),
		gauge("storage", "spill_files", int64(w.SpillFiles)),
		gauge("mem", "heap_bytes", int64(st.HeapByte)),
		gauge("mem", "goroutines", int64(runtime.NumGoroutine())),
	}
}

// MIDialogs presents call table snapshots to the MI dialog and usrloc
// commands (micmd.DialogSource and micmd.ContactSource).
type MIDialogs struct{ T *calltable.Table }

func dlgState(s calltable.State) int {
	switch s {
	case calltable.StateCalling:
		return micmd.DlgUnconfirmed
	case calltable.StateRinging:
		return micmd.DlgEarly
	case calltable.StateAnswered:
		return micmd.DlgConfirmed
	}
	return micmd.DlgDeleted
}

func sipURI(user, domain string) string {
	if user == "" {
		return "sip:" + domain
	}
	return "sip:" + user + "@" + domain
}

// Dialogs implements micmd.DialogSource: calls in progress.
func (m MIDialogs) Dialogs() []micmd.Dialog {
	snap := m.T.Snapshot()
	out := make([]micmd.Dialog, 0, len(snap.Calls))
	for _, c := range snap.Calls {
		if !c.State.InProgress() {
			continue
		}
		proto := strings.ToLower(c.Transport.String())
		d := micmd.Dialog{
			ID: CallRef(c.Ref), State: dlgState(c.State),
			TimeStart: c.InviteTime.Unix(), DateStart: c.InviteTime.Format("2006-01-02 15:04:05"),
			CallID: c.CallID, FromURI: sipURI(c.Caller, c.CallerDomain), ToURI: sipURI(c.Called, c.CalledDomain),
			SensorState: c.State.String(), LastCode: c.LastCode,
			CallerAddr: proto + ":" + c.SIPCaller.String(), CalleeAddr: proto + ":" + c.SIPCalled.String(),
			CallerUA: c.CallerUA, CalleeUA: c.CalledUA,
			Context: &micmd.DialogContext{Streams: []micmd.DialogStream{}},
		}
		for _, s := range c.Streams {
			d.Context.Streams = append(d.Context.Streams, micmd.DialogStream{
				SSRC: fmt.Sprintf("0x%08x", s.SSRC), Src: s.Src.String(), Dst: s.Dst.String(),
				Packets: uint64(s.Stats.Received), Lost: uint64(s.Stats.Lost),
				JitterMS: s.Stats.JitterMaxMS, MOS: s.Stats.MOSF1,
			})
		}
		out = append(out, d)
	}
	return out
}

// AORs implements micmd.ContactSource: registrations grouped by
// user@domain, in first-seen order.
func (m MIDialogs) AORs() []micmd.AOR {
	snap := m.T.Snapshot()
	idx := map[string]int{}
	var out []micmd.AOR
	for _, r := range snap.Registrations {
		key := r.User + "@" + r.Domain
		i, ok := idx[strings.ToLower(key)]
		if !ok {
			i = len(out)
			idx[strings.ToLower(key)] = i
			out = append(out, micmd.AOR{AOR: key})
		}
		var exp any = "expired"
		if left := r.ExpiresAt.Sub(snap.Time); left > 0 {
			exp = int64(left.Seconds())
		}
		out[i].Contacts = append(out[i].Contacts, micmd.Contact{
			Contact: r.Contact, ContactID: strconv.FormatUint(r.ID, 10), Expires: exp,
			UserAgent: r.UA, Received: "udp:" + r.Src.String(), Socket: "udp:" + r.Dst.String(),
			SensorState: r.State.String(),
		})
	}
	return out
}
