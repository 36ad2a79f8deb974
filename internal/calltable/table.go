package calltable

import (
	"math"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// Config bounds and tunes a [Table]. Zero values select the defaults noted on
// each field.
type Config struct {
	SIPPorts          *decode.PortSet // ports treated as SIP without looking; nil = 5060
	MaxCalls          int             // calls held at once; default 500000
	MaxRegistrations  int             // registration bindings held; default 500000
	MaxMediaPerCall   int             // SDP endpoints remembered per call; default 8
	MaxStreamsPerCall int             // RTP streams per call; default 16

	// Linger keeps a finished call (BYE, final failure) in the table so that
	// the BYE's 200 OK and trailing RTP still land on it. Default 5 s.
	Linger time.Duration
	// SetupTimeout closes a call that has had no SIP message for this long
	// before it was answered. Default 300 s.
	SetupTimeout time.Duration
	// RTPTimeout closes an answered call that has seen no packet (SIP or
	// media) for this long. Default 300 s (VoIPmonitor's rtptimeout).
	RTPTimeout time.Duration
	// AbsoluteTimeout closes any call this long after its INVITE. Default 4 h
	// (VoIPmonitor's absolute_timeout).
	AbsoluteTimeout time.Duration
	// RegisterTimeout fails a REGISTER transaction with no final response.
	// Default 32 s (SIP timer F).
	RegisterTimeout time.Duration
	// ExpireEvery is how often, in capture time, HandleDatagram runs the
	// timeout scan by itself. Default 1 s.
	ExpireEvery time.Duration
	// Events, when set, receives call, DTMF, registration and RTCP events,
	// published after the table lock is released.
	Events *event.Bus
	// LadderBytes bounds the table-wide log of SIP message summaries behind
	// [Table.Ladder]: 0 means DefaultLadderBytes, negative disables it.
	// LadderRawBytes keeps up to that much of each raw message (at most
	// MaxLadderRaw; 0 keeps only start lines).
	LadderBytes, LadderRawBytes int
	// SIPPackets keeps, per call, a record of each of its SIP packets
	// (time, addresses, first line, lengths, CSeq) for [Table.SIPPackets]:
	// the sniffer's active_call_info = yes. Off by default, as there.
	SIPPackets bool
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.SIPPorts == nil {
		c.SIPPorts = new(decode.PortSet)
		c.SIPPorts.Add(5060, 5060)
	}
	def(&c.MaxCalls, 500000)
	def(&c.MaxRegistrations, 500000)
	def(&c.MaxMediaPerCall, 8)
	def(&c.MaxStreamsPerCall, 16)
	defd(&c.Linger, 5*time.Second)
	defd(&c.SetupTimeout, 300*time.Second)
	defd(&c.RTPTimeout, 300*time.Second)
	defd(&c.AbsoluteTimeout, 4*time.Hour)
	defd(&c.RegisterTimeout, 32*time.Second)
	defd(&c.ExpireEvery, time.Second)
}

// Sink receives what leaves the table. Its methods are called after the
// table lock is released, from whichever goroutine fed or expired the table
// (the packet path, or a timer for an idle live capture), so they must be
// safe for concurrent use and must not block: queue and return.
type Sink interface {
	// CallEnded receives the final copy of a call; the sink owns it.
	CallEnded(c *CallInfo)
	// RegistrationChanged receives a registration whose state changed.
	RegistrationChanged(r *RegistrationInfo)
}

// Stats are the table's counters.
type Stats struct {
	Datagrams     uint64 // datagrams offered
	SIPMessages   uint64 // SIP messages parsed
	SIPMalformed  uint64 // SIP-looking datagrams that failed to parse
	SIPKeepalives uint64 // keepalives on a SIP port (CRLF, whitespace, short junk; see sip.IsKeepalive)
	SIPLenient    uint64 // messages accepted despite a malformed Content-Length (the datagram bounds them)
	SIPOrphans    uint64 // in-dialog messages for a Call-ID never seen with an INVITE
	SIPOther      uint64 // OPTIONS, NOTIFY, ... outside any call
	RTPPackets    uint64 // RTP packets attributed to a call
	RTPMalformed  uint64 // datagrams on a media address that were not RTP
	RTCPPackets   uint64 // RTCP packets attributed to a call
	RTCPMalformed uint64
	// QualityReports counts X-RTP-Stat-style end-of-call summaries fed to
	// the streams their senders received; QualityReportsMalformed those
	// whose PR, PL or JI was not a number.
	QualityReports, QualityReportsMalformed uint64
	Unmatched                               uint64 // UDP datagrams neither SIP nor on a known media address
	CallsStarted                            uint64
	CallsEnded                              uint64
	CallsDropped                            uint64 // new calls refused because MaxCalls was reached
	StreamsDropped                          uint64 // new streams refused because MaxStreamsPerCall was reached
	RegsDropped                             uint64 // bindings refused because MaxRegistrations was reached
	// SIPPacketsOmitted counts SIP packets not recorded for
	// [Table.SIPPackets] because their call had MaxSIPPacketBytes of them.
	SIPPacketsOmitted uint64
	Calls             int // calls in the table now (in progress and lingering)
	Registrations     int // bindings in the table now
}

// Table tracks calls and registrations. Safe for concurrent use: the packet
// path feeds it with HandleDatagram, a timer may call Expire, any goroutine
// may take a Snapshot.
type Table struct {
	cfg  Config
	sink Sink

	mu      sync.Mutex
	calls   map[string]*Call
	order   callOrder // the same calls in creation order, for listings
	byRef   map[uint64]*Call
	media   mediaIndex
	regs    map[regKey]*Registration
	scratch []*Call                  // liveCallsLocked's result
	regTxn  map[string]*Registration // REGISTER Call-ID → binding with a pending transaction
	stats   Stats
	nextRef uint64
	nextReg uint64
	now     time.Time // latest capture time seen
	lastExp time.Time
	// now and the time of the next timeout scan in Unix ns, compared once
	// per datagram.
	nowNs, nextExpNs int64
	// feedSensorID is the id_sensor that calls created now record: 0, or
	// the one given to FeedSensor while it runs. Guarded by mu.
	feedSensorID int32

	// Scratch space, used only with mu held.
	feeder  feeder
	msg     sip.Message
	hdr     rtp.Header
	outCall []*CallInfo         // ended calls collected under mu, handed out by unlock
	outReg  []*RegistrationInfo // registration changes, likewise
	outEv   []*event.Event      // events, likewise
	ladder  ladderLog           // SIP summaries for Ladder (ladder.go)
	rec     Recorder            // nil, or the spool's recorder (record.go)
	intern  interner            // repeating strings shared between calls (intern.go)
}

// New returns an empty table that reports to sink (which may be nil).
func New(cfg Config, sink Sink) *Table {
	cfg.setDefaults()
	return &Table{
		cfg:    cfg,
		sink:   sink,
		calls:  make(map[string]*Call),
		byRef:  make(map[uint64]*Call),
		media:  newMediaIndex(),
		regs:   make(map[regKey]*Registration),
		regTxn: make(map[string]*Registration),
		intern: make(interner),
		nowNs:  math.MinInt64, // before any capture time
	}
}

// HandleDatagram accounts one decoded datagram. dg is not retained.
func (t *Table) HandleDatagram(dg *decode.Datagram) {
	t.mu.Lock()
	t.handleLocked(dg)
	t.unlockAndDeliver()
}

// handleLocked accounts one datagram. Must hold t.mu.
func (t *Table) handleLocked(dg *decode.Datagram) {
	t.stats.Datagrams++
	if ns := dg.Time.UnixNano(); ns > t.nowNs {
		t.now, t.nowNs = dg.Time, ns
	}
	t.dispatch(dg)
	if t.nowNs >= t.nextExpNs {
		t.expireLocked(t.now)
	}
}

// Expire runs the timeout scan as of now: capture time for files, wall
// time for a live capture that has gone quiet. Time never goes backwards:
// a now before the latest capture time is ignored.
func (t *Table) Expire(now time.Time) {
	t.mu.Lock()
	if now.After(t.now) {
		t.now, t.nowNs = now, now.UnixNano()
	}
	t.expireLocked(t.now)
	t.unlockAndDeliver()
}

// CloseAll finishes every call still in the table, as at the end of a
// capture file or at shutdown. Calls in progress keep their state and end at
// their last packet.
func (t *Table) CloseAll() {
	t.mu.Lock()
	for _, c := range t.liveCallsLocked() {
		if c.EndTime.IsZero() {
			c.EndTime = c.LastPacket
		}
		c.endCause = EndShutdown
		t.finishLocked(c)
	}
	clear(t.scratch)
	t.unlockAndDeliver()
}

// Stats returns the counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	s := t.stats
	s.Calls = len(t.calls)
	s.Registrations = len(t.regs)
	t.mu.Unlock()
	return s
}

// Now returns the latest capture time the table has seen.
func (t *Table) Now() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.now
}

// unlockAndDeliver takes what the locked section collected, releases the
// lock, and only then hands it to the sink (LOCKS.md). The lock must be
// held on entry and is released on return.
func (t *Table) unlockAndDeliver() {
	calls, regs, evs := t.outCall, t.outReg, t.outEv
	if len(calls) == 0 && len(regs) == 0 && len(evs) == 0 {
		t.mu.Unlock()
		return
	}
	t.outCall, t.outReg, t.outEv = nil, nil, nil
	t.mu.Unlock()
	for _, e := range evs {
		t.cfg.Events.Publish(e)
	}
	if t.sink == nil {
		return
	}
	for _, c := range calls {
		t.sink.CallEnded(c)
	}
	for _, r := range regs {
		t.sink.RegistrationChanged(r)
	}
}

// dispatch routes a datagram to media, SIP or nowhere. Must hold t.mu.
func (t *Table) dispatch(dg *decode.Datagram) {
	if dg.Flow.Proto == decode.ProtoUDP {
		if c, hint, viaDst := t.lookupMedia(dg.Flow); c != nil {
			if rtp.IsRTCP(dg.Payload) {
				t.record(RecordRTCP, c, dg)
				t.handleRTCP(c, dg)
			} else {
				t.record(RecordRTP, c, dg)
				t.handleRTP(c, hint, viaDst, dg)
			}
			return
		}
	}
	p := dg.Payload
	if t.cfg.SIPPorts.Has(dg.Flow.Src.Port()) || t.cfg.SIPPorts.Has(dg.Flow.Dst.Port()) || sip.LooksLikeSIP(p) {
		t.handleSIP(dg)
		return
	}
	t.stats.Unmatched++
}

// lookupMedia finds the call whose SDP advertised the datagram's destination
// or source. When the two point to different calls (media ports reused by
// overlapping calls), the call that knows both ends wins. viaDst tells
// whether that call is the destination's; then hint is the destination's
// stream hint. Must hold t.mu.
func (t *Table) lookupMedia(f decode.Flow) (c *Call, hint *Stream, viaDst bool) {
	sd, ss := t.media.slot(f.Dst), t.media.slot(f.Src)
	cd, cs := sd.c, ss.c
	switch {
	case cd == nil:
		return cs, nil, false
	case cs == nil || cs == cd:
		return cd, sd.recv, true
	}
	if cs.sideOfMedia(f.Dst) != SideNone {
		return cs, nil, false
	}
	return cd, sd.recv, true
}

// expireLocked closes timed-out calls and registrations. Must hold t.mu.
func (t *Table) expireLocked(now time.Time) {
	t.lastExp = now
	switch ns := now.UnixNano(); {
	case now.IsZero():
		t.nextExpNs = math.MinInt64 // no capture time yet: scan at the first datagram
	case ns > math.MaxInt64-int64(t.cfg.ExpireEvery):
		t.nextExpNs = math.MaxInt64
	default:
		t.nextExpNs = ns + int64(t.cfg.ExpireEvery)
	}
	for _, c := range t.liveCallsLocked() {
		switch {
		case !c.closeAt.IsZero() && !now.Before(c.closeAt):
			t.finishLocked(c)
		case now.Sub(c.InviteTime) > t.cfg.AbsoluteTimeout:
			t.timeoutLocked(c, now, EndAbsoluteTimeout)
		case c.State == StateAnswered && now.Sub(c.LastPacket) > t.cfg.RTPTimeout:
			t.timeoutLocked(c, c.LastPacket, EndRTPTimeout)
		case c.State < StateAnswered && now.Sub(c.LastSIP) > t.cfg.SetupTimeout:
			t.timeoutLocked(c, c.LastSIP, EndSetupTimeout)
		}
	}
	clear(t.scratch)
	t.expireRegsLocked(now)
}

// timeoutLocked ends c at end for cause. Must hold t.mu.
func (t *Table) timeoutLocked(c *Call, end time.Time, cause EndCause) {
	c.State = StateTimeout
	c.endCause = cause
	if c.EndTime.IsZero() {
		c.EndTime = end
	}
	t.finishLocked(c)
}

// liveCallsLocked returns the calls in the table in creation order, in a
// scratch slice reused by the next call, so that calls closed together
// (timeouts, CloseAll) reach the sink in a deterministic order: the same
// input gives the same output. Must hold t.mu.
func (t *Table) liveCallsLocked() []*Call {
	out := t.scratch[:0]
	for _, s := range t.order.list {
		if s.c != nil {
			out = append(out, s.c)
		}
	}
	t.scratch = out // the caller clears it when done
	return out
}

// finishLocked removes c from the table and queues its final copy for the
// sink. Must hold t.mu.
func (t *Table) finishLocked(c *Call) {
	for _, s := range c.Streams {
		s.RTP.Finish()
	}
	delete(t.calls, c.CallID)
	delete(t.byRef, c.Ref)
	t.order.remove(c)
	if c.tap != nil {
		c.tap.Ended()
		c.tap = nil
	}
	for i := range c.Media {
		m := &c.Media[i]
		if t.media.get(m.Addr) == c {
			t.media.del(m.Addr)
		}
		if m.RTCP.IsValid() && t.media.get(m.RTCP) == c {
			t.media.del(m.RTCP)
		}
	}
	t.stats.CallsEnded++
	if t.rec != nil {
		t.rec.Ended(c.Ref)
	}
	ci := c.info(t.now)
	t.outCall = append(t.outCall, ci)
	if t.cfg.Events != nil {
		t.outEv = append(t.outEv, ci.Event(event.CallEnd, ci.EndTime))
	}
}

// SetTimeouts changes the call timeouts and the call cap while running (a
// configuration reload); zero values keep the defaults.
func (t *Table) SetTimeouts(rtp, setup, absolute time.Duration, maxCalls int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cfg
	c.RTPTimeout, c.SetupTimeout, c.AbsoluteTimeout, c.MaxCalls = rtp, setup, absolute, maxCalls
	c.setDefaults()
	t.cfg.RTPTimeout, t.cfg.SetupTimeout, t.cfg.AbsoluteTimeout, t.cfg.MaxCalls = c.RTPTimeout, c.SetupTimeout, c.AbsoluteTimeout, c.MaxCalls
}

// SIPPort reports whether port is configured as a SIP port.
func (t *Table) SIPPort(port uint16) bool { return t.cfg.SIPPorts.Has(port) }
