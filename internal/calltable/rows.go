package calltable

import "time"

// EachCall calls fn for every call in the table, in no particular order,
// with the table lock held; now is the table's capture time. It serves
// listings that build their own rows in one pass, without the
// intermediate [CallInfo] copies a [Table.Snapshot] makes (listcalls over
// 100,000 calls). fn must copy what it needs and return quickly: it must
// not retain c or anything reachable from it, block, or call any method
// of t. n is the number of calls fn will see, for preallocation.
func (t *Table) EachCall(start func(n int, now time.Time), fn func(c *Call)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if start != nil {
		start(len(t.calls), t.now)
	}
	for _, c := range t.calls {
		fn(c)
	}
}
