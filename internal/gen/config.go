package gen

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig is returned (wrapped, with the offending field) by
// [Config.Validate] and [Generate] for an unusable configuration.
var ErrConfig = errors.New("gen: invalid config")

// Config describes the traffic to generate. Every field is a plain value so a
// command line can bind each one to a flag; the zero value of an optional
// field disables the feature.
type Config struct {
	Calls       int           // number of calls (INVITE dialogs)
	Concurrency int           // target number of simultaneous calls, used when CPS is 0
	CPS         float64       // call attempts per second (Poisson arrivals); 0 derives Concurrency / mean call duration
	TalkTime    time.Duration // mean RTP duration of an answered call; each call draws uniformly in ±20%
	Codec       string        // "PCMU" or "PCMA"
	Ptime       time.Duration // packetisation time, whole ms in [1 ms, 120 ms] (20 ms default)
	Payload     string        // "tone" or "speech"

	// Audio[d], when non-empty, replaces the Payload signal of direction d
	// (0 caller → callee, 1 callee → caller) with this 8 kHz mono linear
	// PCM, played as a loop (see [LoadAudio]). When both directions are
	// set, the shorter is padded with silence to the longer's length and
	// both directions of a call read their loop at the same position at the
	// same moment, so a recorded two-sided conversation keeps its
	// turn-taking; each call starts at its own random position.
	Audio [2][]int16
	// AddrOffset is added to the call and registration index when deriving
	// their 10.x.y.z addresses, so that captures generated separately (with
	// different Seeds) can be merged without two calls sharing a flow.
	AddrOffset int

	Loss       float64       // per RTP packet probability of not being captured
	Duplicates float64       // per RTP packet probability of being captured twice
	Reorder    float64       // per RTP packet probability of being captured after its successor
	Jitter     time.Duration // maximum extra capture delay per RTP packet (uniform in [0, Jitter])

	Failed    float64 // fraction of calls rejected with 486, 404 or 503
	Cancelled float64 // fraction of calls CANCELled after 180 Ringing (487)

	Registrations  int     // number of REGISTER transactions, spread over the run
	RegisterFailed float64 // fraction of registrations refused with 403 after a 401 challenge

	RTCP        bool // send an RTCP SR+SDES compound packet every 5 s in each direction
	Proxy       bool // route SIP through a proxy: every SIP message appears on two hops
	LargeInvite bool // pad INVITEs beyond 1500 bytes so that they are IPv4-fragmented
	Nanosecond  bool // write a nanosecond-resolution pcap instead of microseconds
	// Encap wraps every frame in a tunnel or tag, one of [Encaps] ("" for
	// none): how a sensor behind a mirror port, a PPPoE link or an MPLS
	// core captures the same traffic.
	Encap string
	Seed  int64     // random seed; equal configs give byte-identical output
	Start time.Time // time of the first call; zero means 2026-01-01T00:00:00Z
}

// DefaultConfig returns a small, clean configuration: 10 PCMU calls of 10 s
// with a tone payload, 20 ms ptime, 2 concurrent calls and seed 1.
func DefaultConfig() Config {
	return Config{
		Calls:       10,
		Concurrency: 2,
		TalkTime:    10 * time.Second,
		Codec:       "PCMU",
		Ptime:       20 * time.Millisecond,
		Payload:     "tone",
		Seed:        1,
		Start:       defaultStart,
	}
}

var defaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate reports the first unusable field as an error wrapping [ErrConfig].
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	prob := func(name string, p float64) error {
		if !(p >= 0 && p <= 1) {
			return bad("%s = %v, want a probability in [0, 1]", name, p)
		}
		return nil
	}
	switch {
	case c.Calls < 0:
		return bad("Calls = %d, want >= 0", c.Calls)
	case c.Registrations < 0:
		return bad("Registrations = %d, want >= 0", c.Registrations)
	case c.CPS < 0:
		return bad("CPS = %v, want >= 0", c.CPS)
	case c.CPS == 0 && c.Concurrency <= 0 && c.Calls > 0:
		return bad("CPS and Concurrency are both 0")
	case c.TalkTime < 0:
		return bad("TalkTime = %v, want >= 0", c.TalkTime)
	case c.Codec != "PCMU" && c.Codec != "PCMA":
		return bad("Codec = %q, want PCMU or PCMA", c.Codec)
	case c.Ptime < time.Millisecond || c.Ptime > 120*time.Millisecond || c.Ptime%time.Millisecond != 0:
		return bad("Ptime = %v, want a whole number of ms in [1ms, 120ms]", c.Ptime)
	case c.Payload != "tone" && c.Payload != "speech":
		return bad("Payload = %q, want tone or speech", c.Payload)
	case c.Jitter < 0:
		return bad("Jitter = %v, want >= 0", c.Jitter)
	case c.AddrOffset < 0:
		return bad("AddrOffset = %d, want >= 0", c.AddrOffset)
	case !validEncap(c.Encap):
		return bad("Encap = %q, want one of %v", c.Encap, Encaps)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"Loss", c.Loss}, {"Duplicates", c.Duplicates}, {"Reorder", c.Reorder},
		{"Failed", c.Failed}, {"Cancelled", c.Cancelled}, {"RegisterFailed", c.RegisterFailed}} {
		if err := prob(p.name, p.v); err != nil {
			return err
		}
	}
	if c.Failed+c.Cancelled > 1 {
		return bad("Failed + Cancelled = %v, want <= 1", c.Failed+c.Cancelled)
	}
	return nil
}
