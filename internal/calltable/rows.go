package calltable

import "time"

// eachCallBatch is how many calls EachCall visits per hold of the table
// lock; between batches the lock is released so that the packet path never
// waits for more than a few milliseconds behind a big listing.
const eachCallBatch = 2048

// EachCall calls fn for every call in the table, in no particular order,
// with the table lock held; now is the table's capture time. It serves
// listings that build their own rows in one pass, without the
// intermediate [CallInfo] copies a [Table.Snapshot] makes (listcalls over
// 100,000 calls). fn must copy what it needs and return quickly: it must
// not retain c or anything reachable from it, block, or call any method
// of t. n is the number of calls in the table at the start, for
// preallocation.
//
// The lock is released every eachCallBatch calls and taken again, so the
// listing is not one atomic snapshot: a call that starts or ends meanwhile
// may or may not be visited (Go map iteration allows changes between
// steps; the lock orders them), and none is visited twice.
func (t *Table) EachCall(start func(n int, now time.Time), fn func(c *Call)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if start != nil {
		start(len(t.calls), t.now)
	}
	n := 0
	for _, c := range t.calls {
		fn(c)
		if n++; n%eachCallBatch == 0 {
			t.mu.Unlock()
			t.mu.Lock()
		}
	}
}
