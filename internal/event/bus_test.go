package event

import "testing"

func TestBusFanOutAndDrops(t *testing.T) {
	b := NewBus()
	fast := b.Subscribe(10)
	slow := b.Subscribe(2)
	for i := 0; i < 5; i++ {
		b.Publish(&Event{Kind: CallNew, CallRef: uint64(i)})
	}
	if got := len(fast.C()); got != 5 {
		t.Errorf("fast queue = %d, want 5", got)
	}
	if got, d := len(slow.C()), slow.Dropped(); got != 2 || d != 3 {
		t.Errorf("slow queue %d dropped %d, want 2 3", got, d)
	}
	if first := <-fast.C(); first.CallRef != 0 {
		t.Errorf("first event ref %d, want 0 (order kept)", first.CallRef)
	}
	slow.Close()
	slow.Close()
	b.Publish(&Event{Kind: CallEnd})
	if n := b.Subscribers(); n != 1 {
		t.Errorf("subscribers = %d, want 1", n)
	}
	if b.Published() != 6 {
		t.Errorf("published = %d, want 6", b.Published())
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{CallNew: "CallNew", Quality: "Quality", 0: "Unknown", 200: "Unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d) = %q, want %q", k, got, want)
		}
	}
}
