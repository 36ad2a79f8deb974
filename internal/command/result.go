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
// [*Table], [Value] or [Gzip]. Transports switch on the concrete type.
type Result interface{ result() }

// Text is a plain text reply, sent as is.
type Text string

// Empty is a reply with no body.
type Empty struct{}

// Value wraps any JSON-marshalable value (usually a struct with json tags).
type Value struct{ V any }

// Gzip marks a result whose rendering the client asked to be compressed
// (the manager "zip":"yes" option). Transports that cannot compress render
// Result unchanged.
type Gzip struct{ Result Result }

func (Text) result()   {}
func (Empty) result()  {}
func (Value) result()  {}
func (Gzip) result()   {}
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

// Column is one table column. Cell, when non-nil, returns the column's
// cell of source row i alone; it serves sort keys and single lookups, and
// [Table.Cell] falls back to [Table.Row] without it.
type Column struct {
	Name string
	Cell func(row int) Cell
}

// Table is a row-oriented result: Len rows, each filled at once by Row
// (or written cell by cell by Emit, below).
// Row fills dst[:len(Columns)] with the cells of source row i; dst is
// owned by the caller and reused between rows, so rendering a table
// allocates nothing per cell. Order, when non-nil, maps displayed row i to
// source row Order[i] (sorting). Totals, when non-nil, is a
// JSON-marshalable summary (listcalls totals).
//
// Release, when non-nil, hands the rows' memory back to their source; a
// transport calls it (through [Release]) once it has rendered the table
// and reads it no more. A transport that never calls it merely leaves the
// memory to the garbage collector.
type Table struct {
	Columns []Column
	Len     int
	Order   []int
	Row     func(i int, dst []Cell)
	// Emit, when non-nil, writes the cells of source row i to w, one call
	// per column in column order. A table that has it may leave Row nil
	// ([Table.Fill] then collects what Emit writes). Transports with a hot
	// path (listcalls over 100,000 calls) encode straight from Emit, with
	// no Cell in between. Row and Emit must be safe for concurrent use:
	// a transport may render blocks of rows on several goroutines.
	Emit    func(i int, w CellWriter)
	Totals  any
	Release func()
}

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

// Release calls the Release hook of a [*Table] result (also inside
// [Gzip]) once; other results need nothing. A transport calls it after
// rendering res, and must not read res afterwards.
func Release(res Result) {
	switch r := res.(type) {
	case Gzip:
		Release(r.Result)
	case *Table:
		if f := r.Release; f != nil {
			r.Release = nil
			f()
		}
	}
}

// Fill fills dst[:len(t.Columns)] with displayed row i.
func (t *Table) Fill(i int, dst []Cell) {
	if t.Order != nil {
		i = t.Order[i]
	}
	t.row(i, dst[:len(t.Columns)])
}

// row fills dst with source row i, from Row or else from Emit.
func (t *Table) row(i int, dst []Cell) {
	if t.Row != nil {
		t.Row(i, dst)
		return
	}
	t.Emit(i, &cellSink{dst: dst})
}

// Cell returns the cell of displayed row i in column c. It is meant for
// occasional lookups: without a column accessor it fills the whole row.
func (t *Table) Cell(c, i int) Cell {
	if t.Order != nil {
		i = t.Order[i]
	}
	if get := t.Columns[c].Cell; get != nil {
		return get(i)
	}
	row := make([]Cell, len(t.Columns))
	t.row(i, row)
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
