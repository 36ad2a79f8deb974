package test

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// This file holds the HEP tests: voipsensor's sender feeding another
// voipsensor's collector, and real peers (Kamailio's siptrace, sngrep) on
// either side.

// hepCollector is a daemon that only collects HEP (interface = none).
type hepCollector struct {
	*daemon
	addr    string // the collector's host:port, UDP and TCP
	metrics string // the metrics URL
}

var (
	hepListenRe     = regexp.MustCompile(`msg="hep collector listening" udp=(\S+)`)
	metricsListenRe = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
)

// startHEPCollector starts `voipsensor run` with interface = none and
// hep_bind on a loopback port the kernel picks, plus args.
func startHEPCollector(t *testing.T, args ...string) *hepCollector {
	t.Helper()
	d := startDaemon(t, append([]string{"-set", "interface=none", "-set", "hep_bind=127.0.0.1:0"}, args...)...)
	log := d.log.String()
	h, m := hepListenRe.FindStringSubmatch(log), metricsListenRe.FindStringSubmatch(log)
	if h == nil || m == nil {
		t.Fatalf("no hep or metrics listener in the log:\n%s", log)
	}
	return &hepCollector{daemon: d, addr: h[1], metrics: m[1]}
}

// counters returns the collector's voipsensor_hep_received_total by
// outcome.
func (c *hepCollector) counters(t *testing.T) map[string]int64 {
	t.Helper()
	resp, err := http.Get(c.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]int64{}
	re := regexp.MustCompile(`(?m)^voipsensor_hep_received_total\{outcome="(\w+)"\} (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		out[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	return out
}

// waitReceived polls the collector until it has received n packets.
func (c *hepCollector) waitReceived(t *testing.T, n int64, timeout time.Duration) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := c.counters(t)
		var sum int64
		for _, v := range got {
			sum += v
		}
		if sum >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector received %d packets (%v), want %d", sum, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM, which closes its calls and flushes
// their CDRs.
func (c *hepCollector) stop(t *testing.T) {
	t.Helper()
	c.signal(syscall.SIGTERM)
	if code := c.wait(20 * time.Second); code != 0 {
		t.Fatalf("collector exit code %d; log:\n%s", code, c.log)
	}
}

// cdrTable reads every cdr row as column → value, without the row id,
// ordered by Call-ID.
func cdrTable(t *testing.T, db string) []map[string]any {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT * FROM cdr ORDER BY callid, calldate`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := map[string]any{}
		for i, c := range cols {
			if c != "ID" {
				r[c] = vals[i]
			}
		}
		out = append(out, r)
	}
	return out
}

// readCall is what `voipsensor read --json` says of a call.
type readCall struct {
	CallID   string  `json:"callid"`
	Caller   string  `json:"caller"`
	Called   string  `json:"called"`
	LastCode int     `json:"last_sip_code"`
	State    string  `json:"state"`
	Duration float64 `json:"duration_s"`
	Streams  []struct {
		Src      string `json:"src"`
		Dst      string `json:"dst"`
		SSRC     string `json:"ssrc"` // 0x-prefixed hex
		Received int64  `json:"received"`
		Lost     int64  `json:"lost"`
	} `json:"streams"`
}

// readJSON runs `voipsensor read --json` on a capture and returns its
// calls by Call-ID.
func readJSON(t *testing.T, pcap string, args ...string) map[string]readCall {
	t.Helper()
	out, err := exec.Command(voipsensorBinary(t), append(append([]string{"read", "--json", "-q"}, args...), pcap)...).Output()
	if err != nil {
		t.Fatalf("read %s: %v", pcap, err)
	}
	calls := map[string]readCall{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c readCall
		var kind struct{ Type string }
		json.Unmarshal(sc.Bytes(), &kind)
		if kind.Type != "call" {
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		calls[c.CallID] = c
	}
	return calls
}

var senderStoppedRe = regexp.MustCompile(`msg="hep sender stopped" .*sent=(\d+) dropped=(\d+) failed=(\d+)`)

// TestHEPRoundTrip: one voipsensor reads a capture and mirrors it (SIP,
// RTP and RTCP) as HEP to another that only collects; the collector's CDRs
// are the reader's, column for column, and its calls and streams those of
// `voipsensor read` of the same capture. Over UDP and TCP, IPv4 and IPv6,
// SIP over UDP and TCP, with RTCP reports and with packet loss, behind a
// password and a capture id allow-list.
func TestHEPRoundTrip(t *testing.T) {
	cases := []struct {
		pcap, transport string
	}{
		{"sipp_kamailio.pcap", "udp"},
		{"baresip_rtcp.pcap", "tcp"},
		{"sipp_rtpstream_loss5.pcap", "udp"},
		{"foreign/sipcapture_heplify_sip_ipv4_tcp.pcap", "tcp"},
		{"foreign/sipcapture_heplify_sip_ipv6_udp.pcap", "udp"},
		{"foreign/sipcapture_heplify_rtp_rtcp_sip_ipv4_udp.pcap", "tcp"},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.pcap)+"/"+tc.transport, func(t *testing.T) {
			pcap := sharedtest.Pcap(t, tc.pcap)
			if _, err := os.Stat(pcap); err != nil {
				sharedtest.Missing(t, "%s: %v", pcap, err)
			}
			col := startHEPCollector(t, "-set", "hep_password=s3cret", "-set", "hep_allow_capture_id=77")
			// The sender reads the file at full speed: its queue holds the
			// whole capture, the collector's socket buffer is 8 MiB.
			snd := newDaemon(t, "-r", pcap, "-set", "hep_server="+col.addr, "-set", "hep_server_transport="+tc.transport,
				"-set", "hep_rtp=yes", "-set", "hep_password=s3cret", "-set", "hep_capture_id=77")
			if code := snd.run(60 * time.Second); code != 0 {
				t.Fatalf("sender exit %d:\n%s", code, snd.log)
			}
			m := senderStoppedRe.FindStringSubmatch(snd.log.String())
			if m == nil {
				t.Fatalf("no sender summary in the log:\n%s", snd.log)
			}
			sent, _ := strconv.ParseInt(m[1], 10, 64)
			if m[2] != "0" || m[3] != "0" || sent == 0 {
				t.Fatalf("sender: sent %s dropped %s failed %s", m[1], m[2], m[3])
			}
			got := col.waitReceived(t, sent, 20*time.Second)
			if got["analysed"] != sent {
				t.Errorf("collector outcomes %v, want all %d analysed", got, sent)
			}
			col.stop(t)

			direct, collected := cdrTable(t, snd.sqliteDB()), cdrTable(t, col.sqliteDB())
			if len(direct) == 0 {
				t.Fatal("the capture gave no CDR")
			}
			if tc.pcap == "baresip_rtcp.pcap" && direct[0]["a_rtcp_avgrtd_mult10"] == nil {
				t.Error("no RTCP round-trip time in the reader's CDR: the RTCP check below proves nothing")
			}
			if d := cmp.Diff(direct, collected); d != "" {
				t.Errorf("CDRs of the collector differ from the reader's (-reader +collector):\n%s", d)
			}

			// And against `read` of the same file: the same calls, with
			// the same packets and losses on the streams the CDR keeps.
			ref := readJSON(t, pcap)
			if len(ref) != len(collected) {
				t.Errorf("read found %d calls, the collector %d", len(ref), len(collected))
			}
			for _, row := range collected {
				id := row["callid"].(string)
				c, ok := ref[id]
				if !ok {
					t.Errorf("call %s not in read's output", id)
					continue
				}
				if c.Caller != row["caller"] || c.Called != row["called"] || int64(c.LastCode) != row["lastSIPresponseNum"] {
					t.Errorf("call %s: read %s→%s %d, collector %v→%v %v", id, c.Caller, c.Called, c.LastCode,
						row["caller"], row["called"], row["lastSIPresponseNum"])
				}
				for _, side := range []string{"a", "b"} {
					ssrc, _ := row[side+"_ssrc"].(int64)
					if ssrc == 0 {
						continue
					}
					found := false
					for _, s := range c.Streams {
						if v, _ := strconv.ParseInt(s.SSRC, 0, 64); v == ssrc && s.Received == row[side+"_received"] && s.Lost == row[side+"_lost"] {
							found = true
						}
					}
					if !found {
						t.Errorf("call %s: %s stream ssrc %d received %v lost %v is not one of read's %+v",
							id, side, ssrc, row[side+"_received"], row[side+"_lost"], c.Streams)
					}
				}
			}
		})
	}
}

// TestHEPExposure: a collector bound beyond loopback without hep_password
// refuses to start, naming the setting and the remedy.
func TestHEPExposure(t *testing.T) {
	code, log := runDaemon(t, 20*time.Second, "-set", "interface=none", "-set", "hep_bind=0.0.0.0:0")
	if code == 0 || !strings.Contains(log, "hep_bind = 0.0.0.0:0") || !strings.Contains(log, "hep_password") {
		t.Fatalf("exit %d, want a refusal naming hep_bind and hep_password; log:\n%s", code, log)
	}
}

// kamailioConfig is a minimal proxy on udp (and tcp) 127.0.0.1:port that
// relays every request to the callee at uas and mirrors all its SIP
// traffic as HEP to hep (siptrace's trace_mode 1).
func kamailioConfig(port, uas int, hepURI string, version int, authKey string) string {
	key := ""
	if authKey != "" {
		key = fmt.Sprintf("modparam(\"siptrace\", \"auth_key\", %q)\n", authKey)
	}
	return fmt.Sprintf(`#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
listen=udp:127.0.0.1:%[1]d
listen=tcp:127.0.0.1:%[1]d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siptrace.so"
modparam("siptrace", "duplicate_uri", %[3]q)
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", %[4]d)
modparam("siptrace", "hep_capture_id", 2001)
modparam("siptrace", "trace_to_database", 0)
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_mode", 1)
%[5]s
request_route {
	if (is_method("INVITE")) {
		record_route();
	} else {
		loose_route();
	}
	$du = "sip:127.0.0.1:%[2]d";
	t_relay();
}
`, port, uas, hepURI, version, key)
}

// TestHEPKamailio: Kamailio's siptrace module, proxying sipp calls on
// loopback, mirrors every SIP message as HEP to a voipsensor collector
// (HEPv3 over UDP with an authentication key, HEPv2 over UDP, HEPv3 over
// TCP). The collector's calls are the calls `voipsensor read` finds in a
// tcpdump capture of the same traffic.
func TestHEPKamailio(t *testing.T) {
	sharedtest.Root(t) // tcpdump on lo
	needTool(t, "kamailio")
	needTool(t, "sipp")
	needTool(t, "tcpdump")
	for _, v := range []struct {
		name      string
		version   int
		transport string
		key       string
	}{
		{"v3-udp-key", 3, "udp", "k3y"},
		{"v2-udp", 2, "udp", ""},
		{"v3-tcp", 3, "tcp", ""},
	} {
		t.Run(v.name, func(t *testing.T) {
			const calls = 3
			base := udpBlock(t, 4) // kamailio, uas, uac, tcpdump's marker
			kport, uas, uac := base, base+1, base+2
			work := t.TempDir()
			args := []string{"-set", "hep_allow_capture_id=2001"}
			if v.key != "" {
				args = append(args, "-set", "hep_password="+v.key)
			}
			col := startHEPCollector(t, args...)
			// The SIP between sipp and kamailio, not the HEP kamailio sends
			// from its SIP port.
			_, hepPort, _ := strings.Cut(col.addr, ":")
			refPcap := filepath.Join(work, "ref.pcap")
			stopTcpdump := startTcpdump(t, refPcap, fmt.Sprintf("udp and portrange %d-%d and not port %s", base, base+3, hepPort), base+3)
			hepURI := "sip:" + col.addr
			if v.transport == "tcp" {
				hepURI += ";transport=tcp"
			}
			cfg := filepath.Join(work, "kamailio.cfg")
			if err := os.WriteFile(cfg, []byte(kamailioConfig(kport, uas, hepURI, v.version, v.key)), 0o644); err != nil {
				t.Fatal(err)
			}
			var klog syncBuffer
			k := exec.Command("kamailio", "-f", cfg, "-DD", "-E", "-w", work, "-P", filepath.Join(work, "k.pid"))
			k.Stdout, k.Stderr = &klog, &klog
			if err := k.Start(); err != nil {
				t.Fatal(err)
			}
			kdone := make(chan struct{})
			go func() { k.Wait(); close(kdone) }()
			defer func() {
				k.Process.Signal(syscall.SIGTERM)
				select {
				case <-kdone:
				case <-time.After(10 * time.Second):
					k.Process.Kill()
					<-kdone
				}
				if t.Failed() {
					t.Logf("kamailio log:\n%s", klog.String())
				}
			}()
			waitUDPBound(t, kport, 15*time.Second)

			var wg sync.WaitGroup
			outs := make([][]byte, 2)
			errs := make([]error, 2)
			run := func(i int, args ...string) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], errs[i] = exec.Command("sipp", args...).CombinedOutput()
				}()
			}
			run(0, "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(uas), "-m", strconv.Itoa(calls), "-nostdin", "-timeout", "40s")
			waitUDPBound(t, uas, 10*time.Second)
			run(1, "-sn", "uac", fmt.Sprintf("127.0.0.1:%d", kport), "-i", "127.0.0.1", "-p", strconv.Itoa(uac),
				"-m", strconv.Itoa(calls), "-l", "1", "-d", "300", "-nostdin", "-timeout", "40s")
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("sipp %d: %v\n%s", i, err, outs[i])
				}
			}
			stopTcpdump()

			// Every message tcpdump saw went through kamailio, which traced
			// it: received and sent, so as many HEP packets as frames.
			frames := int64(len(tsharkFields(t, refPcap, []string{"-Y", "sip"}, "frame.number")))
			got := col.waitReceived(t, frames, 15*time.Second)
			if got["analysed"] != frames || got["auth_failed"] != 0 || got["malformed"] != 0 || got["unknown_agent"] != 0 {
				t.Errorf("collector outcomes %v, want %d analysed and nothing refused", got, frames)
			}
			col.stop(t)

			ref := readJSON(t, refPcap, "-sipport", fmt.Sprintf("%d-%d", base, base+2))
			rows := cdrTable(t, col.sqliteDB())
			if len(ref) != calls || len(rows) != calls {
				t.Fatalf("read found %d calls, the collector %d; want %d", len(ref), len(rows), calls)
			}
			for _, row := range rows {
				id := row["callid"].(string)
				c, ok := ref[id]
				if !ok {
					t.Errorf("call %s not in read's output", id)
					continue
				}
				dur := row["duration_ms"].(int64)
				if c.Caller != row["caller"] || c.Called != row["called"] || int64(c.LastCode) != row["lastSIPresponseNum"] ||
					row["state"] != "answered" || abs(dur-int64(c.Duration*1000)) > 200 { // kamailio stamps a message when it handles it: late under load
					t.Errorf("call %s: read %s→%s %d %.3fs, collector %v→%v %v %v %dms", id, c.Caller, c.Called, c.LastCode, c.Duration,
						row["caller"], row["called"], row["lastSIPresponseNum"], row["state"], dur)
				}
			}
		})
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// waitUDPBound polls until something is bound to the loopback UDP port.
func waitUDPBound(t *testing.T, port int, timeout time.Duration) {
	t.Helper()
	hex := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile("/proc/net/udp")
		if bytes.Contains(b, []byte(hex)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing bound to udp port %d after %v", port, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHEPSngrep: sngrep on both sides. As a sender (-H), replaying a
// capture, it feeds the collector the calls `voipsensor read` finds in that
// capture; as a collector (-L), it receives what the voipsensor sender
// mirrors from the capture and writes it to a pcap whose calls are again
// the capture's (SIP only: sngrep keeps no RTP from HEP).
func TestHEPSngrep(t *testing.T) {
	needTool(t, "sngrep")
	pcap := sharedtest.Pcap(t, "sipp_kamailio.pcap")
	ref := readJSON(t, pcap)
	sipOnly := func(calls map[string]readCall) map[string]readCall {
		out := map[string]readCall{}
		for id, c := range calls {
			c.Streams = nil
			out[id] = c
		}
		return out
	}

	t.Run("sender", func(t *testing.T) {
		col := startHEPCollector(t)
		out, err := exec.Command("sngrep", "-F", "-I", pcap, "-H", "udp:"+col.addr, "-N", "-q").CombinedOutput()
		if err != nil {
			t.Fatalf("sngrep: %v\n%s", err, out)
		}
		frames := int64(len(tsharkFields(t, pcap, []string{"-Y", "sip"}, "frame.number")))
		got := col.waitReceived(t, frames, 15*time.Second)
		if got["analysed"] != frames {
			t.Errorf("collector outcomes %v, want %d analysed", got, frames)
		}
		col.stop(t)
		rows := cdrTable(t, col.sqliteDB())
		if len(rows) != len(ref) {
			t.Fatalf("collector %d calls, read %d", len(rows), len(ref))
		}
		for _, row := range rows {
			c := ref[row["callid"].(string)]
			if c.Caller != row["caller"] || c.Called != row["called"] || int64(c.LastCode) != row["lastSIPresponseNum"] ||
				abs(row["duration_ms"].(int64)-int64(c.Duration*1000)) > 1 {
				t.Errorf("call %v: collector %v→%v %v %vms, read %+v", row["callid"], row["caller"], row["called"],
					row["lastSIPresponseNum"], row["duration_ms"], c)
			}
		}
	})

	t.Run("collector", func(t *testing.T) {
		work := t.TempDir()
		port := udpBlock(t, 1)
		out := filepath.Join(work, "sngrep.pcap")
		s := exec.Command("sngrep", "-F", "-L", fmt.Sprintf("udp:127.0.0.1:%d", port), "-N", "-q", "-O", out)
		var slog syncBuffer
		s.Stdout, s.Stderr = &slog, &slog
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		sdone := make(chan struct{})
		go func() { s.Wait(); close(sdone) }()
		defer func() {
			s.Process.Kill()
			<-sdone
		}()
		waitUDPBound(t, port, 10*time.Second)
		snd := newDaemon(t, "-r", pcap, "-set", fmt.Sprintf("hep_server=127.0.0.1:%d", port))
		if code := snd.run(60 * time.Second); code != 0 {
			t.Fatalf("sender exit %d:\n%s", code, snd.log)
		}
		m := senderStoppedRe.FindStringSubmatch(snd.log.String())
		if m == nil || m[2] != "0" || m[3] != "0" {
			t.Fatalf("sender summary %v:\n%s", m, snd.log)
		}
		sent, _ := strconv.Atoi(m[1])
		// sngrep writes each packet as it arrives; wait for all of them.
		deadline := time.Now().Add(15 * time.Second)
		for {
			n := 0
			if st, err := os.Stat(out); err == nil && st.Size() > 24 {
				n = len(tsharkFields(t, out, nil, "frame.number"))
			}
			if n >= sent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sngrep wrote %d of %d packets; its log:\n%s", n, sent, slog.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.Process.Signal(syscall.SIGTERM)
		<-sdone
		got := readJSON(t, out)
		if d := cmp.Diff(sipOnly(ref), sipOnly(got)); d != "" {
			t.Errorf("calls of sngrep's capture differ from the original's (-original +sngrep):\n%s", d)
		}
	})
}
