package gen

import (
	"flag"
	"strings"
	"time"
)

// AddFlags binds every field of c to a flag in fs, using c's current values
// as the defaults, so a command can do:
//
//	cfg := gen.DefaultConfig()
//	cfg.AddFlags(fs)
//	fs.Parse(args)
//
// Start is given in RFC 3339 form (e.g. 2026-01-01T00:00:00Z).
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Calls, "calls", c.Calls, "number of calls")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "target simultaneous calls (used when -cps is 0)")
	fs.Float64Var(&c.CPS, "cps", c.CPS, "call attempts per second; 0 derives it from -concurrency and -talk")
	fs.DurationVar(&c.TalkTime, "talk", c.TalkTime, "mean RTP duration of an answered call (±20%)")
	fs.StringVar(&c.Codec, "codec", c.Codec, "PCMU or PCMA")
	fs.DurationVar(&c.Ptime, "ptime", c.Ptime, "RTP packetisation time")
	fs.StringVar(&c.Payload, "payload", c.Payload, "tone or speech")
	for d, name := range [2]string{"audio-caller", "audio-callee"} {
		fs.Func(name, "8 kHz mono 16-bit PCM (WAV or raw little-endian) for the "+name[6:]+"'s direction, replacing -payload", func(path string) error {
			pcm, err := LoadAudio(path)
			if err != nil {
				return err
			}
			c.Audio[d] = pcm
			return nil
		})
	}
	fs.Float64Var(&c.Loss, "loss", c.Loss, "per-packet RTP loss probability")
	fs.Float64Var(&c.Duplicates, "dup", c.Duplicates, "per-packet RTP duplication probability")
	fs.Float64Var(&c.Reorder, "reorder", c.Reorder, "per-packet RTP reordering probability")
	fs.DurationVar(&c.Jitter, "jitter", c.Jitter, "maximum extra capture delay per RTP packet")
	fs.Float64Var(&c.Failed, "failed", c.Failed, "fraction of calls rejected (486/404/503)")
	fs.Float64Var(&c.Cancelled, "cancelled", c.Cancelled, "fraction of calls cancelled after ringing (487)")
	fs.IntVar(&c.Registrations, "registrations", c.Registrations, "number of REGISTER transactions")
	fs.Float64Var(&c.RegisterFailed, "register-failed", c.RegisterFailed, "fraction of registrations refused with 403")
	fs.BoolVar(&c.RTCP, "rtcp", c.RTCP, "send RTCP SR+SDES every 5 s")
	fs.BoolVar(&c.Proxy, "proxy", c.Proxy, "route SIP through a proxy (two hops per message)")
	fs.BoolVar(&c.LargeInvite, "large-invite", c.LargeInvite, "pad INVITEs past the MTU (IPv4 fragments)")
	fs.BoolVar(&c.Nanosecond, "ns", c.Nanosecond, "nanosecond pcap timestamps")
	fs.StringVar(&c.Encap, "encap", c.Encap, "wrap every frame in: "+strings.Join(Encaps, ", "))
	fs.IntVar(&c.AddrOffset, "addr-offset", c.AddrOffset, "added to call and registration indexes in 10.x.y.z addresses (for merging captures)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.Func("start", "time of the first call, RFC 3339 (default "+c.startOrDefault().Format(time.RFC3339)+")", func(s string) error {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return err
		}
		c.Start = t
		return nil
	})
}

func (c *Config) startOrDefault() time.Time {
	if c.Start.IsZero() {
		return defaultStart
	}
	return c.Start
}
