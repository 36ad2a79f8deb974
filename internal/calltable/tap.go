package calltable

import (
	"errors"
	"time"
)

// ErrNoCall is returned for a call reference the table does not hold.
var ErrNoCall = errors.New("calltable: no such call")

// AudioTap receives the RTP payloads of a call somebody listens to. Its
// methods are called with the table lock held, on the packet path: they
// must copy what they keep and return at once (never block, never decode
// in place of a bounded hand-off).
type AudioTap interface {
	// RTP is one voice or event packet sent by side. payload aliases the
	// capture buffer.
	RTP(side Side, pt uint8, codec string, seq uint16, ts uint32, payload []byte, at time.Time)
	// Ended says the call left the table; no more RTP follows.
	Ended()
}

// SetTap attaches tap to the call with reference ref, replacing any tap it
// had; a nil tap detaches. Calls nobody listens to carry no tap and cost
// nothing.
func (t *Table) SetTap(ref uint64, tap AudioTap) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byRef[ref]
	if c == nil {
		return ErrNoCall
	}
	c.tap = tap
	return nil
}

// Call returns a copy of the call with reference ref, with the MOS
// interval history of its streams.
func (t *Table) Call(ref uint64) (*CallInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byRef[ref]
	if c == nil {
		return nil, false
	}
	ci := c.info(t.now)
	for i, s := range c.Streams {
		st := &ci.Streams[i]
		st.Intervals, st.IntervalsClosed = s.RTP.Intervals(nil)
	}
	return ci, true
}
