package calltable

import (
	"fmt"
	"net/netip"
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
	tab.EachCall(nil, func(v CallView) {
		c := v.c
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

// TestEachCallWhileCallsEnd: calls ending while a listing is under way
// (enough of them to compact the creation-order list between two
// batches) never make it skip a call that stays, or visit one twice; the
// calls come out in creation order.
func TestEachCallWhileCallsEnd(t *testing.T) {
	tab := New(Config{Linger: time.Millisecond}, nil)
	const n = 3*eachCallBatch + 17
	loadCalls(tab, n)
	refOf := map[string]uint64{}
	tab.EachCall(nil, func(v CallView) { c := v.c; refOf[c.CallID] = c.Ref })

	// Two calls in three hang up (BYE, then the linger passes) while the
	// listing has let go of the lock after its first batch.
	ended := map[uint64]bool{}
	yields := 0
	eachCallYield = func() {
		if yields++; yields > 1 {
			return
		}
		for i := 0; i < n; i++ {
			if i%3 == 0 {
				continue
			}
			a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
			b := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
			id := fmt.Sprintf("%08x-%d@bench.example", i*2654435761, i)
			at := time.Second + time.Duration(i)*time.Microsecond
			feed(tab, []step{{at, netip.AddrPortFrom(a, 5060), netip.AddrPortFrom(b, 5060),
				sipMsg("BYE sip:2002@example.com SIP/2.0", id, "a1", "b1", 2, "BYE", "", "")}})
			ended[refOf[id]] = true
		}
		tab.Expire(t0.Add(3 * time.Second)) // past every linger, before any RTP timeout
	}
	defer func() { eachCallYield = nil }()
	var seen []uint64
	tab.EachCall(nil, func(v CallView) { c := v.c; seen = append(seen, c.Ref) })
	eachCallYield = nil

	if tab.order.gen == 0 {
		t.Fatal("the creation-order list was never compacted: the test did not exercise a compaction")
	}
	visited := map[uint64]bool{}
	for i, ref := range seen {
		if visited[ref] {
			t.Errorf("call %d visited twice", ref)
		}
		visited[ref] = true
		if i > 0 && ref <= seen[i-1] {
			t.Errorf("call %d listed after call %d: not creation order", ref, seen[i-1])
		}
	}
	if yields == 0 {
		t.Error("the listing never let go of the lock")
	}
	for id, ref := range refOf {
		if !ended[ref] && !visited[ref] {
			t.Errorf("call %s (ref %d) stayed in the table but was skipped", id, ref)
		}
	}
	if got := tab.Stats().Calls; got != n-len(ended) {
		t.Errorf("%d calls left, want %d", got, n-len(ended))
	}
	left := 0
	tab.EachCall(nil, func(v CallView) {
		c := v.c
		left++
		if ended[c.Ref] {
			t.Errorf("ended call %d still listed", c.Ref)
		}
	})
	if left != n-len(ended) {
		t.Errorf("second listing: %d calls, want %d", left, n-len(ended))
	}
}
