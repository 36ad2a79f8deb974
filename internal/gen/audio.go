package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// ErrAudio is returned (wrapped, with the reason) by [LoadAudio] and
// [ParseAudio] for audio that is not 8 kHz mono 16-bit PCM.
var ErrAudio = errors.New("gen: unusable audio")

// maxAudioBytes bounds an audio file: one hour of 8 kHz 16-bit mono.
const maxAudioBytes = 3600 * sampleRate * 2

// LoadAudio reads the audio file at path for [Config.Audio]; see
// [ParseAudio] for the formats.
func LoadAudio(path string) ([]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	pcm, err := ParseAudio(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pcm, nil
}

// ParseAudio decodes b as 8 kHz mono signed 16-bit linear PCM: either a
// RIFF WAVE file (format 1, one channel, 8000 Hz, 16 bits; other chunks are
// skipped) or, when b does not start with "RIFF", raw little-endian samples
// (sox's -t raw -e signed -b 16 -L). It fails with an error wrapping
// [ErrAudio] for any other format, an odd length or no samples at all.
func ParseAudio(b []byte) ([]int16, error) {
	if len(b) > maxAudioBytes+1024 {
		return nil, fmt.Errorf("%w: %d bytes, more than an hour", ErrAudio, len(b))
	}
	data := b
	if bytes.HasPrefix(b, []byte("RIFF")) {
		var err error
		if data, err = wavData(b); err != nil {
			return nil, err
		}
	}
	if len(data)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of bytes (%d) for 16-bit samples", ErrAudio, len(data))
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: no samples", ErrAudio)
	}
	pcm := make([]int16, len(data)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return pcm, nil
}

// wavData returns the data chunk of a RIFF WAVE file after checking its fmt
// chunk. Layout (Microsoft RIFF, "WAVE" form): "RIFF" size "WAVE", then
// chunks of id(4) size(4, little-endian) body, padded to even length.
func wavData(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: RIFF but not WAVE", ErrAudio)
	}
	fmtOK := false
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		size := int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8:]
		if size > len(body) {
			if id != "data" {
				return nil, fmt.Errorf("%w: chunk %q truncated", ErrAudio, id)
			}
			size = len(body) &^ 1 // sox writes 0xffffffff when streaming
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrAudio, size)
			}
			format := binary.LittleEndian.Uint16(body[0:])
			channels := binary.LittleEndian.Uint16(body[2:])
			rate := binary.LittleEndian.Uint32(body[4:])
			bits := binary.LittleEndian.Uint16(body[14:])
			if format == 0xfffe && size >= 26 { // WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
				format = binary.LittleEndian.Uint16(body[24:])
			}
			if format != 1 || channels != 1 || rate != sampleRate || bits != 16 {
				return nil, fmt.Errorf("%w: WAV format %d, %d channels, %d Hz, %d bits; want PCM (1), 1 channel, 8000 Hz, 16 bits",
					ErrAudio, format, channels, rate, bits)
			}
			fmtOK = true
		case "data":
			if !fmtOK {
				return nil, fmt.Errorf("%w: WAV data before fmt", ErrAudio)
			}
			return body, nil
		}
		p += 8 + size + size&1
	}
	return nil, fmt.Errorf("%w: WAV without a data chunk", ErrAudio)
}

// audioClips encodes cfg.Audio, using the Payload signal for a direction
// without audio. With audio on both sides the shorter is padded with
// silence so that both loops have the same length and stay aligned.
func audioClips(cfg *Config) [2]clip {
	var out [2]clip
	a := cfg.Audio
	if len(a[0]) > 0 && len(a[1]) > 0 {
		n := max(len(a[0]), len(a[1]))
		for d := range a {
			if len(a[d]) < n {
				a[d] = append(a[d][:len(a[d]):len(a[d])], make([]int16, n-len(a[d]))...)
			}
		}
	}
	var synth [2]clip
	if len(a[0]) == 0 || len(a[1]) == 0 {
		c := *cfg
		c.Audio = [2][]int16{}
		synth = clips(&c)
	}
	for d := range a {
		if len(a[d]) > 0 {
			out[d] = encodeClip(a[d], cfg.Codec)
		} else {
			out[d] = synth[d]
		}
	}
	return out
}
