package gen

import (
	"math"
	"testing"

	"github.com/voipsensor/voipsensor/internal/g711"
)

// frameStats splits pcm into 20 ms frames and returns the RMS of each.
func frameRMS(pcm []int16) []float64 {
	const n = sampleRate / 50
	var out []float64
	for i := 0; i+n <= len(pcm); i += n {
		s := 0.0
		for _, x := range pcm[i : i+n] {
			s += float64(x) * float64(x)
		}
		out = append(out, math.Sqrt(s/n))
	}
	return out
}

// TestSpeechClip checks the speech-like properties the analyser's voice
// activity and quality code rely on: pauses of silence, loud voiced frames,
// syllable-rate bursts, deterministic output, and a G.711 encoding.
func TestSpeechClip(t *testing.T) {
	pcm := speechClip(8, 115, 1)
	if len(pcm) != 8*sampleRate {
		t.Fatalf("len = %d, want %d", len(pcm), 8*sampleRate)
	}
	rms := frameRMS(pcm)
	silent, loud, bursts := 0, 0, 0
	prevLoud := false
	for _, r := range rms {
		if r < 1 {
			silent++
		}
		isLoud := r > 1000 // about -30 dBFS
		if isLoud {
			loud++
			if !prevLoud {
				bursts++
			}
		}
		prevLoud = isLoud
	}
	frames := len(rms)
	mean := 0.0
	for _, x := range pcm {
		mean += float64(x)
	}
	if mean /= float64(len(pcm)); math.Abs(mean) > 50 {
		t.Errorf("DC offset %.1f, want |mean| <= 50", mean)
	}
	if silent < frames/10 || silent > frames/2 {
		t.Errorf("%d of %d frames silent, want pauses of 10-50%%", silent, frames)
	}
	if loud < frames/4 {
		t.Errorf("%d of %d frames above -30 dBFS, want at least a quarter", loud, frames)
	}
	// Syllables last 150-300 ms: 2-7 bursts per second over 8 s.
	if bursts < 16 || bursts > 56 {
		t.Errorf("%d energy bursts in 8 s, want syllable rate (16-56)", bursts)
	}
	again := speechClip(8, 115, 1)
	for i := range pcm {
		if pcm[i] != again[i] {
			t.Fatalf("speechClip not deterministic at sample %d", i)
		}
	}
	enc := encodeClip(pcm, "PCMU")
	for i := 0; i < len(pcm); i += 997 {
		if got, want := g711.DecodeUlaw(enc[i]), g711.DecodeUlaw(g711.EncodeUlaw(pcm[i])); got != want {
			t.Fatalf("sample %d: clip decodes to %d, want %d", i, got, want)
		}
	}
	t.Logf("frames %d: silent %d, loud %d, bursts %d", frames, silent, loud, bursts)
}

// TestToneClip checks frequency and level of the tone by counting zero
// crossings and measuring RMS (a sine at -10 dBFS has RMS 32767·10^(-10/20)/√2).
func TestToneClip(t *testing.T) {
	for _, freq := range []float64{400, 1000} {
		pcm := toneClip(freq)
		crossings := 0
		sum := 0.0
		for i := range pcm {
			sum += float64(pcm[i]) * float64(pcm[i])
			if i > 0 && (pcm[i-1] < 0) != (pcm[i] < 0) {
				crossings++
			}
		}
		if got := float64(crossings) / 2; math.Abs(got-freq) > 1 {
			t.Errorf("tone %v Hz: %v cycles in one second", freq, got)
		}
		want := 32767 * math.Pow(10, -10.0/20) / math.Sqrt2
		if got := math.Sqrt(sum / float64(len(pcm))); math.Abs(got-want) > 1 {
			t.Errorf("tone %v Hz: RMS %.1f, want %.1f", freq, got, want)
		}
	}
}
