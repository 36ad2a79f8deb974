package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

// testTable is a table of n rows whose cells all differ (strings, ints,
// floats, addresses), with a guard that reports any Emit call made after
// the table was released.
func testTable(n int, released *atomic.Bool, late *atomic.Int64) *command.Table {
	return &command.Table{
		Columns: []command.Column{{Name: "id"}, {Name: "name"}, {Name: "src_mosf1"}, {Name: "ip"}, {Name: "loss"}},
		Len:     n,
		Emit: func(i int, w command.CellWriter) {
			if released != nil && released.Load() {
				late.Add(1)
			}
			w.Int(int64(i))
			w.Str(fmt.Sprintf("call \"%d\"", i))
			w.Float(1 + float64(i%40)/10)
			w.Addr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
			w.Float(float64(i) / 7)
		},
	}
}

// TestWriteTableParallel: rendering a multi-block table with several
// renderers gives exactly the bytes of the one-goroutine rendering, for
// table sizes around the block boundaries, and the result is valid JSON
// with the rows in order.
func TestWriteTableParallel(t *testing.T) {
	for _, n := range []int{0, 1, blockRows - 1, blockRows, blockRows + 1, 7*blockRows + 13} {
		tab := testTable(n, nil, nil)
		var seq, par bytes.Buffer
		style := tableStyle{xform: listCallsXform, totals: []byte(`{"total":1}`), emptyNull: true, rowTail: listCallsTail}
		if err := writeTableN(&seq, tab, style, 1); err != nil {
			t.Fatal(err)
		}
		if err := writeTableN(&par, tab, style, 4); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(seq.Bytes(), par.Bytes()) {
			t.Fatalf("%d rows: parallel rendering (%d bytes) differs from sequential (%d bytes)", n, par.Len(), seq.Len())
		}
		var rows [][]any
		if err := json.Unmarshal(par.Bytes(), &rows); err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		if len(rows) != n+2 {
			t.Fatalf("%d rows: %d elements, want header, totals and %d rows", n, len(rows), n)
		}
		for i, r := range rows[2:] {
			if int(r[0].(float64)) != i || r[1] != fmt.Sprintf("call \"%d\"", i) || len(r) != 5+5 || r[9] != nil {
				t.Fatalf("%d rows: element %d is %v", n, i+2, r)
			}
		}
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errGone = errors.New("client gone")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errGone
	}
	f.n -= len(p)
	return len(p), nil
}

// TestWriteTableParallelWriteError: a writer that fails midway stops the
// rendering; writeTable returns the error only after every renderer has
// stopped, so the rows may be released at once (any later Row call is
// counted).
func TestWriteTableParallelWriteError(t *testing.T) {
	var released atomic.Bool
	var late atomic.Int64
	tab := testTable(50*blockRows, &released, &late)
	err := writeTableN(&failAfter{n: 300 << 10}, tab, tableStyle{}, 3)
	released.Store(true)
	if !errors.Is(err, errGone) {
		t.Fatalf("writeTable returned %v, want the write error", err)
	}
	if n := late.Load(); n != 0 {
		t.Errorf("%d rows rendered after writeTable returned", n)
	}
}
