package test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
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

	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// stopRuns is how many times TestDaemonStopMidCall stops a live sensor.
const stopRuns = 20

// TestDaemonStopMidCall starts `voipsensor run -i lo`, places real sipp
// calls with RTP both ways (the lab's scenario 2, several caller/callee
// pairs at once) and sends SIGTERM while they are in progress, stopRuns
// times at moments spread over call setup, ringing, media and hang-up. Each
// run must exit 0 without a crash, log "sensor stopped", and store one row
// for each call whose INVITE was on the wire before the stop, with
// a_/b_received equal to the RTP packets tcpdump captured before the stop.
// "Before the stop" is the cut the daemon logs: it analyses every frame
// stamped before it and none after (both captures read the same kernel
// timestamps).
func TestDaemonStopMidCall(t *testing.T) {
	sharedtest.Root(t)
	for _, tool := range []string{"sipp", "tcpdump", "tshark"} {
		sharedtest.Tool(t, tool)
	}
	if testing.Short() {
		t.Skip("about 90 s of live calls; skipped with -short")
	}
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
	// A call is INVITE, 500 ms to the answer, 5 s of media, BYE: stop
	// moments from 50 ms to 6.2 s after the callers start cover every phase.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for run := range stopRuns {
		after := 50*time.Millisecond + time.Duration(run)*6150*time.Millisecond/stopRuns +
			time.Duration(rng.IntN(200))*time.Millisecond
		t.Run(fmt.Sprintf("run%02d-%dms", run, after.Milliseconds()), func(t *testing.T) {
			stopMidCall(t, work, after)
		})
	}
}

// stopMidCall is one run of TestDaemonStopMidCall: pairs sipp pairs, a
// SIGTERM after the given time.
func stopMidCall(t *testing.T, work string, after time.Duration) {
	const pairs = 6
	base := udpBlock(t, 10*pairs+1) // the last port receives tcpdump's marker
	type pair struct{ uasSIP, uacSIP, uasMedia, uacMedia int }
	ps := make([]pair, pairs)
	var sipPorts []string
	for i := range ps {
		b := base + 10*i
		ps[i] = pair{uasSIP: b, uacSIP: b + 1, uasMedia: b + 2, uacMedia: b + 6}
		sipPorts = append(sipPorts, strconv.Itoa(b), strconv.Itoa(b+1))
	}
	portFilter := fmt.Sprintf("udp and portrange %d-%d", base, base+10*pairs)
	refPcap := filepath.Join(t.TempDir(), "ref.pcap")
	stopTcpdump := startTcpdump(t, refPcap, portFilter, base+10*pairs)

	d := startDaemon(t, "-i", "lo", "-set", "sipport="+strings.Join(sipPorts, ","), "-set", "filter="+portFilter)

	var procs []*exec.Cmd
	killSipps := func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
		procs = nil
	}
	t.Cleanup(killSipps)
	runSipp := func(args ...string) {
		cmd := exec.Command("sipp", args...)
		cmd.Dir = work // rtp_stream reads the tone from the working directory
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	for _, p := range ps {
		runSipp("-sf", "uas_rtpstream.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(p.uasSIP),
			"-mi", "127.0.0.1", "-mp", strconv.Itoa(p.uasMedia), "-m", "1", "-nostdin", "-timeout", "30s")
	}
	for _, p := range ps {
		runSipp("-sf", "uac_rtpstream.xml", fmt.Sprintf("127.0.0.1:%d", p.uasSIP),
			"-i", "127.0.0.1", "-p", strconv.Itoa(p.uacSIP), "-mi", "127.0.0.1", "-mp", strconv.Itoa(p.uacMedia),
			"-m", "1", "-l", "1", "-nostdin", "-timeout", "30s")
	}
	time.Sleep(after) // the moment of the stop, chosen on purpose
	sigAt := time.Now()
	d.signal(syscall.SIGTERM)
	code := d.wait(30 * time.Second)
	killSipps()
	stopTcpdump()

	log := d.log.String()
	if code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	for _, bad := range []string{"panic:", "fatal error:", "SIGSEGV", "level=ERROR"} {
		if strings.Contains(log, bad) {
			t.Fatalf("%q in the log", bad)
		}
	}
	if !strings.Contains(log, `msg="sensor stopped"`) {
		t.Fatal(`no "sensor stopped" in the log`)
	}
	m := regexp.MustCompile(`msg="capture stopped" cut=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatal(`no "capture stopped" cut in the log`)
	}
	cut, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}

	// The reference: what tcpdump captured before the cut.
	var decodeAs []string
	for _, p := range ps {
		decodeAs = append(decodeAs, "-d", fmt.Sprintf("udp.port==%d,sip", p.uasSIP))
	}
	invites := map[string]bool{}
	inviteFrom := map[string]int{} // Call-ID → the caller's SIP port
	media := map[[2]int]int64{}
	for _, f := range tsharkFields(t, refPcap, decodeAs, "frame.time_epoch", "udp.srcport", "udp.dstport", "sip.Method", "sip.CSeq.method", "sip.Call-ID") {
		if !epochBefore(t, f[0], cut) {
			continue
		}
		src, _ := strconv.Atoi(f[1])
		dst, _ := strconv.Atoi(f[2])
		if f[3] == "INVITE" {
			invites[f[5]] = true
			inviteFrom[f[5]] = src
		}
		if f[4] == "" && f[5] == "" {
			media[[2]int{src, dst}]++
		}
	}
	rows := readCDRs(t, "sqlite", d.sqliteDB())
	n := countByCallID(rows)
	for id := range invites {
		if n[id] != 1 {
			t.Errorf("call %s (INVITE before the stop): %d rows, want 1", id, n[id])
		}
	}
	for id, k := range n {
		if !invites[id] {
			t.Errorf("call %s: %d rows, but no INVITE before the stop", id, k)
		}
	}
	// Rows to pairs by Call-ID and the caller's SIP port (a row's media
	// ports may be NULL when a direction had no packet yet).
	byCaller := map[int]cdrRow{}
	for _, r := range rows {
		byCaller[inviteFrom[r.CallID]] = r
	}
	checked := 0
	for i, p := range ps {
		wantA, wantB := media[[2]int{p.uacMedia, p.uasMedia}], media[[2]int{p.uasMedia, p.uacMedia}]
		r, ok := byCaller[p.uacSIP]
		if !ok {
			if wantA+wantB > 0 {
				t.Errorf("pair %d: %d+%d RTP packets before the stop but no row", i, wantA, wantB)
			}
			continue
		}
		checked++
		if r.AReceived.Int64 != wantA || r.BReceived.Int64 != wantB {
			t.Errorf("pair %d (%s): received a=%d b=%d, tcpdump before the cut a=%d b=%d",
				i, r.CallID, r.AReceived.Int64, r.BReceived.Int64, wantA, wantB)
		}
	}
	t.Logf("stop after %v (cut %v after SIGTERM): %d calls with an INVITE before the cut, %d rows, %d with media checked",
		after, cut.Sub(sigAt).Round(time.Millisecond), len(invites), len(rows), checked)
}

// startTcpdump captures filter on lo into file with nanosecond timestamps
// and returns the function that stops it (idempotent; also run at cleanup).
// Immediate mode, so that the kernel hands every frame over at once. A
// loaded tcpdump can lag behind the kernel ring, and SIGINT makes it drop
// what it has not read yet, so stop first sends a marker datagram to
// markerPort (which filter must select) and waits until the marker is in
// the file: every frame before it has been written by then.
func startTcpdump(t *testing.T, file, filter string, markerPort int) func() {
	t.Helper()
	// In immediate mode libpcap uses fixed ring slots sized for the
	// snaplen: with the defaults (262,144 bytes, a 2 MiB buffer) that is 8
	// slots, and a tcpdump that is not scheduled for a moment drops frames
	// the daemon kept (1 to 3 RTP packets per stream in 4 of 20 runs on a
	// loaded 2-core machine, which read as "the daemon counted too many").
	// A 4 KiB snaplen (whole SIP messages) and a 32 MiB buffer give
	// thousands of slots; the drops tcpdump reports at exit are checked.
	td := exec.Command("tcpdump", "-i", "lo", "-nn", "-s", "4096", "-B", "32768", "--immediate-mode", "-U", "--time-stamp-precision=nano", "-w", file, filter)
	tdErr, err := td.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := td.Start(); err != nil {
		t.Fatal(err)
	}
	ready, exited := make(chan struct{}), make(chan struct{})
	var kernelDrops int64 = -1
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(tdErr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "listening on") {
				once.Do(func() { close(ready) })
			}
			if n, ok := strings.CutSuffix(line, " packets dropped by kernel"); ok {
				kernelDrops, _ = strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			defer func() {
				td.Process.Signal(syscall.SIGINT)
				<-exited
				td.Wait()
				if kernelDrops != 0 {
					t.Errorf("tcpdump: %d packets dropped by kernel (-1: not reported): the reference capture is incomplete", kernelDrops)
				}
			}()
			marker := fmt.Sprintf("voipsensor-test-marker-%d-%d", os.Getpid(), time.Now().UnixNano())
			c, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(markerPort))
			if err != nil {
				t.Errorf("tcpdump marker: %v", err)
				return
			}
			defer c.Close()
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
				c.Write([]byte(marker))
				for range 10 {
					if b, _ := os.ReadFile(file); bytes.Contains(b, []byte(marker)) {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			t.Errorf("tcpdump never wrote the marker: the reference capture may be incomplete")
		})
	}
	t.Cleanup(stop)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start")
	}
	return stop
}

// tsharkFields runs tshark -T fields on file and returns one slice of
// values per frame.
func tsharkFields(t *testing.T, file string, extra []string, fields ...string) [][]string {
	t.Helper()
	args := append([]string{"-r", file, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"}, extra...)
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		for len(f) < len(fields) {
			f = append(f, "")
		}
		rows = append(rows, f)
	}
	return rows
}

// epochBefore reports whether tshark's frame.time_epoch ("s.nnnnnnnnn")
// is before t, compared in integer nanoseconds.
func epochBefore(tb testing.TB, epoch string, t time.Time) bool {
	sec, frac, _ := strings.Cut(epoch, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		tb.Fatalf("frame.time_epoch %q: %v", epoch, err)
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		tb.Fatalf("frame.time_epoch %q: %v", epoch, err)
	}
	return s*1e9+ns < t.UnixNano()
}

// TestDaemonStopReplay sends SIGTERM to `voipsensor run -r FILE --realtime
// --loop` (at 4× speed) at moments spread over two passes of a generated
// capture. The capture is longer than the call table's linger after a BYE
// plus a call, so that a call replayed in the next pass is a new call. Each
// run must exit 0, and its rows must be exactly the calls whose INVITE was
// among the frames the daemon analysed (it logs how many; a call replayed
// in a second pass is a second row), each stream's received count equal to
// that call's RTP frames among them, as tshark reads the file.
func TestDaemonStopReplay(t *testing.T) {
	sharedtest.Tool(t, "tshark")
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.CPS, cfg.TalkTime, cfg.Seed = 5, 0.4, time.Second, 21
	pcap, _ := generateCapture(t, cfg)
	ref := replayReference(t, pcap)
	const speed = 4
	span := ref.last.Sub(ref.first)
	if span < 10*time.Second {
		t.Fatalf("capture spans %v, want at least 10 s (linger + a call)", span)
	}
	const runs = 10
	for run := range runs {
		after := 100*time.Millisecond + time.Duration(run)*(2*span/speed+300*time.Millisecond)/runs
		t.Run(fmt.Sprintf("run%02d-%dms", run, after.Milliseconds()), func(t *testing.T) {
			d := startDaemon(t, "-r", pcap, "--realtime", "--speed", strconv.Itoa(speed), "--loop")
			time.Sleep(after) // the moment of the stop, chosen on purpose
			d.signal(syscall.SIGTERM)
			if code := d.wait(30 * time.Second); code != 0 {
				t.Fatalf("exit code after SIGTERM = %d, want 0", code)
			}
			log := d.log.String()
			for _, bad := range []string{"panic:", "fatal error:", "level=ERROR"} {
				if strings.Contains(log, bad) {
					t.Fatalf("%q in the log", bad)
				}
			}
			n := logInt(log, `msg="sensor stopped"`, "frames")
			if n < 0 {
				t.Fatal(`no "sensor stopped" frames= in the log`)
			}
			want := ref.upTo(int(n))
			rows := readCDRs(t, "sqlite", d.sqliteDB())
			got := map[string][]cdrRow{}
			for _, r := range rows {
				got[r.CallID] = append(got[r.CallID], r)
			}
			for id, w := range want {
				g := got[id]
				if len(g) != len(w) {
					t.Errorf("call %s: %d rows, want %d (one per pass its INVITE was analysed in)", id, len(g), len(w))
					continue
				}
				for p := range w {
					if g[p].AReceived.Int64 != w[p][0] || g[p].BReceived.Int64 != w[p][1] {
						t.Errorf("call %s pass %d: received a=%d b=%d, want %d %d", id, p, g[p].AReceived.Int64, g[p].BReceived.Int64, w[p][0], w[p][1])
					}
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					t.Errorf("call %s has rows but no INVITE among the %d frames analysed", id, n)
				}
			}
			t.Logf("stop after %v: %d frames analysed (%.2f passes), %d rows", after, n, float64(n)/float64(len(ref.frames)), len(rows))
		})
	}
}

// replayRef is a capture as tshark reads it: per frame, the Call-ID when it
// is a call's first INVITE, or the call and direction (0 caller → callee,
// 1 callee → caller) when it is RTP sent to an address a call's SDP gave.
type replayRef struct {
	first, last time.Time
	frames      []refFrame
}

type refFrame struct {
	invite string // Call-ID of an initial INVITE
	call   string // RTP of this call ...
	dir    int    // ... in this direction
}

func replayReference(t *testing.T, pcap string) *replayRef {
	t.Helper()
	rows := tsharkFields(t, pcap, nil, "frame.time_epoch", "ip.dst", "udp.dstport", "sip.Method", "sip.Status-Code",
		"sip.CSeq.method", "sip.Call-ID", "sdp.connection_info.address", "sdp.media.port")
	// First pass: the SDP addresses of each call, from its INVITE (the
	// caller receives there: direction 1) and its 200 (direction 0).
	dest := map[string]struct {
		call string
		dir  int
	}{}
	for _, f := range rows {
		if f[6] == "" || f[7] == "" || f[8] == "" {
			continue
		}
		switch {
		case f[3] == "INVITE":
			dest[f[7]+":"+f[8]] = struct {
				call string
				dir  int
			}{f[6], 1}
		case f[4] == "200" && f[5] == "INVITE":
			dest[f[7]+":"+f[8]] = struct {
				call string
				dir  int
			}{f[6], 0}
		}
	}
	ref := &replayRef{}
	seen := map[string]bool{}
	for i, f := range rows {
		sec, _ := strconv.ParseFloat(f[0], 64)
		ts := time.Unix(0, int64(sec*1e9))
		if i == 0 {
			ref.first = ts
		}
		ref.last = ts
		var fr refFrame
		switch {
		case f[3] == "INVITE" && !seen[f[6]]:
			seen[f[6]] = true
			fr.invite = f[6]
		case f[6] == "":
			if d, ok := dest[f[1]+":"+f[2]]; ok {
				fr.call, fr.dir = d.call, d.dir
			}
		}
		ref.frames = append(ref.frames, fr)
	}
	return ref
}

// upTo returns, for the first n frames of the capture played in a loop,
// each call's received counts [caller → callee, callee → caller] per pass
// in which its INVITE was among them.
func (r *replayRef) upTo(n int) map[string][][2]int64 {
	out := map[string][][2]int64{}
	for k := range n {
		pass, f := k/len(r.frames), r.frames[k%len(r.frames)]
		if f.invite != "" {
			out[f.invite] = append(out[f.invite], [2]int64{})
		}
		if f.call != "" {
			if c := out[f.call]; len(c) > 0 && len(c) == pass+1 {
				c[pass][f.dir]++
			}
		}
	}
	return out
}

// TestReadInterrupt feeds a generated capture to `voipsensor read --json`
// through a FIFO, a few records at a time, and sends SIGINT part-way (the
// reader is then blocked waiting for more). The read must stop at once,
// exit 0, say how many frames it analysed, and print exactly what reading
// those first frames from a file prints: every call that ended, then the
// calls still open closed at their last packet.
func TestReadInterrupt(t *testing.T) {
	sharedtest.Tool(t, "editcap")
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime, cfg.Registrations, cfg.Seed = 12, 4, 3*time.Second, 3, 22
	pcap, _ := generateCapture(t, cfg)
	data, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	records := pcapRecordEnds(t, data)
	bin := voipsensorBinary(t)
	for i, frac := range []float64{0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95} {
		t.Run(fmt.Sprintf("at%02.0f%%", frac*100), func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "in.pcap")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "read", "--json", "-q", fifo)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// Everything up to the cut record, and half of the next one, so
			// that the reader is blocked inside a record.
			k := int(frac * float64(len(records)))
			cutAt := records[k] + (records[k+1]-records[k])/2
			if _, err := w.Write(data[:cutAt]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(50+20*i) * time.Millisecond) // let it read some of it; any amount is valid
			cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("read after SIGINT: %v\n%s", err, stderr.String())
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("read still running 20 s after SIGINT (blocked on the FIFO)")
			}
			m := regexp.MustCompile(`interrupted after (\d+) frames`).FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatalf("no \"interrupted after N frames\" on stderr: %q", stderr.String())
			}
			n, _ := strconv.Atoi(m[1])
			if n > k+1 {
				t.Fatalf("analysed %d frames, but only %d whole records were written", n, k+1)
			}
			prefix := filepath.Join(dir, "prefix.pcap")
			if n > 0 {
				if out, err := exec.Command("editcap", "-r", pcap, prefix, fmt.Sprintf("1-%d", n)).CombinedOutput(); err != nil {
					t.Fatalf("editcap: %v\n%s", err, out)
				}
			} else if err := os.WriteFile(prefix, data[:24], 0o644); err != nil {
				t.Fatal(err)
			}
			want, err := exec.Command(bin, "read", "--json", "-q", prefix).Output()
			if err != nil {
				t.Fatalf("read of the first %d frames: %v", n, err)
			}
			if !bytes.Equal(stdout.Bytes(), want) {
				t.Errorf("after SIGINT at frame %d: output differs from reading the first %d frames\ngot:\n%s\nwant:\n%s", n, n, stdout.String(), want)
			}
			t.Logf("SIGINT after %d of %d frames: %d lines, equal to reading the first %d frames", n, len(records)-1, bytes.Count(want, []byte("\n")), n)
		})
	}
}

// pcapRecordEnds returns the offsets where each record of a classic pcap
// starts, and its total length last.
func pcapRecordEnds(t *testing.T, data []byte) []int {
	t.Helper()
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatal("not a little-endian microsecond pcap")
	}
	var offs []int
	for off := 24; off+16 <= len(data); {
		offs = append(offs, off)
		off += 16 + int(binary.LittleEndian.Uint32(data[off+8:]))
	}
	return append(offs, len(data))
}
