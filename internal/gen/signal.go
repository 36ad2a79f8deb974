package gen

import (
	"math"
	"math/rand/v2"

	"github.com/voipsensor/voipsensor/internal/g711"
)

const sampleRate = 8000

// A clip is a loop of G.711 code words that streams read from cyclically,
// each at its own offset, so that no sample is synthesised per packet.
type clip []byte

// encodeClip compresses pcm with the configured codec.
func encodeClip(pcm []int16, codec string) clip {
	c := make(clip, len(pcm))
	if codec == "PCMA" {
		g711.EncodeAlawTo(c, pcm)
	} else {
		g711.EncodeUlawTo(c, pcm)
	}
	return c
}

// toneClip is one second of a sine at freq Hz (an integer, so the loop is
// seamless) at -10 dBFS.
func toneClip(freq float64) []int16 {
	pcm := make([]int16, sampleRate)
	amp := 32767 * math.Pow(10, -10.0/20)
	for n := range pcm {
		pcm[n] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(n)/sampleRate)))
	}
	return pcm
}

// formant frequencies (F1, F2, F3) in Hz of five vowels, from the classic
// Peterson & Barney averages.
var vowels = [...][3]float64{
	{730, 1090, 2440}, // a
	{530, 1840, 2480}, // e
	{270, 2290, 3010}, // i
	{570, 840, 2410},  // o
	{300, 870, 2240},  // u
}

// resonator is a two-pole digital resonator (Klatt 1980):
// y[n] = a·x[n] + b·y[n-1] + c·y[n-2].
type resonator struct{ a, b, c, y1, y2 float64 }

func (r *resonator) set(freq, bw float64) {
	r.c = -math.Exp(-2 * math.Pi * bw / sampleRate)
	r.b = 2 * math.Exp(-math.Pi*bw/sampleRate) * math.Cos(2*math.Pi*freq/sampleRate)
	r.a = 1 - r.b - r.c
}

func (r *resonator) step(x float64) float64 {
	y := r.a*x + r.b*r.y1 + r.c*r.y2
	r.y2, r.y1 = r.y1, y
	return y
}

// speechClip synthesises seconds of a deterministic speech-like signal: a
// Rosenberg-style glottal pulse train at a slowly gliding pitch around f0,
// shaped by three formant resonators that change vowel every syllable
// (150-300 ms, sin² amplitude envelope, preceded by a 30-70 ms closure and
// sometimes a short noise burst as the consonant), grouped in phrases of 3-9
// syllables separated by 300-900 ms of silence.
// The peak is normalised to -6 dBFS.
func speechClip(seconds int, f0 float64, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 0x5eec4))
	out := make([]float64, seconds*sampleRate)
	var r1, r2, r3 resonator
	phase := 0.0
	n := 0
	for n < len(out) {
		// One phrase.
		syllables := 3 + rng.IntN(7)
		for s := 0; s < syllables && n < len(out); s++ {
			v := vowels[rng.IntN(len(vowels))]
			r1.set(v[0], 60)
			r2.set(v[1], 90)
			r3.set(v[2], 150)
			length := (150 + rng.IntN(150)) * sampleRate / 1000
			// A stop-consonant closure: near-silence before the vowel.
			n += (30 + rng.IntN(40)) * sampleRate / 1000
			burst := 0
			if rng.IntN(2) == 0 {
				burst = 25 * sampleRate / 1000
			}
			for i := 0; i < length && n < len(out); i, n = i+1, n+1 {
				t := float64(n) / sampleRate
				pitch := f0 * (1 + 0.08*math.Sin(2*math.Pi*0.7*t) - 0.05*float64(i)/float64(length))
				phase += pitch / sampleRate
				// Rosenberg-like glottal flow derivative: a smooth opening over
				// 40% of the period, a sharp closure, then the closed phase.
				if phase >= 1 {
					phase -= 1
				}
				x := 0.0
				if phase < 0.4 {
					x = math.Sin(math.Pi * phase / 0.4)
				} else if phase < 0.5 {
					x = -4 * math.Sin(math.Pi*(phase-0.4)/0.1) // equal area: no DC
				}
				y := r3.step(r2.step(r1.step(x)))
				env := math.Sin(math.Pi * float64(i) / float64(length))
				env *= env
				if i < burst {
					y += 0.3 * (rng.Float64()*2 - 1) * (1 - float64(i)/float64(burst))
				}
				out[n] = y * env
			}
		}
		pause := (300 + rng.IntN(600)) * sampleRate / 1000
		n += pause // out is already zero there
	}
	peak := 0.0
	for _, y := range out {
		peak = max(peak, math.Abs(y))
	}
	pcm := make([]int16, len(out))
	if peak == 0 {
		return pcm
	}
	gain := 32767 * math.Pow(10, -6.0/20) / peak
	for i, y := range out {
		pcm[i] = int16(math.Round(y * gain))
	}
	return pcm
}

// clips returns the caller's and the callee's payload loops for cfg.
func clips(cfg *Config) [2]clip {
	if len(cfg.Audio[0]) > 0 || len(cfg.Audio[1]) > 0 {
		return audioClips(cfg)
	}
	if cfg.Payload == "speech" {
		// Eight seconds each: a lower (caller) and a higher (callee) voice.
		return [2]clip{
			encodeClip(speechClip(8, 115, 1), cfg.Codec),
			encodeClip(speechClip(8, 210, 2), cfg.Codec),
		}
	}
	return [2]clip{encodeClip(toneClip(400), cfg.Codec), encodeClip(toneClip(1000), cfg.Codec)}
}
