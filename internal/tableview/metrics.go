package tableview

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command/metrics"
)

// Histogram bounds, in base units: MOS, loss as a ratio, jitter in seconds.
var (
	mosBounds    = []float64{1.5, 2, 2.5, 3, 3.5, 4, 4.3, 4.5}
	lossBounds   = []float64{0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5}
	jitterBounds = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32}
)

// hist is a cumulative histogram (Prometheus' model). Guarded by the
// Quality mutex.
type hist struct {
	bounds []float64
	counts []uint64 // per bound, not cumulative
	n      uint64
	sum    float64
}

func newHist(bounds []float64) hist { return hist{bounds: bounds, counts: make([]uint64, len(bounds))} }

func (h *hist) observe(v float64) {
	h.n++
	h.sum += v
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
			return
		}
	}
}

func (h *hist) sample(labels map[string]string) metrics.Sample {
	s := metrics.Sample{Labels: labels, Count: h.n, Sum: h.sum}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		s.Buckets = append(s.Buckets, metrics.Bucket{UpperBound: b, Count: cum})
	}
	return s
}

// historyMinutes is the length of the rolling history.
const historyMinutes = 60

// mosBandEdges split the MOS of the minute's calls into the nine bands of
// metrics.Minute.MOS, with edges at the console's thresholds (poor below
// 3.6, good from 4.0): < 2, 2–2.5, 2.5–3, 3–3.3, 3.3–3.6, 3.6–3.8,
// 3.8–4, 4–4.3, ≥ 4.3.
var mosBandEdges = [...]float64{2, 2.5, 3, 3.3, 3.6, 3.8, 4, 4.3}

// mosBand is the band of a MOS.
func mosBand(mos float64) int {
	b := 0
	for b < len(mosBandEdges) && mos >= mosBandEdges[b] {
		b++
	}
	return b
}

// Quality accumulates what the counters cannot tell: the quality of the
// calls that ended (histograms since start, per minute for the last hour),
// their final-response classes, and call attempts per minute. The sensor
// feeds it from the CDR sink ([Quality.CallEnded]) and a one-second
// [Quality.Tick]; both are cheap and never block. Safe for concurrent use.
type Quality struct {
	mu       sync.Mutex
	mos      hist
	loss     hist
	jitter   hist
	classes  map[string]uint64
	answered uint64
	minutes  [historyMinutes]metrics.Minute
	cur      int   // index of the current minute
	started  int64 // CallsStarted at the start of the current minute
	last     int64 // CallsStarted at the last Tick
	lossSum  [historyMinutes]float64
	lossN    [historyMinutes]int
}

// NewQuality returns an empty accumulator.
func NewQuality() *Quality {
	return &Quality{mos: newHist(mosBounds), loss: newHist(lossBounds), jitter: newHist(jitterBounds), classes: map[string]uint64{}}
}

// codeClass is the final response's class: "2xx" … "6xx", or "none"
// (no final response: a timeout, a call closed at the end of the input).
func codeClass(code int) string {
	if code >= 200 && code < 700 {
		return strconv.Itoa(code/100) + "xx"
	}
	return "none"
}

// networkOK reports whether a call counts as effective for the network
// effectiveness ratio (ITU-T E.411): answered, or refused by the user
// (busy, no answer, declined, cancelled by the caller) rather than by the
// network.
func networkOK(c *calltable.CallInfo) bool {
	if !c.AnswerTime.IsZero() {
		return true
	}
	switch c.LastCode {
	case 480, 486, 487, 600, 603:
		return true
	}
	return false
}

// CallEnded records an ended call. It is called from the CDR sink, after
// the table lock is released. Only voice streams count: telephone events,
// comfort noise and video on streams of their own have no voice quality.
// The histograms take the F2 MOS (the sniffer's mos_min); the minute's MOS
// bands the F1 MOS, which the console shows.
func (q *Quality) CallEnded(c *calltable.CallInfo) {
	worstMOS, worstLoss := -1.0, -1.0
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range c.Streams {
		st := &c.Streams[i].Stats
		if st.Received == 0 || c.Streams[i].Kind != calltable.KindVoice {
			continue
		}
		if m := st.VM.MOSF2Mult10; m >= 0 {
			q.mos.observe(float64(m) / 10)
		}
		if m := st.VM.MOSF1Mult10; m >= 0 {
			if mos := float64(m) / 10; worstMOS < 0 || mos < worstMOS {
				worstMOS = mos
			}
		}
		l := 0.0
		if den := st.Received + st.Lost; den > 0 {
			l = float64(st.Lost) / float64(den)
		}
		q.loss.observe(l)
		worstLoss = max(worstLoss, l)
		q.jitter.observe(st.JitterMeanMS / 1000)
	}
	q.classes[codeClass(c.LastCode)]++
	m := &q.minutes[q.cur]
	m.Ended++
	if !c.AnswerTime.IsZero() {
		q.answered++
		m.Answered++
	}
	if networkOK(c) {
		m.NetworkOK++
	}
	if worstMOS >= 0 {
		m.MOS[mosBand(worstMOS)]++
	}
	if worstLoss >= 0 {
		q.lossSum[q.cur] += worstLoss * 100
		q.lossN[q.cur]++
		m.LossPct = q.lossSum[q.cur] / float64(q.lossN[q.cur])
	}
}

// Tick rolls the per-minute history forward to now (wall clock) and
// records the calls started and in progress. The sensor calls it every
// second.
func (q *Quality) Tick(now time.Time, callsStarted uint64, inProgress int) {
	start := now.Truncate(time.Minute).Unix()
	q.mu.Lock()
	defer q.mu.Unlock()
	m := &q.minutes[q.cur]
	if m.Start == 0 {
		// callsStarted counts from the sensor's start: the calls started
		// before the first tick belong to the first minute.
		m.Start, q.started, q.last = start, 0, 0
	}
	for m.Start < start {
		// The attempts made since the last tick go to the new minute
		// (at most a tick's worth misplaced).
		next := (q.cur + 1) % historyMinutes
		q.minutes[next] = metrics.Minute{Start: m.Start + 60, InProgress: m.InProgress}
		q.lossSum[next], q.lossN[next] = 0, 0
		q.cur, q.started = next, q.last
		m = &q.minutes[q.cur]
	}
	m.Attempts = int(int64(callsStarted) - q.started)
	q.last = int64(callsStarted)
	m.InProgress = inProgress
}

// History returns the last hour, oldest minute first, without the minutes
// before the sensor started.
func (q *Quality) History() []metrics.Minute {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]metrics.Minute, 0, historyMinutes)
	for i := 1; i <= historyMinutes; i++ {
		if m := q.minutes[(q.cur+i)%historyMinutes]; m.Start != 0 {
			out = append(out, m)
		}
	}
	return out
}

// Session is one listener's session counters, for the metrics.
type Session struct {
	Transport string // "manager", "ami", …
	Listener  string // "tcp", "unix", …
	Active    int
	Accepted  uint64
	Closed    map[string]uint64 // by reason
}

// Metrics presents every figure of the sensor as metric families
// (metrics.Source): the counters, the call table now, the quality
// accumulator and the transports' sessions.
type Metrics struct {
	Table    *calltable.Table
	Counters func() Counters
	Quality  *Quality
	Sessions func() []Session
	Panics   func() uint64 // command panics the registry recovered
}

// History implements metrics.Source.
func (m Metrics) History() []metrics.Minute { return m.Quality.History() }

// Families implements metrics.Source.
func (m Metrics) Families() []metrics.Family {
	st := m.Counters()
	counts := m.Table.Counts()
	var fams []metrics.Family
	one := func(name, help, typ string, v float64) {
		fams = append(fams, metrics.Family{Name: name, Help: help, Type: typ, Samples: []metrics.Sample{{Value: v}}})
	}
	labelled := func(name, help, typ, key string, vals map[string]float64) {
		f := metrics.Family{Name: name, Help: help, Type: typ}
		for _, k := range sortedKeys(vals) {
			f.Samples = append(f.Samples, metrics.Sample{Labels: map[string]string{key: k}, Value: vals[k]})
		}
		fams = append(fams, f)
	}
	d, t, w := st.Decode, st.Table, st.CDR
	one("voipsensor_uptime_seconds", "Time since the sensor started.", metrics.Gauge, st.Uptime.Seconds())
	one("voipsensor_heap_bytes", "Go heap in use.", metrics.Gauge, float64(st.HeapByte))
	one("voipsensor_frames_total", "Frames read from the capture source.", metrics.Counter, float64(st.Frames))
	one("voipsensor_frame_bytes_total", "Bytes of the frames read from the capture source.", metrics.Counter, float64(st.Bytes))
	labelled("voipsensor_packets_total", "Packets by analysis stage.", metrics.Counter, "stage", map[string]float64{
		"datagram": float64(d.Datagrams), "sip": float64(t.SIPMessages), "rtp": float64(t.RTPPackets),
		"rtcp": float64(t.RTCPPackets), "unmatched": float64(t.Unmatched), "tunneled": float64(d.Tunneled),
		"ip_fragment": float64(d.Fragments), "tcp_segment": float64(d.TCPSegments), "sip_keepalive": float64(t.SIPKeepalives),
		"sip_quality_report": float64(t.QualityReports),
	})
	labelled("voipsensor_dropped_total", "Packets or objects the sensor lost or refused, by stage and reason: kernel and interface drops are the capture's, buffer the packet buffer's (max_buffer_mem full), the rest malformed input or limits.", metrics.Counter, "reason", map[string]float64{
		"kernel": float64(st.Capture.KernelDropped), "interface": float64(st.Capture.IfDropped), "buffer": float64(st.Capture.BufferDropped),
		"decode_malformed": float64(d.Malformed), "decode_unsupported": float64(d.Unsupported), "decode_truncated": float64(d.Truncated),
		"tunnel_malformed": float64(d.TunnelMalformed), "fragments": float64(d.FragmentsDropped), "tcp_streams": float64(d.TCPDropped),
		"sip_malformed": float64(t.SIPMalformed), "rtp_malformed": float64(t.RTPMalformed), "rtcp_malformed": float64(t.RTCPMalformed),
		"sip_quality_report_malformed": float64(t.QualityReportsMalformed), "calls_over_limit": float64(t.CallsDropped), "streams_over_limit": float64(t.StreamsDropped), "registrations_over_limit": float64(t.RegsDropped),
	})
	one("voipsensor_ring_freezes_total", "Times the kernel capture ring was full and froze its queue (live capture).", metrics.Counter, float64(st.Capture.RingFreezes))
	labelled("voipsensor_packet_buffer_bytes", "The packet buffer between the kernel ring and the analysis (max_buffer_mem): frames waiting now, the most ever waiting, and its size.", metrics.Gauge, "state", map[string]float64{
		"used": float64(st.Capture.BufferUsed), "high_water": float64(st.Capture.BufferHigh), "capacity": float64(st.Capture.BufferCapacity),
	})
	one("voipsensor_calls_in_progress", "Calls not yet ended.", metrics.Gauge, float64(counts.InProgress))
	one("voipsensor_calls_in_memory", "Calls in the table, including ended ones lingering for late packets.", metrics.Gauge, float64(t.Calls))
	one("voipsensor_call_attempts_total", "INVITEs that started a call.", metrics.Counter, float64(t.CallsStarted))
	m.Quality.mu.Lock()
	classes := map[string]float64{"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "6xx": 0, "none": 0}
	for k, v := range m.Quality.classes {
		classes[k] = float64(v)
	}
	answered := m.Quality.answered
	mos, loss, jit := m.Quality.mos.sample(nil), m.Quality.loss.sample(nil), m.Quality.jitter.sample(nil)
	m.Quality.mu.Unlock()
	labelled("voipsensor_calls_ended_total", "Calls that ended, by the class of their final SIP response (none: timeout or end of input).", metrics.Counter, "class", classes)
	one("voipsensor_calls_answered_total", "Ended calls that had been answered.", metrics.Counter, float64(answered))
	regs := map[string]float64{}
	for _, s := range []calltable.RegState{calltable.RegOK, calltable.RegFailed, calltable.RegExpired, calltable.RegUnregister} {
		regs[s.String()] = 0
	}
	for st, n := range counts.Registrations {
		regs[st.String()] += float64(n)
	}
	labelled("voipsensor_registrations", "Registration bindings by state.", metrics.Gauge, "state", regs)
	fams = append(fams,
		metrics.Family{Name: "voipsensor_stream_mos", Help: "MOS (fixed 200 ms buffer, the sniffer's f2) of the RTP streams of ended calls.", Type: metrics.Histogram, Samples: []metrics.Sample{mos}},
		metrics.Family{Name: "voipsensor_stream_loss_ratio", Help: "Loss ratio of the RTP streams of ended calls.", Type: metrics.Histogram, Samples: []metrics.Sample{loss}},
		metrics.Family{Name: "voipsensor_stream_jitter_seconds", Help: "Mean interarrival jitter (RFC 3550) of the RTP streams of ended calls.", Type: metrics.Histogram, Samples: []metrics.Sample{jit}},
	)
	one("voipsensor_cdr_queue", "CDRs and registrations waiting in memory for the store.", metrics.Gauge, float64(w.Pending))
	one("voipsensor_cdr_spill_files", "Spill files waiting to be replayed into the store.", metrics.Gauge, float64(w.SpillFiles))
	labelled("voipsensor_cdr_total", "CDR writer outcomes.", metrics.Counter, "outcome", map[string]float64{
		"queued": float64(w.Queued), "written": float64(w.Written), "spilled": float64(w.Spilled),
		"replayed": float64(w.Replayed), "retried": float64(w.Retried), "failed": float64(w.Failed),
	})
	if m.Sessions != nil {
		active := metrics.Family{Name: "voipsensor_sessions", Help: "Open sessions per listener.", Type: metrics.Gauge}
		accepted := metrics.Family{Name: "voipsensor_connections_accepted_total", Help: "Connections accepted per listener.", Type: metrics.Counter}
		closed := metrics.Family{Name: "voipsensor_sessions_closed_total", Help: "Sessions ended or connections refused, per listener and reason (slow consumer, write timeout, first request timeout, refused: …).", Type: metrics.Counter}
		for _, s := range m.Sessions() {
			l := map[string]string{"transport": s.Transport, "listener": s.Listener}
			active.Samples = append(active.Samples, metrics.Sample{Labels: l, Value: float64(s.Active)})
			accepted.Samples = append(accepted.Samples, metrics.Sample{Labels: l, Value: float64(s.Accepted)})
			for _, r := range sortedKeys(s.Closed) {
				closed.Samples = append(closed.Samples, metrics.Sample{Labels: map[string]string{"transport": s.Transport, "listener": s.Listener, "reason": r}, Value: float64(s.Closed[r])})
			}
		}
		fams = append(fams, active, accepted, closed)
	}
	if m.Panics != nil {
		one("voipsensor_command_panics_total", "Commands that panicked (recovered, answered with an internal error).", metrics.Counter, float64(m.Panics()))
	}
	return fams
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
