package capture

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// sliceSource is an in-test Source over fixed frames.
type sliceSource struct {
	frames []Frame
	i      int
	closed atomic.Bool
}

func (s *sliceSource) ReadFrame(f *Frame) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.i == len(s.frames) {
		return io.EOF
	}
	*f = s.frames[s.i]
	s.i++
	return nil
}

func (s *sliceSource) Stats() Stats { return Stats{KernelDropped: 7} }

func (s *sliceSource) Close() error {
	s.closed.Store(true)
	return nil
}

// pcapSource reads a pcap file with pcapgo (the project's file source is
// written elsewhere).
type pcapSource struct {
	f *os.File
	r *pcapgo.Reader
}

func openPcapSource(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := pcapgo.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pcapSource{f: f, r: r}, nil
}

func (p *pcapSource) ReadFrame(fr *Frame) error {
	d, ci, err := p.r.ZeroCopyReadPacketData()
	if err != nil {
		return err
	}
	*fr = Frame{Data: d, Time: ci.Timestamp, Length: ci.Length, LinkType: LinkType(p.r.LinkType())}
	return nil
}
func (p *pcapSource) Stats() Stats { return Stats{} }
func (p *pcapSource) Close() error { return p.f.Close() }

// fakeClock advances only when the replay sleeps or the test says so.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(d time.Duration, _ <-chan struct{}) bool {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return true
}

var (
	capT0  = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	wallT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fourFrames are stamped at 0, 20 ms, 40 ms and 1 s after capT0.
func fourFrames() *sliceSource {
	s := &sliceSource{}
	for _, d := range []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, time.Second} {
		s.frames = append(s.frames, Frame{Data: []byte("abcd"), Time: capT0.Add(d), Length: 4, LinkType: LinkTypeEthernet})
	}
	return s
}

func readAllFrames(t *testing.T, r *Replay, n int, between func()) []time.Time {
	t.Helper()
	var out []time.Time
	var f Frame
	for range n {
		if err := r.ReadFrame(&f); err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		out = append(out, f.Time)
		if between != nil {
			between()
		}
	}
	return out
}

func TestReplayPacing(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		opts       ReplayOptions
		work       time.Duration // clock advance after each frame (reader's processing time)
		wantSleeps []time.Duration
		wantTimes  []time.Duration // relative to capT0, or to wallT0 with ShiftToNow
		shifted    bool
	}{
		{name: "as fast as possible", opts: ReplayOptions{}, wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		{name: "realtime", opts: ReplayOptions{Realtime: true},
			wantSleeps: []time.Duration{20 * ms, 20 * ms, 960 * ms}, wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		// Due times are 20, 40, 1000 ms after the first frame; the reader
		// spends 5 ms per frame, so each wait is 5 ms shorter.
		{name: "realtime with slow reader", opts: ReplayOptions{Realtime: true}, work: 5 * ms,
			wantSleeps: []time.Duration{15 * ms, 15 * ms, 955 * ms}, wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		// A reader slower than the capture gets no waits for late frames.
		{name: "realtime behind schedule", opts: ReplayOptions{Realtime: true}, work: 30 * ms,
			wantSleeps: []time.Duration{910 * ms}, wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		{name: "speed 2", opts: ReplayOptions{Speed: 2},
			wantSleeps: []time.Duration{10 * ms, 10 * ms, 480 * ms}, wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		{name: "speed 0.5", opts: ReplayOptions{Speed: 0.5},
			wantSleeps: []time.Duration{40 * ms, 40 * ms, 1920 * ms}, wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		{name: "shift to now", opts: ReplayOptions{ShiftToNow: true}, shifted: true,
			wantTimes: []time.Duration{0, 20 * ms, 40 * ms, 1000 * ms}},
		// With pacing, shifted stamps follow the wall clock: Speed compresses them.
		{name: "shift to now at speed 4", opts: ReplayOptions{Speed: 4, ShiftToNow: true}, shifted: true,
			wantSleeps: []time.Duration{5 * ms, 5 * ms, 240 * ms}, wantTimes: []time.Duration{0, 5 * ms, 10 * ms, 250 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: wallT0}
			tt.opts.Now, tt.opts.Sleep = clk.Now, clk.Sleep
			r := NewReplay(fourFrames(), tt.opts)
			got := readAllFrames(t, r, 4, func() { clk.now = clk.now.Add(tt.work) })
			var f Frame
			if err := r.ReadFrame(&f); !errors.Is(err, io.EOF) {
				t.Errorf("ReadFrame at end = %v, want io.EOF", err)
			}
			if diff := cmp.Diff(tt.wantSleeps, clk.sleeps); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			base := capT0
			if tt.shifted {
				base = wallT0
			}
			var rel []time.Duration
			for _, ts := range got {
				rel = append(rel, ts.Sub(base))
			}
			if diff := cmp.Diff(tt.wantTimes, rel); diff != "" {
				t.Errorf("frame times (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplayLoop(t *testing.T) {
	clk := &fakeClock{now: wallT0}
	opens := 0
	r := NewReplay(fourFrames(), ReplayOptions{Loop: true, Now: clk.Now, Sleep: clk.Sleep,
		Open: func() (Source, error) { opens++; return fourFrames(), nil }})
	got := readAllFrames(t, r, 12, nil)
	// Span 1 s, mean gap 1 s / 3: each pass starts 4/3 s after the previous.
	period := time.Second + time.Second/3
	var want []time.Time
	for pass := range 3 {
		for _, f := range fourFrames().frames {
			want = append(want, f.Time.Add(time.Duration(pass)*period))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("looped times (-want +got):\n%s", diff)
	}
	if opens != 2 {
		t.Errorf("Open called %d times, want 2", opens)
	}
	if s := r.Stats(); s.Frames != 12 || s.Bytes != 48 || s.KernelDropped != 7 {
		t.Errorf("Stats = %+v, want 12 frames, 48 bytes, inner drops 7", s)
	}
}

// TestReplayLoopPcap loops a real capture, paced at 50x on a fake clock,
// stamped to now: time must never go backwards, and the total wait must be
// the replayed capture time divided by the speed.
func TestReplayLoopPcap(t *testing.T) {
	path := sharedtest.Pcap(t, "sipp_kamailio.pcap")
	src, err := openPcapSource(path)
	if err != nil {
		sharedtest.Missing(t, "shared capture not available: %v", err)
	}
	clk := &fakeClock{now: wallT0}
	r := NewReplay(src, ReplayOptions{Loop: true, Speed: 50, ShiftToNow: true, Now: clk.Now, Sleep: clk.Sleep,
		Open: func() (Source, error) { return openPcapSource(path) }})
	defer r.Close()
	var f Frame
	var prev, first time.Time
	n := 0
	for ; n < 3*1026; n++ {
		if err := r.ReadFrame(&f); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if n == 0 {
			first = f.Time
		} else if f.Time.Before(prev) {
			t.Fatalf("frame %d: time %v before previous %v", n, f.Time, prev)
		}
		if !f.Time.Equal(clk.now) {
			t.Fatalf("frame %d: stamped %v, fake wall clock %v", n, f.Time, clk.now)
		}
		prev = f.Time
	}
	var slept time.Duration
	for _, d := range clk.sleeps {
		slept += d
	}
	if d := prev.Sub(first); slept != d {
		t.Errorf("slept %v in total, stamps span %v", slept, d)
	}
	if !first.Equal(wallT0) {
		t.Errorf("first frame stamped %v, want %v", first, wallT0)
	}
}

func TestReplayLoopErrors(t *testing.T) {
	var f Frame
	r := NewReplay(&sliceSource{}, ReplayOptions{Loop: true, Open: func() (Source, error) { return &sliceSource{}, nil }})
	if err := r.ReadFrame(&f); !errors.Is(err, io.EOF) {
		t.Errorf("looping an empty source: %v, want io.EOF", err)
	}
	r = NewReplay(fourFrames(), ReplayOptions{Loop: true})
	readAllFrames(t, r, 4, nil)
	if err := r.ReadFrame(&f); !errors.Is(err, ErrReplayNoOpen) {
		t.Errorf("Loop without Open: %v, want ErrReplayNoOpen", err)
	}
	boom := errors.New("boom")
	r = NewReplay(fourFrames(), ReplayOptions{Loop: true, Open: func() (Source, error) { return nil, boom }})
	readAllFrames(t, r, 4, nil)
	if err := r.ReadFrame(&f); !errors.Is(err, boom) {
		t.Errorf("failing Open: %v, want boom", err)
	}
}

func TestReplayCloseInterruptsSleep(t *testing.T) {
	src := &sliceSource{frames: []Frame{{Data: []byte{1}, Time: capT0}, {Data: []byte{2}, Time: capT0.Add(time.Hour)}}}
	sleeping := make(chan time.Duration, 1)
	r := NewReplay(src, ReplayOptions{Realtime: true, Sleep: func(d time.Duration, stop <-chan struct{}) bool {
		sleeping <- d
		return sleepOrStop(d, stop) // the real timer
	}})
	var f Frame
	if err := r.ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.ReadFrame(&f) }() // waits an hour for frame 2
	if d := <-sleeping; d < 59*time.Minute {
		t.Fatalf("waiting %v for frame 2, want about 1h", d)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("ReadFrame = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrame still sleeping 5s after Close")
	}
	if !src.closed.Load() {
		t.Error("inner source not closed")
	}
	if err := r.ReadFrame(&f); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrame after Close = %v, want ErrClosed", err)
	}
}

func BenchmarkReplayUnpaced(b *testing.B) {
	frames := fourFrames().frames
	r := NewReplay(&sliceSource{frames: frames}, ReplayOptions{Loop: true, ShiftToNow: true,
		Open: func() (Source, error) { return &sliceSource{frames: frames}, nil }})
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ReadFrame(&f); err != nil {
			b.Fatal(err)
		}
	}
}
