package calls

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSortTableOrders checks sortTable, including its one-pass path for
// rows already in (or in reverse) start order, against an independent
// stable sort of the calls on (key, start time), for sources listed in
// start order, in reverse, with ties (which must keep source order) and
// shuffled, in both directions and on integer columns of both kinds.
func TestSortTableOrders(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	mk := func(n int, start func(i int) time.Duration) []Call {
		cs := make([]Call, n)
		for i := range cs {
			cs[i] = Call{CallRef: string(rune('a' + i%26)), Start: t0.Add(start(i)), LastSIPCode: 200 + r.IntN(3), VLAN: -1}
		}
		return cs
	}
	sources := map[string][]Call{
		"start order":   mk(300, func(i int) time.Duration { return time.Duration(i) * 700 * time.Millisecond }),
		"reverse order": mk(300, func(i int) time.Duration { return time.Duration(300-i) * 700 * time.Millisecond }),
		"ties":          mk(300, func(i int) time.Duration { return time.Duration(i/3) * time.Second }),
		"shuffled":      mk(300, func(int) time.Duration { return time.Duration(r.IntN(1000)) * time.Second }),
		"one":           mk(1, func(int) time.Duration { return 0 }),
	}
	now := t0.Add(time.Hour)
	for name, cs := range sources {
		for _, field := range []string{"calldate_num", "lastSIPresponseNum"} {
			for _, desc := range []bool{true, false} {
				tab := newListing(cs, now)
				if err := sortTable(tab, field, desc); err != nil {
					t.Fatal(err)
				}
				key := func(c *Call) int64 { return c.Start.Unix() }
				if field == "lastSIPresponseNum" {
					key = func(c *Call) int64 { return int64(c.LastSIPCode) }
				}
				want := make([]int, len(cs))
				for i := range want {
					want[i] = i
				}
				slices.SortStableFunc(want, func(i, j int) int {
					a, b := &cs[i], &cs[j]
					c := cmpInt(key(a), key(b))
					if c == 0 {
						c = a.Start.Compare(b.Start)
					}
					if desc {
						c = -c
					}
					return c
				})
				if !slices.Equal(tab.order, want) {
					t.Errorf("%s, %s desc=%v: order %v…, want %v…", name, field, desc, tab.order[:min(8, len(want))], want[:min(8, len(want))])
				}
			}
		}
	}
}
