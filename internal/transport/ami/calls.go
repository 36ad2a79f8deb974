package ami

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// callRow is one call in progress as CoreShowChannels, Status and
// CoreStatus show it: a row of the calls_in_progress table.
type callRow struct {
	party
	callID, state string
	duration      time.Duration
}

// inProgressColumns are the calls_in_progress columns the channel actions
// read, found by name.
var inProgressColumns = [...]string{"callreference", "callid", "caller", "callername", "called", "calldate", "state", "duration"}

// callRows reads a calls_in_progress table. A row without its calldate
// takes now, as an event without its INVITE time takes its own.
func callRows(t *command.Table, now time.Time) ([]callRow, error) {
	var idx [len(inProgressColumns)]int
	for i, name := range inProgressColumns {
		idx[i] = -1
		for j, c := range t.Columns {
			if c.Name == name {
				idx[i] = j
				break
			}
		}
		if idx[i] < 0 {
			return nil, fmt.Errorf("%w: %s has no %s column", command.ErrInternal, inProgressCommand, name)
		}
	}
	cells := make([]command.Cell, len(t.Columns))
	rows := make([]callRow, t.Len)
	for i := range rows {
		t.Fill(i, cells)
		r := &rows[i]
		ref := strings.TrimPrefix(cells[idx[0]].Str, "0x")
		n, err := strconv.ParseUint(ref, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: callreference %q", command.ErrInternal, inProgressCommand, cells[idx[0]].Str)
		}
		r.ref = n
		r.callID = cells[idx[1]].Str
		r.caller, r.callerName, r.called = cells[idx[2]].Str, cells[idx[3]].Str, cells[idx[4]].Str
		if c := cells[idx[5]]; c.Kind == command.KindTime {
			r.start = c.TimeValue()
		} else {
			r.start = now
		}
		r.state = cells[idx[6]].Str
		r.duration = time.Duration(cells[idx[7]].Int) * time.Second
	}
	return rows, nil
}
