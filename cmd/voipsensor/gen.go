package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
)

func runGen(args []string) int {
	cfg := gen.DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("o", "", "output pcap file (required; - for stdout)")
	truth := fs.String("truth", "", "ground-truth JSON file (default: OUT with .json, none for stdout)")
	start := fs.String("start", "", "time of the first call, RFC 3339 (default 2026-01-01T00:00:00Z)")
	fs.IntVar(&cfg.Calls, "calls", cfg.Calls, "number of calls")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "target simultaneous calls (used when -cps is 0)")
	fs.Float64Var(&cfg.CPS, "cps", cfg.CPS, "call attempts per second (0 = derived from -concurrency and -talk)")
	fs.DurationVar(&cfg.TalkTime, "talk", cfg.TalkTime, "mean talk time of an answered call (±20%)")
	fs.StringVar(&cfg.Codec, "codec", cfg.Codec, "PCMU or PCMA")
	fs.DurationVar(&cfg.Ptime, "ptime", cfg.Ptime, "packetisation time")
	fs.StringVar(&cfg.Payload, "payload", cfg.Payload, "tone or speech")
	fs.Float64Var(&cfg.Loss, "loss", 0, "probability that an RTP packet is lost (0..1)")
	fs.Float64Var(&cfg.Duplicates, "dup", 0, "probability that an RTP packet is captured twice")
	fs.Float64Var(&cfg.Reorder, "reorder", 0, "probability that an RTP packet arrives after its successor")
	fs.DurationVar(&cfg.Jitter, "jitter", 0, "maximum extra delay per RTP packet")
	fs.Float64Var(&cfg.Failed, "failed", 0, "fraction of calls rejected (486, 404, 503)")
	fs.Float64Var(&cfg.Cancelled, "cancelled", 0, "fraction of calls cancelled after ringing")
	fs.IntVar(&cfg.Registrations, "registrations", 0, "number of REGISTER transactions")
	fs.Float64Var(&cfg.RegisterFailed, "register-failed", 0, "fraction of registrations refused")
	fs.BoolVar(&cfg.RTCP, "rtcp", false, "send RTCP SR every 5 s per direction")
	fs.BoolVar(&cfg.Proxy, "proxy", false, "route SIP through a proxy (two legs per call)")
	fs.BoolVar(&cfg.LargeInvite, "large-invite", false, "pad INVITEs past the MTU so they are IP-fragmented")
	fs.BoolVar(&cfg.Nanosecond, "ns", false, "nanosecond-resolution pcap")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (same seed, same bytes)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor gen [flags] -o OUT.pcap")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *start != "" {
		t, err := time.Parse(time.RFC3339Nano, *start)
		if err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor gen: -start:", err)
			return 2
		}
		cfg.Start = t
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
		return 2
	}

	var pw io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
			return 1
		}
		defer f.Close()
		pw = f
		if *truth == "" {
			*truth = trimExt(*out) + ".json"
		}
	}
	bw := bufio.NewWriterSize(pw, 1<<20)
	tw := io.Discard
	var tf *os.File
	if *truth != "" {
		var err error
		if tf, err = os.Create(*truth); err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
			return 1
		}
		defer tf.Close()
		tw = tf
	}
	sum, err := gen.Generate(cfg, bw, tw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor gen:", err)
		return 1
	}
	if *out != "-" {
		fmt.Printf("wrote %s: %d packets, %d calls; ground truth %s\n", *out, sum.Packets, sum.Calls, *truth)
	}
	return 0
}

func trimExt(name string) string {
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}
