package g711

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// Known values, each derived by hand from the expansion formulas in g711.go
// (G.711 tables 1a/2a) in the comment next to it.
func TestDecodeKnownValues(t *testing.T) {
	tests := []struct {
		name string
		dec  func(byte) int16
		in   byte
		want int16
	}{
		// µ-law: invert, S=0 E=0 M=0 → ((0<<3)+132)<<0 - 132 = 0.
		{"ulaw 0xFF", DecodeUlaw, 0xFF, 0},
		// 0x7F → inverted 0x80: S=1 E=0 M=0 → 132 - 132 = "negative zero" = 0.
		{"ulaw 0x7F", DecodeUlaw, 0x7F, 0},
		// 0x80 → inverted 0x7F: S=0 E=7 M=15 → (120+132)<<7 - 132 = 32256-132 = 32124.
		{"ulaw 0x80", DecodeUlaw, 0x80, 32124},
		// 0x00 → inverted 0xFF: S=1 E=7 M=15 → -32124.
		{"ulaw 0x00", DecodeUlaw, 0x00, -32124},
		// 0xFE → inverted 0x01: E=0 M=1 → (8+132) - 132 = 8.
		{"ulaw 0xFE", DecodeUlaw, 0xFE, 8},
		// 0xEF → inverted 0x10: E=1 M=0 → 132<<1 - 132 = 132.
		{"ulaw 0xEF", DecodeUlaw, 0xEF, 132},
		// A-law: 0xD5 ^ 0x55 = 0x80: S=1 (positive) E=0 M=0 → 0<<4 + 8 = 8.
		{"alaw 0xD5", DecodeAlaw, 0xD5, 8},
		// 0x55 ^ 0x55 = 0x00: negative, E=0 M=0 → -8.
		{"alaw 0x55", DecodeAlaw, 0x55, -8},
		// 0xAA ^ 0x55 = 0xFF: positive E=7 M=15 → (240+264)<<6 = 32256.
		{"alaw 0xAA", DecodeAlaw, 0xAA, 32256},
		// 0x2A ^ 0x55 = 0x7F: negative E=7 M=15 → -32256.
		{"alaw 0x2A", DecodeAlaw, 0x2A, -32256},
		// 0xC5 ^ 0x55 = 0x90: positive E=1 M=0 → (0+264)<<0 = 264.
		{"alaw 0xC5", DecodeAlaw, 0xC5, 264},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.dec(tt.in); got != tt.want {
				t.Errorf("decode(%#02x) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestEncodeKnownValues(t *testing.T) {
	tests := []struct {
		name string
		enc  func(int16) byte
		in   int16
		want byte
	}{
		// µ-law silence: 0 → biased 33 → E=0 M=0 → ^0x00 = 0xFF.
		{"ulaw 0", EncodeUlaw, 0, 0xFF},
		// -1 is one's-complemented to 0 (G.191), sign set → ^0x80 = 0x7F.
		{"ulaw -1", EncodeUlaw, -1, 0x7F},
		// Full scale saturates at E=7 M=15 → ^0x7F = 0x80, and 0x00 for negative.
		{"ulaw max", EncodeUlaw, 32767, 0x80},
		{"ulaw min", EncodeUlaw, -32768, 0x00},
		// 132 → 14-bit 33, biased 66 = 0b1000010: E=1, M=(66>>2)&15 = 0 → ^0x10 = 0xEF.
		{"ulaw 132", EncodeUlaw, 132, 0xEF},
		// A-law silence: 0 → E=0 M=0, positive → 0x80 ^ 0x55 = 0xD5.
		{"alaw 0", EncodeAlaw, 0, 0xD5},
		// -1 → 13-bit -1 → one's complement 0, negative → 0x00 ^ 0x55 = 0x55.
		{"alaw -1", EncodeAlaw, -1, 0x55},
		{"alaw max", EncodeAlaw, 32767, 0xAA},
		{"alaw min", EncodeAlaw, -32768, 0x2A},
		// 264 → 13-bit 33: E=1, M=(33>>1)&15 = 0 → 0x90 ^ 0x55 = 0xC5.
		{"alaw 264", EncodeAlaw, 264, 0xC5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.enc(tt.in); got != tt.want {
				t.Errorf("encode(%d) = %#02x, want %#02x", tt.in, got, tt.want)
			}
		})
	}
}

// TestRoundTrip checks that encoding every 16-bit value is monotonic in the
// decoded domain and lands on the nearest-below quantisation level: decode
// (encode(x)) never moves away from x by more than the segment's step.
func TestRoundTrip(t *testing.T) {
	laws := []struct {
		name string
		enc  func(int16) byte
		dec  func(byte) int16
	}{
		{"ulaw", EncodeUlaw, DecodeUlaw},
		{"alaw", EncodeAlaw, DecodeAlaw},
	}
	for _, law := range laws {
		t.Run(law.name, func(t *testing.T) {
			prev := int16(-32768)
			for i := -32768; i <= 32767; i++ {
				x := int16(i)
				y := law.dec(law.enc(x))
				if y < prev {
					t.Fatalf("not monotonic: decode(encode(%d)) = %d < %d for the previous input", x, y, prev)
				}
				prev = y
				// The largest step is 1024 (µ-law segment 7) and 1024 (A-law segment 7);
				// reconstruction is at the middle of the step, so the error is ≤ 512
				// except in the saturated tails beyond the last level.
				if d := int(y) - int(x); (d > 512 || d < -512) && x > -32124 && x < 32124 {
					t.Fatalf("decode(encode(%d)) = %d, error %d", x, y, d)
				}
			}
			// Every code word's decoded value re-encodes to a code word with the same value.
			for c := range 256 {
				v := law.dec(byte(c))
				if got := law.dec(law.enc(v)); got != v {
					t.Errorf("code %#02x: decode = %d, re-encoded decodes to %d", c, v, got)
				}
			}
		})
	}
}

func TestSliceForms(t *testing.T) {
	src := []byte{0x00, 0x7F, 0x80, 0xD5, 0xFF}
	for _, tc := range []struct {
		name  string
		to    func([]int16, []byte) int
		toLE  func([]byte, []byte) int
		one   func(byte) int16
		encTo func([]byte, []int16) int
		enc   func(int16) byte
	}{
		{"ulaw", DecodeUlawTo, DecodeUlawToLE, DecodeUlaw, EncodeUlawTo, EncodeUlaw},
		{"alaw", DecodeAlawTo, DecodeAlawToLE, DecodeAlaw, EncodeAlawTo, EncodeAlaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]int16, 3) // shorter than src: only 3 samples
			if n := tc.to(dst, src); n != 3 {
				t.Fatalf("DecodeTo n = %d, want 3", n)
			}
			le := make([]byte, 2*len(src)+1) // one spare byte is ignored
			if n := tc.toLE(le, src); n != len(src) {
				t.Fatalf("DecodeToLE n = %d, want %d", n, len(src))
			}
			for i, c := range src {
				want := tc.one(c)
				if i < 3 && dst[i] != want {
					t.Errorf("DecodeTo[%d] = %d, want %d", i, dst[i], want)
				}
				if got := int16(binary.LittleEndian.Uint16(le[2*i:])); got != want {
					t.Errorf("DecodeToLE[%d] = %d, want %d", i, got, want)
				}
			}
			pcm := []int16{-32768, -1000, 0, 1000, 32767}
			out := make([]byte, 8)
			if n := tc.encTo(out, pcm); n != len(pcm) {
				t.Fatalf("EncodeTo n = %d, want %d", n, len(pcm))
			}
			for i, s := range pcm {
				if out[i] != tc.enc(s) {
					t.Errorf("EncodeTo[%d] = %#02x, want %#02x", i, out[i], tc.enc(s))
				}
			}
		})
	}
}

// TestAgainstSox uses SoX as an independent G.711 implementation. It decodes
// all 256 code words of each law, which must match ours exactly, and encodes
// all 65536 linear values (dither disabled). SoX's encoder first rounds to
// 14 (µ-law) or 13 (A-law) bits where G.191 truncates, and negates in two's
// complement where G.191 uses one's complement, so the encoders are compared
// where those conventions agree: non-negative inputs that are exact 14/13-bit
// values (multiples of 4 / 8). Negative inputs are covered by TestSymmetry.
func TestAgainstSox(t *testing.T) {
	sox, err := exec.LookPath("sox")
	if err != nil {
		sharedtest.Missing(t, "sox not installed")
	}
	dir := t.TempDir()
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	pcm := make([]int16, 65536)
	pcmLE := make([]byte, 2*len(pcm))
	for i := range pcm {
		pcm[i] = int16(i - 32768)
		binary.LittleEndian.PutUint16(pcmLE[2*i:], uint16(pcm[i]))
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(args ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, "out")
		args = append(args, out)
		if b, err := exec.Command(sox, args...).CombinedOutput(); err != nil {
			t.Fatalf("sox %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	codesFile := write("codes", codes)
	pcmFile := write("pcm", pcmLE)
	for _, law := range []struct {
		name string // sox file type
		dec  func([]byte, []byte) int
		enc  func([]byte, []int16) int
		step int16
	}{
		{"ul", DecodeUlawToLE, EncodeUlawTo, 4},
		{"al", DecodeAlawToLE, EncodeAlawTo, 8},
	} {
		t.Run(law.name, func(t *testing.T) {
			got := make([]byte, 512)
			law.dec(got, codes)
			want := run("-t", law.name, "-r", "8000", "-c", "1", codesFile, "-t", "s16", "-e", "signed", "-L")
			if !bytes.Equal(got, want) {
				for i := 0; i < 256; i++ {
					g, w := int16(binary.LittleEndian.Uint16(got[2*i:])), int16(binary.LittleEndian.Uint16(want[2*i:]))
					if g != w {
						t.Errorf("decode %#02x = %d, sox says %d", i, g, w)
					}
				}
			}
			enc := make([]byte, len(pcm))
			law.enc(enc, pcm)
			soxEnc := run("-D", "-t", "s16", "-e", "signed", "-L", "-r", "8000", "-c", "1", pcmFile, "-t", law.name)
			if len(soxEnc) != len(enc) {
				t.Fatalf("sox encoded %d samples, want %d", len(soxEnc), len(enc))
			}
			compared := 0
			for i, x := range pcm {
				if x < 0 || x%law.step != 0 {
					continue
				}
				compared++
				if enc[i] != soxEnc[i] {
					t.Errorf("encode %d = %#02x, sox says %#02x", x, enc[i], soxEnc[i])
				}
			}
			if want := 32768 / int(law.step); compared != want {
				t.Errorf("compared %d encodings, want %d", compared, want)
			}
		})
	}
}

// TestSymmetry checks the G.191 sign convention: a negative sample x encodes
// to the code word of its one's complement ^x (which is ≥ 0) with the sign
// bit flipped, for every negative 16-bit value.
func TestSymmetry(t *testing.T) {
	for _, law := range []struct {
		name string
		enc  func(int16) byte
	}{{"ulaw", EncodeUlaw}, {"alaw", EncodeAlaw}} {
		t.Run(law.name, func(t *testing.T) {
			for i := -32768; i < 0; i++ {
				x := int16(i)
				if got, want := law.enc(x), law.enc(^x)^0x80; got != want {
					t.Fatalf("encode(%d) = %#02x, want encode(%d)^0x80 = %#02x", x, got, ^x, want)
				}
			}
		})
	}
}

func BenchmarkDecodeUlawTo(b *testing.B) {
	src := make([]byte, 160) // one 20 ms packet
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]int16, len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		DecodeUlawTo(dst, src)
	}
}

func BenchmarkDecodeAlawToLE(b *testing.B) {
	src := make([]byte, 160)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, 2*len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		DecodeAlawToLE(dst, src)
	}
}

func BenchmarkEncodeUlawTo(b *testing.B) {
	src := make([]int16, 160)
	for i := range src {
		src[i] = int16(i * 397)
	}
	dst := make([]byte, len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		EncodeUlawTo(dst, src)
	}
}
