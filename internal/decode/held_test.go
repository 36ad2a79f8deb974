package decode

import (
	"bytes"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// TestFragmentsHeld: with KeepFragments a reassembled datagram names the
// frames of its earlier fragments, copies that outlive the capture buffer,
// in arrival order, duplicates included; without it, none.
func TestFragmentsHeld(t *testing.T) {
	l4 := udpHdr(1000, 2000, pattern(2400))
	frames := fragFrames(7, 17, l4, []frag4{{1600, 2408, false}, {0, 800, true}, {0, 800, true}, {800, 1600, true}})
	for _, keep := range []bool{true, false} {
		d := NewDecoder(Config{KeepFragments: keep})
		var held [][]byte
		var times []time.Time
		n := 0
		for i, data := range frames {
			buf := bytes.Clone(data) // the capture buffer, reused below
			f := frame(capture.LinkTypeEthernet, buf)
			f.Time = time.Unix(int64(i), 0)
			d.Decode(f, HandlerFunc(func(dg *Datagram) {
				n++
				for _, h := range dg.Held {
					held = append(held, bytes.Clone(h.Data))
					times = append(times, h.Time)
				}
			}))
			clear(buf)
		}
		if n != 1 {
			t.Fatalf("keep=%v: %d datagrams, want 1", keep, n)
		}
		if !keep {
			if len(held) != 0 {
				t.Errorf("Held without KeepFragments: %d frames", len(held))
			}
			continue
		}
		if len(held) != 3 {
			t.Fatalf("Held %d frames, want the 3 before the last", len(held))
		}
		for i := range held {
			if !bytes.Equal(held[i], frames[i]) || !times[i].Equal(time.Unix(int64(i), 0)) {
				t.Errorf("Held[%d] is not frame %d as captured", i, i)
			}
		}
	}
}
