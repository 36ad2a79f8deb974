package hep

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// fuzzSeeds are the hand-built packets of the unit tests; the committed
// corpus in testdata/fuzz holds them too, with the cases that once failed.
func fuzzSeeds() [][]byte {
	cs := v4Chunks()
	return [][]byte{
		hep3(cs...),
		hep3(append(cs, chunk(0, 0x0003, 1, 2, 3), chunk(0, 0x0012, 0, 5), chunk(0, 0x0011, 'c'))...),
		hep3(chunk(0, 1, 10), chunk(0, 5, v6Src.AsSlice()...), chunk(0, 6, v6Dst.AsSlice()...), chunk(0, 0x10, 1)),
		hep2(2, 2, 17, 5060, 5070, []byte{192, 168, 1, 1}, []byte{192, 168, 1, 2}, 1700000001, 999999, 7, sipInvite),
		hep2(1, 10, 6, 1, 2, v6Src.AsSlice(), v6Dst.AsSlice(), 0, 0, 0, "x"),
		[]byte("HEP3\x00\x06"),
	}
}

// FuzzUnmarshal: Unmarshal never panics, its slices stay inside the input,
// and a packet it accepts survives MarshalTo and Unmarshal unchanged
// (apart from the version, always 3 on output, and the bad chunks, never
// written).
func FuzzUnmarshal(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Packet
		if p.Unmarshal(in) != nil {
			return
		}
		for _, s := range [][]byte{p.Payload, p.AuthKey, p.CorrelationID, p.NodeName} {
			if len(s) > 0 && !inside(s, in) {
				t.Fatalf("slice %q does not alias the input", s)
			}
		}
		out, err := p.AppendBinary(nil)
		if err != nil {
			if p.MarshalSize() > MaxPacketSize {
				return // a v1/v2 payload may be larger than v3 can carry
			}
			t.Fatalf("AppendBinary: %v", err)
		}
		var q Packet
		if err := q.Unmarshal(out); err != nil {
			t.Fatalf("Unmarshal(AppendBinary()) = %v\n% x", err, out)
		}
		p.Version, p.BadChunks = 3, 0
		if p.Type == 0 && q.Type == 0 {
			q.Type = p.Type
		}
		if d := cmp.Diff(p, q, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
			cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

// inside reports whether s lies within b's memory.
func inside(s, b []byte) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// FuzzSplitStream: cutting any stream, read a few bytes at a time, never
// panics, and the packets it yields are the stream's consecutive prefix,
// each starting with "HEP3" and as long as its header says.
func FuzzSplitStream(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint8(7))
	}
	f.Add(append(hep3(v4Chunks()...), hep3(chunk(0, 0x000f, 'x'))...), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		sc := bufio.NewScanner(&stepReader{b: stream, step: int(step%64) + 1})
		sc.Buffer(make([]byte, 0, 64<<10), MaxPacketSize)
		sc.Split(SplitStream)
		off := 0
		for sc.Scan() {
			tok := sc.Bytes()
			if !bytes.HasPrefix(stream[off:], tok) {
				t.Fatalf("packet at %d is not the stream's next bytes", off)
			}
			if len(tok) < 6 || string(tok[:4]) != "HEP3" || int(tok[4])<<8|int(tok[5]) != len(tok) {
				t.Fatalf("bad packet % x", tok)
			}
			off += len(tok)
		}
		if sc.Err() == nil && off != len(stream) {
			t.Fatalf("clean end after %d of %d bytes", off, len(stream))
		}
	})
}

// stepReader returns at most step bytes per Read.
type stepReader struct {
	b    []byte
	step int
}

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.b)
	r.b = r.b[n:]
	return n, nil
}
