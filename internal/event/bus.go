package event

import (
	"sync"
	"sync/atomic"
)

// Bus fans events out to subscribers. Publish never blocks: a subscriber
// whose queue is full loses the event, and the loss is counted on it. Safe
// for concurrent use.
type Bus struct {
	mu   sync.RWMutex
	subs map[*Subscriber]struct{}

	published atomic.Uint64
}

// NewBus returns a bus with no subscribers.
func NewBus() *Bus { return &Bus{subs: make(map[*Subscriber]struct{})} }

// Publish hands e to every subscriber. e must not be modified afterwards.
func (b *Bus) Publish(e *Event) {
	b.published.Add(1)
	b.mu.RLock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
	b.mu.RUnlock()
}

// Published returns how many events were published.
func (b *Bus) Published() uint64 { return b.published.Load() }

// Subscribers returns the number of subscribers.
func (b *Bus) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Subscribe adds a subscriber with a queue of size events (minimum 1).
func (b *Bus) Subscribe(size int) *Subscriber {
	s := &Subscriber{bus: b, c: make(chan *Event, max(size, 1))}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Subscriber receives published events on C.
type Subscriber struct {
	bus     *Bus
	c       chan *Event
	dropped atomic.Uint64
	once    sync.Once
}

// C delivers events. It is never closed: stop reading after Close.
func (s *Subscriber) C() <-chan *Event { return s.c }

// Dropped returns how many events the subscriber lost to a full queue.
func (s *Subscriber) Dropped() uint64 { return s.dropped.Load() }

// Close removes the subscriber from the bus. Safe to call more than once.
func (s *Subscriber) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	})
}
