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
	"golang.org/x/net/bpf"

	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/gen"
)

// Loopback isolation. Live tests share lo with each other, with a second
// copy of the same tests (another package's binary, another checkout, a
// -count run) and with whatever the host sends itself. The invariant that
// keeps their counts exact: a test that counts frames captured on lo
// captures only frames that it alone can put there.
//
//   - Frames from sockets: the filter names both addresses (127.0.0.1 both
//     ways, IPv4) and both ports, one of which is bound by the test for its
//     whole run ("ip and src host 127.0.0.1 and dst host 127.0.0.1 and udp
//     and src port S and dst port P"). lo's MTU (65536) is above the largest
//     IPv4 datagram, so sockets never send IP fragments over it: no
//     port-less non-first fragment can pass such a filter.
//   - Frames injected into lo (a generated capture, below): their addresses
//     are a block of the generator's 10.x space that the test holds for its
//     run (claimAddrBlock), callers in 10.1.B.0/23, callees in 10.2.B.0/23,
//     and the daemon's filter selects exactly those two nets talking to each
//     other. No other test, and no copy of this one, uses the block, and a
//     host whose own address is in 10/8 talking to itself over lo (as CI
//     runners do) has one address on both sides, so it never passes. The
//     generated capture has no IP fragments (checked), and none of its
//     frames carries 127.0.0.1, so the socket tests above never see them.
//
// Before this, the stall test filtered on "net 10.0.0.0/8": two copies run
// at the same time each counted the other's 337,358 frames.

// Address blocks of the generator's 10.x space for frames injected into lo.
// Block k (1..addrBlocks) holds calls 0..511 at 10.1.2k.0/23 and
// 10.2.2k.0/23 (gen puts call i at 10.1/10.2 + (i+AddrOffset+1) as two
// bytes). A test holds block k while it holds UDP port addrBlockPort+k on
// 127.0.0.1: the kernel gives the port to one socket, so no two holders
// overlap, and it is released when the test (or its process) ends. The
// ports are below udpBlock's range and the kernel's ephemeral range.
const (
	addrBlockCalls = 512
	addrBlocks     = 126 // 2·126+1 < 256: the /23 fits the third byte
	addrBlockPort  = 11000
)

// addrBlock is a claimed block for injected frames.
type addrBlock struct {
	k int
}

// addrOffset is the gen.Config.AddrOffset that puts call i at the block's
// i-th address (i < addrBlockCalls).
func (b addrBlock) addrOffset() int { return addrBlockCalls*b.k - 1 }

// filter selects the block's callers and callees talking to each other.
func (b addrBlock) filter() string {
	return fmt.Sprintf("ip and ((src net 10.1.%[1]d.0/23 and dst net 10.2.%[1]d.0/23) or (src net 10.2.%[1]d.0/23 and dst net 10.1.%[1]d.0/23))", 2*b.k)
}

// claimAddrBlock claims an address block for the rest of the test.
func claimAddrBlock(t *testing.T) addrBlock {
	t.Helper()
	start := os.Getpid() // copies start their search at different blocks
	for j := range addrBlocks {
		k := 1 + (start+j)%addrBlocks
		c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(addrBlockPort+k))
		if err != nil {
			continue // held by another test, or the port is in use
		}
		t.Cleanup(func() { c.Close() })
		return addrBlock{k: k}
	}
	t.Fatalf("no free address block: UDP ports %d-%d on 127.0.0.1 all taken", addrBlockPort+1, addrBlockPort+addrBlocks)
	return addrBlock{}
}

// checkInjectable checks that every frame is an unfragmented IPv4 frame
// that filter (the daemon's) selects: then the daemon must count exactly
// the frames sent.
func checkInjectable(t *testing.T, frames [][]byte, filter string) {
	t.Helper()
	raw, err := capture.CompileFilter(filter, capture.LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("filter %q: raw instructions", filter)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if len(f) < 34 || f[12] != 0x08 || f[13] != 0x00 {
			t.Fatalf("frame %d: not IPv4 over Ethernet", i)
		}
		if ip := f[14:]; ip[6]&0x3f != 0 || ip[7] != 0 {
			t.Fatalf("frame %d: an IP fragment (it would pass other tests' port filters)", i)
		}
		if n, err := vm.Run(f); err != nil || n == 0 {
			t.Fatalf("frame %d (%d.%d.%d.%d > %d.%d.%d.%d): not selected by %q", i, f[26], f[27], f[28], f[29], f[30], f[31], f[32], f[33], filter)
		}
	}
}

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

// runStalled starts `voipsensor run -i lo` with filter, extra settings and
// the analysis stalled for stall after its 500th frame, injects frames at
// rate, waits for wait (a log line) when non-empty, stops it with SIGTERM
// and collects its figures.
func runStalled(t *testing.T, name, filter string, frames [][]byte, rate int, stall time.Duration, wait string, set ...string) stallRun {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "manager.sock")
	args := []string{"-i", "lo", "-set", "filter=" + filter, "-set", "managersocket=" + socket}
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
//
// The counts are exact because the daemon captures only this test's
// frames: see "Loopback isolation" above.
func TestDaemonLiveBufferStall(t *testing.T) {
	needRoot(t)
	rate := 100000
	if v, err := strconv.Atoi(os.Getenv("VOIPSENSOR_STALL_RATE")); err == nil && v > 0 {
		rate = v // for measuring: the highest rate with no drop
	}
	block := claimAddrBlock(t)
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 400, 200, 10*time.Second
	cfg.Failed, cfg.Cancelled = 0.1, 0.1
	cfg.Seed = 19
	cfg.AddrOffset = block.addrOffset() // calls 0..Calls-1 in the block (Calls <= addrBlockCalls)
	pcap, tr := generate(t, cfg)
	frames := readFrames(t, pcap)
	filter := block.filter()
	checkInjectable(t, frames, filter)
	const stall = 3 * time.Second

	with := runStalled(t, "buffered", filter, frames, rate, stall, "")
	without := runStalled(t, "unbuffered", filter, frames, rate, stall, "", "max_buffer_mem=0")
	tiny := runStalled(t, "2 MB buffer", filter, frames, rate, stall, "packet buffer recovered", "max_buffer_mem=2")

	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %8s %9s %8s %8s %8s %9s\n", "buffer", "sent", "sent pps", "frames", "kernel", "buffer", "high MiB")
	for _, r := range []stallRun{with, without, tiny} {
		fmt.Fprintf(&b, "%-12s %8d %9.0f %8d %8d %8d %9d\n", r.name, r.sent, r.pps, r.frames, r.kernel, r.buf, r.highMB)
	}
	t.Logf("%d frames injected into lo (address block %d), analysis stalled %v after frame 500, 50 MiB ring:\n%s", len(frames), block.k, stall, b.String())

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
	// Each CDR says whether the sensor lost frames during its call: none
	// with the buffer; with the kernel or the small buffer dropping, the
	// calls in progress while it did (here nearly all: the injection
	// compresses 400 calls into a few seconds, most of them stalled).
	flagged := func(r stallRun) (n int) {
		for _, row := range r.rows {
			n += int(row.SensorDropped)
		}
		return n
	}
	if n := flagged(with); n != 0 {
		t.Errorf("buffered: %d CDRs flagged sensor_dropped, want none", n)
	}
	for _, r := range []stallRun{without, tiny} {
		n := flagged(r)
		t.Logf("%s: %d of %d CDRs flagged sensor_dropped", r.name, n, len(r.rows))
		if n == 0 {
			t.Errorf("%s: no CDR flagged sensor_dropped while the sensor dropped frames", r.name)
		}
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
