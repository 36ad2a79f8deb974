package calltable

import "time"

// eachCallBatch is how many calls EachCall visits per hold of the table
// lock; between batches the lock is released so that the packet path never
// waits for more than a few milliseconds behind a big listing.
const eachCallBatch = 2048

// eachCallYield, when set (by tests), runs while EachCall has let go of
// the lock between two batches.
var eachCallYield func()

// EachCall calls fn for every call in the table, in creation order
// (ascending Ref, which is also InviteTime order for calls seen live), with
// the table lock held; now is the table's capture time. It is
// [Table.EachCallBatch] one call at a time.
func (t *Table) EachCall(start func(n int, now time.Time), fn func(c CallView)) {
	t.EachCallBatch(start, func(cs []CallView) {
		for _, c := range cs {
			fn(c)
		}
	})
}

// EachCallBatch calls fn with successive batches of the table's calls, in
// creation order (ascending Ref, which is also InviteTime order for calls
// seen live), with the table lock held; now is the table's capture time.
// The calls are handed out as read-only views, never as the table's own
// *Call. It serves listings that build their own rows in one pass, without the
// intermediate [CallInfo] copies a [Table.Snapshot] makes (listcalls over
// 100,000 calls), and lets them share a batch among goroutines: fn may read
// the calls from several goroutines as long as all of them are done when
// it returns. fn must copy what it needs and return quickly: it must not
// retain cs, the calls or anything reachable from them, block, or call any
// method of t. n is the number of calls in the table at the start, for
// preallocation.
//
// The lock is released between batches (eachCallBatch calls each) and
// taken again, so that the packet path never waits for more than a few
// milliseconds behind a big listing, and the listing is not one atomic
// snapshot: a call that starts meanwhile may or may not be visited, one
// that ends before it is reached is not, every call present throughout is
// visited, and none twice.
func (t *Table) EachCallBatch(start func(n int, now time.Time), fn func(cs []CallView)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if start != nil {
		start(len(t.calls), t.now)
	}
	o := &t.order
	batch := make([]CallView, 0, min(eachCallBatch, len(o.list)))
	gen := o.gen
	for i := 0; i < len(o.list); {
		batch = batch[:0]
		for ; i < len(o.list) && len(batch) < eachCallBatch; i++ {
			if c := o.list[i].c; c != nil {
				batch = append(batch, CallView{c})
			}
		}
		if len(batch) == 0 {
			break
		}
		fn(batch)
		if i == len(o.list) {
			break
		}
		last := batch[len(batch)-1].c.Ref
		t.mu.Unlock()
		if eachCallYield != nil {
			eachCallYield()
		}
		t.mu.Lock()
		if o.gen != gen { // compacted meanwhile: find our place by Ref
			gen = o.gen
			i = o.after(last)
		}
	}
}
