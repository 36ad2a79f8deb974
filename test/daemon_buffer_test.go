package test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/voipsensor/voipsensor/internal/gen"
)

// readFrames reads every frame of a pcap file.
func readFrames(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
}

// injectLoopback sends frames (Ethernet) on lo through an AF_PACKET socket,
// in order, at rate frames per second, paced in batches every 250 µs. A
// packet socket on lo sees each frame once as incoming (the daemon's filter
// drops the outgoing copy); the generated frames' destination MAC is not
// lo's, so the IP stack discards them as PACKET_OTHERHOST. It returns how
// many went out and how long it took.
func injectLoopback(t *testing.T, frames [][]byte, rate int) (int, time.Duration) {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0) // protocol 0: sends only
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Ifindex: lo.Index}); err != nil {
		t.Fatalf("bind lo: %v", err)
	}
	to := &syscall.SockaddrLinklayer{Ifindex: lo.Index}
	batch := max(1, rate/4000)
	start := time.Now()
	sent := 0
	for sent < len(frames) {
		if due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second))); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
		for end := min(sent+batch, len(frames)); sent < end; {
			err := syscall.Sendto(fd, frames[sent], 0, to)
			if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue // the device queue is full for a moment: send it again
			}
			if err != nil {
				t.Fatalf("sendto lo: %v", err)
			}
			sent++
		}
	}
	return sent, time.Since(start)
}

// stallRun is one daemon run of TestDaemonLiveBufferStall.
type stallRun struct {
	name                  string
	sent                  int
	pps                   float64
	frames, kernel, buf   int64
	highMB                int64
	fullLogs, recoverLogs int
	log                   string
	rows                  []cdrRow
}

// runStalled starts `voipsensor run -i lo` with extra settings and the
// analysis stalled for stall after its 500th frame, injects frames at
// rate, waits for wait (a log line) when non-empty, stops it with SIGTERM
// and collects its figures.
func runStalled(t *testing.T, name string, frames [][]byte, rate int, stall time.Duration, wait string, set ...string) stallRun {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "manager.sock")
	args := []string{"-i", "lo", "-set", "filter=net 10.0.0.0/8", "-set", "managersocket=" + socket}
	for _, s := range set {
		args = append(args, "-set", s)
	}
	d := newDaemon(t, args...)
	d.cmd.Env = append(os.Environ(), fmt.Sprintf("VOIPSENSOR_TEST_STALL=500:%s", stall))
	startDaemonFrom(t, d)
	sent, took := injectLoopback(t, frames, rate)
	if wait != "" && !d.waitLog(wait, 30*time.Second) {
		t.Fatalf("%s: no %q in the log:\n%s", name, wait, d.log)
	}
	r := stallRun{name: name, sent: sent, pps: float64(sent) / took.Seconds()}
	r.kernel = snifferDrops(t, socket) // also checks sniffer_stat answers during the stall
	d.signal(syscall.SIGTERM)
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("%s: exit code %d after SIGTERM; log:\n%s", name, code, d.log)
	}
	r.log = d.log.String()
	r.frames = logInt(r.log, "sensor stopped", "frames")
	r.kernel = logInt(r.log, "sensor stopped", "kernel_drops")
	r.buf = logInt(r.log, "sensor stopped", "buffer_drops")
	r.highMB = logInt(r.log, "sensor stopped", "buffer_high_mb")
	r.fullLogs = strings.Count(r.log, "packet buffer full")
	r.recoverLogs = strings.Count(r.log, "packet buffer recovered")
	r.rows = readCDRs(t, "sqlite", d.sqliteDB())
	return r
}

// TestDaemonLiveBufferStall is the proof of the packet buffer (issue 19):
// `voipsensor run -i lo` captures a generated capture (about 330 000
// frames) injected into lo at 100 000 frames/s while its analysis stalls
// for 3 s (a test hook): far more than the default 50 MiB kernel ring
// holds (about 170 000 of these frames).
//
//   - With the packet buffer (max_buffer_mem's default): no drop at any
//     stage, every frame analysed, and every CDR equal to the generator's
//     truth (caller, called, last code, each direction's packet count).
//   - Without it (max_buffer_mem=0, the analysis reading the ring): the
//     kernel drops, which is what the buffer is for.
//   - With a 2 MB buffer: the buffer drops and counts (frames + drops =
//     frames sent), says so once in the log and once when it recovers,
//     and the daemon stops cleanly.
func TestDaemonLiveBufferStall(t *testing.T) {
	needRoot(t)
	rate := 100000
	if v, err := strconv.Atoi(os.Getenv("VOIPSENSOR_STALL_RATE")); err == nil && v > 0 {
		rate = v // for measuring: the highest rate with no drop
	}
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 400, 200, 10*time.Second
	cfg.Failed, cfg.Cancelled = 0.1, 0.1
	cfg.Seed = 19
	cfg.AddrOffset = 19000
	pcap, tr := generate(t, cfg)
	frames := readFrames(t, pcap)
	const stall = 3 * time.Second

	with := runStalled(t, "buffered", frames, rate, stall, "")
	without := runStalled(t, "unbuffered", frames, rate, stall, "", "max_buffer_mem=0")
	tiny := runStalled(t, "2 MB buffer", frames, rate, stall, "packet buffer recovered", "max_buffer_mem=2")

	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %8s %9s %8s %8s %8s %9s\n", "buffer", "sent", "sent pps", "frames", "kernel", "buffer", "high MiB")
	for _, r := range []stallRun{with, without, tiny} {
		fmt.Fprintf(&b, "%-12s %8d %9.0f %8d %8d %8d %9d\n", r.name, r.sent, r.pps, r.frames, r.kernel, r.buf, r.highMB)
	}
	t.Logf("%d frames injected into lo, analysis stalled %v after frame 500, 50 MiB ring:\n%s", len(frames), stall, b.String())

	if with.pps < 0.9*float64(rate) {
		t.Logf("the sender reached only %.0f of %d frames/s", with.pps, rate)
	}
	if with.kernel != 0 || with.buf != 0 || with.frames != int64(with.sent) {
		t.Errorf("buffered: %d kernel drops, %d buffer drops, %d of %d frames analysed; want none lost", with.kernel, with.buf, with.frames, with.sent)
	} else {
		checkTruthRows(t, with.rows, tr)
	}
	if with.fullLogs != 0 {
		t.Errorf("buffered: %d \"packet buffer full\" lines, want none", with.fullLogs)
	}
	if without.kernel == 0 {
		t.Errorf("unbuffered: no kernel drop while the analysis stalled %v at %d frames/s; the test does not stall the capture", stall, rate)
	}
	if tiny.buf == 0 || tiny.frames+tiny.buf+tiny.kernel != int64(tiny.sent) {
		t.Errorf("2 MB buffer: %d analysed + %d buffer drops + %d kernel drops, sent %d; want buffer drops, and every frame analysed or counted",
			tiny.frames, tiny.buf, tiny.kernel, tiny.sent)
	}
	if tiny.fullLogs < 1 || tiny.fullLogs != tiny.recoverLogs {
		t.Errorf("2 MB buffer: %d \"packet buffer full\" and %d \"recovered\" lines; want one of each per episode", tiny.fullLogs, tiny.recoverLogs)
	}
}

// checkTruthRows compares the CDR rows with the generator's truth: one row
// per call, with its numbers, last code and each direction's packets.
func checkTruthRows(t *testing.T, rows []cdrRow, tr *truth) {
	t.Helper()
	byID := map[string]cdrRow{}
	for _, r := range rows {
		if _, dup := byID[r.CallID]; dup {
			t.Errorf("call %s: more than one row", r.CallID)
		}
		byID[r.CallID] = r
	}
	if len(rows) != len(tr.Calls) {
		t.Errorf("%d rows, want %d calls", len(rows), len(tr.Calls))
	}
	for _, w := range tr.Calls {
		r, ok := byID[w.CallID]
		if !ok {
			t.Errorf("call %s: no row", w.CallID)
			continue
		}
		if r.Caller != w.Caller || r.Called != w.Called || int(r.LastCode) != w.LastCode {
			t.Errorf("call %s: %s → %s code %d, want %s → %s code %d", w.CallID, r.Caller, r.Called, r.LastCode, w.Caller, w.Called, w.LastCode)
		}
		var want [2]int64
		for _, s := range w.Streams {
			switch s.Direction {
			case "caller_to_callee":
				want[0] += s.Written
			case "callee_to_caller":
				want[1] += s.Written
			}
		}
		if r.AReceived.Int64 != want[0] || r.BReceived.Int64 != want[1] {
			t.Errorf("call %s: a_received %d b_received %d, want %d %d", w.CallID, r.AReceived.Int64, r.BReceived.Int64, want[0], want[1])
		}
	}
}
