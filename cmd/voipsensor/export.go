package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/offline"
)

// callRef is listcalls' callreference: "0x" and hexadecimal digits.
var callRef = regexp.MustCompile(`^0x[0-9a-fA-F]+$`)

func runExport(args []string) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	conf := fs.String("c", "", "configuration file: its spooldir and sipport are used")
	spoolDir := fs.String("spooldir", "", "the spool to search (overrides spooldir)")
	capture := fs.String("r", "", "cut the call out of this capture file instead of the spool")
	out := fs.String("o", "", "output pcap file (required; - for stdout)")
	asCallID := fs.Bool("callid", false, "take the argument as a Call-ID even if it looks like a call reference (0x…)")
	fs.Bool("pcap", true, "write a pcap of the call's SIP, RTP and RTCP (the default)")
	asWAV := fs.Bool("wav", false, "write the call's recorded audio instead (saveaudio = wav; from the spool only)")
	var sets setFlags
	fs.Var(&sets, "set", "override one option: -set key=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor export [-c FILE] [--spooldir DIR | -r CAPTURE] [--callid] [--pcap | --wav] -o OUT CALLID|CALLREF")
		fmt.Fprintln(os.Stderr, "\nWrites one call's SIP, RTP and RTCP as one pcap: from its recordings in the spool\n"+
			"(savesip, savertp), or cut out of a capture file with -r. CALLREF is the call's\n"+
			"reference in that file (0x1 is its first call, as listcalls numbers a run over it).\n"+
			"With --wav, writes the call's stereo WAV from the spool (saveaudio = wav) instead.")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || *out == "" {
		fs.Usage()
		return 2
	}
	cfg, _, _, err := loadConfig(*conf, sets, map[string]string{"spooldir": *spoolDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor export:", err)
		return 2
	}
	opt := offline.ExportOptions{SpoolDir: cfg.SpoolDir, Capture: *capture, SIPPorts: new(decode.PortSet)}
	for _, r := range cfg.SIPPorts {
		opt.SIPPorts.Add(r.Lo, r.Hi)
	}
	if *asWAV && *capture != "" {
		fmt.Fprintln(os.Stderr, "voipsensor export: --wav reads the audio the sensor recorded (saveaudio = wav) from the spool; it cannot be cut out of a capture (-r)")
		return 2
	}
	if arg := pos[0]; !*asCallID && callRef.MatchString(arg) {
		if *capture == "" {
			fmt.Fprintln(os.Stderr, "voipsensor export: a call reference ("+arg+") names a call of one run over a capture: use -r CAPTURE, or give the Call-ID (--callid if it looks like 0x…)")
			return 2
		}
		ref, err := strconv.ParseUint(arg[2:], 16, 64)
		if err != nil || ref == 0 {
			fmt.Fprintln(os.Stderr, "voipsensor export: bad call reference", arg)
			return 2
		}
		opt.Ref = ref
	} else {
		opt.CallID = arg
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor export:", err)
			return 1
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var (
		res offline.ExportResult
		wav string
	)
	if *asWAV {
		wav, err = offline.ExportWAV(ctx, opt.SpoolDir, opt.CallID, bw)
	} else {
		res, err = offline.Export(ctx, opt, bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor export:", err)
		if errors.Is(err, offline.ErrNoSuchCall) {
			return 3
		}
		return 1
	}
	from := *capture
	if from == "" {
		from = cfg.SpoolDir
	}
	if *asWAV {
		fmt.Fprintf(os.Stderr, "wrote %s: %s from %s\n", *out, wav, from)
		return 0
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d frames of %d call(s) from %s\n", *out, res.Frames, res.Calls, from)
	return 0
}
