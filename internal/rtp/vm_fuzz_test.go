package rtp

import (
	"testing"
	"time"
)

// FuzzStreamVM feeds a packet sequence built from the input (each 4 bytes:
// seq step, timestamp step, arrival step, flags) to a Stream. The sniffer
// emulation must not panic, and whenever the adaptive buffer holds its
// delay extremes as up to date they must equal a recomputation from the
// history window (the incremental shortcut is exact).
func FuzzStreamVM(f *testing.F) {
	f.Add([]byte{1, 1, 20, 0, 1, 1, 25, 0, 2, 2, 60, 0, 1, 1, 0, 1, 255, 1, 20, 2})
	f.Add([]byte{1, 1, 20, 4, 0, 0, 20, 4, 1, 0, 20, 8, 1, 1, 250, 0, 1, 1, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Stream
		s.Init(StreamConfig{EventPT: 101, CNPT: -1})
		h := Header{Version: 2, SSRC: 1, Payload: make([]byte, 160)}
		at := t0
		for i := 0; i+4 <= len(data) && i < 4*5000; i += 4 {
			d := data[i : i+4]
			h.Seq += uint16(int8(d[0]))
			h.Timestamp += uint32(int8(d[1])) * 160
			at = at.Add(time.Duration(d[2]) * time.Millisecond)
			h.Marker = d[3]&1 != 0
			h.PayloadType = PTPCMU
			switch {
			case d[3]&2 != 0:
				h.PayloadType = 101
			case d[3]&4 != 0:
				h.PayloadType = PTCN
			}
			h.Payload = h.Payload[:160>>(d[3]>>4&3)]
			s.Add(&h, at)
			if v := s.vm; v != nil && v.ad.maxValid && v.ad.minValid {
				got := [2][jbMaxbufSz]int32{v.ad.maxbuf, v.ad.minbuf}
				ref := v.ad
				ref.maxValid, ref.minValid = false, false
				ref.calcMaxbuf()
				if want := [2][jbMaxbufSz]int32{ref.maxbuf, ref.minbuf}; got != want {
					t.Fatalf("packet %d: extremes %v, recomputed %v", i/4, got, want)
				}
			}
		}
		vm := s.Stats().VM
		for _, m := range []int{vm.MOSF1Mult10, vm.MOSF2Mult10, vm.MOSAdaptMult10} {
			if m != -1 && (m < 10 || m > 45) {
				t.Fatalf("MOS×10 %d out of range: %+v", m, vm)
			}
		}
	})
}
