package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/offline"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// tsharkStream is one row of `tshark -q -z rtp,streams`.
type tsharkStream struct {
	key                   string // src:sport>dst:dport/0xSSRC
	pkts, lost            int64
	meanJitter, maxJitter float64
}

var tsharkRow = regexp.MustCompile(`^\s*\S+\s+\S+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+0x([0-9A-Fa-f]+)\s+.+?\s+(\d+)\s+(-?\d+) \(-?[\d.]+%\)\s+[\d.-]+\s+[\d.-]+\s+[\d.-]+\s+([\d.-]+)\s+([\d.-]+)\s+([\d.-]+)\s*X?\s*$`)

// runTshark returns tshark's rtp,streams rows for file; extra arguments
// (decode-as options) go before the statistics request.
func runTshark(t *testing.T, file string, extra ...string) map[string]tsharkStream {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		sharedtest.Missing(t, "tshark not installed (scripts/test.sh installs it)")
	}
	args := append(append([]string{"-r", file}, extra...), "-q", "-z", "rtp,streams")
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	rows := map[string]tsharkStream{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := tsharkRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ssrc, _ := strconv.ParseUint(m[5], 16, 32)
		var r tsharkStream
		r.key = fmt.Sprintf("%s:%s>%s:%s/0x%08X", m[1], m[2], m[3], m[4], ssrc)
		r.pkts, _ = strconv.ParseInt(m[6], 10, 64)
		r.lost, _ = strconv.ParseInt(m[7], 10, 64)
		r.meanJitter, _ = strconv.ParseFloat(m[9], 64)
		r.maxJitter, _ = strconv.ParseFloat(m[10], 64)
		rows[r.key] = r
	}
	return rows
}

type collect struct {
	calls []*calltable.CallInfo
	regs  []*calltable.RegistrationInfo
}

func (c *collect) CallEnded(ci *calltable.CallInfo)                  { c.calls = append(c.calls, ci) }
func (c *collect) RegistrationChanged(r *calltable.RegistrationInfo) { c.regs = append(c.regs, r) }

func analyze(t *testing.T, files ...string) *collect {
	t.Helper()
	var c collect
	if _, err := offline.Analyze(context.Background(), files, offline.AnalyzeOptions{}, &c); err != nil {
		t.Fatalf("Analyze(%v): %v", files, err)
	}
	return &c
}

// TestStreamsMatchTshark checks every RTP stream of every shared capture
// against tshark's rtp,streams: packets and loss exact, mean and max jitter
// within 0.01 ms, and no stream missing on either side.
func TestStreamsMatchTshark(t *testing.T) {
	pcaps, _ := filepath.Glob(filepath.Join(sharedtest.Pcaps(t), "*.pcap*"))
	if len(pcaps) == 0 {
		t.Fatal("no captures found")
	}
	for _, file := range pcaps {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want := runTshark(t, file)
			got := map[string]calltable.StreamInfo{}
			for _, c := range analyze(t, file).calls {
				for _, s := range c.Streams {
					got[fmt.Sprintf("%s>%s/0x%08X", s.Src, s.Dst, s.SSRC)] = s
				}
			}
			if len(want) == 0 {
				t.Fatalf("tshark found no RTP stream in %s", file)
			}
			for key, w := range want {
				g, ok := got[key]
				if !ok {
					t.Errorf("stream %s: tshark has it (%d pkts), voipsensor does not", key, w.pkts)
					continue
				}
				st := g.Stats
				if st.Received == 0 && st.Events > 0 {
					// A stream of RFC 2833 events only: voipsensor keeps
					// events out of the voice statistics, so only the
					// packet count compares.
					if int64(st.Events) != w.pkts {
						t.Errorf("event stream %s: %d events, tshark %d pkts", key, st.Events, w.pkts)
					}
					continue
				}
				if st.Received != w.pkts || st.LostRFC != w.lost {
					t.Errorf("stream %s: received %d lost %d, tshark %d %d", key, st.Received, st.LostRFC, w.pkts, w.lost)
				}
				if math.Abs(st.JitterMeanMS-w.meanJitter) > 0.01 || math.Abs(st.JitterMaxMS-w.maxJitter) > 0.01 {
					t.Errorf("stream %s: jitter mean %.3f max %.3f, tshark %.3f %.3f", key,
						st.JitterMeanMS, st.JitterMaxMS, w.meanJitter, w.maxJitter)
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("stream %s: voipsensor has it, tshark does not", key)
				}
			}
		})
	}
}
