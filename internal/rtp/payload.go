package rtp

// Static payload types used in tests and defaults (RFC 3551 §6).
const (
	PTPCMU  = 0
	PTPCMA  = 8
	PTG722  = 9
	PTCN    = 13
	PTG729  = 18
	PTCNOld = 19
)

type staticPT struct {
	codec string
	rate  uint32
}

// staticPTs is the RFC 3551 §6 table of audio and video encodings with a
// static payload type (the audio clock is the RTP clock, e.g. 8000 for G.722).
var staticPTs = [35]staticPT{
	0: {"PCMU", 8000}, 3: {"GSM", 8000}, 4: {"G723", 8000},
	5: {"DVI4", 8000}, 6: {"DVI4", 16000}, 7: {"LPC", 8000},
	8: {"PCMA", 8000}, 9: {"G722", 8000}, 10: {"L16", 44100},
	11: {"L16", 44100}, 12: {"QCELP", 8000}, 13: {"CN", 8000},
	14: {"MPA", 90000}, 15: {"G728", 8000}, 16: {"DVI4", 11025},
	17: {"DVI4", 22050}, 18: {"G729", 8000}, 19: {"CN", 8000},
	25: {"CelB", 90000}, 26: {"JPEG", 90000}, 28: {"nv", 90000},
	31: {"H261", 90000}, 32: {"MPV", 90000}, 33: {"MP2T", 90000},
	34: {"H263", 90000},
}

// ClockRate returns the encoding name and RTP clock rate of a static payload
// type from RFC 3551 §6. ok is false for unassigned and dynamic types
// (96–127), whose meaning comes from SDP.
func ClockRate(pt uint8) (codec string, rate uint32, ok bool) {
	if int(pt) >= len(staticPTs) {
		return "", 0, false
	}
	e := staticPTs[pt]
	return e.codec, e.rate, e.rate != 0
}
