package calls

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/command"
)

func TestCallsInProgress(t *testing.T) {
	src := testCalls()
	src[0].CallRef, src[0].CallerName, src[0].State = "0x1f", "Alice", "answered"
	src[1].State = "ringing"
	src[2].State, src[2].Start = "calling", time.Time{}
	reg := newReg(src)
	res, err := run(t, reg, inProgress)
	if err != nil {
		t.Fatal(err)
	}
	tb, ok := res.(*command.Table)
	if !ok {
		t.Fatalf("result %T, want *command.Table", res)
	}
	wantCols := []string{"callreference", "callid", "caller", "callername", "called", "calldate", "state", "duration"}
	if diff := cmp.Diff(wantCols, tb.Names()); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	// Now is t0 + 1 min; the rows keep the source's order.
	want := [][]any{
		{"0x1f", "one@x", "1001", "Alice", "+420123", t0, "answered", int64(60)},
		{"0xb2", "two@x", "2002", "", "1500", t0.Add(10 * time.Second), "ringing", int64(50)},
		{"0xc3", "three@y", "1999", "", "700", nil, "calling", int64(0)},
	}
	got := tb.Rows()
	for _, r := range got {
		if tm, ok := r[5].(time.Time); ok {
			r[5] = tm.UTC()
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	// It reads call data: the call class, as listcalls.
	_, err = reg.Run(context.Background(), &command.Request{Name: inProgress, Perm: command.PermSystem | command.PermReporting})
	if !errors.Is(err, command.ErrPermission) {
		t.Errorf("without the call class: err = %v, want ErrPermission", err)
	}
}
