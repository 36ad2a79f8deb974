package command

import (
	"encoding/json"
	"net/netip"
	"time"
)

// jsonCheck reports why s is not valid JSON, or nil.
func jsonCheck(s string) error {
	var raw json.RawMessage
	return json.Unmarshal([]byte(s), &raw)
}

// Result is the typed output of a command: one of [Text], [Empty],
// [*Table] or [Value]. Transports switch on the concrete type. A result
// whose memory goes back to its source once rendered implements
// [Releaser].
type Result interface{ result() }

// Text is a plain text reply, sent as is.
type Text string

// Empty is a reply with no body.
type Empty struct{}

// Value wraps any JSON-marshalable value (usually a struct with json tags).
type Value struct{ V any }

func (Text) result()   {}
func (Empty) result()  {}
func (Value) result()  {}
func (*Table) result() {}

// MarshalJSON encodes V.
func (v Value) MarshalJSON() ([]byte, error) { return json.Marshal(v.V) }

// Kind tells which field of a [Cell] holds its value.
type Kind uint8

// Cell kinds.
const (
	KindNull Kind = iota
	KindString
	KindInt
	KindFloat
	KindBool
	KindAddr
	KindTime
)

// Cell is one table value. It is a small tagged union so that building a
// table of many rows allocates nothing per cell.
//
// A KindTime cell keeps the time as Unix nanoseconds in Int; use
// [Cell.TimeValue]. The struct stays at 64 bytes so that column accessors
// returning it by value stay cheap.
type Cell struct {
	Kind  Kind
	Bool  bool
	Int   int64
	Float float64
	Str   string
	Addr  netip.Addr
}

// TimeValue returns the time of a KindTime cell (in the local zone).
func (c Cell) TimeValue() time.Time { return time.Unix(0, c.Int) }

// Null returns a null Cell.
func Null() Cell { return Cell{} }

// Str returns a string Cell.
func Str(s string) Cell { return Cell{Kind: KindString, Str: s} }

// Int returns an integer Cell.
func Int(n int64) Cell { return Cell{Kind: KindInt, Int: n} }

// Float returns a float Cell.
func Float(f float64) Cell { return Cell{Kind: KindFloat, Float: f} }

// Bool returns a boolean Cell.
func Bool(b bool) Cell { return Cell{Kind: KindBool, Bool: b} }

// Addr returns an address Cell, or a null Cell for the zero Addr.
func Addr(a netip.Addr) Cell {
	if !a.IsValid() {
		return Cell{}
	}
	return Cell{Kind: KindAddr, Addr: a}
}

// Time returns a time Cell, or a null Cell for the zero Time.
func Time(t time.Time) Cell {
	if t.IsZero() {
		return Cell{}
	}
	return Cell{Kind: KindTime, Int: t.UnixNano()}
}

// Any returns the cell as a plain Go value (nil, string, int64, float64,
// bool, netip.Addr or time.Time).
func (c Cell) Any() any {
	switch c.Kind {
	case KindString:
		return c.Str
	case KindInt:
		return c.Int
	case KindFloat:
		return c.Float
	case KindBool:
		return c.Bool
	case KindAddr:
		return c.Addr
	case KindTime:
		return c.TimeValue()
	}
	return nil
}

// Column is one table column.
type Column struct {
	Name string
}

// Table is a row-oriented result: Len rows of len(Columns) cells, in the
// order they are to be shown (a sorted table applies its order inside
// Emit). Emit writes the cells of row i to w, one call per column in
// column order; transports with a hot path (listcalls over 100,000 calls)
// encode straight from it, others collect the cells with [Table.Fill].
// Emit must be safe for concurrent use: a transport may render blocks of
// rows on several goroutines. Totals, when non-nil, is a JSON-marshalable
// summary (listcalls totals).
//
// A table whose rows borrow memory from their source (listcalls' pooled
// rows) registers the hand-back with [Table.OnRelease]; a transport calls
// [Release] once it has rendered the table. One that never does merely
// leaves the memory to the garbage collector.
type Table struct {
	Columns []Column
	Len     int
	Emit    func(i int, w CellWriter)
	Totals  any
	release func()
}

// OnRelease sets what [Table.Release] does.
func (t *Table) OnRelease(f func()) { t.release = f }

// Release hands the rows' memory back to their source, once; the table
// must not be read afterwards.
func (t *Table) Release() {
	if f := t.release; f != nil {
		t.release = nil
		f()
	}
}

// Releaser is a result whose memory goes back to its source once it has
// been rendered (see [Release]).
type Releaser interface{ Release() }

var _ Releaser = (*Table)(nil)

// CellWriter receives the cells of one row from [Table.Emit], in column
// order. Addr with the zero Addr and Time with the zero Time stand for
// null, as the [Addr] and [Time] constructors make them.
type CellWriter interface {
	Null()
	Str(s string)
	Int(n int64)
	Float(f float64)
	Bool(b bool)
	Addr(a netip.Addr)
	Time(t time.Time)
}

// WriteCell writes one Cell to w with the method of its kind: for tables
// whose rows are made of Cells.
func WriteCell(w CellWriter, c Cell) {
	switch c.Kind {
	case KindString:
		w.Str(c.Str)
	case KindInt:
		w.Int(c.Int)
	case KindFloat:
		w.Float(c.Float)
	case KindBool:
		w.Bool(c.Bool)
	case KindAddr:
		w.Addr(c.Addr)
	case KindTime:
		w.Time(c.TimeValue())
	default:
		w.Null()
	}
}

// cellSink is the CellWriter that [Table.Fill] hands to Emit: it stores
// the cells in order.
type cellSink struct {
	dst []Cell
	n   int
}

func (s *cellSink) put(c Cell) {
	s.dst[s.n] = c
	s.n++
}

func (s *cellSink) Null()             { s.put(Cell{}) }
func (s *cellSink) Str(v string)      { s.put(Str(v)) }
func (s *cellSink) Int(v int64)       { s.put(Int(v)) }
func (s *cellSink) Float(v float64)   { s.put(Float(v)) }
func (s *cellSink) Bool(v bool)       { s.put(Bool(v)) }
func (s *cellSink) Addr(v netip.Addr) { s.put(Addr(v)) }
func (s *cellSink) Time(v time.Time)  { s.put(Time(v)) }

// Release releases res if it is a [Releaser]; other results need
// nothing. A transport calls it after rendering res, and must not read res
// afterwards.
func Release(res Result) {
	if r, ok := res.(Releaser); ok {
		r.Release()
	}
}

// Fill fills dst[:len(t.Columns)] with the cells of row i.
func (t *Table) Fill(i int, dst []Cell) {
	t.Emit(i, &cellSink{dst: dst[:len(t.Columns)]})
}

// Cell returns the cell of row i in column c. It is meant for occasional
// lookups: it fills the whole row.
func (t *Table) Cell(c, i int) Cell {
	row := make([]Cell, len(t.Columns))
	t.Fill(i, row)
	return row[c]
}

// Names returns the column names.
func (t *Table) Names() []string {
	n := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		n[i] = c.Name
	}
	return n
}

// Rows materialises the table as plain Go values (see [Cell.Any]). It
// allocates per cell; transports with a hot path read cells directly.
func (t *Table) Rows() [][]any {
	rows := make([][]any, t.Len)
	cells := make([]Cell, len(t.Columns))
	for i := range rows {
		t.Fill(i, cells)
		r := make([]any, len(cells))
		for c := range cells {
			r[c] = cells[c].Any()
		}
		rows[i] = r
	}
	return rows
}

// MarshalJSON encodes the table as {"columns":[…],"rows":[[…]…],"totals":…}.
func (t *Table) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Columns []string `json:"columns"`
		Rows    [][]any  `json:"rows"`
		Totals  any      `json:"totals,omitempty"`
	}{t.Names(), t.Rows(), t.Totals})
}
