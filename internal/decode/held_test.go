package decode

import (
	"bytes"
	"slices"
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

// TestTCPSegmentsHeld: with KeepFragments a SIP message that spans TCP
// segments names the frames of its earlier segments (in order, or in the
// order they were buffered when they came out of order), so that a
// recorder saves every frame that carried it; a message wholly inside the
// frame being decoded names none; without KeepFragments, none.
func TestTCPSegmentsHeld(t *testing.T) {
	const isn = 1000
	two := sipOptions + sipInvite
	k := len(sipOptions) + 5
	tests := []struct {
		name string
		segs []seg
		want [][]int // per delivered message, the indexes of the held segments
	}{
		{"one message in three segments", []seg{
			{isn + 1, 0, sipInvite[:10], 0}, {isn + 11, 0, sipInvite[10:90], 1}, {isn + 91, 0, sipInvite[90:], 2},
		}, [][]int{{0, 1}}},
		{"out of order filled", []seg{
			{isn + 1, 0, sipInvite[:30], 0}, {isn + 61, 0, sipInvite[60:], 1}, {isn + 31, 0, sipInvite[30:60], 2},
		}, [][]int{{0, 1}}},
		{"message straddling segments with the next", []seg{
			{isn + 1, 0, two[:k], 0}, {isn + 1 + uint32(k), 0, two[k:] + sipNoLen, 1},
		}, [][]int{nil, {0}, nil}},
		{"two messages in one segment", []seg{{isn + 1, 0, two, 0}}, [][]int{nil, nil}},
	}
	for _, tt := range tests {
		for _, keep := range []bool{true, false} {
			d := NewDecoder(Config{KeepFragments: keep})
			var got [][]int
			frames := make([][]byte, len(tt.segs))
			for i, s := range tt.segs {
				f := tcpFrame(s)
				frames[i] = bytes.Clone(f.Data)
				d.Decode(f, HandlerFunc(func(dg *Datagram) {
					var idx []int
					for _, h := range dg.Held {
						j := slices.IndexFunc(frames, func(b []byte) bool { return bytes.Equal(b, h.Data) })
						idx = append(idx, j)
					}
					got = append(got, idx)
				}))
				clear(f.Data) // the capture buffer, reused
			}
			want := tt.want
			if !keep {
				want = make([][]int, len(tt.want))
			}
			if len(got) != len(want) {
				t.Fatalf("%s keep=%v: %d messages, want %d", tt.name, keep, len(got), len(want))
			}
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("%s keep=%v: message %d held segments %v, want %v", tt.name, keep, i, got[i], want[i])
				}
			}
		}
	}
}
