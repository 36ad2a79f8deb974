package test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// This file checks recording against tshark: a generated capture replayed
// through `voipsensor run -r` with savesip, savertp, savertcp and
// save-sip-register on leaves, for each call, a SIP pcap and an RTP pcap
// holding exactly the frames tshark finds for the call in the original
// (its Call-ID; its media addresses and their RTCP ports), and nothing
// else. Then the files are fetched through the manager API, exported,
// cleaned by maxpoolsize, and recorded onto a full file system.

// recordArgs turn every kind of recording on.
var recordArgs = []string{"-set", "savesip=yes", "-set", "savertp=yes", "-set", "savertcp=yes", "-set", "save-sip-register=yes"}

// recordCall is the part of the generator's truth these tests need.
type recordCall struct {
	CallID  string    `json:"callid"`
	Start   time.Time `json:"start"`
	State   string    `json:"state"`
	Streams []struct {
		Src string `json:"src"`
		Dst string `json:"dst"`
	} `json:"streams"`
}

// recordCapture generates a capture of calls (failed, cancelled, with
// loss, duplicates, reordering, jitter, RTCP and fragmented INVITEs) and
// registrations.
func recordCapture(t *testing.T, calls int, talk time.Duration) (string, []recordCall) {
	t.Helper()
	return recordCaptureSeed(t, calls, talk, 16)
}

// recordCaptureSeed is recordCapture with another seed: other Call-IDs.
func recordCaptureSeed(t *testing.T, calls int, talk time.Duration, seed int64) (string, []recordCall) {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = calls, 3, talk
	cfg.RTCP = true
	cfg.Registrations, cfg.RegisterFailed = 4, 0.3
	cfg.Failed, cfg.Cancelled = 0.15, 0.15
	cfg.Loss, cfg.Duplicates, cfg.Reorder, cfg.Jitter = 0.01, 0.01, 0.01, 3*time.Millisecond
	cfg.LargeInvite = true // INVITEs in IPv4 fragments: every fragment is the call's
	cfg.Seed = seed
	var pcap, js bytes.Buffer
	if _, err := gen.Generate(cfg, &pcap, &js); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "calls.pcap")
	if err := os.WriteFile(name, pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Calls []recordCall `json:"calls"`
	}
	if err := json.Unmarshal(js.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	return name, tr.Calls
}

// frameFields are what frameList shows of each frame.
var frameFields = []string{"frame.time_epoch", "ip.src", "udp.srcport", "ip.dst", "udp.dstport",
	"frame.len", "frame.cap_len", "sip.Method", "sip.Status-Code", "sip.CSeq"}

// frameList lists one line per frame of file as tshark reads it: time,
// addresses, ports, lengths, and the SIP start line and CSeq.
func frameList(t *testing.T, file string) []string {
	t.Helper()
	var out []string
	for _, f := range tsharkRows(t, file, frameFields...) {
		out = append(out, strings.Join(f, "|"))
	}
	return out
}

// tsharkRows runs tshark -T fields on file.
func tsharkRows(t *testing.T, file string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-2", "-r", file, "-T", "fields", "-E", "separator=|"} // two passes: ip.reassembled_in is known at the first fragment
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(sharedtest.Tool(t, "tshark"), args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "|"))
		}
	}
	return rows
}

// original is tshark's reading of the generated capture, done once and
// cut per call here.
type original struct {
	frames  []origFrame
	streams map[string]tsharkStream // rtp,streams (RTP found by SDP or heuristics)
}

type origFrame struct {
	line       string // as frameList shows it
	callID     string
	src, dst   string // ip:port
	register   bool   // a REGISTER request or response
	number     string // frame.number
	reassembly string // ip.reassembled_in: the frame an IP fragment was reassembled in
}

func readOriginal(t *testing.T, pcap string) *original {
	t.Helper()
	o := &original{streams: runTshark(t, pcap, "-o", "rtp.heuristic_rtp:TRUE")}
	n := len(frameFields)
	for _, f := range tsharkRows(t, pcap, append(slices.Clone(frameFields), "sip.Call-ID", "sip.CSeq.method", "frame.number", "ip.reassembled_in")...) {
		o.frames = append(o.frames, origFrame{
			line: strings.Join(f[:n], "|"), callID: f[n], register: f[n+1] == "REGISTER",
			src: f[1] + ":" + f[2], dst: f[3] + ":" + f[4], number: f[n+2], reassembly: f[n+3],
		})
	}
	return o
}

// media returns the call's media addresses and the RTCP port above each
// (the generator's calls never share them).
func (c recordCall) media() map[string]bool {
	eps := map[string]bool{}
	for _, s := range c.Streams {
		for _, ep := range []string{s.Src, s.Dst} {
			i := strings.LastIndexByte(ep, ':')
			p, _ := strconv.Atoi(ep[i+1:])
			eps[ep] = true
			eps[ep[:i]+":"+strconv.Itoa(p+1)] = true
		}
	}
	return eps
}

// pick lists, in capture order, the call's SIP messages (sip) with the
// IP fragments they were reassembled from, and the frames to or from its
// media addresses (rtp).
func (o *original) pick(c recordCall, sip, rtp bool) []string {
	eps := c.media()
	mine := map[string]bool{} // frame numbers of the call's SIP messages
	for _, f := range o.frames {
		if f.callID == c.CallID {
			mine[f.number] = true
		}
	}
	var out []string
	for _, f := range o.frames {
		if sip && (f.callID == c.CallID || mine[f.reassembly]) || rtp && (eps[f.src] || eps[f.dst]) {
			out = append(out, f.line)
		}
	}
	return out
}

// callStreams are the rtp,streams rows of the call's media.
func (o *original) callStreams(c recordCall) map[string]tsharkStream {
	eps := c.media()
	out := map[string]tsharkStream{}
	for k, s := range o.streams {
		src, rest, _ := strings.Cut(k, ">")
		dst, _, _ := strings.Cut(rest, "/")
		if eps[src] || eps[dst] {
			out[k] = s
		}
	}
	return out
}

// TestRecordMatchesTshark is the proof of recording: every packet of each
// call in its pcaps, nothing from other calls, and tshark's rtp,streams
// the same on the recording as on the original.
func TestRecordMatchesTshark(t *testing.T) {
	sharedtest.Tool(t, "tshark")
	pcap, calls := recordCapture(t, 10, 4*time.Second)
	d := newDaemon(t, append([]string{"-r", pcap}, recordArgs...)...)
	if code := d.run(2 * time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.log)
	}
	log := d.log.String()
	if n := logInt(log, "recorder stopped", "dropped"); n != 0 {
		t.Errorf("recorder dropped %d frames", n)
	}
	if n := logInt(log, "recorder stopped", "errors"); n != 0 {
		t.Errorf("recorder errors: %d", n)
	}
	orig := readOriginal(t, pcap)
	answered := 0
	for _, c := range calls {
		sipFile := filepath.Join(d.spool, spool.CallPath(spool.TypeSIP, c.CallID, c.Start, nil))
		if got, want := frameList(t, sipFile), orig.pick(c, true, false); !slices.Equal(got, want) {
			t.Errorf("%s: SIP pcap differs from the original's messages of the call:\ngot  %q\nwant %q", c.CallID, got, want)
		}
		rtpFile := filepath.Join(d.spool, spool.CallPath(spool.TypeRTP, c.CallID, c.Start, nil))
		if len(c.Streams) == 0 {
			if _, err := os.Stat(rtpFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s (%s, no media): RTP pcap exists", c.CallID, c.State)
			}
			continue
		}
		answered++
		if got, want := frameList(t, rtpFile), orig.pick(c, false, true); !slices.Equal(got, want) {
			t.Errorf("%s: RTP pcap has %d frames, the original %d on the call's media addresses", c.CallID, len(got), len(want))
		}
		got, want := runTshark(t, rtpFile, "-o", "rtp.heuristic_rtp:TRUE"), orig.callStreams(c)
		if len(want) != len(c.Streams) {
			t.Errorf("%s: tshark sees %d RTP streams of the call in the original, the truth %d", c.CallID, len(want), len(c.Streams))
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: rtp,streams of the recording:\n%+v\nof the original:\n%+v", c.CallID, got, want)
		}
	}
	if answered == 0 || answered == len(calls) {
		t.Fatalf("%d of %d calls answered: the capture should mix answered and unanswered calls", answered, len(calls))
	}
	// The REGISTER chains: all their messages in REG files, nothing else.
	regs, _ := filepath.Glob(filepath.Join(d.spool, "*", "*", "*", "REG", "*.pcap"))
	if len(regs) == 0 {
		t.Fatal("no REG pcap")
	}
	var gotReg, wantReg []string
	for _, f := range regs {
		gotReg = append(gotReg, frameList(t, f)...)
	}
	for _, f := range orig.frames {
		if f.register {
			wantReg = append(wantReg, f.line)
		}
	}
	slices.Sort(gotReg)
	slices.Sort(wantReg)
	if !slices.Equal(gotReg, wantReg) {
		t.Errorf("REG pcaps hold %d frames, the original has %d REGISTER messages", len(gotReg), len(wantReg))
	}
	// Every frame of the capture belongs to a call or a registration: the
	// recordings hold each once.
	if got, want := logInt(log, "recorder stopped", "frames"), logInt(log, "sensor stopped", "frames"); got != want {
		t.Errorf("recorded %d frames of %d", got, want)
	}

	t.Run("Export", func(t *testing.T) { testExport(t, d.spool, pcap, orig, calls) })
	t.Run("SpoolFileCommands", func(t *testing.T) { testFileCommands(t, d.spool, calls) })
}

// testExport: voipsensor export writes a call's SIP and RTP merged in time
// order, the same from the spool as cut from the capture with -r, by
// Call-ID or by reference; an unknown call writes nothing.
func testExport(t *testing.T, spoolDir, pcap string, orig *original, calls []recordCall) {
	bin := voipsensorBinary(t)
	dir := t.TempDir()
	n := 0
	export := func(args ...string) (string, int, string) {
		n++
		out := filepath.Join(dir, fmt.Sprintf("out%d.pcap", n))
		cmd := exec.Command(bin, append([]string{"export", "-o", out}, args...)...)
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out, code, string(b)
	}
	for i, c := range calls {
		fromSpool, code, msg := export("--spooldir", spoolDir, c.CallID)
		if code != 0 {
			t.Fatalf("export %s: exit %d: %s", c.CallID, code, msg)
		}
		if got, want := frameList(t, fromSpool), orig.pick(c, true, true); !slices.Equal(got, want) {
			t.Errorf("export %s: %d frames, the original %d for the call", c.CallID, len(got), len(want))
		}
		fromCapture, code, msg := export("-r", pcap, c.CallID)
		if code != 0 {
			t.Fatalf("export -r %s: exit %d: %s", c.CallID, code, msg)
		}
		byRef, code, msg := export("-r", pcap, fmt.Sprintf("0x%x", i+1))
		if code != 0 {
			t.Fatalf("export -r 0x%x: exit %d: %s", i+1, code, msg)
		}
		a, _ := os.ReadFile(fromSpool)
		b, _ := os.ReadFile(fromCapture)
		r, _ := os.ReadFile(byRef)
		if !bytes.Equal(a, b) || !bytes.Equal(b, r) {
			t.Errorf("export %s: spool (%d bytes), -r by Call-ID (%d) and -r by reference (%d) differ", c.CallID, len(a), len(b), len(r))
		}
	}
	out, code, _ := export("--spooldir", spoolDir, "no-such-call")
	if _, err := os.Stat(out); code != 3 || err == nil {
		t.Errorf("export of an unknown call: exit %d, output left: %v", code, err == nil)
	}
	if _, code, msg := export("--spooldir", spoolDir, "0x1"); code != 2 || !strings.Contains(msg, "-r CAPTURE") {
		t.Errorf("export of a reference from the spool: exit %d %q", code, msg)
	}
}

// testFileCommands serves the spool to a second daemon (its input an idle
// FIFO) and fetches every recording through the manager API with nc, as
// the sniffer's GUI does.
func testFileCommands(t *testing.T, spoolDir string, calls []recordCall) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "idle.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "m.sock")
	d := newDaemon(t, append([]string{"-r", fifo, "-set", "managersocket=" + sock, "-set", "spooldir=" + spoolDir,
		"-set", "sqlitepath=" + filepath.Join(dir, "cdr.db"), "-set", "maxpoolsize=1000"}, recordArgs...)...)
	feed := holdFIFO(t, fifo)
	startDaemonFrom(t, d)
	fifoW := <-feed
	if fifoW == nil {
		t.FailNow()
	}
	defer fifoW.Close()
	cmd := func(line string) string { return string(ncSend(t, 0, sock, []byte(line+"\n"))) }

	for _, c := range calls {
		for _, typ := range []spool.Type{spool.TypeSIP, spool.TypeRTP} {
			rel := spool.CallPath(typ, c.CallID, c.Start, nil)
			want, err := os.ReadFile(filepath.Join(spoolDir, rel))
			if err != nil {
				if got := cmd("file_exists " + rel); got != "not_exists" {
					t.Errorf("file_exists %s = %q, want not_exists", rel, got)
				}
				continue
			}
			if got := cmd("getfile " + rel); got != string(want) {
				t.Errorf("getfile %s: %d bytes, want the file's %d", rel, len(got), len(want))
			}
			if got := cmd("file_exists " + rel); got != strconv.Itoa(len(want)) {
				t.Errorf("file_exists %s = %q, want %d", rel, got, len(want))
			}
			if got := cmd("fileexists " + filepath.Join(spoolDir, rel)); got != strconv.Itoa(len(want)) {
				t.Errorf("fileexists (absolute, inside) %s = %q, want %d", rel, got, len(want))
			}
		}
	}
	// The counters: spool_stat, and the metrics the Prometheus endpoint
	// renders.
	var st struct {
		Recording *struct {
			Frames, Dropped uint64
		} `json:"recording"`
		Cleaner *struct {
			Passes uint64
			Bytes  map[string]int64 `json:"bytes"`
		} `json:"cleaner"`
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("a cleaning pass", func() bool {
		if err := json.Unmarshal([]byte(cmd("spool_stat")), &st); err != nil {
			t.Fatalf("spool_stat: %v", err)
		}
		return st.Cleaner != nil && st.Cleaner.Passes > 0
	})
	if st.Recording == nil || st.Cleaner.Bytes["SIP"] == 0 || st.Cleaner.Bytes["RTP"] == 0 {
		t.Errorf("spool_stat = %+v, want the recorder's counters and the spool's SIP and RTP bytes", st)
	}
	if m := cmd("metrics"); !strings.Contains(m, "voipsensor_recording_frames_total") || !strings.Contains(m, "voipsensor_spool_bytes") {
		t.Errorf("metrics lack the recording families")
	}
	// A call in progress: the first 40 % of another capture goes into the
	// FIFO; its first call's pcaps are fetched while it lasts, and tshark
	// reads them to their last record.
	live, liveCalls := recordCaptureSeed(t, 3, 20*time.Second, 17)
	data, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := pcapRecords(t, data)
	fifoW.Write(bytes.Join(recs[:len(recs)*4/10], nil))
	c := liveCalls[0]
	for _, typ := range []spool.Type{spool.TypeSIP, spool.TypeRTP} {
		rel := spool.CallPath(typ, c.CallID, c.Start, nil)
		waitFor("the call in progress's "+typ.Dir()+" pcap", func() bool {
			n, err := strconv.Atoi(cmd("file_exists " + rel))
			return err == nil && n > 24
		})
		got := filepath.Join(dir, "live-"+typ.Dir()+".pcap")
		os.WriteFile(got, []byte(cmd("getfile "+rel)), 0o644)
		if lines := frameList(t, got); len(lines) == 0 || lines[0] == "" {
			t.Errorf("in-progress %s pcap of %s: no frame tshark reads", typ.Dir(), c.CallID)
		}
	}
	// Bad paths: nothing is served from outside the spool.
	secret := filepath.Join(dir, "secret.txt")
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.Symlink(secret, filepath.Join(spoolDir, "link.pcap"))
	for _, tt := range []struct{ line, want string }{
		{"getfile ../../../../../../etc/passwd", "access denied"},
		{"getfile /etc/passwd", "access denied"},
		{"getfile " + secret, "access denied"},
		{"getfile link.pcap", "access denied"},
		{"getfile_zip link.pcap", "access denied"},
		{"file_exists ../secret.txt", "access denied"},
		{"file_exists /etc/passwd", "access denied"},
		{"fileexists /etc/passwd", "access denied"},
		{"fileexists ../secret.txt", "access denied"},
		{"getfile 2026-01-01/00/00/SIP/cleaned.pcap", "error: cannot open file 2026-01-01/00/00/SIP/cleaned.pcap"},
		{"file_exists 2026-01-01/00/00/SIP/cleaned.pcap", "not_exists"},
		{"getfile_in_tar ../x.tar a", "access denied"},
		{"getfile_is_zip_support", "OK"},
	} {
		if got := cmd(tt.line); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// holdFIFO opens the writer end of fifo once the daemon opens the reader
// and writes a pcap header, so that the daemon starts and then waits for
// frames that never come. The file arrives on the channel.
func holdFIFO(t *testing.T, fifo string) <-chan *os.File {
	feed := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			feed <- nil
			return
		}
		hdr := make([]byte, 24)
		binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
		binary.LittleEndian.PutUint16(hdr[4:], 2)
		binary.LittleEndian.PutUint16(hdr[6:], 4)
		binary.LittleEndian.PutUint32(hdr[16:], 65535)
		binary.LittleEndian.PutUint32(hdr[20:], 1)
		f.Write(hdr)
		feed <- f
	}()
	return feed
}

// TestSpoolRetention: a daemon whose spool holds older recordings than
// maxpoolsize allows deletes the oldest minutes first and keeps the
// newest, its own recordings among them; the database beside them stays.
func TestSpoolRetention(t *testing.T) {
	pcap, calls := recordCapture(t, 4, 2*time.Second)
	d := newDaemon(t, append([]string{"-r", pcap, "-set", "maxpoolsize=1"}, recordArgs...)...)
	// 20 old minutes of 100 kB each (2 MB), the day before the capture.
	start := calls[0].Start.Add(-24 * time.Hour)
	var old []string
	for i := 0; i < 20; i++ {
		rel := spool.CallPath(spool.TypeRTP, fmt.Sprintf("old-%d", i), start.Add(time.Duration(i)*time.Minute), nil)
		old = append(old, rel)
		p := filepath.Join(d.spool, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, 100_000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code := d.run(time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.log)
	}
	var kept []string
	for _, rel := range old {
		if _, err := os.Stat(filepath.Join(d.spool, rel)); err == nil {
			kept = append(kept, rel)
		}
	}
	// The cleaner's first pass ran at start, before or after the new
	// recordings landed: either way the oldest went first and at most
	// 1 MB is left of the old ones.
	if len(kept) == 0 || len(kept) > 10 || !slices.Equal(kept, old[len(old)-len(kept):]) {
		t.Errorf("old minutes kept: %v; want the newest ones, at most 10", kept)
	}
	for _, c := range calls {
		if _, err := os.Stat(filepath.Join(d.spool, spool.CallPath(spool.TypeSIP, c.CallID, c.Start, nil))); err != nil {
			t.Errorf("the new recording of %s went: %v", c.CallID, err)
		}
	}
	if _, err := os.Stat(d.sqliteDB()); err != nil {
		t.Errorf("the database went: %v", err)
	}
	if !strings.Contains(d.log.String(), `msg="spool cleaned"`) {
		t.Errorf("no 'spool cleaned' line:\n%s", d.log)
	}
}

// pcapRecords splits a pcap file's bytes into its header and records.
func pcapRecords(t *testing.T, b []byte) (hdr []byte, recs [][]byte) {
	t.Helper()
	hdr, b = b[:24], b[24:]
	for len(b) > 0 {
		n := 16 + int(binary.LittleEndian.Uint32(b[8:12]))
		recs = append(recs, b[:n])
		b = b[n:]
	}
	return hdr, recs
}

// TestRecordDiskFull records onto a small tmpfs that fills up: recording
// stops with one log line while capture and CDRs go on, resumes once
// space is freed, and every pcap left is readable to its last record.
// It mounts a tmpfs, so it needs root.
func TestRecordDiskFull(t *testing.T) {
	pcap, calls := recordCapture(t, 10, 6*time.Second)
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	os.Mkdir(spoolDir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", spoolDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", spoolDir).Run() })
	// Leave about 300 kB free.
	filler := filepath.Join(spoolDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20-300<<10), 0o644); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	hdr, recs := pcapRecords(t, data)
	fifo := filepath.Join(dir, "feed.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cdrDB := filepath.Join(dir, "cdr.db")
	d := newDaemon(t, append([]string{"-r", fifo, "-set", "spooldir=" + spoolDir, "-set", "sqlitepath=" + cdrDB}, recordArgs...)...)
	feed := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			feed <- nil
			return
		}
		f.Write(hdr)
		feed <- f
	}()
	startDaemonFrom(t, d)
	f := <-feed
	if f == nil {
		t.FailNow()
	}
	// The first 40% of the capture: more than the free space.
	half := len(recs) * 4 / 10
	f.Write(bytes.Join(recs[:half], nil))
	if !d.waitLog("recording stopped: disk full", 30*time.Second) {
		f.Close()
		t.Fatalf("recording never stopped\n%s", d.log)
	}
	// Space returns; the rest of the capture goes in a little at a time
	// until recording has resumed (a paused recorder retries every
	// second), then all at once.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	i := half
	for ; i < len(recs) && !strings.Contains(d.log.String(), "recording resumed"); i += 10 {
		f.Write(bytes.Join(recs[i:min(i+10, len(recs))], nil))
		time.Sleep(20 * time.Millisecond) // pacing the feed, not waiting for an outcome
	}
	if i >= len(recs) {
		f.Close()
		t.Fatalf("recording did not resume before the capture ended\n%s", d.log)
	}
	f.Write(bytes.Join(recs[i:], nil))
	f.Close()
	if code := d.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.log)
	}
	log := d.log.String()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "subsystem=spool") {
			t.Log(l)
		}
	}
	if n := strings.Count(log, "recording stopped: disk full"); n != 1 {
		t.Errorf("%d 'recording stopped' lines, want 1", n)
	}
	if logInt(log, "recorder stopped", "disk_full") <= 0 {
		t.Errorf("no frame counted as lost to the full disk")
	}
	// Capture and CDRs went on.
	if got, want := logInt(log, "sensor stopped", "frames"), int64(len(recs)); got != want {
		t.Errorf("analysed %d frames of %d", got, want)
	}
	if got := len(readCDRs(t, "sqlite", cdrDB)); got != len(calls) {
		t.Errorf("%d CDRs, want %d", got, len(calls))
	}
	// Every pcap left is whole, and the calls after the resume are there.
	files, _ := filepath.Glob(filepath.Join(spoolDir, "*", "*", "*", "*", "*.pcap"))
	if len(files) == 0 {
		t.Fatal("no pcap in the spool")
	}
	for _, name := range files {
		cf, err := capture.OpenFile(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var fr capture.Frame
		for {
			if err := cf.ReadFrame(&fr); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s: %v", name, err)
				}
				break
			}
		}
		if cf.Truncated() > 0 {
			t.Errorf("%s ends with a partial record", name)
		}
		cf.Close()
	}
	last := calls[len(calls)-1]
	if _, err := os.Stat(filepath.Join(spoolDir, spool.CallPath(spool.TypeSIP, last.CallID, last.Start, nil))); err != nil {
		t.Errorf("the last call, after the resume, was not recorded: %v", err)
	}
}

// TestRecordStalledWriter stalls the recorder's writer on a disk that does
// not answer (one call's RTP pcap is a FIFO nobody reads: the write
// blocks) while a paced replay goes on: the frames that no longer fit the
// buffer are dropped and counted, and capture and CDRs are unaffected.
// Once the FIFO is drained the daemon finishes.
func TestRecordStalledWriter(t *testing.T) {
	pcap, calls := recordCapture(t, 10, 4*time.Second)
	d := newDaemon(t, append([]string{"-r", pcap, "--speed", "200", "-set", "spool_buffer_mb=1"}, recordArgs...)...)
	var stall recordCall
	for _, c := range calls {
		if len(c.Streams) > 0 {
			stall = c
			break
		}
	}
	fifo := filepath.Join(d.spool, spool.CallPath(spool.TypeRTP, stall.CallID, stall.Start, nil))
	os.MkdirAll(filepath.Dir(fifo), 0o755)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	if !d.waitLog(`msg="sensor stopped"`, time.Minute) {
		t.Fatalf("capture did not finish with the writer stalled\n%s", d.log)
	}
	// Capture and CDRs are done while the writer is still stuck.
	select {
	case <-d.done:
		t.Fatalf("daemon exited with its writer stalled\n%s", d.log)
	default:
	}
	log := d.log.String()
	data, _ := os.ReadFile(pcap)
	if _, recs := pcapRecords(t, data); logInt(log, "sensor stopped", "frames") != int64(len(recs)) {
		t.Errorf("analysed %d frames of %d", logInt(log, "sensor stopped", "frames"), len(recs))
	}
	if n := logInt(log, "sensor stopped", "cdr_failed"); n != 0 {
		t.Errorf("%d CDRs failed", n)
	}
	// Drain the FIFO: the writer goes on and the daemon exits.
	go func() {
		f, err := os.Open(fifo)
		if err == nil {
			io.Copy(io.Discard, f)
			f.Close()
		}
	}()
	if code := d.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.log)
	}
	log = d.log.String()
	frames, dropped := logInt(log, "recorder stopped", "frames"), logInt(log, "recorder stopped", "dropped")
	total := logInt(log, "sensor stopped", "frames")
	if dropped <= 0 || frames+dropped != total {
		t.Errorf("recorder wrote %d and dropped %d of %d frames: want drops, all counted", frames, dropped, total)
	}
	if got := len(readCDRs(t, "sqlite", d.sqliteDB())); got != len(calls) {
		t.Errorf("%d CDRs, want %d", got, len(calls))
	}
}
