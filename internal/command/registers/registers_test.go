package registers

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/command"
)

type fake []Registration

func (f fake) Registrations() []Registration { return append([]Registration(nil), f...) }

func TestListRegisters(t *testing.T) {
	src := fake{
		{ID: 1, FromNum: "100", State: StateOK, SIPCallerIP: netip.MustParseAddr("10.0.0.1"), VLAN: -1},
		{ID: 2, FromNum: "300", State: StateFailed, VLAN: -1},
		{ID: 3, FromNum: "200", State: StateExpired, VLAN: 5},
	}
	reg := command.NewRegistry()
	Register(reg, Deps{Source: src})
	tests := []struct {
		opts    string
		want    []int64
		wantErr error
	}{
		{"", []int64{1, 2, 3}, nil},
		{`{}`, []int64{1, 2, 3}, nil},
		{`{"states":"OK,Expired"}`, []int64{1, 3}, nil},
		{`{"states":"failed"}`, []int64{2}, nil},
		{`{"sort_field":"from_num","sort_dir":"desc"}`, []int64{2, 3, 1}, nil},
		{`{"sort_field":"from_num","limit":2}`, []int64{1, 3}, nil},
		{`{"limit":"1"}`, []int64{1}, nil},
		{`{"states":"Bogus"}`, nil, command.ErrBadParam},
		{`{"limit":[1]}`, []int64{1, 2, 3}, nil},
		{`{`, []int64{1, 2, 3}, nil}, // not JSON: ignored, as the sniffer ignores it
		{`s`, []int64{1, 2, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.opts, func(t *testing.T) {
			var args []string
			if tt.opts != "" {
				args = []string{tt.opts}
			}
			res, err := reg.Run(context.Background(), &command.Request{Name: "listregisters", Args: args, Perm: command.PermAll})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			tb := res.(*command.Table)
			var got []int64
			for i := 0; i < tb.Len; i++ {
				got = append(got, tb.Cell(0, i).Int)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
		})
	}
	res, _ := reg.Run(context.Background(), &command.Request{Name: "totalregisters", Perm: command.PermAll})
	if res != command.Text("3") {
		t.Errorf("totalregisters = %#v, want 3", res)
	}
	if c := Columns(); c[0] != "ID" || c[23] != "state" || len(c) != 33 {
		t.Errorf("Columns() = %v", c)
	}
}

// TestListRegistersMapOrder: without sort_field the rows come in the
// sniffer's register map order: To number, To domain, then digest user
// name where both have one, all without case; ID last.
func TestListRegistersMapOrder(t *testing.T) {
	src := fake{
		{ID: 1, ToNum: "bob", ToDomain: "b.example", VLAN: -1},
		{ID: 2, ToNum: "Alice", ToDomain: "z.example", VLAN: -1},
		{ID: 3, ToNum: "bob", ToDomain: "A.example", VLAN: -1},
		{ID: 4, ToNum: "alice", ToDomain: "z.example", DigestUsername: "b", VLAN: -1},
		{ID: 5, ToNum: "alice", ToDomain: "z.example", DigestUsername: "A", VLAN: -1},
	}
	reg := command.NewRegistry()
	Register(reg, Deps{Source: src})
	res, err := reg.Run(context.Background(), &command.Request{Name: "listregisters", Perm: command.PermAll})
	if err != nil {
		t.Fatal(err)
	}
	tb := res.(*command.Table)
	var got []int64
	for i := 0; i < tb.Len; i++ {
		got = append(got, tb.Cell(0, i).Int)
	}
	// 2 has no digest user name, so against 4 and 5 the IDs decide;
	// between 4 and 5 their user names do.
	if diff := cmp.Diff([]int64{2, 5, 4, 3, 1}, got); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}
