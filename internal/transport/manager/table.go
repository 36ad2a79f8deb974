package manager

import (
	"io"
	"runtime"
	"sync"

	"github.com/voipsensor/voipsensor/internal/command"
)

// blockRows is how many rows one rendering job covers: about 240 KB of
// listcalls JSON, large enough that the hand-over costs nothing next to
// the rendering and small enough to keep a few in flight per core.
const blockRows = 512

// tableEncoder renders the rows of one table in the legacy positional
// form, each row as ",[cell,…]".
type tableEncoder struct {
	t  *command.Table
	xf []cellXform
}

// rows appends displayed rows [from, to) to b; row is scratch space of
// len(t.Columns) cells.
func (e *tableEncoder) rows(b []byte, from, to int, row []command.Cell) []byte {
	for r := from; r < to; r++ {
		e.t.Fill(r, row)
		b = append(b, ",["...)
		for c := range row {
			if c > 0 {
				b = append(b, ',')
			}
			b = appendCell(b, &row[c], e.xf[c])
		}
		b = append(b, ']')
	}
	return b
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
func writeTable(w io.Writer, t *command.Table, xform func(string) cellXform, totals []byte) error {
	return writeTableN(w, t, xform, totals, runtime.GOMAXPROCS(0))
}

// writeTableN is writeTable with at most maxWorkers renderers.
func writeTableN(w io.Writer, t *command.Table, xform func(string) cellXform, totals []byte, maxWorkers int) error {
	e := &tableEncoder{t: t, xf: make([]cellXform, len(t.Columns))}
	b := make([]byte, 0, 80<<10)
	b = append(b, "[["...)
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.Name)
		if xform != nil {
			e.xf[i] = xform(c.Name)
		}
	}
	b = append(b, ']')
	if totals != nil {
		b = append(b, ",["...)
		b = append(b, totals...)
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
	row := make([]command.Cell, len(t.Columns))
	for from := 0; from < t.Len; from += blockRows / 4 {
		b = e.rows(b, from, min(from+blockRows/4, t.Len), row)
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
			row := make([]command.Cell, len(e.t.Columns))
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
				done[i] <- e.rows(b[:0], i*blockRows, min((i+1)*blockRows, e.t.Len), row)
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
