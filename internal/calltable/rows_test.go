package calltable

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestEachCallYields: a listing of more calls than one batch lets the
// packet path in between batches, visits every call that stays in the
// table exactly once, and is safe against concurrent feeding (run with
// -race).
func TestEachCallYields(t *testing.T) {
	tab := New(Config{}, nil)
	const n = 3*eachCallBatch + 17
	loadCalls(tab, n)

	var wg sync.WaitGroup
	wg.Add(1)
	fed := 0
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			id := fmt.Sprintf("late-%d", i)
			feed(tab, []step{{time.Second + time.Duration(i)*time.Millisecond, alice, bob,
				sipMsg("INVITE sip:2002@example.com SIP/2.0", id, "a", "", 1, "INVITE", "", sdpBody(aliceRT))}})
			fed++
		}
	}()
	seen := map[uint64]int{}
	tab.EachCall(nil, func(c *Call) {
		seen[c.Ref]++
		if len(seen)%500 == 0 {
			time.Sleep(time.Millisecond) // give the feeder a chance mid-batch too
		}
	})
	wg.Wait()
	for ref, k := range seen {
		if k != 1 {
			t.Errorf("call %d visited %d times", ref, k)
		}
	}
	if len(seen) < n || len(seen) > n+fed {
		t.Errorf("visited %d calls, want between %d and %d", len(seen), n, n+fed)
	}
}
