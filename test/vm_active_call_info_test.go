package test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// sipPacketKeys are the members of a sip_packets element, in the sniffer's
// order (sSipPacketInfo::getJson), with the JSON kind of each.
var sipPacketKeys = []string{"time", "src_ip", "src_port", "dst_ip", "dst_port", "sip", "sip_len", "packet_len", "cseq_m", "cseq_n"}

var sipPacketKinds = map[string]string{"time": "int", "src_ip": "string", "src_port": "string", "dst_ip": "string",
	"dst_port": "string", "sip": "string", "sip_len": "int", "packet_len": "int", "cseq_m": "int", "cseq_n": "int"}

// snifferMethodNumbers are the sniffer's SIP method numbers (calltable.h).
var snifferMethodNumbers = map[string]int{"INVITE": 1, "BYE": 2, "CANCEL": 3, "REGISTER": 4, "MESSAGE": 5, "INFO": 6,
	"SUBSCRIBE": 7, "OPTIONS": 8, "NOTIFY": 9, "ACK": 10, "PRACK": 11, "PUBLISH": 12, "REFER": 13, "UPDATE": 14}

// tsharkSIP returns, per Call-ID, the SIP messages tshark sees in file, in
// capture order, as sip_packets elements would show them.
func tsharkSIP(t *testing.T, file string) map[string][]map[string]any {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		sharedtest.Missing(t, "tshark not installed (scripts/test.sh installs it)")
	}
	out, err := exec.Command(bin, "-r", file, "-Y", "sip && udp", "-T", "fields", "-E", "separator=|", "-E", "occurrence=f",
		"-e", "sip.Call-ID", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport",
		"-e", "sip.Request-Line", "-e", "sip.Status-Line", "-e", "udp.length", "-e", "frame.len",
		"-e", "sip.CSeq.method", "-e", "sip.CSeq.seq").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	msgs := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 12 {
			t.Fatalf("tshark line %q: %d fields", line, len(f))
		}
		sec, frac, _ := strings.Cut(f[1], ".")
		us, _ := strconv.ParseInt(sec+(frac + "000000")[:6], 10, 64)
		udpLen, _ := strconv.Atoi(f[8])
		frameLen, _ := strconv.Atoi(f[9])
		seq, _ := strconv.Atoi(f[11])
		msgs[f[0]] = append(msgs[f[0]], map[string]any{
			"time": float64(us), "src_ip": f[2], "src_port": f[3], "dst_ip": f[4], "dst_port": f[5],
			"sip": f[6] + f[7], "sip_len": float64(udpLen - 8), "packet_len": float64(frameLen),
			"cseq_m": float64(snifferMethodNumbers[f[10]]), "cseq_n": float64(seq),
		})
	}
	return msgs
}

// TestVMManagerActiveCallInfoPackets replays the sniffer's sample with
// active_call_info = yes and checks, for each of its 10 calls once all are
// set up (6.2 s into the file; the first BYE comes at 10.7 s), that
// active_call_info's sip_packets is an array in the sniffer's shape whose
// elements are the SIP messages tshark sees for that Call-ID: as many, in
// the same order, with the same first lines, addresses, times, lengths and
// CSeq.
func TestVMManagerActiveCallInfoPackets(t *testing.T) {
	file := sharedtest.Pcap(t, "vm_sample_reg_10calls.pcap")
	// What each call has before the file's first BYE, when it is asked.
	all := tsharkSIP(t, file)
	firstBye := -1.0
	for _, ms := range all {
		for _, m := range ms {
			if m["cseq_m"] == 2.0 && (firstBye < 0 || m["time"].(float64) < firstBye) {
				firstBye = m["time"].(float64)
			}
		}
	}
	want := map[string][]map[string]any{}
	for id, ms := range all {
		for _, m := range ms {
			if m["time"].(float64) < firstBye {
				want[id] = append(want[id], m)
			}
		}
	}
	sock := filepath.Join(t.TempDir(), "manager.sock")
	d := newDaemon(t, "-r", file, "--realtime", "-set", "managersocket="+sock, "-set", "active_call_info=yes")
	d.cmd.Env = append(os.Environ(), "TZ=UTC")
	startDaemonFrom(t, d)
	started := time.Now()

	// All ten calls answered and acknowledged: the ACK of the last one is
	// at 6.17 s; each call then has RTP both ways.
	var lc table
	waitFor(t, "ten calls with RTP both ways", 10*time.Second, func() bool {
		var err error
		lc, err = parseTable(managerAsk(t, sock, "listcalls"))
		if err != nil || len(lc.rows) < 10 {
			return false
		}
		for _, r := range lc.rows {
			if !bothRTP(lc, r) {
				return false
			}
		}
		return true
	})
	for _, r := range lc.rows {
		callID := lc.str(r, "callid")
		t.Run(callID, func(t *testing.T) {
			reply := managerAsk(t, sock, "active_call_info "+lc.str(r, "callreference"))
			if el := time.Since(started); el > 10500*time.Millisecond {
				t.Skipf("asked %v into the replay, after the first BYE: too slow a machine to compare", el)
			}
			var top struct {
				SIPPackets json.RawMessage `json:"sip_packets"`
			}
			if err := json.Unmarshal(reply, &top); err != nil {
				t.Fatalf("reply %q: %v", reply, err)
			}
			if !bytes.HasPrefix(top.SIPPackets, []byte("[")) {
				t.Fatalf("sip_packets = %s, want an array with active_call_info = yes", top.SIPPackets)
			}
			var elems []json.RawMessage
			if err := json.Unmarshal(top.SIPPackets, &elems); err != nil {
				t.Fatal(err)
			}
			var got []map[string]any
			for i, e := range elems {
				ms, err := objectMembers(e)
				if err != nil {
					t.Fatalf("element %d: %v", i, err)
				}
				if diff := cmp.Diff(sipPacketKeys, memberKeys(ms)); diff != "" {
					t.Errorf("element %d keys (-sniffer +got):\n%s", i, diff)
				}
				for _, m := range ms {
					if k := kindOf(m.raw); k != sipPacketKinds[m.key] {
						t.Errorf("element %d: %s is %s (%s), the sniffer sends a %s", i, m.key, k, m.raw, sipPacketKinds[m.key])
					}
				}
				// The sniffer escapes '/' in texts (JsonExport).
				if !bytes.Contains(e, []byte(`SIP\/2.0`)) {
					t.Errorf("element %d: %s has no SIP\\/2.0", i, e)
				}
				var v map[string]any
				json.Unmarshal(e, &v)
				got = append(got, v)
			}
			if diff := cmp.Diff(want[callID], got); diff != "" {
				t.Errorf("sip_packets against tshark's SIP messages of %s (-tshark +got):\n%s", callID, diff)
			}
			if len(got) != 4 {
				t.Errorf("%d packets, want the call's INVITE, 180, 200 and ACK", len(got))
			}
		})
	}
}
