package registers

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/command"
)

func TestListRegistersFilter(t *testing.T) {
	t0 := time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC) // unix 1776160800
	src := fake{
		{ID: 1, FromNum: "100", UA: "Yealink T46", RRDAvg: 20, Expires: 3600, CallDate: t0, SIPCallerIP: netip.MustParseAddr("10.0.0.1"), SIPCallerPort: 5060, VLAN: -1},
		{ID: 2, FromNum: "1234", UA: "Linphone", RRDAvg: 250, Expires: 60, CallDate: t0.Add(time.Hour), SIPCallerIP: netip.MustParseAddr("192.168.5.9"), SIPCallerPort: 5070, VLAN: -1},
		{ID: 3, FromNum: "200", UA: "yealink W60", RRDAvg: 90, Expires: 600, CallDate: t0.Add(2 * time.Hour), SIPCallerIP: netip.MustParseAddr("10.0.1.7"), VLAN: -1},
	}
	reg := command.NewRegistry()
	Register(reg, Deps{Source: src})
	tests := []struct {
		opts    string
		want    []int64
		wantErr error
	}{
		{`{"state_from_le":1776160800}`, []int64{1}, nil},                      // t0 itself is included
		{`{"state_from_le":"1776164400"}`, []int64{1, 2}, nil},                 // t0 + 1 h
		{`{"rrd_ge":90}`, []int64{2, 3}, nil},                                  // 250 and 90 ms
		{`{"filter":{"ua":"%yealink%"}}`, []int64{1, 3}, nil},                  // case-insensitive wildcard
		{`{"filter":[{"from_num":"1%"},{"rrd_avg_lt":100}]}`, []int64{1}, nil}, // objects ANDed
		{`{"filter":{"from_num":"1__"}}`, []int64{1}, nil},                     // '_' is one character
		{`{"filter":{"from_num":"100,200"}}`, []int64{1, 3}, nil},              // alternatives
		{`{"filter":{"sipcallerip":"10.0.0.0/16"}}`, []int64{1, 3}, nil},
		{`{"filter":{"sipcallerip":"192.168.5.9"}}`, []int64{2}, nil},
		{`{"filter":{"expires_ge":600,"sipcallerport_lt":5061}}`, []int64{1, 3}, nil},
		{`{"filter":{"calldate_from":"2026-04-14 11:00:00"}}`, []int64{2, 3}, nil},
		{`{"filter":{"calldate_to":1776160800}}`, []int64{1}, nil},
		{`{"filter":{"caller_country":"CZ"}}`, []int64{1, 2, 3}, nil}, // unknown key ignored
		{`{"filter":{"sipcallerip":"not an ip"}}`, nil, command.ErrBadParam},
		{`{"rrd_ge":"fast"}`, nil, command.ErrBadParam},
		{`{"filter":{"expires_ge":"x"}}`, nil, command.ErrBadParam},
	}
	for _, tt := range tests {
		t.Run(tt.opts, func(t *testing.T) {
			res, err := reg.Run(context.Background(), &command.Request{Name: "listregisters", Args: []string{tt.opts}, Perm: command.PermAll})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
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
}
