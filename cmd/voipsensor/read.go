package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/offline"
	"github.com/voipsensor/voipsensor/internal/report"
)

func runRead(args []string) int {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON Lines: one object per call, then one per registration state change")
	ports := fs.String("sipport", "5060", "SIP ports: comma list of ports and ranges (5060,5080-5090)")
	quiet := fs.Bool("q", false, "no progress bar and no summary on stderr")
	decodeOnly := fs.Bool("decode-only", false, "only read and decode (the baseline of scripts/bench.sh); prints nothing")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file (for performance work)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor read [--json] [--sipport LIST] [-q] FILE...")
		fs.PrintDefaults()
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) == 0 {
		fs.Usage()
		return 2
	}
	ps, err := parsePorts(*ports)
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor read:", err)
		return 2
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor read:", err)
			return 1
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintln(os.Stderr, "voipsensor read:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
		defer func() {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(os.Stderr, "voipsensor read: %d GC cycles, %d MiB allocated in total\n", ms.NumGC, ms.TotalAlloc>>20)
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	sink := &readSink{}
	if *asJSON {
		sink.json = report.NewJSONWriter(out)
	}
	opts := offline.AnalyzeOptions{SIPPorts: ps, DecodeOnly: *decodeOnly}
	bar := newProgressBar(*quiet)
	if bar != nil {
		opts.Progress = bar.update
	}
	res, err := offline.Analyze(ctx, files, opts, sink)
	bar.done()
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor read:", err)
		return 1
	}
	if sink.err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor read:", sink.err)
		return 1
	}
	slices.SortFunc(sink.calls, func(a, b *calltable.CallInfo) int { return a.InviteTime.Compare(b.InviteTime) })
	if *decodeOnly {
		// nothing to print
	} else if *asJSON {
		for _, r := range sink.regs {
			if err := sink.json.Registration(r); err != nil {
				fmt.Fprintln(os.Stderr, "voipsensor read:", err)
				return 1
			}
		}
	} else {
		fmt.Fprintf(out, "Calls: %d\n", len(sink.calls))
		report.WriteCallTable(out, sink.calls)
		fmt.Fprintf(out, "\nRegistrations: %s\n", plural(len(sink.regs), "state change", "state changes"))
		report.WriteRegistrationTable(out, sink.regs)
	}
	for _, name := range res.Truncated {
		fmt.Fprintf(os.Stderr, "voipsensor read: warning: %s ends in a cut-short record (a capture still being written, or a partial copy); analysed up to it\n", name)
	}
	if res.Interrupted {
		fmt.Fprintf(os.Stderr, "voipsensor read: interrupted after %d frames; calls still open were closed at their last packet\n", res.Frames)
	}
	if !*quiet {
		d := res.Decode
		fmt.Fprintf(os.Stderr, "voipsensor read: %d frames in %.2f s (%.0f frames/s): %s, %s; malformed: %d frames, %d SIP, %d RTP\n",
			res.Frames, res.Elapsed.Seconds(), float64(res.Frames)/res.Elapsed.Seconds(),
			plural(sink.n, "call", "calls"), plural(len(sink.regs), "registration state change", "registration state changes"),
			d.Malformed, res.Table.SIPMalformed, res.Table.RTPMalformed)
	}
	return 0
}

// readSink collects calls (printed in INVITE order at the end, or streamed
// as JSON as they end) and registration changes.
type readSink struct {
	json  *report.JSONWriter
	n     int // calls reported, printed or streamed
	calls []*calltable.CallInfo
	regs  []*calltable.RegistrationInfo
	err   error
}

func (s *readSink) CallEnded(c *calltable.CallInfo) {
	s.n++
	if s.json != nil {
		if err := s.json.Call(c); err != nil && s.err == nil {
			s.err = err
		}
		return
	}
	s.calls = append(s.calls, c)
}

func (s *readSink) RegistrationChanged(r *calltable.RegistrationInfo) { s.regs = append(s.regs, r) }

// plural says "1 call", "3 calls".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parsePorts parses "5060,5080-5090".
func parsePorts(s string) (*decode.PortSet, error) {
	ps := new(decode.PortSet)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("bad port %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("bad port range %q", part)
			}
		}
		ps.Add(uint16(a), uint16(b))
	}
	return ps, nil
}

// progressBar draws one line on stderr when it is a terminal.
type progressBar struct {
	mu   sync.Mutex
	last int
}

func newProgressBar(quiet bool) *progressBar {
	if quiet {
		return nil
	}
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progressBar{last: -1}
}

func (p *progressBar) update(file string, done, total int64) {
	if p == nil || total <= 0 {
		return
	}
	pct := int(done * 100 / total)
	p.mu.Lock()
	defer p.mu.Unlock()
	if pct == p.last {
		return
	}
	p.last = pct
	const width = 30
	n := pct * width / 100
	fmt.Fprintf(os.Stderr, "\r%-24s [%s%s] %3d%%", clipName(file, 24), strings.Repeat("=", n), strings.Repeat(" ", width-n), pct)
}

func (p *progressBar) done() {
	if p == nil {
		return
	}
	fmt.Fprint(os.Stderr, "\r\033[K")
}

func clipName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
