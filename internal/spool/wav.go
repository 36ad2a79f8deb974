package spool

import (
	"encoding/binary"
	"errors"
	"io"
)

// The WAV files saveaudio writes: RIFF/WAVE with a 16-byte PCM fmt chunk
// and one data chunk right after it (the canonical 44-byte header), 8 kHz,
// 16-bit little-endian, two channels: the caller left, the callee right.
const (
	wavHeaderLen   = 44
	wavRate        = 8000
	wavChannels    = 2
	wavFrameBytes  = 2 * wavChannels // one sample of each channel
	wavMaxData     = 0xffffffff - (wavHeaderLen - 8)
	wavMaxSamples  = wavMaxData / wavFrameBytes // per channel: about 37 hours
	wavFormatPCM   = 1
	wavBitsPerSamp = 16
)

// errNotOurWAV is returned by parseWAVHeader for a header another writer
// made (another format, rate or layout).
var errNotOurWAV = errors.New("spool: not a saveaudio WAV")

// appendWAVHeader appends the header of a file holding dataBytes bytes of
// samples.
func appendWAVHeader(b []byte, dataBytes uint32) []byte {
	le := binary.LittleEndian
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, dataBytes+wavHeaderLen-8)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, wavFormatPCM)
	b = le.AppendUint16(b, wavChannels)
	b = le.AppendUint32(b, wavRate)
	b = le.AppendUint32(b, wavRate*wavFrameBytes)
	b = le.AppendUint16(b, wavFrameBytes)
	b = le.AppendUint16(b, wavBitsPerSamp)
	b = append(b, "data"...)
	return le.AppendUint32(b, dataBytes)
}

// parseWAVHeader reads the header of a file appendWAVHeader wrote and
// returns the data chunk's size.
func parseWAVHeader(r io.ReaderAt) (uint32, error) {
	var h [wavHeaderLen]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return 0, err
	}
	want := appendWAVHeader(make([]byte, 0, wavHeaderLen), 0)
	le := binary.LittleEndian
	// Everything but the two sizes must be ours.
	if string(h[:4]) != string(want[:4]) || string(h[8:40]) != string(want[8:40]) {
		return 0, errNotOurWAV
	}
	n := le.Uint32(h[40:])
	if le.Uint32(h[4:]) != n+wavHeaderLen-8 || n%wavFrameBytes != 0 {
		return 0, errNotOurWAV
	}
	return n, nil
}
