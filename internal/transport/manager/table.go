package manager

import (
	"io"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// blockRows is how many rows one rendering job covers: about 240 KB of
// listcalls JSON, large enough that the hand-over costs nothing next to
// the rendering and small enough to keep a few in flight per core.
const blockRows = 512

// tableStyle is how a table is written: the per-column transformation
// (nil: none), the totals element after the header (nil: none) and what
// comes before it, whether an empty string is sent as null (the sniffer's
// RecordArray tables), and what each row carries after its cells.
type tableStyle struct {
	xform     func(name string) cellXform
	totals    []byte
	totalsSep string // before the totals element; "" means ",["
	emptyNull bool
	rowTail   string
}

// tableEncoder renders the rows of one table in the legacy positional
// form, each row as ",[cell,…]".
type tableEncoder struct {
	t     *command.Table
	xf    []cellXform
	style *tableStyle
}

// rows appends rows [from, to) to b, encoded straight from Emit
// (cellEncoder), without filling Cells.
func (e *tableEncoder) rows(b []byte, from, to int) []byte {
	ce := cellEncoder{b: b, xf: e.xf, emptyNull: e.style.emptyNull}
	for r := from; r < to; r++ {
		ce.b = append(ce.b, ",["...)
		ce.col = 0
		e.t.Emit(r, &ce)
		ce.b = append(ce.b, e.style.rowTail...)
		ce.b = append(ce.b, ']')
	}
	return ce.b
}

// cellEncoder is the command.CellWriter that encodes one row's cells in
// the legacy encodings, separated by commas, each after its column's name
// when keys is set (an object's members).
type cellEncoder struct {
	b         []byte
	xf        []cellXform
	keys      []string
	emptyNull bool
	col       int
}

// next writes the separator (and key) before a cell and returns the
// cell's column transformation.
func (e *cellEncoder) next() cellXform {
	if e.col > 0 {
		e.b = append(e.b, ',')
	}
	if e.keys != nil {
		e.b = appendJSONString(e.b, e.keys[e.col])
		e.b = append(e.b, ':')
	}
	x := e.xf[e.col]
	e.col++
	return x
}

func (e *cellEncoder) Null()           { e.next(); e.b = append(e.b, "null"...) }
func (e *cellEncoder) Bool(v bool)     { e.next(); e.b = strconv.AppendBool(e.b, v) }
func (e *cellEncoder) Float(f float64) { e.b = appendFloat(e.b, f, e.next()) }

func (e *cellEncoder) Str(s string) {
	x := e.next()
	if s == "" && e.emptyNull {
		e.b = append(e.b, "null"...)
		return
	}
	if x == xfSlash {
		e.b = appendJSONStringSlash(e.b, s)
		return
	}
	e.b = appendJSONString(e.b, s)
}

func (e *cellEncoder) Int(n int64) {
	switch e.next() {
	case xfNoCodec:
		if n < 0 {
			n = 0
		}
	case xfPort:
		e.b = append(appendInt(append(e.b, '"'), n), '"')
		return
	}
	e.b = appendInt(e.b, n)
}

func (e *cellEncoder) Addr(a netip.Addr) {
	x := e.next()
	switch {
	case !a.IsValid():
		e.b = append(e.b, "null"...)
	case x == xfAddrText:
		e.b = append(a.AppendTo(append(e.b, '"')), '"')
	default:
		e.b = appendAddr(e.b, a)
	}
}

func (e *cellEncoder) Time(t time.Time) {
	e.next()
	if t.IsZero() {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = appendDateTime(e.b, time.Unix(0, t.UnixNano()))
}

// writeTable writes the legacy positional table JSON:
// [[names…],[totals]?,[cells…],…] with the legacy cell encodings (IPv4 as
// an unsigned number, times as local "YYYY-MM-DD HH:MM:SS", floats with 6
// decimals).
//
// A table of more than one block is rendered by up to GOMAXPROCS
// goroutines while this one writes the finished blocks in order (listcalls
// over 100,000 calls is ~47 MB of JSON: rendering it is most of the
// command's time). At most two blocks per renderer wait unwritten, so a
// slow reader holds back the rendering rather than piling up memory, and
// writeTable returns only when every renderer has stopped: after it the
// caller may release the table's rows.
func writeTable(w io.Writer, t *command.Table, style tableStyle) error {
	return writeTableN(w, t, style, runtime.GOMAXPROCS(0))
}

// writeTableN is writeTable with at most maxWorkers renderers.
func writeTableN(w io.Writer, t *command.Table, style tableStyle, maxWorkers int) error {
	e := &tableEncoder{t: t, xf: columnXforms(t, style.xform), style: &style}
	b := make([]byte, 0, 80<<10)
	b = append(b, "[["...)
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.Name)
	}
	b = append(b, ']')
	if style.totals != nil {
		if style.totalsSep == "" {
			style.totalsSep = ",["
		}
		b = append(b, style.totalsSep...)
		b = append(b, style.totals...)
		b = append(b, ']')
	}
	blocks := (t.Len + blockRows - 1) / blockRows
	if workers := min(maxWorkers, blocks); workers > 1 {
		if _, err := w.Write(b); err != nil {
			return err
		}
		if err := e.writeParallel(w, blocks, workers); err != nil {
			return err
		}
		_, err := w.Write([]byte{']'})
		return err
	}
	for from := 0; from < t.Len; from += blockRows / 4 {
		b = e.rows(b, from, min(from+blockRows/4, t.Len))
		if len(b) >= 64<<10 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, ']')
	_, err := w.Write(b)
	return err
}

// columnXforms returns each column's transformation (none without xform).
func columnXforms(t *command.Table, xform func(string) cellXform) []cellXform {
	xf := make([]cellXform, len(t.Columns))
	if xform != nil {
		for i, c := range t.Columns {
			xf[i] = xform(c.Name)
		}
	}
	return xf
}

// appendObjectRow appends row r of t as a JSON object, the column names as
// keys, in the legacy cell encodings.
func appendObjectRow(b []byte, t *command.Table, r int, xf []cellXform, emptyNull bool) []byte {
	keys := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		keys[i] = c.Name
	}
	ce := cellEncoder{b: append(b, '{'), xf: xf, keys: keys, emptyNull: emptyNull}
	t.Emit(r, &ce)
	return append(ce.b, '}')
}

// writeParallel renders blocks [0, blocks) with workers goroutines and
// writes them to w in order.
//
// Blocks are claimed in increasing order, each after taking a token from
// inFlight that the writer gives back once the block is written, so the
// lowest unwritten block is always claimed or claimable: no deadlock, and
// at most cap(inFlight) rendered blocks wait.
func (e *tableEncoder) writeParallel(w io.Writer, blocks, workers int) error {
	done := make([]chan []byte, blocks)
	for i := range done {
		done[i] = make(chan []byte, 1)
	}
	inFlight := make(chan struct{}, 2*workers)
	free := make(chan []byte, 2*workers)
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case inFlight <- struct{}{}:
				case <-stop:
					return
				}
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= blocks {
					<-inFlight
					return
				}
				var b []byte
				select {
				case b = <-free:
				default:
					b = make([]byte, 0, 256<<10)
				}
				done[i] <- e.rows(b[:0], i*blockRows, min((i+1)*blockRows, e.t.Len))
			}
		}()
	}
	var err error
	for i := 0; i < blocks && err == nil; i++ {
		b := <-done[i]
		_, err = w.Write(b)
		<-inFlight
		select {
		case free <- b:
		default:
		}
	}
	close(stop)
	wg.Wait()
	return err
}
