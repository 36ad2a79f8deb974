package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
)

// udpFrame builds an Ethernet/IPv4/UDP frame and decodes it, as the packet
// loop would: the datagram's payload aliases the frame.
func udpFrame(t testing.TB, src, dst string, payload []byte, at time.Time) (*capture.Frame, *decode.Datagram) {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	b := make([]byte, 14+20+8+len(payload))
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8], ip[9] = 64, 17
	s4, d4 := s.Addr().As4(), d.Addr().As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], s.Port())
	binary.BigEndian.PutUint16(udp[2:], d.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	fr := &capture.Frame{Data: b, Time: at, Length: len(b), LinkType: capture.LinkTypeEthernet}
	var got *decode.Datagram
	decode.NewDecoder(decode.Config{}).Decode(fr, decode.HandlerFunc(func(dg *decode.Datagram) {
		c := *dg
		got = &c
	}))
	if got == nil {
		t.Fatal("frame did not decode")
	}
	return fr, got
}

// rtpPayload is an RTP packet with seq and 160 bytes of voice.
func rtpPayload(seq uint16) []byte {
	p := make([]byte, 12+160)
	p[0], p[1] = 0x80, 0
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], 0x1234)
	for i := 12; i < len(p); i++ {
		p[i] = 0xff
	}
	return p
}

// readPcap reads every frame of a pcap file.
func readPcap(t testing.TB, name string) []capture.Frame {
	t.Helper()
	f, err := capture.OpenFile(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	var out []capture.Frame
	for {
		var fr capture.Frame
		err := f.ReadFrame(&fr)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		fr.Data = append([]byte(nil), fr.Data...)
		out = append(out, fr)
	}
	if f.Truncated() > 0 {
		t.Errorf("%s: last record truncated", name)
	}
	return out
}

// runRecorder starts r.Run and returns a function that stops it and waits.
func runRecorder(r *Recorder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func TestBaseName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"abc@10.0.0.1", "abc@10.0.0.1"},
		{"a/b\\c d", "a_b_c_d"},
		{"../../etc/passwd", ".._.._etc_passwd"},
		{"..", "_"},
		{"", "_"},
		{"x:y-z.w", "x:y-z.w"},
		{"é", "__"},
		{strings.Repeat("a", 300), strings.Repeat("a", 250)},
	} {
		if got := BaseName(tt.in); got != tt.want {
			t.Errorf("BaseName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := CallPath(TypeRTP, "x/y", t0, time.UTC), "2026-03-04/05/06/RTP/x_y.pcap"; got != want {
		t.Errorf("CallPath = %q, want %q", got, want)
	}
	if got, want := RegisterPath(7, t0, time.UTC), "2026-03-04/05/06/REG/7.pcap"; got != want {
		t.Errorf("RegisterPath = %q, want %q", got, want)
	}
}

func TestRecordCall(t *testing.T) {
	dir := t.TempDir()
	r := New(Options{Dir: dir, SIP: true, RTP: RTPFull, RTCP: true, Location: time.UTC, Linger: time.Millisecond})
	stop := runRecorder(r)
	sipFr, sipDg := udpFrame(t, "10.0.0.1:5060", "10.0.0.2:5060", []byte("INVITE sip:b@x SIP/2.0\r\n\r\n"), t0)
	r.Frame(sipFr)
	r.Record(calltable.RecordSIP, 1, "call/1", t0, sipDg)
	r.Record(calltable.RecordSIP, 1, "call/1", t0, sipDg) // a second message in the same frame: once
	var rtpFrames []*capture.Frame
	for i := 0; i < 5; i++ {
		fr, dg := udpFrame(t, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(uint16(i)), t0.Add(time.Duration(i)*20*time.Millisecond))
		r.Frame(fr)
		r.Record(calltable.RecordRTP, 1, "call/1", t0, dg)
		rtpFrames = append(rtpFrames, fr)
	}
	rtcpFr, rtcpDg := udpFrame(t, "10.0.0.1:4001", "10.0.0.2:4001", []byte{0x80, 200, 0, 1, 0, 0, 0, 1}, t0.Add(time.Second))
	r.Frame(rtcpFr)
	r.Record(calltable.RecordRTCP, 1, "call/1", t0, rtcpDg)
	// An unwanted kind is ignored.
	r.Record(calltable.RecordRegister, 9, "", t0, rtcpDg)
	r.Ended(1)
	waitFor(t, "files closed", func() bool { s := r.Stats(); return s.Frames == 7 && s.FilesOpen == 0 })
	stop()

	sip := readPcap(t, filepath.Join(dir, "2026-03-04/05/06/SIP/call_1.pcap"))
	if len(sip) != 1 || string(sip[0].Data) != string(sipFr.Data) || !sip[0].Time.Equal(t0) || sip[0].LinkType != capture.LinkTypeEthernet {
		t.Errorf("SIP pcap = %d frames %+v, want the INVITE frame once", len(sip), sip)
	}
	rtpPcap := readPcap(t, filepath.Join(dir, "2026-03-04/05/06/RTP/call_1.pcap"))
	if len(rtpPcap) != 6 {
		t.Fatalf("RTP pcap has %d frames, want 5 RTP + 1 RTCP", len(rtpPcap))
	}
	for i, fr := range rtpFrames {
		if string(rtpPcap[i].Data) != string(fr.Data) || !rtpPcap[i].Time.Equal(fr.Time) {
			t.Errorf("RTP frame %d differs", i)
		}
	}
	if string(rtpPcap[5].Data) != string(rtcpFr.Data) {
		t.Errorf("RTCP frame differs")
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-03-04/05/06/REG")); err == nil {
		t.Errorf("REG directory made though save-sip-register is off")
	}
	st := r.Stats()
	if st.Dropped != 0 || st.Errors != 0 || st.FilesCreated != 2 {
		t.Errorf("stats %+v, want no drops or errors and 2 files", st)
	}
}

func TestRecordRTPHeaderOnly(t *testing.T) {
	dir := t.TempDir()
	r := New(Options{Dir: dir, RTP: RTPHeader, Location: time.UTC})
	fr, dg := udpFrame(t, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(1), t0)
	r.Frame(fr)
	r.Record(calltable.RecordRTP, 1, "c", t0, dg)
	r.Record(calltable.RecordSIP, 1, "c", t0, dg) // savesip off
	stop := runRecorder(r)
	stop()
	got := readPcap(t, filepath.Join(dir, "2026-03-04/05/06/RTP/c.pcap"))
	if len(got) != 1 {
		t.Fatalf("%d frames, want 1", len(got))
	}
	if want := 14 + 20 + 8 + 12; len(got[0].Data) != want || got[0].Length != len(fr.Data) {
		t.Errorf("saved %d of %d bytes, want %d of %d (headers only)", len(got[0].Data), got[0].Length, want, len(fr.Data))
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-03-04/05/06/SIP")); err == nil {
		t.Errorf("SIP directory made though savesip is off")
	}
}

// TestRecordBufferFull stalls the writer: Record keeps returning at once,
// the frames beyond the buffer are dropped and counted, and what was
// queued is written once the writer goes on.
func TestRecordBufferFull(t *testing.T) {
	dir := t.TempDir()
	r := New(Options{Dir: dir, RTP: RTPFull, BufferBytes: 64 << 10, Location: time.UTC, Linger: time.Millisecond, FlushEvery: 10 * time.Millisecond}) // 16 KiB per batch
	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.beforeBatch = func() {
		once.Do(func() {
			close(stalled)
			<-release
		})
	}
	stop := runRecorder(r)
	defer stop()
	fr, dg := udpFrame(t, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(1), t0)
	r.Frame(fr)
	r.Record(calltable.RecordRTP, 1, "c", t0, dg) // wakes the writer, which stalls
	<-stalled
	const n = 1000
	start := time.Now()
	for i := 1; i < n; i++ {
		r.Frame(fr)
		r.Record(calltable.RecordRTP, 1, "c", t0, dg)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d Record calls took %v with the writer stalled: the packet path waited", n, d)
	}
	st := r.Stats()
	perBatch := (16 << 10) / len(fr.Data)
	// The writer stalled before taking the batch holding the first
	// frame: it fills up, the rest is dropped.
	if want := uint64(n - perBatch); st.Dropped != want {
		t.Errorf("Dropped = %d, want %d (batch of %d frames)", st.Dropped, want, perBatch)
	}
	close(release)
	waitFor(t, "queued frames written", func() bool { return r.Stats().Frames == uint64(n)-r.Stats().Dropped })
	r.Ended(1)
	waitFor(t, "file closed", func() bool { return r.Stats().FilesOpen == 0 })
	if got := len(readPcap(t, filepath.Join(dir, "2026-03-04/05/06/RTP/c.pcap"))); uint64(got) != uint64(n)-st.Dropped {
		t.Errorf("pcap holds %d frames, want %d", got, uint64(n)-st.Dropped)
	}
}

// TestRecordOpenFilesCap: over openfile_max the least recently written
// file is closed and later reopened for appending, its header not
// repeated.
func TestRecordOpenFilesCap(t *testing.T) {
	dir := t.TempDir()
	r := New(Options{Dir: dir, SIP: true, MaxOpenFiles: 2, Location: time.UTC, FlushEvery: 10 * time.Millisecond})
	stop := runRecorder(r)
	fr, dg := udpFrame(t, "10.0.0.1:5060", "10.0.0.2:5060", []byte("OPTIONS sip:x SIP/2.0\r\n\r\n"), t0)
	for round := 0; round < 3; round++ {
		for ref := uint64(1); ref <= 3; ref++ {
			r.Frame(fr)
			r.Record(calltable.RecordSIP, ref, "call"+string(rune('0'+ref)), t0, dg)
			waitFor(t, "frame taken", func() bool { return r.Stats().QueueBytes == 0 })
			if open := r.Stats().FilesOpen; open > 2 {
				t.Fatalf("%d files open, cap 2", open)
			}
		}
	}
	stop()
	for ref := 1; ref <= 3; ref++ {
		if got := len(readPcap(t, filepath.Join(dir, "2026-03-04/05/06/SIP", "call"+string(rune('0'+ref))+".pcap"))); got != 3 {
			t.Errorf("call%d: %d frames, want 3", ref, got)
		}
	}
	if st := r.Stats(); st.FilesCreated != 3 || st.Errors != 0 {
		t.Errorf("stats %+v, want 3 files created, no errors", st)
	}
}

// TestRecordDiskFull points a call's pcap at /dev/full (every write fails
// with ENOSPC): recording stops with one log line, frames are counted as
// lost to the full disk, and when the file is writable again recording
// resumes and the pcap is whole.
func TestRecordDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	var logBuf syncBuf
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	r := New(Options{Dir: dir, SIP: true, Location: time.UTC, FlushEvery: time.Millisecond, Linger: time.Millisecond, Logger: log})
	name := filepath.Join(dir, "2026-03-04/05/06/SIP/c.pcap")
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", name); err != nil {
		t.Fatal(err)
	}
	stop := runRecorder(r)
	defer stop()
	fr, dg := udpFrame(t, "10.0.0.1:5060", "10.0.0.2:5060", []byte("INFO sip:x SIP/2.0\r\n\r\n"), t0)
	send := func() {
		r.Frame(fr)
		r.Record(calltable.RecordSIP, 1, "c", t0, dg)
	}
	send()
	waitFor(t, "recording paused", func() bool { return r.Stats().Paused })
	for i := 0; i < 5; i++ {
		send()
	}
	waitFor(t, "frames counted as lost", func() bool { return r.Stats().DiskFull >= 2 })
	// Space returns: the path becomes a real file.
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recording resumed", func() bool {
		send()
		time.Sleep(20 * time.Millisecond)
		return !r.Stats().Paused
	})
	if n := strings.Count(logBuf.String(), "recording stopped"); n != 1 {
		t.Errorf("%d 'recording stopped' lines, want 1:\n%s", n, logBuf.String())
	}
	waitFor(t, "resumed line", func() bool { return strings.Contains(logBuf.String(), "recording resumed") })
	r.Ended(1)
	waitFor(t, "file closed", func() bool { return r.Stats().FilesOpen == 0 })
	if got := readPcap(t, name); len(got) == 0 {
		t.Errorf("no frame written after the resume")
	}
}

// TestRecordTornFileCut: a file that a failed write may have left with a
// partial record is cut back to its last whole record when reopened.
func TestCutTorn(t *testing.T) {
	name := filepath.Join(t.TempDir(), "x.pcap")
	b := appendFileHeader(nil, capture.LinkTypeEthernet)
	b = appendRecord(b, t0.UnixNano(), 4, []byte{1, 2, 3, 4})
	whole := len(b)
	b = appendRecord(b, t0.UnixNano(), 4, []byte{5, 6, 7, 8})[:whole+10]
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := cutTorn(f, int64(len(b)))
	if err != nil || size != int64(whole) {
		t.Fatalf("cutTorn = %d, %v; want %d", size, err, whole)
	}
	if got := readPcap(t, name); len(got) != 1 {
		t.Errorf("%d frames after the cut, want 1", len(got))
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRecordNoAllocs: with its buffers warm, recording a frame allocates
// nothing on the packet path.
func TestRecordNoAllocs(t *testing.T) {
	r := New(Options{Dir: t.TempDir(), RTP: RTPFull, BufferBytes: 256 << 20})
	fr, dg := udpFrame(t, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(1), t0)
	r.Frame(fr)
	r.Record(calltable.RecordRTP, 1, "c", t0, dg)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Frame(fr)
		r.Record(calltable.RecordRTP, 1, "c", t0, dg)
	})
	if allocs > 0.01 { // the record slice grows now and then
		t.Errorf("Record allocates %.2f times per frame, want 0", allocs)
	}
}

// sliceSource delivers the same frame n times.
type sliceSource struct {
	fr *capture.Frame
	n  int
}

func (s *sliceSource) ReadFrame(f *capture.Frame) error {
	if s.n == 0 {
		return io.EOF
	}
	s.n--
	*f = *s.fr
	return nil
}
func (s *sliceSource) Stats() capture.Stats { return capture.Stats{} }
func (s *sliceSource) Close() error         { return nil }

// TestRecordBackpressure: with Backpressure (a file read at full speed)
// the source waits for the writer and no frame is dropped, however small
// the buffer.
func TestRecordBackpressure(t *testing.T) {
	dir := t.TempDir()
	r := New(Options{Dir: dir, RTP: RTPFull, BufferBytes: 64 << 10, Location: time.UTC, Backpressure: true, Linger: time.Millisecond})
	stop := runRecorder(r)
	fr, dg := udpFrame(t, "10.0.0.1:4000", "10.0.0.2:4000", rtpPayload(1), t0)
	const n = 20000 // 4 MB through a 16 KiB batch
	src := Source(&sliceSource{fr: fr, n: n}, r)
	var f capture.Frame
	for src.ReadFrame(&f) == nil {
		r.Record(calltable.RecordRTP, 1, "c", t0, dg)
	}
	r.Ended(1)
	waitFor(t, "frames written", func() bool { s := r.Stats(); return s.Frames == n && s.FilesOpen == 0 })
	stop()
	if st := r.Stats(); st.Dropped != 0 {
		t.Errorf("%d frames dropped with backpressure", st.Dropped)
	}
	if got := len(readPcap(t, filepath.Join(dir, "2026-03-04/05/06/RTP/c.pcap"))); got != n {
		t.Errorf("pcap holds %d frames, want %d", got, n)
	}
}
