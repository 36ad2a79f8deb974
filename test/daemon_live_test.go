package test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/g711"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// needRoot skips a test that opens an AF_PACKET socket (CI runs as root).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		sharedtest.Missing(t, "live capture needs root (CAP_NET_RAW)")
	}
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		sharedtest.Missing(t, "%s not installed (scripts/install-deps.sh installs it)", name)
	}
}

// udpBlock returns the first of n consecutive loopback UDP ports that were
// all free a moment ago, from a random base so that parallel test binaries
// do not pick the same block. The ports are below Linux's ephemeral range
// (32768-60999), so no client socket of another test gets one of them
// while this test runs.
func udpBlock(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 12000 + 10*rand.IntN((32000-12000-n)/10)
		var conns []net.PacketConn
		ok := true
		for p := base; p < base+n && ok; p++ {
			c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no block of %d free UDP ports", n)
	return 0
}

// writeTone writes the 1 kHz mu-law tone sipp's rtp_stream plays, with the
// lab's gen_tone.py when python3 is there, else with internal/g711 (same
// formula: 8000·sin(2π·1000·i/8000)).
func writeTone(t *testing.T, lab, dir string) {
	t.Helper()
	out := filepath.Join(dir, "tone1k_pcmu.raw")
	if _, err := exec.LookPath("python3"); err == nil {
		if b, err := exec.Command("python3", filepath.Join(lab, "gen_tone.py"), out, "1000", "10").CombinedOutput(); err != nil {
			t.Fatalf("gen_tone.py: %v\n%s", err, b)
		}
		return
	}
	pcm := make([]byte, 80000)
	for i := range pcm {
		pcm[i] = g711.EncodeUlaw(int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000)))
	}
	if err := os.WriteFile(out, pcm, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sippCallLength reads the cumulative average call length from a sipp
// -trace_stat file (column CallLength(C), "HH:MM:SS:micro").
func sippCallLength(t *testing.T, name string) time.Duration {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		t.Fatalf("%s: no statistics line", name)
	}
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	for i, h := range head {
		if h != "CallLength(C)" || i >= len(last) {
			continue
		}
		var hh, mm, ss, us int
		if _, err := fmt.Sscanf(last[i], "%d:%d:%d:%d", &hh, &mm, &ss, &us); err != nil {
			t.Fatalf("%s: CallLength(C) %q: %v", name, last[i], err)
		}
		return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(us)*time.Microsecond
	}
	t.Fatalf("%s: no CallLength(C) column", name)
	return 0
}

// tcpdumpCount counts the frames of capture name that match filter.
func tcpdumpCount(t *testing.T, name, filter string) int64 {
	t.Helper()
	out, err := exec.Command("tcpdump", "-nn", "-r", name, filter).Output()
	if err != nil {
		t.Fatalf("tcpdump -r %s %q: %v", name, filter, err)
	}
	return int64(strings.Count(string(out), "\n"))
}

// TestDaemonLiveSipp captures live on lo while real sipp calls run: the lab's
// scenario 2 (../shared/lab/README.md: each side streams its own PCMU with
// rtp_stream, the UAC hangs up after 5 s of media). Three caller/callee
// pairs, each on its own ports, make one call each at the same time (sipp
// sends every call of one instance from the same media port, so calls of
// one instance must not overlap). tcpdump captures the same traffic as the
// reference for packet counts; sipp's own statistics give the call length.
// Every call must have its row: caller, called, duration, last code 200,
// a_/b_received equal to tcpdump's counts and no loss.
func TestDaemonLiveSipp(t *testing.T) {
	needRoot(t)
	needTool(t, "sipp")
	needTool(t, "tcpdump")
	lab := filepath.Join(sharedtest.Dir(t), "lab", "sipp")
	work := t.TempDir()
	for _, f := range []string{"uas_rtpstream.xml", "uac_rtpstream.xml"} {
		b, err := os.ReadFile(filepath.Join(lab, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeTone(t, lab, work)

	const pairs = 3
	base := udpBlock(t, 10*pairs+1) // the last port receives tcpdump's marker
	type pair struct{ uasSIP, uacSIP, uasMedia, uacMedia int }
	ps := make([]pair, pairs)
	var sipPorts []string
	for i := range ps {
		b := base + 10*i // sipp binds media port .. +3 (RTP, RTCP, video)
		ps[i] = pair{uasSIP: b, uacSIP: b + 1, uasMedia: b + 2, uacMedia: b + 6}
		sipPorts = append(sipPorts, strconv.Itoa(b), strconv.Itoa(b+1))
	}

	// The reference capture.
	refPcap := filepath.Join(work, "ref.pcap")
	stopTcpdump := startTcpdump(t, refPcap, fmt.Sprintf("udp and portrange %d-%d", base, base+10*pairs), base+10*pairs)

	// The same port range as the reference, so that other traffic on lo
	// (other tests, other sipp runs) cannot add calls.
	d := startDaemon(t, "-i", "lo", "-set", "sipport="+strings.Join(sipPorts, ","),
		"-set", fmt.Sprintf("filter=udp and portrange %d-%d", base, base+10*pairs-1))

	// Callees first, then callers; every sipp exits after its one call.
	var wg sync.WaitGroup
	errs := make([]error, 2*pairs)
	outs := make([][]byte, 2*pairs)
	runSipp := func(k int, args ...string) {
		cmd := exec.Command("sipp", args...)
		cmd.Dir = work // rtp_stream reads the tone from the working directory
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[k], errs[k] = cmd.CombinedOutput()
		}()
	}
	for i, p := range ps {
		runSipp(i, "-sf", "uas_rtpstream.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(p.uasSIP),
			"-mi", "127.0.0.1", "-mp", strconv.Itoa(p.uasMedia), "-m", "1", "-nostdin", "-timeout", "40s")
	}
	for i, p := range ps {
		runSipp(pairs+i, "-sf", "uac_rtpstream.xml", fmt.Sprintf("127.0.0.1:%d", p.uasSIP),
			"-i", "127.0.0.1", "-p", strconv.Itoa(p.uacSIP), "-mi", "127.0.0.1", "-mp", strconv.Itoa(p.uacMedia),
			"-m", "1", "-l", "1", "-nostdin", "-timeout", "40s",
			"-trace_stat", "-stf", fmt.Sprintf("stat%d.csv", i))
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("sipp %d: %v\n%s", k, err, outs[k])
		}
	}

	// The BYEs ended the calls; their rows arrive within a batch interval.
	deadline := time.Now().Add(10 * time.Second)
	for len(readCDRs(t, "sqlite", d.sqliteDB())) < pairs && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	stopTcpdump()

	// INVITE to BYE per call, as tcpdump captured them.
	var decodeAs []string
	for _, p := range ps {
		decodeAs = append(decodeAs, "-d", fmt.Sprintf("udp.port==%d,sip", p.uasSIP))
	}
	invite, bye := map[string]time.Time{}, map[string]time.Time{}
	for _, f := range tsharkFields(t, refPcap, decodeAs, "frame.time_epoch", "sip.Method", "sip.Call-ID") {
		sec, _ := strconv.ParseFloat(f[0], 64)
		ts := time.Unix(0, int64(sec*1e9))
		switch f[1] {
		case "INVITE":
			if _, seen := invite[f[2]]; !seen {
				invite[f[2]] = ts
			}
		case "BYE":
			if _, seen := bye[f[2]]; !seen {
				bye[f[2]] = ts
			}
		}
	}
	wireLens := map[string]time.Duration{}
	for id, inv := range invite {
		if b, ok := bye[id]; ok {
			wireLens[id] = b.Sub(inv)
		}
	}

	rows := readCDRs(t, "sqlite", d.sqliteDB())
	if len(rows) != pairs {
		t.Errorf("%d rows, want %d (one per call)", len(rows), pairs)
	}
	byPort := map[int64]cdrRow{}
	for _, r := range rows {
		byPort[r.ASport.Int64] = r
	}
	for i, p := range ps {
		r, ok := byPort[int64(p.uacMedia)]
		if !ok {
			t.Errorf("call %d (caller media port %d): no row", i, p.uacMedia)
			continue
		}
		sippLen := sippCallLength(t, filepath.Join(work, fmt.Sprintf("stat%d.csv", i)))
		wireLen, ok := wireLens[r.CallID]
		if !ok {
			t.Errorf("call %d (%s): no INVITE and BYE in the reference capture", i, r.CallID)
		}
		wantA := tcpdumpCount(t, refPcap, fmt.Sprintf("udp and src port %d and dst port %d", p.uacMedia, p.uasMedia))
		wantB := tcpdumpCount(t, refPcap, fmt.Sprintf("udp and src port %d and dst port %d", p.uasMedia, p.uacMedia))
		t.Logf("call %d %s: duration %d ms (INVITE to BYE on the wire %v, sipp's own %v), a_received %d (tcpdump %d), b_received %d (tcpdump %d)",
			i, r.CallID, r.DurationMS, wireLen, sippLen, r.AReceived.Int64, wantA, r.BReceived.Int64, wantB)
		if r.Caller != "alice" || r.Called != "service" {
			t.Errorf("call %d: %s → %s, want alice → service", i, r.Caller, r.Called)
		}
		if r.LastCode != 200 || r.State != "answered" {
			t.Errorf("call %d: last code %d, state %s; want 200, answered", i, r.LastCode, r.State)
		}
		// The duration is INVITE to BYE as captured: equal to the
		// reference capture's to the millisecond. (sipp's own call length
		// is logged only: on a loaded machine its clock readings can be
		// far from the moments its packets left.)
		if diff := time.Duration(r.DurationMS)*time.Millisecond - wireLen; diff < -time.Millisecond || diff > time.Millisecond {
			t.Errorf("call %d: duration %d ms, INVITE to BYE in tcpdump's capture %v", i, r.DurationMS, wireLen)
		}
		// sipp paces 20 ms packets for the 5 s pause: about 250 each way.
		for _, n := range []int64{wantA, wantB} {
			if n < 230 || n > 270 {
				t.Errorf("call %d: tcpdump saw %d packets in a direction, want about 250 (the reference is off)", i, n)
			}
		}
		if r.AReceived.Int64 != wantA || r.BReceived.Int64 != wantB {
			t.Errorf("call %d: received a=%d b=%d, tcpdump a=%d b=%d", i, r.AReceived.Int64, r.BReceived.Int64, wantA, wantB)
		}
		if !r.ALost.Valid || !r.BLost.Valid || r.ALost.Int64 != 0 || r.BLost.Int64 != 0 {
			t.Errorf("call %d: lost a=%v b=%v, want 0 and 0", i, r.ALost, r.BLost)
		}
	}
}
