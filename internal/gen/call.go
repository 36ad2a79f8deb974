package gen

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// msgKind is one SIP message of a call's script.
type msgKind uint8

const (
	mInvite    msgKind = iota // caller → callee, with SDP offer
	m100                      // 100 Trying
	m180                      // 180 Ringing
	m200Invite                // 200 OK with SDP answer
	mAckOK                    // ACK for the 2xx (own transaction)
	mFinal                    // 4xx/5xx final response, code in call.code
	mAckFinal                 // ACK for the non-2xx (same branch as the INVITE)
	mCancel                   // CANCEL of the INVITE
	m200Cancel                // 200 OK to CANCEL
	mBye                      // BYE from the hang-up side
	m200Bye                   // 200 OK to BYE
)

type sipEvent struct {
	t    int64
	kind msgKind
}

// Call states as written into the truth.
const (
	stateAnswered  = "answered"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// Display names exercising quoting, escaping and UTF-8 ("" means none).
var displayNames = []string{
	"Alice Novak", "Bob", `Jan "Honza" Dvořák`, "Žofie Černá", "", "O'Brien, Pat", "李小龙", `back\slash`,
}

var userAgents = []string{"voipsensor-gen/1.0", "Linphone/5.2.5 (belle-sip/5.2.4)", "Yealink SIP-T46S 66.86.0.15", "sipp"}

// call is one INVITE dialog: a script of SIP events and, once answered, two
// RTP streams. It is an entity of the generator's schedule.
type call struct {
	index                int
	callID               string
	caller, called, name string
	disp                 string // name as a name-addr display-name
	ua                   string
	callerEP, calleeEP   endpoint // SIP addresses (port 5060)
	callerRTP, calleeRTP uint16
	fromTag, toTag       string
	branch               [3]string // INVITE, ACK (2xx), BYE transactions
	sessID               [2]uint32
	state                string
	code                 int
	hangup               string
	byeByCaller          bool
	events               []sipEvent
	ev                   int
	streams              [2]*stream
	start, answer, end   int64
	answered             bool
}

// newCall draws call i starting at t.
func newCall(g *generator, i int, t int64) *call {
	rng := rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(i)<<8|1))
	c := &call{index: i, start: t}
	hex := func() string { return strconv.FormatUint(rng.Uint64()>>16, 16) }
	c.callID = fmt.Sprintf("%016x-%d@%s", rng.Uint64(), i, sipDomain)
	c.caller = fmt.Sprintf("+4202%08d", rng.IntN(100000000))
	if rng.IntN(4) == 0 {
		c.called = fmt.Sprintf("6%08d", rng.IntN(100000000)) // national format
	} else {
		c.called = fmt.Sprintf("+4206%08d", rng.IntN(100000000))
	}
	c.name = displayNames[rng.IntN(len(displayNames))]
	c.disp = quoteDisplayName(c.name)
	c.ua = userAgents[rng.IntN(len(userAgents))]
	h := (i + g.cfg.AddrOffset) % 65000
	c.callerEP = endpoint{ip: [4]byte{10, 1, byte((h + 1) >> 8), byte(h + 1)}, port: sipPort}
	c.calleeEP = endpoint{ip: [4]byte{10, 2, byte((h + 1) >> 8), byte(h + 1)}, port: sipPort}
	c.callerRTP = uint16(10000 + 2*(i%15000))
	c.calleeRTP = uint16(40000 + 2*(i%10000))
	c.fromTag, c.toTag = hex(), hex()
	for k := range c.branch {
		c.branch[k] = hex()
	}
	c.sessID = [2]uint32{rng.Uint32(), rng.Uint32()}

	// µs-aligned random delays in [lo, hi] milliseconds.
	ms := func(lo, hi int) int64 { return int64(lo*1000+rng.IntN((hi-lo)*1000+1)) * 1000 }
	add := func(k msgKind) { c.events = append(c.events, sipEvent{t, k}) }

	add(mInvite)
	t += ms(2, 20)
	add(m100)
	u := rng.Float64()
	switch {
	case u < g.cfg.Failed:
		c.state, c.hangup = stateFailed, "none"
		c.code = [...]int{486, 404, 503}[rng.IntN(3)]
		if c.code == 486 {
			t += ms(20, 200)
			add(m180)
			t += ms(500, 3000)
		} else {
			t += ms(10, 100)
		}
		add(mFinal)
		t += ms(1, 10)
		add(mAckFinal)
	case u < g.cfg.Failed+g.cfg.Cancelled:
		c.state, c.hangup, c.code = stateCancelled, "caller", 487
		t += ms(20, 200)
		add(m180)
		t += ms(1000, 6000)
		add(mCancel)
		t += ms(2, 20)
		add(m200Cancel)
		t += ms(1, 5)
		add(mFinal)
		t += ms(1, 10)
		add(mAckFinal)
	default:
		c.state, c.code = stateAnswered, 200
		c.answered = true
		t += ms(20, 200)
		add(m180)
		t += ms(1000, 4000)
		add(m200Invite)
		c.answer = t
		ack := t + ms(5, 30)
		c.events = append(c.events, sipEvent{ack, mAckOK})
		// Talk time ±20%, a whole number of packets.
		ptime := int64(g.cfg.Ptime)
		talk := float64(g.cfg.TalkTime) * (0.8 + 0.4*rng.Float64())
		count := int(talk / float64(ptime))
		if count < 2 {
			count = 2
		}
		pt := byte(0)
		if g.cfg.Codec == "PCMA" {
			pt = 8
		}
		shared := rng.IntN(10) == 0 // like sipp: one fixed SSRC both ways and across calls
		callerMedia := endpoint{c.callerEP.ip, c.callerRTP}
		calleeMedia := endpoint{c.calleeEP.ip, c.calleeRTP}
		starts := [2]int64{ack + 1000, t + 2000} // caller after its ACK, callee right after its 200
		conv := 0
		if g.aligned {
			// A source of its own, so the draws above and below stay as
			// they are without Audio.
			conv = rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(i)<<8|0xa0)).IntN(len(g.clips[0]))
		}
		for dir := range 2 {
			s := &stream{
				dir: dir, pt: pt, count: count, ptime: ptime,
				spp:   int(g.cfg.Ptime / (time.Second / sampleRate)),
				start: starts[dir],
				rng:   rand.New(rand.NewPCG(uint64(g.cfg.Seed)^0x9e3779b97f4a7c15, uint64(i)<<8|uint64(2+dir))),
				clip:  g.clips[dir],
			}
			s.src, s.dst = callerMedia, calleeMedia
			if dir == 1 {
				s.src, s.dst = calleeMedia, callerMedia
			}
			s.ssrc = rng.Uint32()
			if shared {
				s.ssrc = 0x5afe5afe
			}
			s.seq0 = uint16(rng.Uint32())
			if rng.IntN(5) == 0 {
				s.seq0 = uint16(65535 - rng.IntN(50)) // wraps within the first second
			}
			s.ts0 = rng.Uint32()
			s.off = rng.IntN(len(s.clip))
			if g.aligned {
				// Conversation time: the same clip position at the same
				// moment in both directions, counted from the 200 OK.
				s.off = (conv + int((s.start-c.answer)/int64(time.Second/sampleRate))) % len(s.clip)
			}
			s.rtcpNext = math.MaxInt64
			if g.cfg.RTCP {
				s.rtcpNext = s.start + rtcpInterval
			}
			c.streams[dir] = s
		}
		last := max(starts[0], starts[1]) + int64(count)*ptime
		c.byeByCaller = rng.IntN(2) == 0
		c.hangup = "callee"
		if c.byeByCaller {
			c.hangup = "caller"
		}
		t = last + ms(5, 50)
		add(mBye)
		t += ms(5, 30)
		add(m200Bye)
	}
	// The ACK of an answered call is scheduled out of order above; keep the
	// script sorted by time.
	for k := 1; k < len(c.events); k++ {
		for j := k; j > 0 && c.events[j].t < c.events[j-1].t; j-- {
			c.events[j], c.events[j-1] = c.events[j-1], c.events[j]
		}
	}
	c.end = c.events[len(c.events)-1].t
	if g.cfg.Proxy {
		// The last packet is the second hop of the last message.
		c.end += proxyDelay
	}
	return c
}

func (c *call) next() int64 {
	t := int64(math.MaxInt64)
	if c.ev < len(c.events) {
		t = c.events[c.ev].t
	}
	for _, s := range c.streams {
		if s != nil {
			t = min(t, s.next(), s.rtcpNext)
		}
	}
	return t
}

func (c *call) step(g *generator) {
	t := c.next()
	if c.ev < len(c.events) && c.events[c.ev].t == t {
		e := c.events[c.ev]
		c.ev++
		c.sendSIP(g, e)
		return
	}
	for _, s := range c.streams {
		if s == nil {
			continue
		}
		if s.next() == t {
			s.step(g)
			return
		}
		if s.rtcpNext == t {
			s.sendRTCP(g, c.streams[1-s.dir])
			return
		}
	}
}

// proxyDelay is how long the proxy takes to forward a message.
const proxyDelay = 500 * int64(time.Microsecond)

// sendSIP writes message e, on one hop or, with a proxy, on two.
func (c *call) sendSIP(g *generator, e sipEvent) {
	var fromCaller, request bool
	switch e.kind {
	case mInvite, mAckOK, mAckFinal, mCancel:
		fromCaller, request = true, true
	case mBye:
		fromCaller, request = c.byeByCaller, true
	case m200Bye:
		fromCaller = !c.byeByCaller
	}
	src, dst := c.calleeEP, c.callerEP
	if fromCaller {
		src, dst = c.callerEP, c.calleeEP
	}
	if !g.cfg.Proxy {
		g.sendUDP(e.t, src, dst, c.build(g, e.kind, false))
		return
	}
	// Requests gain the proxy's Via on the proxy → UAS hop; responses carry
	// it on the UAS → proxy hop and lose it on proxy → UAC.
	g.sendUDP(e.t, src, proxyEP, c.build(g, e.kind, !request))
	g.sendUDP(e.t+proxyDelay, proxyEP, dst, c.build(g, e.kind, request))
}

var proxyEP = endpoint{ip: [4]byte{10, 0, 0, 1}, port: sipPort}

// build renders message kind into g's scratch buffer.
func (c *call) build(g *generator, kind msgKind, proxyVia bool) []byte {
	b := g.scratch[:0]
	callerURI := "sip:" + c.caller + "@" + c.callerEP.host()
	calleeURI := "sip:" + c.called + "@" + c.calleeEP.host()
	callerNA := "<" + callerURI + ">"
	if c.disp != "" {
		callerNA = c.disp + " " + callerNA
	}
	from := callerNA + ";tag=" + c.fromTag
	to := "<" + calleeURI + ">"
	if kind != mInvite && kind != m100 && kind != mCancel {
		to += ";tag=" + c.toTag
	}
	viaHost, branch, cseq := c.callerEP.host(), c.branch[0], "1 INVITE"
	switch kind {
	case mAckOK:
		branch, cseq = c.branch[1], "1 ACK"
	case mAckFinal:
		cseq = "1 ACK"
	case mCancel, m200Cancel:
		cseq = "1 CANCEL"
	case mBye, m200Bye:
		branch, cseq = c.branch[2], "2 BYE"
		if !c.byeByCaller {
			viaHost, cseq = c.calleeEP.host(), "1 BYE"
			from, to = "<"+calleeURI+">;tag="+c.toTag, callerNA+";tag="+c.fromTag
		}
	}
	switch kind {
	case mInvite, mAckOK, mAckFinal, mCancel:
		method := map[msgKind]string{mInvite: "INVITE", mAckOK: "ACK", mAckFinal: "ACK", mCancel: "CANCEL"}[kind]
		b = append(b, method+" "+calleeURI+" SIP/2.0\r\n"...)
	case mBye:
		if c.byeByCaller {
			b = append(b, "BYE "+calleeURI+":5060 SIP/2.0\r\n"...)
		} else {
			b = append(b, "BYE "+callerURI+":5060 SIP/2.0\r\n"...)
		}
	case m100:
		b = appendStatusLine(b, 100)
	case m180:
		b = appendStatusLine(b, 180)
	case m200Invite, m200Cancel, m200Bye:
		b = appendStatusLine(b, 200)
	case mFinal:
		b = appendStatusLine(b, c.code)
	}
	if proxyVia {
		b = appendVia(b, proxyEP.host(), "px"+branch)
	}
	b = appendVia(b, viaHost, branch)
	isRequest := kind == mInvite || kind == mAckOK || kind == mAckFinal || kind == mCancel || kind == mBye
	if isRequest {
		b = appendHeader(b, "Max-Forwards", "70")
	}
	b = appendHeader(b, "From", from)
	b = appendHeader(b, "To", to)
	b = appendHeader(b, "Call-ID", c.callID)
	b = appendHeader(b, "CSeq", cseq)
	var body []byte
	switch kind {
	case mInvite:
		b = appendHeader(b, "Contact", "<"+callerURI+":5060>")
		b = appendHeader(b, "User-Agent", c.ua)
		b = appendHeader(b, "Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
		if g.cfg.LargeInvite {
			b = append(b, "X-Padding: "...)
			for range padLen {
				b = append(b, 'x')
			}
			b = append(b, "\r\n"...)
		}
		body = appendSDP(g.body[:0], c.caller, c.sessID[0], c.callerEP.host(), c.callerRTP, g.pt, g.cfg.Codec, int(g.cfg.Ptime/time.Millisecond))
	case m200Invite:
		b = appendHeader(b, "Contact", "<"+calleeURI+":5060>")
		b = appendHeader(b, "Server", "voipsensor-gen-uas/1.0")
		body = appendSDP(g.body[:0], c.called, c.sessID[1], c.calleeEP.host(), c.calleeRTP, g.pt, g.cfg.Codec, int(g.cfg.Ptime/time.Millisecond))
	case mBye:
		b = appendHeader(b, "User-Agent", c.ua)
	}
	b = appendBody(b, "application/sdp", body)
	g.scratch = b
	if body != nil {
		g.body = body
	}
	return b
}

// stream is one direction of RTP (RFC 3550) for an answered call.
type stream struct {
	dir        int
	src, dst   endpoint
	ssrc       uint32
	pt         byte
	seq0       uint16
	ts0        uint32
	start      int64 // nominal time of packet 0
	ptime      int64
	count      int // packets to send
	k          int // index of the next packet
	spp        int // samples per packet
	clip       clip
	off        int
	rng        *rand.Rand
	lastCap    int64
	held       [2][]byte // a reordered packet (and its duplicate) waiting for its successor
	nheld      int
	rtcpNext   int64
	sent       int
	written    int
	lost       int
	dups       int
	reordered  int
	rrExpected int // RTCP receiver-report state about this stream at the last report
	rrReceived int
}

func (s *stream) next() int64 {
	if s.k >= s.count {
		return math.MaxInt64
	}
	return s.start + int64(s.k)*s.ptime
}

// step sends packet k and applies the capture impairments to it.
func (s *stream) step(g *generator) {
	t := s.next()
	k := s.k
	s.k++
	s.sent++
	inner := k != 0 && k != s.count-1
	cfg := &g.cfg
	if inner && cfg.Loss > 0 && s.rng.Float64() < cfg.Loss {
		s.lost++
		return
	}
	capT := t
	if cfg.Jitter > 0 {
		capT += s.rng.Int64N(int64(cfg.Jitter) + 1)
	}
	capT = max(capT, s.lastCap) // jitter alone never reorders a stream
	s.lastCap = capT

	f := s.frame(g, k)
	var dup []byte
	if cfg.Duplicates > 0 && s.rng.Float64() < cfg.Duplicates {
		dup = g.clone(f)
		s.dups++
	}
	if inner && s.nheld == 0 && cfg.Reorder > 0 && s.rng.Float64() < cfg.Reorder {
		s.held[0], s.nheld = f, 1
		if dup != nil {
			s.held[1], s.nheld = dup, 2
		}
		s.reordered++
		return
	}
	if !inner && s.nheld > 0 {
		// Everything between the held packet and the last one was lost: the
		// held packet goes out in order after all, before the last packet,
		// so that every stream ends with its highest sequence number.
		s.release(g, capT)
		s.reordered--
	}
	g.push(capT, f)
	s.written++
	if dup != nil {
		g.push(capT, dup)
		s.written++
	}
	s.release(g, capT)
}

// release writes the held packet (and its duplicate) at capT.
func (s *stream) release(g *generator, capT int64) {
	for i := range s.nheld {
		g.push(capT, s.held[i])
		s.held[i] = nil
		s.written++
	}
	s.nheld = 0
}

// frame builds the complete Ethernet frame of RTP packet k.
func (s *stream) frame(g *generator, k int) []byte {
	f := g.getBuf(l2l4Len + 12 + s.spp)
	r := f[l2l4Len:]
	// RTP fixed header (RFC 3550 section 5.1):
	//  0                   1                   2                   3
	//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
	// |V=2|P|X|  CC   |M|     PT      |       sequence number         |
	// |                           timestamp                           |
	// |           synchronization source (SSRC) identifier            |
	r[0] = 0x80
	r[1] = s.pt
	if k == 0 {
		r[1] |= 0x80 // marker: start of a talkspurt
	}
	binary.BigEndian.PutUint16(r[2:], s.seq0+uint16(k))
	binary.BigEndian.PutUint32(r[4:], s.ts0+uint32(k*s.spp))
	binary.BigEndian.PutUint32(r[8:], s.ssrc)
	p := r[12:]
	pos := (s.off + k*s.spp) % len(s.clip)
	n := copy(p, s.clip[pos:])
	for n < len(p) {
		n += copy(p[n:], s.clip)
	}
	g.finishUDP(f, s.src, s.dst)
	return f
}

func (s *stream) lastSeq() uint16 { return s.seq0 + uint16(s.count-1) }
