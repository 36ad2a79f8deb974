package test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// vmColumns are the sniffer's per-stream cdr columns that voipsensor
// reproduces (rtp.VMStats), with how to read each from a stream's figures.
var vmColumns = []struct {
	name string
	get  func(*rtp.VMStats) int
}{
	{"mos_f1_mult10", func(v *rtp.VMStats) int { return v.MOSF1Mult10 }},
	{"mos_f2_mult10", func(v *rtp.VMStats) int { return v.MOSF2Mult10 }},
	{"mos_adapt_mult10", func(v *rtp.VMStats) int { return v.MOSAdaptMult10 }},
	{"mos_f1_min_mult10", func(v *rtp.VMStats) int { return v.MOSF1MinMult10 }},
	{"mos_f2_min_mult10", func(v *rtp.VMStats) int { return v.MOSF2MinMult10 }},
	{"mos_adapt_min_mult10", func(v *rtp.VMStats) int { return v.MOSAdaptMinMult10 }},
	{"mos_min_mult10", func(v *rtp.VMStats) int { return v.MOSMinMult10 }},
	{"avgjitter_mult10", func(v *rtp.VMStats) int { return v.AvgJitterMult10 }},
	{"maxjitter", func(v *rtp.VMStats) int { return v.MaxJitter }},
}

// readTSV reads a `mysql -e 'select * …'` dump: a header line, then rows.
func readTSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var head []string
	var rows []map[string]string
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if head == nil {
			head = fields
			continue
		}
		row := map[string]string{}
		for i, h := range head {
			if i < len(fields) {
				row[h] = fields[i]
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// mainStream is the stream of side with the most packets: the one the
// sniffer puts in a_ (caller) or b_ (callee).
func mainStream(c *calltable.CallInfo, side calltable.Side) *calltable.StreamInfo {
	var best *calltable.StreamInfo
	for i := range c.Streams {
		s := &c.Streams[i]
		if s.Side == side && (best == nil || s.Stats.Received > best.Stats.Received) {
			best = s
		}
	}
	return best
}

// TestVMMatchesSniffer decodes captures for which the real VoIPmonitor
// sniffer (2026.04.0, default MOS settings, offline -r) stored cdr rows,
// joins each call by Call-ID (cdr_next.fbasename) and each direction (a_ =
// the caller's stream, b_ = the callee's), and counts per column the
// streams whose figure equals the sniffer's (NULL = -1). Every column must
// be equal on at least 99 % of the streams of each capture.
func TestVMMatchesSniffer(t *testing.T) {
	type capture struct{ name, pcap, rows string }
	var caps []capture
	local, _ := filepath.Glob(filepath.Join("testdata", "vmmos", "*.pcap.gz"))
	for _, p := range local {
		n := strings.TrimSuffix(filepath.Base(p), ".pcap.gz")
		caps = append(caps, capture{n, p, filepath.Join("testdata", "vmmos", n)})
	}
	if len(local) == 0 {
		t.Fatal("no captures in testdata/vmmos")
	}
	for _, n := range []string{"mos_loss3_jit20", "mos_jit60_reorder"} {
		caps = append(caps, capture{n, "shared:" + n, ""})
	}
	// 10 short sipp calls with RFC 2833 DTMF: no MOS interval, jitter only.
	caps = append(caps, capture{"vm_sample_reg_10calls", "shared-sample:", ""})
	for _, c := range caps {
		t.Run(c.name, func(t *testing.T) {
			switch c.pcap {
			case "shared:" + c.name:
				d := filepath.Join(sharedtest.Dir(t), "peers", "voipmonitor", "mos")
				c.pcap, c.rows = filepath.Join(d, c.name+".pcap.gz"), filepath.Join(d, c.name)
			case "shared-sample:":
				c.pcap = sharedtest.Pcap(t, c.name+".pcap")
				c.rows = filepath.Join(sharedtest.Dir(t), "peers", "voipmonitor", "cdr")
			}
			checkVM(t, c.pcap, c.rows)
		})
	}
}

func checkVM(t *testing.T, pcap, rows string) {
	calls := map[string]*calltable.CallInfo{}
	for _, ci := range analyze(t, pcap).calls {
		calls[ci.CallID] = ci
	}
	callID := map[string]string{}
	for _, r := range readTSV(t, filepath.Join(rows, "cdr_next.tsv")) {
		callID[r["cdr_ID"]] = r["fbasename"]
	}
	equal := make([]int, len(vmColumns))
	streams := 0
	for _, r := range readTSV(t, filepath.Join(rows, "cdr.tsv")) {
		id := callID[r["ID"]]
		ci := calls[id]
		if ci == nil {
			t.Errorf("call %s (cdr.ID %s) not found", id, r["ID"])
			continue
		}
		for _, side := range []struct {
			prefix string
			side   calltable.Side
		}{{"a_", calltable.SideCaller}, {"b_", calltable.SideCallee}} {
			s := mainStream(ci, side.side)
			if r[side.prefix+"saddr"] == "NULL" {
				if s != nil {
					t.Errorf("%s %s: the sniffer has no stream, voipsensor has %v", id, side.prefix, s.Src)
				}
				continue
			}
			streams++
			if s == nil {
				t.Errorf("%s %s: stream missing", id, side.prefix)
				continue
			}
			for i, col := range vmColumns {
				want := -1
				if v := r[side.prefix+col.name]; v != "NULL" {
					n, err := strconv.Atoi(v)
					if err != nil {
						t.Fatalf("%s %s%s = %q", id, side.prefix, col.name, v)
					}
					want = n
				}
				if got := col.get(&s.Stats.VM); got == want {
					equal[i]++
				} else {
					t.Logf("%s %s%s = %d, sniffer %d", id, side.prefix, col.name, got, want)
				}
			}
		}
	}
	if streams == 0 {
		t.Fatal("no streams compared")
	}
	for i, col := range vmColumns {
		t.Logf("%-22s equal on %d/%d streams", col.name, equal[i], streams)
		if equal[i]*100 < streams*99 {
			t.Errorf("%s equal on %d/%d streams, want ≥ 99 %%", col.name, equal[i], streams)
		}
	}
}
