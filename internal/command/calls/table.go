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

// qualityCol makes the src_ (A) and dst_ (B) columns of one metric.
func qualityCols(suffix string, get func(q *Quality) command.Cell) []colDef {
	return []colDef{
		{"src_" + suffix, func(c *Call, _ time.Time) command.Cell { return get(&c.A) }},
		{"dst_" + suffix, func(c *Call, _ time.Time) command.Cell { return get(&c.B) }},
	}
}

func mosCur(f func(q *Quality) float64) func(q *Quality) command.Cell {
	return func(q *Quality) command.Cell {
		if !q.Present {
			return command.Float(4.5) // legacy: current MOS defaults to 4.5
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

// columns is the listcalls column order. MOS cells are floats on the 1–5
// scale; the manager renderer turns them into legacy integers ×10.
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
		{"caller_international", func(c *Call, _ time.Time) command.Cell { return command.Bool(strings.HasPrefix(c.Caller, "+")) }},
		{"called_international", func(c *Call, _ time.Time) command.Cell { return command.Bool(strings.HasPrefix(c.Called, "+")) }},
		{"callername", str(func(c *Call) string { return c.CallerName })},
		{"callerdomain", str(func(c *Call) string { return c.CallerDomain })},
		{"calleddomain", str(func(c *Call) string { return c.CalledDomain })},
		{"calleragent", str(func(c *Call) string { return c.CallerAgent })},
		{"calledagent", str(func(c *Call) string { return c.CalledAgent })},
		{"callerip", addr(func(c *Call) netip.Addr { return c.SIPCallerIP })},
		{"calledip", addr(func(c *Call) netip.Addr { return c.SIPCalledIP })},
		{"callerip_country", null},
		{"calledip_country", null},
		{"callerip_encaps", null},
		{"calledip_encaps", null},
		{"callerip_encaps_prot", null},
		{"calledip_encaps_prot", null},
		{"sipproxies", func(c *Call, _ time.Time) command.Cell { return proxiesCell(c.SIPProxies) }},
		{"lastSIPresponseNum", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.LastSIPCode)) }},
		{"rtp_src", addr(func(c *Call) netip.Addr { return c.RTPSrc })},
		{"rtp_dst", addr(func(c *Call) netip.Addr { return c.RTPDst })},
		{"rtp_src_country", null},
		{"rtp_dst_country", null},
		{"callercodec", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.CallerCodec)) }},
		{"calledcodec", func(c *Call, _ time.Time) command.Cell { return command.Int(int64(c.CalledCodec)) }},
	}
	cs = append(cs, qualityCols("mosf1", mosCur(func(q *Quality) float64 { return q.MOSF1 }))...)
	cs = append(cs, qualityCols("mosf2", mosCur(func(q *Quality) float64 { return q.MOSF2 }))...)
	cs = append(cs, qualityCols("mosAD", mosCur(func(q *Quality) float64 { return q.MOSAD }))...)
	cs = append(cs, qualityCols("mosf1_avg", fl(func(q *Quality) float64 { return q.MOSF1Avg }))...)
	cs = append(cs, qualityCols("mosf2_avg", fl(func(q *Quality) float64 { return q.MOSF2Avg }))...)
	cs = append(cs, qualityCols("mosAD_avg", fl(func(q *Quality) float64 { return q.MOSADAvg }))...)
	cs = append(cs, qualityCols("mosf1_min", fl(func(q *Quality) float64 { return q.MOSF1Min }))...)
	cs = append(cs, qualityCols("mosf2_min", fl(func(q *Quality) float64 { return q.MOSF2Min }))...)
	cs = append(cs, qualityCols("mosAD_min", fl(func(q *Quality) float64 { return q.MOSADMin }))...)
	cs = append(cs, qualityCols("jitter", fl(func(q *Quality) float64 { return q.Jitter }))...)
	cs = append(cs, qualityCols("jitter_avg", fl(func(q *Quality) float64 { return q.JitterAvg }))...)
	cs = append(cs, qualityCols("jitter_max", fl(func(q *Quality) float64 { return q.JitterMax }))...)
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

// nQuality is the number of per-direction quality metrics; the columns
// interleave them as src_x, dst_x.
const nQuality = 16

// qualityCells fills the cells of one direction's quality metrics, in
// column order (the same values as the qualityCols accessors): metric k
// goes to d[2k], so the caller interleaves src_ and dst_ by slicing.
func qualityCells(q *Quality, d []command.Cell) {
	_ = d[2*(nQuality-1)]
	if !q.Present {
		mos := command.Float(4.5)
		d[0], d[2], d[4] = mos, mos, mos
		for k := 3; k < nQuality; k++ {
			d[2*k] = command.Cell{}
		}
		return
	}
	d[0], d[2], d[4] = command.Float(q.MOSF1), command.Float(q.MOSF2), command.Float(q.MOSAD)
	d[6], d[8], d[10] = command.Float(q.MOSF1Avg), command.Float(q.MOSF2Avg), command.Float(q.MOSADAvg)
	d[12], d[14], d[16] = command.Float(q.MOSF1Min), command.Float(q.MOSF2Min), command.Float(q.MOSADMin)
	d[18], d[20], d[22] = command.Float(q.Jitter), command.Float(q.JitterAvg), command.Float(q.JitterMax)
	d[24], d[26] = command.Int(int64(q.Received)), command.Int(int64(q.Lost))
	d[28], d[30] = command.Float(q.LossPct), command.Float(q.LossLast10Sec)
}

// fillRow writes every column of c into d (len(columns) cells) in one
// pass: the hot path of listcalls rendering. It must agree with the
// per-column accessors in columns; TestFillRowMatchesColumns checks that.
func fillRow(c *Call, now time.Time, d []command.Cell) {
	_ = d[len(columns)-1]
	ref := c.CallRef
	if !strings.HasPrefix(ref, "0x") {
		ref = "0x" + ref
	}
	d[0] = command.Str(ref)
	d[1] = command.Str(c.CallID)
	d[2] = command.Time(c.Start)
	start := c.Start.Unix()
	d[3] = command.Int(start)
	if c.LastPacket.IsZero() {
		d[4] = command.Int(start)
	} else {
		d[4] = command.Int(c.LastPacket.Unix())
	}
	d[5] = command.Int(secs(now.Sub(c.Start)))
	if c.Answer.IsZero() {
		d[6] = command.Int(0)
	} else {
		d[6] = command.Int(secs(now.Sub(c.Answer)))
	}
	d[7], d[8] = command.Str(c.Caller), command.Str(c.Called)
	d[9], d[10] = command.Cell{}, command.Cell{}
	d[11] = command.Bool(strings.HasPrefix(c.Caller, "+"))
	d[12] = command.Bool(strings.HasPrefix(c.Called, "+"))
	d[13], d[14], d[15] = command.Str(c.CallerName), command.Str(c.CallerDomain), command.Str(c.CalledDomain)
	d[16], d[17] = command.Str(c.CallerAgent), command.Str(c.CalledAgent)
	d[18], d[19] = command.Addr(c.SIPCallerIP), command.Addr(c.SIPCalledIP)
	for i := 20; i < 26; i++ {
		d[i] = command.Cell{}
	}
	d[26] = proxiesCell(c.SIPProxies)
	d[27] = command.Int(int64(c.LastSIPCode))
	d[28], d[29] = command.Addr(c.RTPSrc), command.Addr(c.RTPDst)
	d[30], d[31] = command.Cell{}, command.Cell{}
	d[32], d[33] = command.Int(int64(c.CallerCodec)), command.Int(int64(c.CalledCodec))
	qualityCells(&c.A, d[34:])
	qualityCells(&c.B, d[35:])
	i := 34 + 2*nQuality
	if c.SensorID <= 0 {
		d[i] = command.Int(-1)
	} else {
		d[i] = command.Int(int64(c.SensorID))
	}
	if c.VLAN < 0 {
		d[i+1] = command.Cell{}
	} else {
		d[i+1] = command.Int(int64(c.VLAN))
	}
}

// proxiesCell is the sipproxies cell: the proxy addresses, comma-separated.
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

// newTable builds the listcalls table over calls (not copied). Rows are
// filled by fillRow; the per-column accessors serve sort keys.
func newTable(calls []Call, now time.Time) *command.Table {
	t := &command.Table{
		Columns: make([]command.Column, len(columns)),
		Len:     len(calls),
		Row:     func(i int, dst []command.Cell) { fillRow(&calls[i], now, dst) },
	}
	for i, def := range columns {
		get := def.get
		t.Columns[i] = command.Column{Name: def.name, Cell: func(r int) command.Cell { return get(&calls[r], now) }}
	}
	return t
}
