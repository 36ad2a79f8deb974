package calls

import (
	"context"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// inProgress is the name of the command listing the calls in progress
// with their SIP state, one row per call: what AMI renders as two
// channels per call (CoreShowChannels, Status, CoreStatus's call count),
// reading the columns by name.
const inProgress = "calls_in_progress"

// inProgressColumns are the calls_in_progress columns, in order.
// callreference is listcalls' ("0x" + hex), calldate the INVITE time (null
// when unknown), state "calling", "ringing" or "answered", duration the
// seconds since calldate on the sensor's clock.
var inProgressColumns = []command.Column{
	{Name: "callreference"}, {Name: "callid"}, {Name: "caller"}, {Name: "callername"},
	{Name: "called"}, {Name: "calldate"}, {Name: "state"}, {Name: "duration"},
}

// registerInProgress adds calls_in_progress to reg; [Register] calls it.
func registerInProgress(reg *command.Registry, g *group) {
	reg.Register(command.Command{
		Name: inProgress, Perm: command.PermCall,
		Doc: "calls in progress, oldest first, with their SIP state: callreference, callid, caller, callername, " +
			"called, calldate, state (calling, ringing, answered), duration (s)",
		Run: g.callsInProgress,
	})
}

// inProgressRow is one call of the calls_in_progress table, copied out of
// the source's rows so that those go back to it at once.
type inProgressRow struct {
	ref, callID, caller, callerName, called, state string
	start                                          time.Time
	duration                                       int64
}

func (g *group) callsInProgress(context.Context, *command.Request) (command.Result, error) {
	cs, err := g.calls(false)
	if err != nil {
		return nil, err
	}
	now := g.d.Now()
	rows := make([]inProgressRow, len(cs))
	for i := range cs {
		c := &cs[i]
		r := &rows[i]
		*r = inProgressRow{
			ref: c.CallRef, callID: c.CallID, caller: c.Caller, callerName: c.CallerName, called: c.Called,
			state: c.State, start: c.Start,
		}
		if !strings.HasPrefix(r.ref, "0x") {
			r.ref = "0x" + r.ref
		}
		if !c.Start.IsZero() {
			r.duration = secs(now.Sub(c.Start))
		}
	}
	g.recycle(cs)
	return &command.Table{Columns: inProgressColumns, Len: len(rows), Emit: func(i int, w command.CellWriter) {
		r := &rows[i]
		w.Str(r.ref)
		w.Str(r.callID)
		w.Str(r.caller)
		w.Str(r.callerName)
		w.Str(r.called)
		w.Time(r.start)
		w.Str(r.state)
		w.Int(r.duration)
	}}, nil
}
