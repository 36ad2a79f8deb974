package calls

import (
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

type colDef struct {
	name string
	get  func(c *Call, now time.Time) command.Cell
}

// qualityCols makes the columns of one direction's MOS (sniffer order:
// each buffer's current, average and minimum), prefix src_ (A) or dst_ (B).
func mosCols(prefix string, side func(c *Call) *Quality) []colDef {
	var cs []colDef
	for _, m := range []struct {
		name          string
		cur, avg, min func(q *Quality) float64
	}{
		{"mosf1", func(q *Quality) float64 { return q.MOSF1 }, func(q *Quality) float64 { return q.MOSF1Avg }, func(q *Quality) float64 { return q.MOSF1Min }},
		{"mosf2", func(q *Quality) float64 { return q.MOSF2 }, func(q *Quality) float64 { return q.MOSF2Avg }, func(q *Quality) float64 { return q.MOSF2Min }},
		{"mosAD", func(q *Quality) float64 { return q.MOSAD }, func(q *Quality) float64 { return q.MOSADAvg }, func(q *Quality) float64 { return q.MOSADMin }},
	} {
		cs = append(cs,
			colDef{prefix + m.name, func(c *Call, _ time.Time) command.Cell { return mosCur(m.cur)(side(c)) }},
			colDef{prefix + m.name + "_avg", func(c *Call, _ time.Time) command.Cell { return fl(m.avg)(side(c)) }},
			colDef{prefix + m.name + "_min", func(c *Call, _ time.Time) command.Cell { return fl(m.min)(side(c)) }},
		)
	}
	return cs
}

// jitterCols makes one direction's current, average and maximum jitter.
func jitterCols(prefix string, side func(c *Call) *Quality) []colDef {
	return []colDef{
		{prefix + "jitter", func(c *Call, _ time.Time) command.Cell {
			return fl(func(q *Quality) float64 { return q.Jitter })(side(c))
		}},
		{prefix + "jitter_avg", func(c *Call, _ time.Time) command.Cell {
			return fl(func(q *Quality) float64 { return q.JitterAvg })(side(c))
		}},
		{prefix + "jitter_max", func(c *Call, _ time.Time) command.Cell {
			return fl(func(q *Quality) float64 { return q.JitterMax })(side(c))
		}},
	}
}

func sideA(c *Call) *Quality { return &c.A }
func sideB(c *Call) *Quality { return &c.B }

// qualityCols makes the src_ (A) and dst_ (B) columns of one metric,
// interleaved (the counts and losses, as the sniffer orders them).
func qualityCols(suffix string, get func(q *Quality) command.Cell) []colDef {
	return []colDef{
		{"src_" + suffix, func(c *Call, _ time.Time) command.Cell { return get(&c.A) }},
		{"dst_" + suffix, func(c *Call, _ time.Time) command.Cell { return get(&c.B) }},
	}
}

func mosCur(f func(q *Quality) float64) func(q *Quality) command.Cell {
	return func(q *Quality) command.Cell {
		if !q.Present {
			return command.Float(4.5) // the sniffer's 45 for a direction without RTP
		}
		return command.Float(f(q))
	}
}

func present(f func(q *Quality) command.Cell) func(q *Quality) command.Cell {
	return func(q *Quality) command.Cell {
		if !q.Present {
			return command.Null()
		}
		return f(q)
	}
}

func fl(f func(q *Quality) float64) func(q *Quality) command.Cell {
	return present(func(q *Quality) command.Cell { return command.Float(f(q)) })
}

func un(f func(q *Quality) uint64) func(q *Quality) command.Cell {
	return present(func(q *Quality) command.Cell { return command.Int(int64(f(q))) })
}

func str(f func(c *Call) string) func(c *Call, _ time.Time) command.Cell {
	return func(c *Call, _ time.Time) command.Cell { return command.Str(f(c)) }
}

func addr(f func(c *Call) netip.Addr) func(c *Call, _ time.Time) command.Cell {
	return func(c *Call, _ time.Time) command.Cell { return command.Addr(f(c)) }
}

func null(*Call, time.Time) command.Cell { return command.Null() }

func secs(d time.Duration) int64 { return int64(math.Max(0, d.Seconds())) }

// Columns lists the listcalls column names in wire order (legacy
// calltable.cpp callFields[], without custom headers).
func Columns() []string {
	out := make([]string, len(columns))
	for i, c := range columns {
		out[i] = c.name
	}
	return out
}

// columns is the listcalls column order, the sniffer's callFields[]
// (calltable.cpp, without custom headers). MOS cells are floats on the 1–5
// scale; the manager renderer turns them into the sniffer's integers ×10.
var columns = func() []colDef {
	cs := []colDef{
		{"callreference", func(c *Call, _ time.Time) command.Cell {
			if strings.HasPrefix(c.CallRef, "0x") {
				return command.Str(c.CallRef)
			}
			return command.Str("0x" + c.CallRef)
		}},
		{"callid", str(func(c *Call) string { return c.CallID })},
		{"calldate", func(c *Call, _ time.Time) command.Cell { return command.Time(c.Start) }},
		{"calldate_num", func(c *Call, _ time.Time) command.Cell { return command.Int(c.Start.Unix()) }},
		{"lastpackettime", func(c *Call, _ time.Time) command.Cell {
			if c.LastPacket.IsZero() {
				return command.Int(c.Start.Unix())
			}
			return command.Int(c.LastPacket.Unix())
		}},
		{"duration", func(c *Call, now time.Time) command.Cell { return command.Int(secs(now.Sub(c.Start))) }},
		{"connect_duration", func(c *Call, now time.Time) command.Cell {
			if c.Answer.IsZero() {
				return command.Int(0)
			}
			return command.Int(secs(now.Sub(c.Answer)))
		}},
		{"caller", str(func(c *Call) string { return c.Caller })},
		{"called", str(func(c *Call) string { return c.Called })},
		{"caller_country", null},
		{"called_country", null},
		{"caller_international", international},
		{"called_international", international},
		{"callername", str(func(c *Call) string { return c.CallerName })},
		{"callerdomain", str(func(c *Call) string { return c.CallerDomain })},
		{"calleddomain", str(func(c *Call) string { return c.CalledDomain })},
		{"calleragent", str(func(c *Call) string { return c.CallerAgent })},
		{"calledagent", str(func(c *Call) string { return c.CalledAgent })},
		{"callerip", addr(func(c *Call) netip.Addr { return c.SIPCallerIP })},
		{"calledip", addr(func(c *Call) netip.Addr { return c.SIPCalledIP })},
		{"callerip_country", null},
		{"calledip_country", null},
		{"callerip_encaps", func(c *Call, _ time.Time) command.Cell { return encapCell(c.CallerEncap) }},
		{"calledip_encaps", func(c *Call, _ time.Time) command.Cell { return encapCell(c.CalledEncap) }},
		{"callerip_encaps_prot", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.encapProto())) }},
		{"calledip_encaps_prot", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.encapProto())) }},
		{"sipproxies", func(c *Call, _ time.Time) command.Cell { return proxiesCell(c.SIPProxies) }},
		{"lastSIPresponseNum", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.LastSIPCode)) }},
		{"rtp_src", addr(func(c *Call) netip.Addr { return c.RTPSrc })},
		{"rtp_dst", addr(func(c *Call) netip.Addr { return c.RTPDst })},
		{"rtp_src_country", null},
		{"rtp_dst_country", null},
		{"callercodec", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.CallerCodec)) }},
		{"calledcodec", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.CalledCodec)) }},
	}
	cs = append(cs, mosCols("src_", sideA)...)
	cs = append(cs, mosCols("dst_", sideB)...)
	cs = append(cs, jitterCols("src_", sideA)...)
	cs = append(cs, jitterCols("dst_", sideB)...)
	cs = append(cs, qualityCols("received", un(func(q *Quality) uint64 { return q.Received }))...)
	cs = append(cs, qualityCols("loss_abs", un(func(q *Quality) uint64 { return q.Lost }))...)
	cs = append(cs, qualityCols("loss", fl(func(q *Quality) float64 { return q.LossPct }))...)
	cs = append(cs, qualityCols("loss_last10sec", fl(func(q *Quality) float64 { return q.LossLast10Sec }))...)
	cs = append(cs,
		colDef{"id_sensor", func(c *Call, _ time.Time) command.Cell {
			if c.SensorID <= 0 {
				return command.Int(-1)
			}
			return command.Int(int64(c.SensorID))
		}},
		colDef{"vlan", func(c *Call, _ time.Time) command.Cell {
			if c.VLAN < 0 {
				return command.Null()
			}
			return command.Int(int64(c.VLAN))
		}},
	)
	return cs
}()

// international is caller_international and called_international. The
// sniffer asks its country-prefix tables (loaded from the GUI's database)
// whether a number is local; without them every number is international,
// and voipsensor has no such tables.
func international(*Call, time.Time) command.Cell { return command.Bool(true) }

// encapCell is callerip_encaps or calledip_encaps: the tunnel's outer
// address, 0 without a tunnel (the sniffer's unset address).
func encapCell(a netip.Addr) command.Cell {
	if !a.IsValid() {
		return command.Int(0)
	}
	return command.Addr(a)
}

// encapProto is the *_encaps_prot value: 255 without a tunnel.
func (c *Call) encapProto() uint8 {
	if !c.CallerEncap.IsValid() && !c.CalledEncap.IsValid() {
		return NoEncapProto
	}
	return c.EncapProto
}

// emitQuality writes the quality cells of a row in column order: the MOS
// of A then of B, the jitter of A then of B, then counts and losses with
// A and B interleaved (the same values as the column accessors). It is
// spelled out cell by cell: it writes half of each listcalls row, and
// accessor closures cost a third of the rendering here.
func emitQuality(a, b *Quality, w command.CellWriter) {
	for _, q := range []*Quality{a, b} {
		mosCell(w, q, q.MOSF1)
		floatCell(w, q, q.MOSF1Avg)
		floatCell(w, q, q.MOSF1Min)
		mosCell(w, q, q.MOSF2)
		floatCell(w, q, q.MOSF2Avg)
		floatCell(w, q, q.MOSF2Min)
		mosCell(w, q, q.MOSAD)
		floatCell(w, q, q.MOSADAvg)
		floatCell(w, q, q.MOSADMin)
	}
	for _, q := range []*Quality{a, b} {
		floatCell(w, q, q.Jitter)
		floatCell(w, q, q.JitterAvg)
		floatCell(w, q, q.JitterMax)
	}
	countCell(w, a, a.Received)
	countCell(w, b, b.Received)
	countCell(w, a, a.Lost)
	countCell(w, b, b.Lost)
	floatCell(w, a, a.LossPct)
	floatCell(w, b, b.LossPct)
	floatCell(w, a, a.LossLast10Sec)
	floatCell(w, b, b.LossLast10Sec)
}

// mosCell writes a current MOS: 4.5 for a direction without RTP (the
// sniffer's 45).
func mosCell(w command.CellWriter, q *Quality, v float64) {
	if !q.Present {
		v = 4.5
	}
	w.Float(v)
}

// floatCell writes v, or null for a direction without RTP.
func floatCell(w command.CellWriter, q *Quality, v float64) {
	if q.Present {
		w.Float(v)
	} else {
		w.Null()
	}
}

// countCell writes v, or null for a direction without RTP.
func countCell(w command.CellWriter, q *Quality, v uint64) {
	if q.Present {
		w.Int(int64(v))
	} else {
		w.Null()
	}
}

// emitRow writes every column of c to w in one pass: the hot path of
// listcalls rendering. It must agree with the per-column accessors in
// columns; TestFillRowMatchesColumns checks that.
func emitRow(c *Call, now time.Time, w command.CellWriter) {
	if strings.HasPrefix(c.CallRef, "0x") {
		w.Str(c.CallRef)
	} else {
		w.Str("0x" + c.CallRef)
	}
	w.Str(c.CallID)
	w.Time(c.Start)
	start := c.Start.Unix()
	w.Int(start)
	if c.LastPacket.IsZero() {
		w.Int(start)
	} else {
		w.Int(c.LastPacket.Unix())
	}
	w.Int(secs(now.Sub(c.Start)))
	if c.Answer.IsZero() {
		w.Int(0)
	} else {
		w.Int(secs(now.Sub(c.Answer)))
	}
	w.Str(c.Caller)
	w.Str(c.Called)
	w.Null()     // caller_country
	w.Null()     // called_country
	w.Bool(true) // caller_international
	w.Bool(true) // called_international
	w.Str(c.CallerName)
	w.Str(c.CallerDomain)
	w.Str(c.CalledDomain)
	w.Str(c.CallerAgent)
	w.Str(c.CalledAgent)
	w.Addr(c.SIPCallerIP)
	w.Addr(c.SIPCalledIP)
	w.Null() // callerip_country
	w.Null() // calledip_country
	for _, a := range [2]netip.Addr{c.CallerEncap, c.CalledEncap} {
		if a.IsValid() {
			w.Addr(a)
		} else {
			w.Int(0)
		}
	}
	p := int64(c.encapProto())
	w.Int(p)
	w.Int(p)
	emitProxies(c.SIPProxies, w)
	w.Int(int64(c.LastSIPCode))
	w.Addr(c.RTPSrc)
	w.Addr(c.RTPDst)
	w.Null() // rtp_src_country
	w.Null() // rtp_dst_country
	w.Int(int64(c.CallerCodec))
	w.Int(int64(c.CalledCodec))
	emitQuality(&c.A, &c.B, w)
	if c.SensorID <= 0 {
		w.Int(-1)
	} else {
		w.Int(int64(c.SensorID))
	}
	if c.VLAN < 0 {
		w.Null()
	} else {
		w.Int(int64(c.VLAN))
	}
}

func emitProxies(ps []netip.Addr, w command.CellWriter) {
	if len(ps) == 0 {
		w.Str("")
		return
	}
	w.Str(proxiesCell(ps).Str)
}

// proxiesCell is the sipproxies cell: the proxy addresses,
// comma-separated ("" without proxies; the manager sends that as null).
func proxiesCell(ps []netip.Addr) command.Cell {
	if len(ps) == 0 {
		return command.Str("")
	}
	var b []byte
	for i, a := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = a.AppendTo(b)
	}
	return command.Str(string(b))
}

// listing is a listcalls table under construction: the rows (not copied),
// the capture time durations run to, and the order they are shown in.
type listing struct {
	calls []Call
	now   time.Time
	order []int // displayed row → index in calls; nil: source order
}

func newListing(calls []Call, now time.Time) *listing { return &listing{calls: calls, now: now} }

// cell returns the cell of source row r in column c (sort keys).
func (l *listing) cell(c, r int) command.Cell { return columns[c].get(&l.calls[r], l.now) }

// table is the listing as a command.Table; rows are written by emitRow,
// in the listing's order.
func (l *listing) table() *command.Table {
	t := &command.Table{Columns: make([]command.Column, len(columns)), Len: len(l.calls)}
	for i, def := range columns {
		t.Columns[i] = command.Column{Name: def.name}
	}
	if l.order == nil {
		t.Emit = func(i int, w command.CellWriter) { emitRow(&l.calls[i], l.now, w) }
	} else {
		t.Emit = func(i int, w command.CellWriter) { emitRow(&l.calls[l.order[i]], l.now, w) }
	}
	return t
}
