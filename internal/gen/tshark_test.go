package gen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// runTshark runs tshark on pcap with args and returns its standard output.
func runTshark(t *testing.T, tshark, pcap string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tshark, append([]string{"-n", "-r", pcap}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	return string(out)
}

// TestTshark has Wireshark's dissectors, an independent implementation,
// read the generated files: every SIP call is found by Call-ID with the
// truth's final INVITE response, RTP streams (set up from the SDP) match the
// truth's packet counts and tshark's loss figure (expected minus received,
// so duplicates cancel losses), and no IPv4 or UDP checksum is bad.
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		sharedtest.Missing(t, "tshark not installed")
	}
	if testing.Short() {
		t.Skip("runs tshark; skipped with -short")
	}
	base := DefaultConfig()
	base.Calls, base.Concurrency, base.TalkTime = 10, 4, 5*time.Second
	base.Loss, base.Duplicates, base.Reorder, base.Jitter = 0.04, 0.02, 0.02, 20*time.Millisecond
	base.Failed, base.Cancelled, base.Registrations, base.RTCP = 0.2, 0.2, 6, true
	alt := base
	alt.Proxy, alt.LargeInvite, alt.Nanosecond, alt.Codec, alt.Payload, alt.Seed = true, true, true, "PCMA", "speech", 7
	if v := os.Getenv("GEN_TSHARK_SEED"); v != "" {
		base.Seed, _ = strconv.ParseInt(v, 10, 64)
		alt.Seed = base.Seed + 1
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"direct PCMU", base}, {"proxy large PCMA", alt}} {
		t.Run(tc.name, func(t *testing.T) {
			_, pcap, truth := generate(t, tc.cfg)
			tr := parseTruth(t, truth)
			file := filepath.Join(t.TempDir(), "gen.pcap")
			if err := os.WriteFile(file, pcap, 0o644); err != nil {
				t.Fatal(err)
			}

			// SIP: Call-ID, method, status, CSeq method per message.
			finals := map[string]int{}
			invites := map[string]int{}
			for _, line := range strings.Split(strings.TrimSpace(runTshark(t, tshark, file, "-Y", "sip",
				"-T", "fields", "-E", "separator=/t", "-e", "sip.Call-ID", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method")), "\n") {
				f := strings.Split(line, "\t")
				if len(f) != 4 {
					t.Fatalf("tshark SIP line %q", line)
				}
				if f[1] == "INVITE" {
					invites[f[0]]++
				}
				if code, _ := strconv.Atoi(f[2]); code >= 200 && f[3] == "INVITE" {
					finals[f[0]] = code
				}
			}
			hops := 1
			if tc.cfg.Proxy {
				hops = 2
			}
			if len(invites) != len(tr.Calls) {
				t.Errorf("tshark sees INVITEs for %d Call-IDs, truth has %d calls", len(invites), len(tr.Calls))
			}
			wantStreams := map[string]bool{}
			for _, c := range tr.Calls {
				if invites[c.CallID] != hops || finals[c.CallID] != c.LastSIPCode {
					t.Errorf("call %s: tshark sees %d INVITEs and final %d; truth %d hops, %d", c.CallID, invites[c.CallID], finals[c.CallID], hops, c.LastSIPCode)
				}
				for _, s := range c.Streams {
					// tshark: Lost = expected (highest - first seq + 1) - received (duplicates included).
					key := strings.Replace(s.Src, ":", " ", 1) + " " + strings.Replace(s.Dst, ":", " ", 1) +
						" 0x" + strings.ToUpper(strconv.FormatUint(uint64(s.SSRC)|1<<32, 16)[1:]) +
						" " + strconv.Itoa(s.Written) + " " + strconv.Itoa(s.Lost-s.Duplicates)
					wantStreams[key] = true
				}
			}

			// RTP streams: "start end srcIP srcPort dstIP dstPort SSRC payload pkts lost (pct) ...".
			got := map[string]bool{}
			for _, line := range strings.Split(runTshark(t, tshark, file, "-q", "-z", "rtp,streams"), "\n") {
				f := strings.Fields(line)
				if len(f) < 10 || !strings.HasPrefix(f[6], "0x") {
					continue
				}
				got[strings.Join([]string{f[2], f[3], f[4], f[5], f[6], f[8], f[9]}, " ")] = true
			}
			for k := range wantStreams {
				if !got[k] {
					t.Errorf("truth stream %q (src dst ssrc written lost) missing from tshark's rtp,streams", k)
				}
			}
			if len(got) != len(wantStreams) {
				t.Errorf("tshark lists %d RTP streams, truth has %d", len(got), len(wantStreams))
				for k := range got {
					if !wantStreams[k] {
						t.Logf("tshark only: %s", k)
					}
				}
			}

			// Checksums verified by tshark: none bad, some good.
			statuses := runTshark(t, tshark, file, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
				"-T", "fields", "-e", "ip.checksum.status", "-e", "udp.checksum.status")
			if strings.Contains(statuses, "0") || !strings.Contains(statuses, "1") {
				t.Errorf("tshark checksum statuses (0 = bad, 1 = good) contain a bad one or no good one")
			}
		})
	}
}
