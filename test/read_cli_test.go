package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestReadJSONSchema runs `voipsensor read --json` on the kamailio capture
// (two proxied calls, three registration changes) and checks every field
// the README's schema promises, with values read off the capture by hand
// (and confirmed by tshark's SIP dissection).
func TestReadJSONSchema(t *testing.T) {
	bin := voipsensorBinary(t)
	out, err := exec.Command(bin, "read", "--json", "-q", sharedtest.Pcap(t, "sipp_kamailio.pcap")).Output()
	if err != nil {
		t.Fatalf("read --json: %v", err)
	}
	var calls, regs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		switch obj["type"] {
		case "call":
			calls = append(calls, obj)
		case "registration":
			regs = append(regs, obj)
		default:
			t.Errorf("unknown object type %v", obj["type"])
		}
	}
	if len(calls) != 2 || len(regs) != 3 {
		t.Fatalf("calls %d registrations %d, want 2 3", len(calls), len(regs))
	}
	callKeys := []string{"callid", "caller", "called", "calldate", "duration_s", "connect_duration_s", "last_sip_code", "state", "hangup_by", "sip_caller", "sip_called", "legs", "streams"}
	streamKeys := []string{"src", "dst", "ssrc", "payload_type", "codec", "received", "lost", "duplicates", "reordered", "jitter_mean_ms", "jitter_max_ms", "max_delta_ms", "mos_f1", "mos_f2", "mos_adapt"}
	for _, c := range calls {
		for _, k := range callKeys {
			if _, ok := c[k]; !ok {
				t.Errorf("call lacks %q: %v", k, c)
			}
		}
		if c["caller"] != "alice" || c["called"] != "bob" || c["last_sip_code"] != 200.0 || c["legs"] != 2.0 || c["state"] != "ended" {
			t.Errorf("call: caller %v called %v code %v legs %v state %v; want alice bob 200 2 ended",
				c["caller"], c["called"], c["last_sip_code"], c["legs"], c["state"])
		}
		if !strings.HasSuffix(c["calldate"].(string), "Z") {
			t.Errorf("calldate %v is not RFC 3339 UTC", c["calldate"])
		}
		streams := c["streams"].([]any)
		if len(streams) != 2 {
			t.Fatalf("streams = %d, want 2", len(streams))
		}
		for _, s := range streams {
			sm := s.(map[string]any)
			for _, k := range streamKeys {
				if _, ok := sm[k]; !ok {
					t.Errorf("stream lacks %q", k)
				}
			}
			if sm["codec"] != "PCMU" || sm["lost"] != 0.0 || sm["mos_f2"] != 4.5 {
				t.Errorf("stream codec %v lost %v mos %v, want PCMU 0 4.5", sm["codec"], sm["lost"], sm["mos_f2"])
			}
		}
	}
	wantStates := []string{"OK", "OK", "Unregister"}
	for i, r := range regs {
		for _, k := range []string{"user", "contact", "state", "expires", "attempts", "rrd_ms"} {
			if _, ok := r[k]; !ok {
				t.Errorf("registration lacks %q", k)
			}
		}
		if r["state"] != wantStates[i] {
			t.Errorf("registration %d state %v, want %s", i, r["state"], wantStates[i])
		}
	}
}

// TestReadTable checks the terminal rendering names the calls and the
// registrations.
func TestReadTable(t *testing.T) {
	bin := voipsensorBinary(t)
	out, err := exec.Command(bin, "read", "-q", sharedtest.Pcap(t, "sipp_rtpstream_loss5.pcap")).Output()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	s := string(out)
	// The calls last 5.5 s: like the VoIPmonitor sniffer, voipsensor closes
	// no 10 s MOS interval, so no MOS is shown (the sniffer stores NULL),
	// rather than a 4.5 beside 2% loss. Each row ends with the SIP
	// addresses and the Call-ID.
	for _, want := range []string{"Calls: 3", "5 (2.0%)  0.43ms  –  ", "PCMU", "127.0.0.1:5061 → 127.0.0.1:5070  1-22531@127.0.0.1",
		"Registrations: 0 state changes"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// TestReadBadInput: a file that is not a capture is an error with exit
// status 1, and a truncated capture is read up to the cut.
func TestReadBadInput(t *testing.T) {
	bin := voipsensorBinary(t)
	cmd := exec.Command(bin, "read", "-q", sharedtest.Pcap(t, "SHA256SUMS"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "not a pcap") {
		t.Errorf("read of a text file: err %v, output %q; want exit 1 naming the format", err, out)
	}

	full, err := os.ReadFile(sharedtest.Pcap(t, "sipp_rtpstream.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, full[:len(full)*2/3+7], 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c := exec.Command(bin, "read", "--json", "-q", cut)
	c.Stderr = &stderr
	out, err = c.Output()
	if err != nil {
		t.Fatalf("read of a truncated capture: %v", err)
	}
	if !strings.Contains(stderr.String(), "warning: "+cut+" ends in a cut-short record") {
		t.Errorf("no warning about the truncated file: %q", stderr.String())
	}
	if n := strings.Count(string(out), `"type":"call"`); n < 2 {
		t.Errorf("truncated capture gave %d calls, want the 2 or 3 it holds", n)
	}
}

// TestReadSummary: the closing line counts what was reported, in the table
// mode and in JSON mode alike (JSON streams calls as they end; the count
// once read 0 there), in words people read.
func TestReadSummary(t *testing.T) {
	bin := voipsensorBinary(t)
	pcap := sharedtest.Pcap(t, "sipp_kamailio.pcap")
	for _, mode := range [][]string{{"read"}, {"read", "--json"}} {
		var stderr strings.Builder
		c := exec.Command(bin, append(mode, pcap)...)
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if mode[len(mode)-1] == "--json" {
			if n := strings.Count(string(out), `"type":"call"`); n != 2 {
				t.Fatalf("--json printed %d calls, want 2", n)
			}
		}
		re := regexp.MustCompile(`voipsensor read: 1026 frames in [0-9.]+ s \([0-9]+ frames/s\): 2 calls, 3 registration state changes; malformed: 0 frames, 0 SIP, 0 RTP\n$`)
		if !re.MatchString(stderr.String()) {
			t.Errorf("%v summary: %q", mode, stderr.String())
		}
	}
}
