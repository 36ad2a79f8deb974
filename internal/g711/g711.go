package g711

import "encoding/binary"

// µ-law (G.711 table 2a, in the 16-bit scaling used by RTP stacks):
//
//	code word  = ^(S EEE MMMM)          (all bits inverted on the wire)
//	magnitude  = ((MMMM<<3) + 132) << EEE - 132
//
// A-law (G.711 table 1a):
//
//	code word  = (S EEE MMMM) ^ 0x55    (even bits inverted on the wire)
//	magnitude  = EEE == 0 ? MMMM<<4 + 8 : (MMMM<<4 + 264) << (EEE-1)
//	S = 1 means positive (the opposite of µ-law after its inversion).

const ulawBias = 0x84 // 132: µ-law bias in 16-bit scaling (33 in 14-bit)

var (
	ulawTable [256]int16
	alawTable [256]int16
)

func init() {
	for i := range 256 {
		ulawTable[i] = ulawExpand(byte(i))
		alawTable[i] = alawExpand(byte(i))
	}
}

func ulawExpand(u byte) int16 {
	u = ^u
	exp := (u >> 4) & 0x07
	mant := int32(u & 0x0F)
	mag := ((mant << 3) + ulawBias) << exp
	if u&0x80 != 0 {
		return int16(ulawBias - mag)
	}
	return int16(mag - ulawBias)
}

func alawExpand(a byte) int16 {
	a ^= 0x55
	exp := (a >> 4) & 0x07
	mag := int32(a&0x0F) << 4
	if exp == 0 {
		mag += 8
	} else {
		mag = (mag + 0x108) << (exp - 1)
	}
	if a&0x80 != 0 {
		return int16(mag)
	}
	return int16(-mag)
}

// EncodeUlaw compresses one 16-bit linear sample to a µ-law code word.
// The two least significant bits are discarded (G.711 µ-law works on 14-bit
// samples) and magnitudes beyond the µ-law range saturate to 0x80 / 0x00.
func EncodeUlaw(s int16) byte {
	x := int32(s)
	mask := byte(0xFF)
	if x < 0 {
		x = ^x // one's complement, as G.191 does: -1 is treated like 0
		mask = 0x7F
	}
	x = (x >> 2) + ulawBias>>2 // 14-bit magnitude plus the bias of 33
	if x > 0x1FFF {
		x = 0x1FFF // saturate (G.191 clips the biased magnitude to 13 bits)
	}
	// x is now in [33, 8191]; the segment is the position of its top bit above bit 5.
	seg := byte(0)
	for v := x >> 6; v != 0; v >>= 1 {
		seg++
	}
	mant := byte(x>>(seg+1)) & 0x0F
	return (seg<<4 | mant) ^ mask
}

// DecodeUlaw expands a µ-law code word to a 16-bit linear sample.
func DecodeUlaw(u byte) int16 { return ulawTable[u] }

// EncodeAlaw compresses one 16-bit linear sample to an A-law code word.
// The three least significant bits are discarded (G.711 A-law works on
// 13-bit samples) and magnitudes beyond the A-law range saturate.
func EncodeAlaw(s int16) byte {
	x := int32(s) >> 3 // 13-bit
	mask := byte(0xD5) // sign bit set for positive, even bits inverted
	if x < 0 {
		x = ^x
		mask = 0x55
	}
	// x is in [0, 4095]; segment 0 covers [0, 31], segment n [32<<(n-1), (32<<n)-1].
	var seg byte
	for v := x >> 5; v != 0; v >>= 1 {
		seg++
	}
	var mant byte
	if seg < 2 {
		mant = byte(x>>1) & 0x0F
	} else {
		mant = byte(x>>seg) & 0x0F
	}
	return (seg<<4 | mant) ^ mask
}

// DecodeAlaw expands an A-law code word to a 16-bit linear sample.
func DecodeAlaw(a byte) int16 { return alawTable[a] }

// DecodeUlawTo expands µ-law src into dst and returns the number of samples
// written, min(len(dst), len(src)).
func DecodeUlawTo(dst []int16, src []byte) int { return decodeTo(&ulawTable, dst, src) }

// DecodeAlawTo expands A-law src into dst and returns the number of samples
// written, min(len(dst), len(src)).
func DecodeAlawTo(dst []int16, src []byte) int { return decodeTo(&alawTable, dst, src) }

// DecodeUlawToLE expands µ-law src into dst as signed 16-bit little-endian
// PCM (two bytes per sample) and returns the number of samples written,
// min(len(dst)/2, len(src)).
func DecodeUlawToLE(dst []byte, src []byte) int { return decodeToLE(&ulawTable, dst, src) }

// DecodeAlawToLE expands A-law src into dst as signed 16-bit little-endian
// PCM (two bytes per sample) and returns the number of samples written,
// min(len(dst)/2, len(src)).
func DecodeAlawToLE(dst []byte, src []byte) int { return decodeToLE(&alawTable, dst, src) }

// EncodeUlawTo compresses src into µ-law dst and returns the number of
// samples written, min(len(dst), len(src)).
func EncodeUlawTo(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	for i, s := range src[:n] {
		dst[i] = EncodeUlaw(s)
	}
	return n
}

// EncodeAlawTo compresses src into A-law dst and returns the number of
// samples written, min(len(dst), len(src)).
func EncodeAlawTo(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	for i, s := range src[:n] {
		dst[i] = EncodeAlaw(s)
	}
	return n
}

func decodeTo(t *[256]int16, dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	dst = dst[:n]
	for i, c := range src[:n] {
		dst[i] = t[c]
	}
	return n
}

func decodeToLE(t *[256]int16, dst []byte, src []byte) int {
	n := min(len(dst)/2, len(src))
	for i, c := range src[:n] {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(t[c]))
	}
	return n
}
