package tableview

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/command/registers"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// Source presents the call table to the listcalls and listregisters
// command groups (it implements calls.Source, calls.Recycler and
// registers.Source). Safe for concurrent use.
type Source struct {
	t        *calltable.Table
	idSensor int
	pool     *rowPool // nil: every ActiveCalls allocates afresh
}

// NewSource returns the Source over t for a sensor with id idSensor (-1
// when unset); with pooled, the listing buffers are reused across
// requests (see [Source.Recycle]).
func NewSource(t *calltable.Table, idSensor int, pooled bool) Source {
	s := Source{t: t, idSensor: idSensor}
	if pooled {
		s.pool = new(rowPool)
	}
	return s
}

// ActiveCalls implements calls.Source: the calls in progress, as legacy
// listcalls shows them (ended calls still lingering are left out), in
// creation order: listcalls sorts them (on start time to the nanosecond
// as its secondary key, so ties are rare and the order is stable), and
// its default order (newest first) is then just this one reversed.
//
// It converts each call straight from the table under one pass of
// [calltable.Table.EachCallBatch] (no intermediate CallInfo), each batch
// shared among up to GOMAXPROCS goroutines (the work is mostly waiting
// for memory: 100,000 calls scattered over the heap), with the rows'
// streams, proxies and references carved out of a few shared slabs, so
// 100,000 calls cost a handful of large allocations instead of millions
// of small ones; with a pool, the buffers are reused across requests.
func (ts Source) ActiveCalls(withStreams bool) []calls.Call {
	var buf *rowBuf
	ts.t.EachCallBatch(func(n int, _ time.Time) {
		buf = ts.pool.get(n)
	}, func(cs []calltable.CallView) {
		buf.add(cs, ts.idSensor, withStreams)
	})
	// The callreferences are cut out of one string, built after the lock
	// is gone: one allocation instead of one per call. Each ref is
	// formatted once; its slot in refs then holds where its text ends.
	var sb strings.Builder
	sb.Grow(len(buf.refs) * 18)
	var tmp [18]byte
	for i, r := range buf.refs {
		sb.Write(appendRef(tmp[:0], r))
		buf.refs[i] = uint64(sb.Len())
	}
	all, start := sb.String(), uint64(0)
	for i, end := range buf.refs {
		buf.rows[i].CallRef = all[start:end]
		start = end
	}
	ts.pool.lend(buf)
	return buf.rows
}

// Recycle implements calls.Recycler: rows go back to the pool.
func (ts Source) Recycle(rows []calls.Call) { ts.pool.put(rows) }

// rowBuf is one reusable set of listcalls rows, with one converter part
// per goroutine that fills them.
type rowBuf struct {
	rows     []calls.Call
	refs     []uint64 // Ref of each row's call (ActiveCalls reuses it for offsets)
	parts    []rowPart
	lastUsed time.Time
}

// rowPart is one converting goroutine's scratch space and the slabs its
// rows' streams and proxies are carved from.
type rowPart struct {
	streams slab[calls.Stream]
	proxies slab[netip.Addr]
	stats   []rtp.StreamSummary
	sides   []calltable.Side
}

// maxParts bounds the goroutines converting one batch; minSplit is the
// fewest calls worth handing to another goroutine.
const (
	maxParts = 4
	minSplit = 256
)

// add converts the calls in progress among cs and appends their rows in
// cs's order. The batch is cut into contiguous runs, one per part; each
// part fills the row slots of its run, and the gaps that skipped calls
// leave are closed afterwards. Must hold the table's lock: called inside
// calltable.Table.EachCallBatch.
func (b *rowBuf) add(cs []calltable.CallView, idSensor int, withStreams bool) {
	base := len(b.rows)
	b.rows = slices.Grow(b.rows, len(cs))[:base+len(cs)]
	b.refs = slices.Grow(b.refs, len(cs))[:base+len(cs)]
	k := max(1, min(len(b.parts), len(cs)/minSplit))
	lo := func(j int) int { return j * len(cs) / k }
	var (
		kept [maxParts]int
		wg   sync.WaitGroup
	)
	for j := 1; j < k; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kept[j] = b.parts[j].convert(b.rows[base+lo(j):], b.refs[base+lo(j):], cs[lo(j):lo(j+1)], idSensor, withStreams)
		}()
	}
	kept[0] = b.parts[0].convert(b.rows[base:], b.refs[base:], cs[:lo(1)], idSensor, withStreams)
	wg.Wait()
	n := base + kept[0]
	for j := 1; j < k; j++ {
		if from := base + lo(j); from != n {
			copy(b.rows[n:], b.rows[from:from+kept[j]])
			copy(b.refs[n:], b.refs[from:from+kept[j]])
		}
		n += kept[j]
	}
	b.rows, b.refs = b.rows[:n], b.refs[:n]
}

// convert fills rows[0:] and refs[0:] with the calls in progress among cs
// and returns how many it filled. Must hold the table's lock (see add).
func (p *rowPart) convert(rows []calls.Call, refs []uint64, cs []calltable.CallView, idSensor int, withStreams bool) int {
	n := 0
	for _, c := range cs {
		if !c.State().InProgress() {
			continue
		}
		p.stats, p.sides = p.stats[:0], p.sides[:0]
		for i := range c.NumStreams() {
			st := c.Stream(i)
			p.stats = append(p.stats, st.Summary())
			p.sides = append(p.sides, st.Side())
		}
		fillCallRow(&rows[n], c, p.stats, p.sides, idSensor, withStreams, &p.streams, &p.proxies)
		refs[n] = c.Ref()
		n++
	}
	return n
}

// maxIdleRows bounds the row buffers a rowPool keeps; idleRowTTL drops a
// buffer nobody has used for that long (100,000 rows hold ~90 MB).
const (
	maxIdleRows = 2
	idleRowTTL  = time.Minute
)

// rowPool reuses ActiveCalls buffers between listcalls requests. Reusing
// them matters at 100,000 calls: freshly allocated memory costs a page
// fault per 4 KiB on first touch, more than the conversion itself. A nil
// pool allocates every time. Safe for concurrent use.
type rowPool struct {
	mu    sync.Mutex
	idle  []*rowBuf
	lent  map[*calls.Call]*rowBuf
	clock func() time.Time // nil: time.Now
}

// get returns an empty buffer for about n rows. Called with the table
// lock held, so it only takes the pool's own lock (never the other way
// round).
func (p *rowPool) get(n int) *rowBuf {
	var b *rowBuf
	if p != nil {
		p.mu.Lock()
		for i := len(p.idle) - 1; i >= 0; i-- {
			if cap(p.idle[i].rows) >= n {
				b = p.idle[i]
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
	}
	if b == nil {
		b = &rowBuf{rows: make([]calls.Call, 0, n+n/8+16)}
	}
	b.rows, b.refs = b.rows[:0], b.refs[:0]
	k := max(1, min(maxParts, runtime.GOMAXPROCS(0)))
	if len(b.parts) != k {
		b.parts = make([]rowPart, k)
	}
	for i := range b.parts {
		b.parts[i].streams.reset(2*n/k + 16)
		b.parts[i].proxies.reset(n/8/k + 16)
	}
	return b
}

// lend records b as handed out, so that put finds it by its rows.
func (p *rowPool) lend(b *rowBuf) {
	if p == nil || cap(b.rows) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lent == nil {
		p.lent = make(map[*calls.Call]*rowBuf)
	}
	p.lent[firstRow(b.rows)] = b
}

// put takes back rows lent by get/lend.
func (p *rowPool) put(rows []calls.Call) {
	if p == nil || cap(rows) == 0 {
		return
	}
	now := time.Now()
	if p.clock != nil {
		now = p.clock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := firstRow(rows)
	b, ok := p.lent[key]
	if !ok {
		return
	}
	delete(p.lent, key)
	b.lastUsed = now
	keep := p.idle[:0]
	for _, ib := range p.idle {
		if now.Sub(ib.lastUsed) < idleRowTTL {
			keep = append(keep, ib)
		}
	}
	p.idle = append(keep, b)
	if len(p.idle) > maxIdleRows {
		p.idle = p.idle[len(p.idle)-maxIdleRows:]
	}
}

// firstRow identifies a row slice by its first element's address
// (of the full capacity, so a re-sliced or compacted slice still maps).
func firstRow(rows []calls.Call) *calls.Call { return &rows[:1][0] }

// fillCallRow converts one call, with its Streams if withStreams. stats
// and sides are those of c.Streams, computed once. Must hold the table's lock
// (c belongs to the table).
func fillCallRow(row *calls.Call, c calltable.CallView, stats []rtp.StreamSummary, sides []calltable.Side,
	idSensor int, withStreams bool, streams *slab[calls.Stream], proxies *slab[netip.Addr]) {
	*row = calls.Call{
		CallID: c.CallID(),
		Start:  c.InviteTime(), Answer: c.AnswerTime(), LastPacket: c.LastPacket(),
		Caller: c.Caller(), Called: c.Called(), CallerName: c.CallerName(),
		CallerDomain: c.CallerDomain(), CalledDomain: c.CalledDomain(),
		CallerAgent: c.CallerUA(), CalledAgent: c.CalledUA(),
		SIPCallerIP: c.SIPCaller().Addr(), SIPCalledIP: c.SIPCalled().Addr(),
		SIPCallerPort: c.SIPCaller().Port(), SIPCalledPort: c.SIPCalled().Port(),
		State: c.State().String(), LastSIPCode: c.LastCode(),
		// The VLAN id as the sniffer reports it: 65534 (decode.NoVLAN)
		// for an untagged call, 0 for a priority tag.
		CallerCodec: -1, CalledCodec: -1, VLAN: int(c.VLAN()), SensorID: idSensor,
	}
	if id := c.SensorID(); id > 0 { // a HEP agent's own id_sensor
		row.SensorID = int(id)
	}
	if e := c.Encap(); e != nil && e.Src.IsValid() {
		row.CallerEncap, row.CalledEncap, row.EncapProto = e.Src, e.Dst, e.Proto
	}
	if n := c.NumLegs(); n > 1 {
		// The proxies as a set, in address order, as the sniffer lists them.
		ps := proxies.take(n - 1)
		for i := range ps {
			ps[i] = c.Leg(i + 1).Src.Addr()
		}
		slices.SortFunc(ps, netip.Addr.Compare)
		row.SIPProxies = slices.Compact(ps)
	}
	// The best stream of a side is the voice stream with the most packets
	// (received + lost), first one on a tie, as CallInfo.Best picks it.
	best := [3]int{-1, -1, -1}
	for i := range stats {
		sd := sides[i]
		if int(sd) >= len(best) || c.Stream(i).Kind(&stats[i]) != calltable.KindVoice {
			continue
		}
		if b := best[sd]; b < 0 || stats[i].Received+stats[i].Lost > stats[b].Received+stats[b].Lost {
			best[sd] = i
		}
	}
	if i := best[calltable.SideCaller]; i >= 0 {
		row.A = quality(&stats[i])
		row.CallerCodec = int(stats[i].PayloadType)
		f := c.Stream(i).Flow()
		row.RTPSrc, row.RTPDst = f.Src.Addr(), f.Dst.Addr()
	}
	if i := best[calltable.SideCallee]; i >= 0 {
		row.B = quality(&stats[i])
		row.CalledCodec = int(stats[i].PayloadType)
		if !row.RTPSrc.IsValid() {
			f := c.Stream(i).Flow()
			row.RTPSrc, row.RTPDst = f.Dst.Addr(), f.Src.Addr()
		}
	}
	if withStreams && len(stats) > 0 {
		ss := streams.take(len(stats))
		for i := range stats {
			st, sv := &stats[i], c.Stream(i)
			f := sv.Flow()
			ss[i] = calls.Stream{
				SrcIP: f.Src.Addr(), SrcPort: f.Src.Port(), DstIP: f.Dst.Addr(), DstPort: f.Dst.Port(),
				Start: unixMicro(st.Started, st.FirstNs), Last: unixMicro(st.Started, st.LastNs), SSRC: sv.SSRC(), Codec: int(st.PayloadType),
				Received: uint64(st.Received), Lost: uint64(st.Lost),
				JitterAvg: st.VMJitterAvgMS, JitterMax: st.VMJitterMaxMS,
			}
		}
		row.Streams = ss
	}
}

// slab hands out sub-slices of shared backing arrays (chunk elements
// each, or more for a larger request), so that many small slices cost one
// allocation. Each slice is capped at its length. reset makes the arrays
// reusable: slices handed out before must no longer be in use.
type slab[T any] struct {
	arrays [][]T
	cur    int
	chunk  int
}

func (s *slab[T]) reset(chunk int) {
	for i := range s.arrays {
		s.arrays[i] = s.arrays[i][:0]
	}
	s.cur, s.chunk = 0, chunk
}

func (s *slab[T]) take(n int) []T {
	for s.cur < len(s.arrays) && len(s.arrays[s.cur])+n > cap(s.arrays[s.cur]) {
		s.cur++
	}
	if s.cur == len(s.arrays) {
		s.arrays = append(s.arrays, make([]T, 0, max(n, s.chunk)))
	}
	a := s.arrays[s.cur]
	i := len(a)
	a = a[:i+n]
	s.arrays[s.cur] = a
	return a[i : i+n : i+n]
}

// unixMicro is the Unix microseconds of a stream time in ns (the
// sniffer's first_packet_time_us), 0 for a stream that never started.
func unixMicro(started bool, ns int64) int64 {
	if !started {
		return 0
	}
	return time.Unix(0, ns).UnixMicro()
}

// appendRef appends the callreference of ref ("0x" and lower-case hex).
func appendRef(b []byte, ref uint64) []byte {
	return strconv.AppendUint(append(b, "0x"...), ref, 16)
}

// TotalCalls implements calls.Counter: every call in memory.
func (ts Source) TotalCalls() int { return ts.t.Stats().Calls }

// CallRef renders a table reference as the manager API's callreference.
func CallRef(ref uint64) string { return fmt.Sprintf("0x%x", ref) }

// quality is one direction's listcalls figures: the counts exact, the
// rest the sniffer's live figures (rtp.VMLive, stats.avgjitter and
// maxjitter).
func quality(st *rtp.StreamSummary) calls.Quality {
	lv := &st.VMLive
	m := func(mult10 int) float64 { return float64(mult10) / 10 }
	q := calls.Quality{
		Present: true, Received: uint64(st.Received), Lost: uint64(st.Lost),
		LossLast10Sec: lv.LossLastPct,
		Jitter:        lv.JitterMS, JitterAvg: st.VMJitterAvgMS, JitterMax: st.VMJitterMaxMS,
		MOSF1: m(lv.MOSMult10[0]), MOSF2: m(lv.MOSMult10[1]), MOSAD: m(lv.MOSMult10[2]),
		MOSF1Avg: m(lv.MOSAvgMult10[0]), MOSF2Avg: m(lv.MOSAvgMult10[1]), MOSADAvg: m(lv.MOSAvgMult10[2]),
		MOSF1Min: m(lv.MOSMinMult10[0]), MOSF2Min: m(lv.MOSMinMult10[1]), MOSADMin: m(lv.MOSMinMult10[2]),
	}
	if den := st.Received + st.Lost; den > 0 {
		q.LossPct = 100 * float64(st.Lost) / float64(den)
	}
	return q
}

// Registrations implements registers.Source.
func (ts Source) Registrations() []registers.Registration {
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
			RRDAvg: float64(r.RRD) / float64(time.Millisecond), VLAN: -1,
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
