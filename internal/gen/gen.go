package gen

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"
)

// Summary describes what [Generate] wrote.
type Summary struct {
	Packets       int           // pcap records (IP fragments count separately)
	Bytes         int64         // bytes of the pcap file, headers included
	Calls         int           // calls written to the truth
	Streams       int           // RTP streams
	Registrations int           // REGISTER transactions
	Duration      time.Duration // capture time of the last record minus the first
}

// entity is a call, a registration or a spawner of either: something that
// emits packets at nominal times.
type entity interface {
	next() int64 // nominal time of the next event, math.MaxInt64 when finished
	step(g *generator)
}

type entry struct {
	t  int64
	id uint64
	e  entity
}

type pkt struct {
	t   int64 // capture time, ns after start
	seq uint64
	f   []byte
}

type generator struct {
	cfg    Config
	encBuf []byte // scratch for Config.Encap
	start  time.Time
	pt     byte
	clips  [2]clip
	// aligned: both clips are Audio of equal length, read at the same
	// conversation time in both directions.
	aligned bool

	w    *bufio.Writer
	hdr  [16]byte
	err  error
	ents heap[entry]
	pend heap[pkt]
	free [][]byte
	seq  uint64
	ipID uint16
	eid  uint64

	scratch []byte // SIP text under construction
	body    []byte // SDP under construction

	truth     *bufio.Writer
	nextTruth int
	doneCalls map[int]*callTruth
	regs      []*regTruth

	sum        Summary
	first      int64
	last       int64
	wroteCalls bool
}

// Generate writes the pcap described by cfg to pcapOut and its ground truth
// (schema in the package documentation) to truthOut. truthOut may be
// io.Discard. Memory use is bounded by the number of concurrent calls and
// the jitter window, not by the number of packets.
func Generate(cfg Config, pcapOut io.Writer, truthOut io.Writer) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	g := &generator{cfg: cfg, doneCalls: map[int]*callTruth{}}
	g.start = cfg.Start
	if g.start.IsZero() {
		g.start = defaultStart
	}
	g.start = g.start.UTC()
	if !cfg.Nanosecond {
		g.start = g.start.Truncate(time.Microsecond)
	}
	if cfg.Codec == "PCMA" {
		g.pt = 8
	}
	g.clips = clips(&cfg)
	g.aligned = len(cfg.Audio[0]) > 0 && len(cfg.Audio[1]) > 0
	g.ents.less = func(a, b *entry) bool { return a.t < b.t || a.t == b.t && a.id < b.id }
	g.pend.less = func(a, b *pkt) bool { return a.t < b.t || a.t == b.t && a.seq < b.seq }
	g.w = bufio.NewWriterSize(pcapOut, 256<<10)
	g.truth = bufio.NewWriterSize(truthOut, 64<<10)
	g.write(pcapFileHeader(cfg.Nanosecond))
	g.sum.Bytes = 24

	// Arrival process.
	cps := cfg.CPS
	if cps == 0 {
		mean := 2.6 + cfg.TalkTime.Seconds() // ≈ setup and ringing plus talk
		cps = float64(cfg.Concurrency) / mean
	}
	if cfg.Calls > 0 {
		g.schedule(&callSpawner{n: cfg.Calls, gap: 1e9 / cps, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0xca11))})
	}
	if cfg.Registrations > 0 {
		span := cfg.TalkTime.Seconds() + float64(cfg.Calls)/cps
		if cfg.Calls == 0 {
			span = float64(cfg.Registrations) * 0.1
		}
		g.schedule(&regSpawner{n: cfg.Registrations, gap: span * 1e9 / float64(cfg.Registrations),
			rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x4e9))})
	}
	io.WriteString(g.truth, "{\"calls\":[")

	for g.ents.len() > 0 && g.err == nil {
		e := g.ents.pop()
		g.flush(e.t)
		e.e.step(g)
		if t := e.e.next(); t != math.MaxInt64 {
			g.ents.push(entry{t: t, id: e.id, e: e.e})
		} else if c, ok := e.e.(*call); ok {
			g.finishCall(c)
		}
	}
	g.flush(math.MaxInt64)
	if g.err != nil {
		return g.sum, g.err
	}
	if err := g.w.Flush(); err != nil {
		return g.sum, fmt.Errorf("gen: writing pcap: %w", err)
	}
	io.WriteString(g.truth, "\n],\n\"registrations\":[")
	for i, r := range g.regs {
		if i > 0 {
			g.truth.WriteByte(',')
		}
		g.truth.WriteString("\n")
		b, _ := json.Marshal(r)
		g.truth.Write(b)
	}
	fmt.Fprintf(g.truth, "\n],\n\"packets\":%d}\n", g.sum.Packets)
	if err := g.truth.Flush(); err != nil {
		return g.sum, fmt.Errorf("gen: writing truth: %w", err)
	}
	g.sum.Registrations = len(g.regs)
	if g.sum.Packets > 0 {
		g.sum.Duration = time.Duration(g.last - g.first)
	}
	return g.sum, nil
}

func (g *generator) schedule(e entity) {
	g.eid++
	g.ents.push(entry{t: e.next(), id: g.eid, e: e})
}

// flush writes every pending packet captured at or before t: no entity can
// produce an earlier one any more, since capture times never precede nominal
// times and the entity heap is at t.
func (g *generator) flush(t int64) {
	for g.pend.len() > 0 && g.pend.s[0].t <= t {
		p := g.pend.pop()
		g.record(p.t, p.f)
		g.putBuf(p.f)
	}
}

func (g *generator) record(t int64, f []byte) {
	if g.cfg.Encap != "" {
		g.encBuf = encapsulate(g.encBuf, f, g.cfg.Encap, uint32(g.sum.Packets))
		f = g.encBuf
	}
	if g.sum.Packets == 0 {
		g.first = t
	}
	g.last = t
	g.sum.Packets++
	g.sum.Bytes += int64(16 + len(f))
	abs := g.start.UnixNano() + t
	sub := uint32(abs % 1e9)
	if !g.cfg.Nanosecond {
		sub /= 1000
	}
	binary.LittleEndian.PutUint32(g.hdr[0:], uint32(abs/1e9))
	binary.LittleEndian.PutUint32(g.hdr[4:], sub)
	binary.LittleEndian.PutUint32(g.hdr[8:], uint32(len(f)))
	binary.LittleEndian.PutUint32(g.hdr[12:], uint32(len(f)))
	g.write(g.hdr[:])
	g.write(f)
}

func (g *generator) write(b []byte) {
	if g.err != nil {
		return
	}
	if _, err := g.w.Write(b); err != nil {
		g.err = fmt.Errorf("gen: writing pcap: %w", err)
	}
}

// push queues frame f for capture at t.
func (g *generator) push(t int64, f []byte) {
	g.seq++
	g.pend.push(pkt{t: t, seq: g.seq, f: f})
}

func (g *generator) getBuf(n int) []byte {
	if k := len(g.free); k > 0 {
		b := g.free[k-1]
		g.free = g.free[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n, max(n, 256))
}

func (g *generator) putBuf(b []byte) {
	if cap(b) <= 2048 && len(g.free) < 4096 {
		g.free = append(g.free, b)
	}
}

func (g *generator) clone(f []byte) []byte {
	b := g.getBuf(len(f))
	copy(b, f)
	return b
}

// finishUDP fills the Ethernet, IPv4 and UDP headers of f, whose UDP payload
// starts at f[l2l4Len:]. The datagram must fit the MTU.
func (g *generator) finishUDP(f []byte, src, dst endpoint) {
	putUDP(f, src, dst)
	g.ipID++
	putEthIPv4(f, src.ip, dst.ip, len(f)-ethHeaderLen-ipHeaderLen, g.ipID, 0, false)
}

// sendUDP queues payload as one UDP datagram at t, split into IPv4 fragments
// of at most the MTU when it is larger (RFC 791: fragment data in multiples
// of 8 bytes, MF on all but the last).
func (g *generator) sendUDP(t int64, src, dst endpoint, payload []byte) {
	f := make([]byte, l2l4Len+len(payload)) // SIP is rare: no pooling needed
	copy(f[l2l4Len:], payload)
	if len(f)-ethHeaderLen <= mtu {
		g.finishUDP(f, src, dst)
		g.push(t, f)
		return
	}
	putUDP(f, src, dst)
	g.ipID++
	ipPayload := f[ethHeaderLen+ipHeaderLen:]
	const chunk = (mtu - ipHeaderLen) &^ 7
	for off := 0; off < len(ipPayload); off += chunk {
		end := min(off+chunk, len(ipPayload))
		fr := make([]byte, ethHeaderLen+ipHeaderLen+end-off)
		copy(fr[ethHeaderLen+ipHeaderLen:], ipPayload[off:end])
		putEthIPv4(fr, src.ip, dst.ip, end-off, g.ipID, off, end < len(ipPayload))
		g.push(t, fr)
	}
}

// callSpawner starts calls with exponential gaps (a Poisson process).
type callSpawner struct {
	n, i int
	t    int64
	gap  float64 // mean gap in ns
	rng  *rand.Rand
}

func (s *callSpawner) next() int64 {
	if s.i >= s.n {
		return math.MaxInt64
	}
	return s.t
}

func (s *callSpawner) step(g *generator) {
	g.schedule(newCall(g, s.i, s.t))
	s.i++
	d := int64(s.rng.ExpFloat64()*s.gap/1000) * 1000 // µs-aligned
	s.t += max(d, 1000)
}

// callTruth is one call of the ground truth.
type callTruth struct {
	CallID      string        `json:"callid"`
	Caller      string        `json:"caller"`
	Called      string        `json:"called"`
	CallerName  string        `json:"caller_name"`
	CallerIP    string        `json:"caller_ip"`
	CalleeIP    string        `json:"callee_ip"`
	Start       string        `json:"start"`
	Answer      *string       `json:"answer"`
	End         string        `json:"end"`
	LastSIPCode int           `json:"last_sip_code"`
	HangupBy    string        `json:"hangup_by"`
	State       string        `json:"state"`
	Codec       string        `json:"codec"`
	Streams     []streamTruth `json:"streams"`
}

type streamTruth struct {
	Direction   string `json:"direction"`
	Src         string `json:"src"`
	Dst         string `json:"dst"`
	SSRC        uint32 `json:"ssrc"`
	PayloadType int    `json:"payload_type"`
	Sent        int    `json:"sent"`
	Written     int    `json:"written"`
	Lost        int    `json:"lost"`
	Duplicates  int    `json:"duplicates"`
	Reordered   int    `json:"reordered"`
	FirstSeq    int    `json:"first_seq"`
	LastSeq     int    `json:"last_seq"`
}

type regTruth struct {
	User     string `json:"user"`
	Contact  string `json:"contact"`
	State    string `json:"state"`
	Expires  int    `json:"expires"`
	Attempts int    `json:"attempts"`
}

func (g *generator) timeString(t int64) string {
	return g.start.Add(time.Duration(t)).Format(time.RFC3339Nano)
}

// finishCall records c's truth and writes every finished call in start order.
func (g *generator) finishCall(c *call) {
	ct := &callTruth{
		CallID: c.callID, Caller: c.caller, Called: c.called, CallerName: c.name,
		CallerIP: c.callerEP.host(), CalleeIP: c.calleeEP.host(),
		Start: g.timeString(c.start), End: g.timeString(c.end),
		LastSIPCode: c.code, HangupBy: c.hangup, State: c.state, Codec: g.cfg.Codec,
		Streams: []streamTruth{},
	}
	if c.answered {
		a := g.timeString(c.answer)
		ct.Answer = &a
	}
	for _, s := range c.streams {
		if s == nil {
			continue
		}
		ct.Streams = append(ct.Streams, streamTruth{
			Direction: [2]string{"caller_to_callee", "callee_to_caller"}[s.dir],
			Src:       s.src.String(), Dst: s.dst.String(), SSRC: s.ssrc, PayloadType: int(s.pt),
			Sent: s.sent, Written: s.written, Lost: s.lost, Duplicates: s.dups, Reordered: s.reordered,
			FirstSeq: int(s.seq0), LastSeq: int(s.lastSeq()),
		})
		g.sum.Streams++
	}
	g.doneCalls[c.index] = ct
	for {
		ct, ok := g.doneCalls[g.nextTruth]
		if !ok {
			return
		}
		delete(g.doneCalls, g.nextTruth)
		g.nextTruth++
		if g.wroteCalls {
			g.truth.WriteByte(',')
		}
		g.wroteCalls = true
		g.truth.WriteByte('\n')
		b, _ := json.Marshal(ct)
		g.truth.Write(b)
		g.sum.Calls++
	}
}

// heap is a binary min-heap ordered by less.
type heap[T any] struct {
	s    []T
	less func(a, b *T) bool
}

func (h *heap[T]) len() int { return len(h.s) }

func (h *heap[T]) push(x T) {
	h.s = append(h.s, x)
	i := len(h.s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(&h.s[i], &h.s[p]) {
			break
		}
		h.s[i], h.s[p] = h.s[p], h.s[i]
		i = p
	}
}

func (h *heap[T]) pop() T {
	top := h.s[0]
	n := len(h.s) - 1
	h.s[0] = h.s[n]
	var zero T
	h.s[n] = zero
	h.s = h.s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(&h.s[r], &h.s[l]) {
			m = r
		}
		if !h.less(&h.s[m], &h.s[i]) {
			break
		}
		h.s[i], h.s[m] = h.s[m], h.s[i]
		i = m
	}
	return top
}
