package pipeline

import (
	"fmt"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// Input says where a sensor's frames come from: a capture file, any
// source (Open), or else a network interface.
type Input struct {
	// ReadFile is a capture file to read instead of an interface.
	ReadFile string
	// Open opens any source instead (the demo's embedded capture); it is
	// called again for each pass when Loop is set.
	Open func() (capture.Source, error)
	// Interface is the network interface to capture on; "none" means no
	// capture at all (a sensor fed only by its HEP collector).
	Interface string
	// Filter is a BPF expression applied to every source.
	Filter string
	// RingMB sizes the kernel ring (ringbuffer); BufferMB the packet buffer
	// between the ring and the analysis (max_buffer_mem, see BufferMB).
	RingMB, BufferMB int
	// Realtime, Speed, Loop and ShiftToNow pace a file or Open source
	// (capture.ReplayOptions).
	Realtime   bool
	Speed      float64
	Loop       bool
	ShiftToNow bool
}

// Open opens in's source. live reports whether the wall clock drives the
// source's time (an interface, no capture at all, or a replay stamped with
// the current time), so that calls time out while the wire is quiet. A
// filter that does not compile stops the start, naming it, for a file as
// for an interface, instead of being widened to every frame.
func Open(in Input) (src capture.Source, live bool, err error) {
	open := in.Open
	if in.ReadFile != "" {
		name := in.ReadFile
		open = func() (capture.Source, error) { return capture.OpenFile(name) }
	}
	if f := in.Filter; f != "" {
		if _, err := capture.CompileFilter(f, capture.LinkTypeEthernet, capture.DefaultSnaplen); err != nil {
			return nil, false, fmt.Errorf("filter %q: %w", f, err)
		}
		if inner := open; inner != nil {
			open = func() (capture.Source, error) {
				src, err := inner()
				if err != nil {
					return nil, err
				}
				return capture.Filtered(src, f), nil
			}
		}
	}
	switch {
	case open == nil && in.Interface == "none":
		return capture.Null(), true, nil
	case open == nil:
		src, err := capture.OpenLive(capture.LiveConfig{Interface: in.Interface, BufferMB: in.RingMB, Filter: in.Filter})
		if err != nil {
			return nil, false, err
		}
		if mb := BufferMB(in.BufferMB); mb > 0 {
			// A capture goroutine empties the ring into the packet
			// buffer; the packet loop analyses from it.
			return capture.NewBuffered(src, mb<<20), true, nil
		}
		return src, true, nil
	}
	src, err = open()
	if err != nil {
		return nil, false, err
	}
	if !in.Realtime && in.Speed == 0 && !in.Loop && !in.ShiftToNow {
		return src, false, nil
	}
	return capture.NewReplay(src, capture.ReplayOptions{
		Realtime: in.Realtime, Speed: in.Speed, Loop: in.Loop, Open: open, ShiftToNow: in.ShiftToNow,
	}), in.ShiftToNow, nil
}
