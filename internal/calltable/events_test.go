package calltable

import (
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/event"
)

// dtmfPacket is an RFC 4733 telephone-event packet (PT 101).
func dtmfPacket(seq uint16, ts uint32, code byte, end bool, dur uint16) []byte {
	p := rtpPacket(seq, ts, 0x1111, 101)[:16]
	p[12] = code
	if end {
		p[13] = 0x80
	}
	p[14], p[15] = byte(dur>>8), byte(dur)
	return p
}

func TestEvents(t *testing.T) {
	bus := event.NewBus()
	sub := bus.Subscribe(100)
	tab := New(Config{Events: bus}, nil)
	steps := answeredCall("ev@x", true)
	// Digit '5' from the caller: begin, two updates, three end packets.
	at := 2500 * time.Millisecond
	for i, end := range []bool{false, false, false, true, true, true} {
		steps = append(steps, step{at + time.Duration(i)*20*time.Millisecond, aliceRT, bobRT,
			dtmfPacket(uint16(2000+i), 80000, 5, end, uint16(160*(i+1)))})
	}
	feed(tab, steps)
	tab.CloseAll()

	var kinds []event.Kind
	var dtmfEnd *event.Event
	for len(sub.C()) > 0 {
		e := <-sub.C()
		kinds = append(kinds, e.Kind)
		if e.CallID != "ev@x" {
			t.Errorf("%v: call %q", e.Kind, e.CallID)
		}
		if e.Kind == event.DTMFEnd {
			dtmfEnd = e
		}
		if e.Kind == event.CallEnd && (e.HangupBy != "callee" || e.Code != 200 || !e.Streams[0].Present || !e.Streams[1].Present) {
			t.Errorf("CallEnd: hangup %s code %d streams %v %v", e.HangupBy, e.Code, e.Streams[0].Present, e.Streams[1].Present)
		}
	}
	want := []event.Kind{event.CallNew, event.CallRinging, event.CallAnswered, event.DTMFBegin, event.DTMFEnd, event.CallEnd}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
	if dtmfEnd.Digit != '5' || dtmfEnd.Direction != "caller_to_callee" || dtmfEnd.DTMFDur != 80*time.Millisecond {
		t.Errorf("DTMFEnd digit %c dir %s dur %v, want 5 caller_to_callee 80ms", dtmfEnd.Digit, dtmfEnd.Direction, dtmfEnd.DTMFDur)
	}
}
