package calls

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Call is a copy of one active call, as listcalls shows it. The sensor
// builds these from a call-table Snapshot; the slice is owned by the
// command after [Source.ActiveCalls] returns.
type Call struct {
	// CallRef is an opaque hex id, stable for the call's lifetime
	// (rendered as "0x"+CallRef unless it already starts with 0x).
	CallRef string
	CallID  string
	// Start is the first packet (calldate), Answer the 200 OK (zero if not
	// answered), LastPacket the newest packet of the call.
	Start, Answer, LastPacket time.Time

	Caller, Called, CallerName   string
	CallerDomain, CalledDomain   string
	CallerAgent, CalledAgent     string // User-Agent of each side
	SIPCallerIP, SIPCalledIP     netip.Addr
	SIPCallerPort, SIPCalledPort uint16
	// CallerEncap and CalledEncap are the outer addresses of the tunnel
	// the first INVITE came through (invalid without one), EncapProto
	// that tunnel's IP protocol.
	CallerEncap, CalledEncap netip.Addr
	EncapProto               uint8
	// SIPProxies are the addresses of the proxies the INVITE passed,
	// each once, in address order.
	SIPProxies               []netip.Addr
	State                    string
	LastSIPCode              int
	RTPSrc, RTPDst           netip.Addr
	CallerCodec, CalledCodec int // RTP payload type, -1 unknown (the manager sends the sniffer's 0 for calledcodec)
	VLAN                     int // -1 none
	SensorID                 int // <= 0: unset
	A, B                     Quality
	Streams                  []Stream
}

// Quality is the voice quality of one direction: A is caller→called
// (listcalls src_*), B is called→caller (dst_*). The figures are the
// sniffer's own while the call runs (its RTP::jitter, stats.avgjitter,
// last_interval_mos… of the stream emulation in package rtp), except the
// counts, which are exact.
type Quality struct {
	// Present is false when no RTP stream was seen in this direction.
	Present        bool
	Received, Lost uint64
	// LossPct is the loss since the start, LossLast10Sec that of the last
	// closed 10 s MOS interval (0 before one closes), in percent.
	LossPct, LossLast10Sec float64
	// Jitter is the current jitter, JitterAvg its running average and
	// JitterMax its maximum, in ms.
	Jitter, JitterAvg, JitterMax float64
	// MOS values on the 1–5 scale for the F1, F2 and adaptive
	// jitter-buffer models: of the last closed 10 s interval (4.5 before
	// one closes), their time-weighted average (0 before one closes) and
	// their minimum (4.5 before one closes).
	MOSF1, MOSF2, MOSAD          float64
	MOSF1Avg, MOSF2Avg, MOSADAvg float64
	MOSF1Min, MOSF2Min, MOSADMin float64
}

// NoEncapProto is the *_encaps_prot of a call without a tunnel.
const NoEncapProto = 255

// SIPPacketsDisabled is active_call_info's sip_packets when the SIP
// packets of calls in progress are not offered, in the sniffer's words
// (its option active_call_info = no, the default).
const SIPPacketsDisabled = "active call info is disabled (option active_call_info)"

// SIPPacket is one SIP packet of a call, for active_call_info's
// sip_packets with the sniffer's active_call_info = yes (its
// sSipPacketInfo).
type SIPPacket struct {
	Time       int64      `json:"time"` // Unix µs
	SrcIP      netip.Addr `json:"src_ip"`
	SrcPort    uint16     `json:"src_port"`
	DstIP      netip.Addr `json:"dst_ip"`
	DstPort    uint16     `json:"dst_port"`
	Line       string     `json:"sip"`        // the message's first line
	SIPLen     int        `json:"sip_len"`    // the SIP message's length, bytes
	PacketLen  int        `json:"packet_len"` // the wire length of the frame that carried it
	CSeqMethod int        `json:"cseq_m"`     // the CSeq method as the sniffer numbers it (INVITE 1, BYE 2, …, 0 unknown)
	CSeq       uint32     `json:"cseq_n"`     // the CSeq number
}

// PacketSource is optionally implemented by a [Source] that keeps the SIP
// packets of calls in progress (the sniffer's option active_call_info).
// SIPPackets returns those of the call with reference callRef (as in
// [Call].CallRef), oldest first, as a copy taken under the table lock; ok
// is false when packets are not kept, and active_call_info then answers
// with [SIPPacketsDisabled]. A call that left the table in the meantime
// has none.
type PacketSource interface {
	SIPPackets(callRef string) (p []SIPPacket, ok bool)
}

// Stream is one RTP stream of a call, for active_call_info.
type Stream struct {
	SrcIP     netip.Addr `json:"src_ip"`
	SrcPort   uint16     `json:"src_port"`
	DstIP     netip.Addr `json:"dst_ip"`
	DstPort   uint16     `json:"dst_port"`
	Start     int64      `json:"time"`      // first packet, Unix µs
	Last      int64      `json:"time_last"` // last packet, Unix µs
	SSRC      uint32     `json:"ssrc"`
	Codec     int        `json:"codec"`
	Received  uint64     `json:"received"`
	Lost      uint64     `json:"lost"`
	JitterAvg float64    `json:"jitter_avg"` // the sniffer's avgjitter, ms
	JitterMax float64    `json:"jitter_max"` // the sniffer's maxjitter, ms
}

// Source provides the active calls. ActiveCalls returns a copy taken
// under the table lock; the caller may keep and modify it. Streams is
// filled only when withStreams is set: listcalls does not show them, and
// over 100,000 calls copying them is a fifth of the copy. Calls that
// legacy listcalls excludes (REGISTER/MESSAGE dialogs, answered calls with
// BYE seen, calls past their timers) should already be left out.
type Source interface {
	ActiveCalls(withStreams bool) []Call
}

// Recycler is optionally implemented by a [Source] whose ActiveCalls
// reuses buffers: Recycle hands back a slice ActiveCalls returned, once
// the command (or the transport rendering its table) reads it no more.
// The slice, and the Streams and SIPProxies slices of its calls, must not
// be used after Recycle.
type Recycler interface {
	Recycle([]Call)
}

// Counter is optionally implemented by a [Source] to report all Call
// objects in memory, including ended ones waiting to be stored
// (totalcalls). Without it totalcalls counts ActiveCalls.
type Counter interface {
	TotalCalls() int
}

// Deps are the data sources of the calls group.
type Deps struct {
	Source Source
	// SensorID is reported in listcalls totals; <= 0 means unset (-1).
	SensorID int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Register adds listcalls, totalcalls, active_call_info,
// calls_in_progress and call_quality to reg.
func Register(reg *command.Registry, d Deps) {
	g := &group{d: d}
	if g.d.Now == nil {
		g.d.Now = time.Now
	}
	reg.Register(command.Command{
		Name: "listcalls", Perm: command.PermCall,
		Doc: "list active calls as a table (JSON options: limit, sort_field, sort_dir, zip, filter, form_filters)",
		Params: []command.Param{{Name: "options",
			Doc: `JSON object, e.g. {"limit":30,"sort_field":"caller","filter":[{"caller":"%123%"}]}; ` +
				`other text is ignored, as the sniffer ignores it, but still brings the totals element`}},
		Run: g.listCalls,
	})
	reg.Register(command.Command{
		Name: "totalcalls", Perm: command.PermCall,
		Doc: "number of calls in memory, including calls waiting to be stored",
		Run: g.totalCalls,
	})
	reg.Register(command.Command{
		Name: "active_call_info", Perm: command.PermCall,
		Doc: `details and RTP streams of one active call: <callreference> or {"callreference":"0x…","zip":"yes"}`,
		Params: []command.Param{{Name: "callreference", Type: command.ParamString,
			Doc: "callreference from listcalls, or a JSON object holding it"}},
		Run: g.activeCallInfo,
	})
	registerInProgress(reg, g)
	registerQuality(reg, g)
}

type group struct{ d Deps }

func (g *group) calls(withStreams bool) ([]Call, error) {
	if g.d.Source == nil {
		return nil, fmt.Errorf("%w: no call source", command.ErrUnavailable)
	}
	return g.d.Source.ActiveCalls(withStreams), nil
}

// recycle hands cs back to the source if it takes them.
func (g *group) recycle(cs []Call) {
	if r, ok := g.d.Source.(Recycler); ok && cs != nil {
		r.Recycle(cs)
	}
}

func (g *group) totalCalls(context.Context, *command.Request) (command.Result, error) {
	if c, ok := g.d.Source.(Counter); ok {
		return command.Text(fmt.Sprint(c.TotalCalls())), nil
	}
	cs, err := g.calls(false)
	if err != nil {
		return nil, err
	}
	n := len(cs)
	g.recycle(cs)
	return command.Text(fmt.Sprint(n)), nil
}

// Totals is the listcalls summary element.
type Totals struct {
	Total      int `json:"total"`
	IsReceiver int `json:"is_receiver"`
	IsServer   int `json:"is_server"`
	IDSensor   int `json:"id_sensor"`
}

func (g *group) listCalls(_ context.Context, req *command.Request) (command.Result, error) {
	raw, hasOpts := req.Param("options")
	raw = strings.TrimSpace(raw)
	opts, err := parseOptions(raw)
	if err != nil {
		return nil, err
	}
	all, err := g.calls(false)
	if err != nil {
		return nil, err
	}
	keep := all
	if len(opts.filters) > 0 {
		n := 0
		for i := range all {
			if opts.match(&all[i]) {
				if n != i {
					all[n] = all[i]
				}
				n++
			}
		}
		keep = all[:n]
	}
	sensor := g.d.SensorID
	if sensor <= 0 {
		sensor = -1
	}
	tot := Totals{Total: len(keep), IDSensor: sensor}
	if opts.limit == 0 {
		g.recycle(all)
		return command.Value{V: tot}, nil
	}
	l := newListing(keep, g.d.Now())
	if err := sortTable(l, opts.sortField, opts.sortDesc); err != nil {
		g.recycle(all)
		return nil, err
	}
	t := l.table()
	if _, ok := g.d.Source.(Recycler); ok {
		t.OnRelease(func() { g.recycle(all) })
	}
	if opts.limit > 0 && opts.limit < t.Len {
		t.Len = opts.limit
	}
	if hasOpts && raw != "" {
		t.Totals = tot
	}
	return t, nil
}

// Info is the active_call_info reply: the call as a one-row listcalls
// table, the sip_packets member and the call's RTP streams. It marshals to
// {"call":{column: value, …},"sip_packets":…,"rtp_streams":[…]}, the call's
// members in column order; the manager transport renders the sniffer's
// bytes from the same parts (CallTable, SIPPacketsText, StreamTable).
type Info struct {
	Call *command.Table // one row
	// SIPPackets is the sip_packets text when packets are not kept
	// ([SIPPacketsDisabled]); empty when they are, and Packets holds them.
	SIPPackets string
	Packets    []SIPPacket
	RTPStreams []Stream
}

// CallTable returns the call as a one-row table.
func (in Info) CallTable() *command.Table { return in.Call }

// SIPPacketsText returns the sip_packets member when it is a text, and ""
// when it is the array of [Info.SIPPacketTable].
func (in Info) SIPPacketsText() string { return in.SIPPackets }

// sipPacketColumns are the members of a sip_packets element, in the
// sniffer's order (sSipPacketInfo::getJson).
var sipPacketColumns = []string{"time", "src_ip", "src_port", "dst_ip", "dst_port",
	"sip", "sip_len", "packet_len", "cseq_m", "cseq_n"}

// SIPPacketTable returns the packets as a table with the sip_packets
// members as columns: time in µs, addresses, ports, the first line, the
// lengths and the CSeq method and number as integers. It is nil when
// sip_packets is the text of [Info.SIPPacketsText].
func (in Info) SIPPacketTable() *command.Table {
	if in.SIPPackets != "" {
		return nil
	}
	t := &command.Table{Len: len(in.Packets), Columns: make([]command.Column, len(sipPacketColumns))}
	for i, n := range sipPacketColumns {
		t.Columns[i] = command.Column{Name: n}
	}
	t.Emit = func(i int, w command.CellWriter) {
		p := &in.Packets[i]
		w.Int(p.Time)
		w.Addr(p.SrcIP)
		w.Int(int64(p.SrcPort))
		w.Addr(p.DstIP)
		w.Int(int64(p.DstPort))
		w.Str(p.Line)
		w.Int(int64(p.SIPLen))
		w.Int(int64(p.PacketLen))
		w.Int(int64(p.CSeqMethod))
		w.Int(int64(p.CSeq))
	}
	return t
}

// streamColumns are the members of an rtp_streams element, in the
// sniffer's order (RTP::getJson).
var streamColumns = []string{"src_ip", "src_port", "dst_ip", "dst_port", "time", "time_last",
	"ssrc", "codec", "received", "lost", "jitter_avg", "jitter_max"}

// StreamTable returns the streams as a table with the rtp_streams members
// as columns: addresses, integers (ports, times in µs, SSRC, codec,
// counts) and floats (jitter in ms).
func (in Info) StreamTable() *command.Table {
	t := &command.Table{Len: len(in.RTPStreams), Columns: make([]command.Column, len(streamColumns))}
	for i, n := range streamColumns {
		t.Columns[i] = command.Column{Name: n}
	}
	t.Emit = func(i int, w command.CellWriter) {
		s := &in.RTPStreams[i]
		w.Addr(s.SrcIP)
		w.Int(int64(s.SrcPort))
		w.Addr(s.DstIP)
		w.Int(int64(s.DstPort))
		w.Int(s.Start)
		w.Int(s.Last)
		w.Int(int64(s.SSRC))
		w.Int(int64(s.Codec))
		w.Int(int64(s.Received))
		w.Int(int64(s.Lost))
		w.Float(s.JitterAvg)
		w.Float(s.JitterMax)
	}
	return t
}

// MarshalJSON encodes the reply for transports without a rendering of
// their own: the call's cells as plain JSON values (addresses and times as
// strings, MOS on the 1–5 scale), keys in column order.
func (in Info) MarshalJSON() ([]byte, error) {
	b := []byte(`{"call":{`)
	if in.Call != nil && in.Call.Len > 0 {
		row := make([]command.Cell, len(in.Call.Columns))
		in.Call.Fill(0, row)
		for i, col := range in.Call.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			k, _ := json.Marshal(col.Name)
			v, err := json.Marshal(row[i].Any())
			if err != nil {
				return nil, err
			}
			b = append(append(append(b, k...), ':'), v...)
		}
	}
	var sp []byte
	switch {
	case in.SIPPackets != "":
		sp, _ = json.Marshal(in.SIPPackets)
	case len(in.Packets) == 0:
		sp = []byte("[]")
	default:
		var err error
		if sp, err = json.Marshal(in.Packets); err != nil {
			return nil, err
		}
	}
	st, err := json.Marshal(in.RTPStreams)
	if err != nil {
		return nil, err
	}
	if in.RTPStreams == nil {
		st = []byte("[]")
	}
	b = append(append(append(b, `},"sip_packets":`...), sp...), `,"rtp_streams":`...)
	return append(append(b, st...), '}'), nil
}

func (g *group) activeCallInfo(_ context.Context, req *command.Request) (command.Result, error) {
	ref, _ := req.Param("callreference")
	if strings.HasPrefix(ref, "{") {
		var o struct {
			Ref string `json:"callreference"`
		}
		if err := json.Unmarshal([]byte(ref), &o); err != nil {
			return nil, command.BadParam("callreference", err)
		}
		ref = o.Ref
	}
	want := normRef(ref)
	if want == "" {
		// The sniffer finds no call for a missing reference either.
		return nil, fmt.Errorf("calls: no callreference: %w", command.ErrNoEntry)
	}
	all, err := g.calls(true)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if normRef(all[i].CallRef) != want {
			continue
		}
		c := all[i]
		c.SIPProxies = slices.Clone(c.SIPProxies)
		c.Streams = nil
		st := slices.Clone(all[i].Streams)
		g.recycle(all)
		info := Info{
			Call:       newListing([]Call{c}, g.d.Now()).table(),
			SIPPackets: SIPPacketsDisabled,
			RTPStreams: st,
		}
		if ps, ok := g.d.Source.(PacketSource); ok {
			if p, ok := ps.SIPPackets(c.CallRef); ok {
				info.SIPPackets, info.Packets = "", p
			}
		}
		return command.Value{V: info}, nil
	}
	g.recycle(all)
	return nil, fmt.Errorf("calls: call %s: %w", ref, command.ErrNoEntry)
}

// normRef lower-cases a call reference and strips 0x and leading zeros,
// so that "0x00AB" and "ab" name the same call.
func normRef(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	return strings.TrimLeft(s, "0")
}
