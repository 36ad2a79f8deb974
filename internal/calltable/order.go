package calltable

import "sort"

// callOrder lists the table's calls in creation order (ascending Ref) for
// listings. It exists for speed: walking 100,000 calls through a slice in
// the order they were created touches memory far more predictably than a
// Go map's randomised iteration, and the rows come out already in calldate
// order, the order listcalls sorts them into by default.
//
// A call that leaves is replaced by a tombstone (nil) that keeps its Ref,
// so the slice stays sorted by Ref; the tombstones are squeezed out, in
// order, once they are the majority. A walker that let go of the table
// lock uses gen to notice a compaction and finds its place again by Ref.
type callOrder struct {
	list []orderSlot
	dead int    // tombstones in list
	gen  uint64 // incremented by every compaction
}

type orderSlot struct {
	c   *Call // nil once the call has left
	ref uint64
}

// minCompact keeps small tables from compacting on every departure.
const minCompact = 1024

// add appends c, which must have the highest Ref so far.
func (o *callOrder) add(c *Call) {
	c.orderPos = len(o.list)
	o.list = append(o.list, orderSlot{c: c, ref: c.Ref})
}

// remove turns c's slot into a tombstone and compacts when tombstones are
// the majority (amortised O(1) per call).
func (o *callOrder) remove(c *Call) {
	p := c.orderPos
	if p < 0 || p >= len(o.list) || o.list[p].c != c {
		return
	}
	o.list[p].c = nil
	c.orderPos = -1
	if o.dead++; o.dead >= minCompact && 2*o.dead > len(o.list) {
		o.compact()
	}
}

func (o *callOrder) compact() {
	n := 0
	for _, s := range o.list {
		if s.c != nil {
			s.c.orderPos = n
			o.list[n] = s
			n++
		}
	}
	clear(o.list[n:])
	o.list = o.list[:n]
	o.dead = 0
	o.gen++
	if cap(o.list) > 4*n+minCompact { // give back the memory of a past peak
		o.list = append([]orderSlot(nil), o.list...)
	}
}

// after returns the index of the first slot with a Ref above ref.
func (o *callOrder) after(ref uint64) int {
	return sort.Search(len(o.list), func(i int) bool { return o.list[i].ref > ref })
}
