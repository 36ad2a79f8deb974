package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command"
	micmd "github.com/voipsensor/voipsensor/internal/command/mi"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
	"github.com/voipsensor/voipsensor/internal/transport/mi"
	"github.com/voipsensor/voipsensor/internal/transport/xmlrpc"
)

// wireMI registers the OpenSIPS MI command group and binds the MI
// listeners: mi_http (POST /mi JSON-RPC and POST /RPC2 XML-RPC on one
// HTTP listener), mi_fifo and each mi_datagram.
func (s *Sensor) wireMI() error {
	deps := micmd.Deps{
		Version: Version, Revision: vcsRevision(), Start: s.start,
		Stats: miStats{s}, Dialogs: miTable{s.table}, Contacts: miTable{s.table},
		Processes: s.miProcesses, Args: config.RedactArgs(s.opts.Args),
	}
	if s.opts.LogLevel != nil {
		deps.LogLevel = s.opts.LogLevel
	}
	micmd.Register(s.reg, deps)

	cfg := s.cfg
	if cfg.MIHTTP == "" && cfg.MIFIFO == "" && len(cfg.MIDatagram) == 0 {
		return nil
	}
	d := mi.NewDispatcher(s.reg, mi.Config{})
	ro := map[string]bool{}
	for _, n := range strings.Split(cfg.MIReadOnly, ",") {
		ro[strings.TrimSpace(n)] = true
	}
	log := s.log.With("transport", "mi")
	var aborts []func()
	fail := func(err error) error {
		for _, a := range aborts {
			a()
		}
		return err
	}
	var runs []func(ctx context.Context) error

	if cfg.MIHTTP != "" {
		l, err := net.Listen("tcp", cfg.MIHTTP)
		if err != nil {
			return fail(fmt.Errorf("sensor: mi_http: %w", err))
		}
		token := cfg.MIHTTPToken.Reveal()
		mux := http.NewServeMux()
		mux.Handle("/mi", &mi.Handler{D: d, ReadOnly: ro["http"], Token: token})
		mux.Handle("/RPC2", &xmlrpc.Handler{Backend: xmlBackend{d}, ReadOnly: ro["http"], Token: token})
		guard := httpauth.NewGuard(cfg.MIHTTP, cfg.HTTPHosts)
		h := guard.Wrap(mux, func(string) bool { return true })
		x := conn.New(l, s.httpLimits(), conn.Options{Name: "mi http", Logger: log})
		aborts = append(aborts, func() { x.Close() })
		s.addrs = append(s.addrs, Endpoint{Name: "mi-http", Network: "tcp", Addr: l.Addr().String()})
		log.Info("MI HTTP listening", "addr", l.Addr().String(), "paths", "/mi /RPC2")
		runs = append(runs, func(ctx context.Context) error {
			return httpauth.Serve(ctx, x, h, httpauth.Timeouts{ReadHeader: cfg.FirstRequestTimeout, Drain: 5 * time.Second})
		})
	}
	if cfg.MIFIFO != "" {
		f, err := mi.ListenFIFO(d, mi.FIFOConfig{Path: cfg.MIFIFO, ReadOnly: ro["fifo"], Logger: log})
		if err != nil {
			return fail(fmt.Errorf("sensor: mi_fifo: %w", err))
		}
		aborts = append(aborts, func() { f.Close() })
		s.addrs = append(s.addrs, Endpoint{Name: "mi-fifo", Network: "fifo", Addr: f.Path()})
		log.Info("MI FIFO listening", "path", f.Path())
		runs = append(runs, f.Run)
	}
	allowRemote := cfg.MIDatagramAllowRemote
	for _, spec := range cfg.MIDatagram {
		x, err := mi.ListenDatagram(d, spec, mi.DatagramConfig{ReadOnly: ro["datagram"], AllowRemoteAmplification: allowRemote, Logger: log})
		if err != nil {
			return fail(fmt.Errorf("sensor: mi_datagram %s: %w", spec, err))
		}
		aborts = append(aborts, func() { x.Close() })
		s.addrs = append(s.addrs, Endpoint{Name: "mi-datagram", Network: x.Addr().Network(), Addr: x.Addr().String()})
		log.Info("MI datagram listening", "addr", x.Addr().String())
		runs = append(runs, x.Run)
	}
	s.services = append(s.services, service{"mi", func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, len(runs))
		for i, r := range runs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = r(ctx) }()
		}
		wg.Wait()
		return errors.Join(errs...)
	}, func() {
		for _, a := range aborts {
			a()
		}
	}})
	return nil
}

// xmlBackend adapts the MI dispatcher to xmlrpc.Backend.
type xmlBackend struct{ d *mi.Dispatcher }

func (b xmlBackend) Call(ctx context.Context, method string, params json.RawMessage, perm command.Perm) (json.RawMessage, error) {
	res, e := b.d.Call(ctx, method, params, perm, "mi-xmlrpc")
	if e != nil {
		return nil, xmlrpc.FaultFor(e.Code, e.Message)
	}
	return res, nil
}

func vcsRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// miProcesses lists the ps rows: the process, the capture thread, and one
// row per bound listener.
func (s *Sensor) miProcesses() []micmd.Process {
	pid := os.Getpid()
	rows := []micmd.Process{{ID: 0, PID: pid, Type: "voipsensor main"}}
	if tid := s.captureTID.Load(); tid != 0 {
		rows = append(rows, micmd.Process{ID: 1, PID: int(tid), Type: "capture " + s.sourceName()})
	}
	for _, e := range s.addrs {
		rows = append(rows, micmd.Process{ID: len(rows), PID: pid, Type: e.Name + " " + e.Network + ":" + e.Addr})
	}
	return rows
}

// miStats adapts the sensor's counters to micmd.StatSource, with the
// OpenSIPS names where the meaning matches and voipsensor groups for the
// rest.
type miStats struct{ s *Sensor }

func (m miStats) Statistics() []micmd.Statistic {
	st := m.s.Status()
	snap := m.s.table.Snapshot()
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

// miTable adapts call table snapshots to micmd.DialogSource and
// micmd.ContactSource.
type miTable struct{ t *calltable.Table }

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
func (m miTable) Dialogs() []micmd.Dialog {
	snap := m.t.Snapshot()
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
func (m miTable) AORs() []micmd.AOR {
	snap := m.t.Snapshot()
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
