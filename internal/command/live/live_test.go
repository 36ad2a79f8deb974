package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/g711"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// fakeCalls is a call table with the given refs. preload, when set, is
// called from Attach (before the session's goroutine starts) so a test can
// queue a whole call's audio deterministically.
type fakeCalls struct {
	mu      sync.Mutex
	refs    map[uint64]bool
	taps    map[uint64]Tap
	preload func(Tap)
}

func newFake(refs ...uint64) *fakeCalls {
	f := &fakeCalls{refs: map[uint64]bool{}, taps: map[uint64]Tap{}}
	for _, r := range refs {
		f.refs[r] = true
	}
	return f
}

func (f *fakeCalls) Attach(ref uint64, t Tap) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.refs[ref] {
		return errors.New("no call")
	}
	f.taps[ref] = t
	if f.preload != nil {
		f.preload(t)
	}
	return nil
}

func (f *fakeCalls) Detach(ref uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.taps, ref)
}

func (f *fakeCalls) Active(ref uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refs[ref]
}

func (f *fakeCalls) tap(ref uint64) Tap {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taps[ref]
}

// end removes ref from the table and tells its tap, as calltable does.
func (f *fakeCalls) end(ref uint64) {
	f.mu.Lock()
	t := f.taps[ref]
	delete(f.taps, ref)
	delete(f.refs, ref)
	f.mu.Unlock()
	if t != nil {
		t.Ended()
	}
}

// tone returns n samples of a sine at freq Hz and amplitude amp.
func tone(n int, freq, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/SampleRate)))
	}
	return s
}

// soxDecode decodes raw G.711 (typ "ul" or "al") with sox into s16le
// samples: the independent reference for our decoding and mixing.
func soxDecode(t *testing.T, typ string, payload []byte) []int16 {
	t.Helper()
	if _, err := exec.LookPath("sox"); err != nil {
		sharedtest.Missing(t, "sox not installed (scripts/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in."+typ), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(in, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sox", "-t", typ, "-r", "8000", "-c", "1", in,
		"-t", "raw", "-e", "signed-integer", "-b", "16", "-L", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return pcm
}

// readAll polls Read until the session reports the call ended.
func readAll(t *testing.T, r *Registry, ref uint64, id string) []byte {
	t.Helper()
	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := r.Read(ref, id)
		if errors.Is(err, ErrEnded) {
			return got
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		got = append(got, b...)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("call never ended; read %d bytes", len(got))
	return nil
}

// TestPCMAgainstSox listens to a call whose caller sends µ-law and whose
// callee sends A-law (each side decoded with its own codec) and checks the
// mixed mono and the stereo frames against sox's decoding of the same
// payload bytes.
func TestPCMAgainstSox(t *testing.T) {
	const packets = 37 // 740 ms: not a multiple of the 800-byte unit
	ul := make([]byte, packets*160)
	al := make([]byte, packets*160)
	g711.EncodeUlawTo(ul, tone(len(ul), 400, 20000))
	g711.EncodeAlawTo(al, tone(len(al), 1000, 20000)) // loud: the sum saturates
	refU, refA := soxDecode(t, "ul", ul), soxDecode(t, "al", al)

	f := newFake(7)
	f.preload = func(tp Tap) {
		for i := 0; i < packets; i++ {
			tp.RTP(true, 0, "PCMU", ul[i*160:(i+1)*160])
			tp.RTP(false, 8, "PCMA", al[i*160:(i+1)*160])
			tp.RTP(false, 101, "telephone-event", []byte{1, 2, 3, 4}) // ignored
		}
		tp.Ended()
	}
	for _, stereo := range []bool{false, true} {
		t.Run(fmt.Sprintf("stereo=%v", stereo), func(t *testing.T) {
			r := NewRegistry(f, Limits{}, nil)
			defer r.Close()
			if _, err := r.Listen(7, "t", stereo); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, r, 7, "t")
			if !stereo {
				if len(got)%UnitBytes != 0 {
					t.Fatalf("read %d bytes, not whole %d-byte units", len(got), UnitBytes)
				}
				want := make([]byte, 0, len(got))
				for i := range refU {
					want = binary.LittleEndian.AppendUint16(want, uint16(saturate(int32(refU[i])+int32(refA[i]))))
				}
				want = append(want, make([]byte, len(got)-len(want))...) // last unit is zero-padded
				if !bytes.Equal(got, want) {
					t.Errorf("mixed PCM differs from sox (µ-law + A-law, saturated); first diff at byte %d", firstDiff(got, want))
				}
				return
			}
			if len(got) != packets*StereoFrameBytes {
				t.Fatalf("read %d bytes, want %d frames of %d", len(got), packets, StereoFrameBytes)
			}
			for fr := 0; fr < packets; fr++ {
				b := got[fr*StereoFrameBytes:]
				if at := int64(binary.LittleEndian.Uint64(b)); at <= 0 {
					t.Fatalf("frame %d has no capture stamp", fr)
				}
				for k := 0; k < FrameSamples; k++ {
					l := int16(binary.LittleEndian.Uint16(b[8+4*k:]))
					rr := int16(binary.LittleEndian.Uint16(b[10+4*k:]))
					if n := fr*FrameSamples + k; l != refU[n] || rr != refA[n] {
						t.Fatalf("frame %d sample %d = (%d, %d), sox says (%d, %d)", fr, k, l, rr, refU[n], refA[n])
					}
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func run(t *testing.T, reg *command.Registry, line string) string {
	t.Helper()
	name, args := command.ParseLine(line)
	res, err := reg.Run(context.Background(), &command.Request{Name: name, Args: args, Perm: command.PermAll})
	if err != nil {
		return "ERR " + err.Error()
	}
	switch r := res.(type) {
	case command.Text:
		return string(r)
	case command.Empty:
		return ""
	}
	return fmt.Sprintf("%T", res)
}

// TestCommands checks the legacy replies of listen, readaudio and
// listen_stop, including bad input.
func TestCommands(t *testing.T) {
	f := newFake(0x1f, 0x20)
	r := NewRegistry(f, Limits{}, nil)
	defer r.Close()
	reg := command.NewRegistry()
	Register(reg, Deps{Registry: r})
	steps := []struct{ line, want string }{
		{"listen 0x99 a", ReplyNoCall},
		{"listen zz a", ReplyNoCall},
		{"readaudio 0x99 a", ReplyErrNoCall},
		{"readaudio 0x1f a", ReplyNoWorker},
		{"listen 0x1f abcdefghijklmnopqrstu", "error: bad listen id"},
		{"listen 0x1f a", ReplySuccess},
		{"listen 31 b", ReplyAlready}, // decimal 31 = 0x1f
		{"readaudio 0x1f a", ReplyWait},
		{"readaudio 0x1f nobody", ReplyNoClient},
		{"listen_stop 0x1f a", ""},
		{"listen_stop 0x1f never", ""},
		{"readaudio 0x1f a", ReplyNoClient},
		{"listen", "ERR command: missing parameter: callreference"},
	}
	for _, s := range steps {
		if got := run(t, reg, s.line); got != s.want {
			t.Errorf("%q = %q, want %q", s.line, got, s.want)
		}
	}
	if st := r.Stats(); st.Calls != 1 || st.Listeners != 1 {
		t.Errorf("stats = %+v, want 1 call with 1 listener", st)
	}
	off := command.NewRegistry()
	Register(off, Deps{Registry: r, Disabled: true})
	if got := run(t, off, "listen 0x20 a"); got != ReplyDisabled {
		t.Errorf("disabled listen = %q", got)
	}
}

// TestCallEndsWhileListened: the listener gets the audio sent before the
// end, then "error: call not found"; the session goes away.
func TestCallEndsWhileListened(t *testing.T) {
	f := newFake(5)
	r := NewRegistry(f, Limits{}, nil)
	defer r.Close()
	reg := command.NewRegistry()
	Register(reg, Deps{Registry: r})
	if got := run(t, reg, "listen 0x5 x"); got != ReplySuccess {
		t.Fatalf("listen = %q", got)
	}
	tp := f.tap(5)
	for i := 0; i < 10; i++ {
		tp.RTP(true, 0, "PCMU", bytes.Repeat([]byte{0x80}, 160))
	}
	f.end(5)
	tp.RTP(true, 0, "PCMU", make([]byte, 160)) // after the end: ignored
	var audio int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		got := run(t, reg, "readaudio 0x5 x")
		if got == ReplyErrNoCall {
			break
		}
		if !strings.HasPrefix(got, "information:") {
			audio += len(got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if want := 4 * UnitBytes; audio != want { // 1600 samples → 4 units of 400
		t.Errorf("read %d bytes of audio before the end, want %d", audio, want)
	}
	if got := run(t, reg, "readaudio 0x5 x"); got != ReplyErrNoCall {
		t.Errorf("readaudio after the end = %q, want %q", got, ReplyErrNoCall)
	}
	run(t, reg, "listen_stop 0x5 x")
	waitFor(t, func() bool { return r.Stats().Calls == 0 })
	if got := run(t, reg, "listen 0x5 x"); got != ReplyNoCall {
		t.Errorf("listen to the ended call = %q", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("condition not met in 2 s")
}

// TestSlowAndManyListeners: listeners that never read keep at most
// ListenerBytes each and count what they drop; the per-call cap gives a
// clear error; the packet path never blocks when the rings are full.
func TestSlowAndManyListeners(t *testing.T) {
	f := newFake(9)
	lim := Limits{PerCall: 300, ListenerBytes: 8000, RingBytes: 4000}
	r := NewRegistry(f, lim, nil)
	defer r.Close()
	for i := 0; i < 300; i++ {
		if _, err := r.Listen(9, fmt.Sprint("l", i), i%2 == 0); err != nil {
			t.Fatalf("listener %d: %v", i, err)
		}
	}
	if _, err := r.Listen(9, "one-too-many", false); !errors.Is(err, ErrTooMany) {
		t.Errorf("listener 301: err = %v, want ErrTooMany", err)
	}
	tp := f.tap(9)
	pay := bytes.Repeat([]byte{0x55}, 160)
	start := time.Now()
	for i := 0; i < 5000; i++ { // 100 s of audio per side, as fast as possible
		tp.RTP(true, 8, "PCMA", pay)
		tp.RTP(false, 8, "PCMA", pay)
	}
	perPacket := time.Since(start) / 10000
	waitFor(t, func() bool { return r.Stats().ListenerDrops > 0 })
	time.Sleep(100 * time.Millisecond)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.mu.Lock()
	s := r.sessions[9]
	r.mu.Unlock()
	s.mu.Lock()
	held := 0
	for _, l := range s.listeners {
		if len(l.buf) > lim.ListenerBytes {
			t.Errorf("listener holds %d bytes, limit %d", len(l.buf), lim.ListenerBytes)
		}
		held += cap(l.buf)
	}
	s.mu.Unlock()
	st := r.Stats()
	t.Logf("RTP() %v per packet; %d listener bytes held; heap %d MB; %+v", perPacket, held, ms.HeapAlloc>>20, st)
	if held > 300*2*lim.ListenerBytes {
		t.Errorf("listeners hold %d bytes in total, want <= %d", held, 300*2*lim.ListenerBytes)
	}
	if st.ListenerDrops == 0 {
		t.Errorf("no listener drops counted")
	}
	if perPacket > 500*time.Microsecond { // ~0.3 µs idle; generous for a loaded CI machine

		t.Errorf("RTP() took %v per packet on average; the packet path must not wait", perPacket)
	}
	// A reader still gets whole units after all that.
	b, err := r.Read(9, "l1")
	if err != nil || len(b) == 0 || len(b)%UnitBytes != 0 {
		t.Errorf("Read after overflow = %d bytes, %v", len(b), err)
	}
}

// TestIdleReaped: a listener that stops reading is dropped after Idle and
// the tap is detached with the last one.
func TestIdleReaped(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFake(3)
	r := NewRegistry(f, Limits{}, clock)
	defer r.Close()
	if _, err := r.Listen(3, "a", false); err != nil {
		t.Fatal(err)
	}
	if f.tap(3) == nil {
		t.Fatalf("no tap attached")
	}
	mu.Lock()
	now = now.Add(9 * time.Second)
	mu.Unlock()
	time.Sleep(120 * time.Millisecond)
	if _, err := r.Read(3, "a"); err != nil {
		t.Fatalf("read at 9 s idle: %v", err)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	waitFor(t, func() bool { return r.Stats().Calls == 0 })
	if f.tap(3) != nil {
		t.Errorf("tap still attached after the last listener was reaped")
	}
	if st := r.Stats(); st.Reaped != 1 || st.Listeners != 0 {
		t.Errorf("stats = %+v, want 1 reaped, 0 listeners", st)
	}
	if _, err := r.Read(3, "a"); !errors.Is(err, ErrNoWorker) {
		t.Errorf("read after reaping: %v, want ErrNoWorker", err)
	}
}

type fakeLadders map[uint64]Ladder

func (f fakeLadders) Ladder(ref uint64) (Ladder, bool) { l, ok := f[ref]; return l, ok }

func TestSIPLadder(t *testing.T) {
	reg := command.NewRegistry()
	at := time.Unix(1700000000, 0).UTC()
	Register(reg, Deps{Ladders: fakeLadders{0x1f: {Messages: []Message{{Time: at, Src: "10.0.0.1:5060", Dst: "10.0.0.2:5060", Line: "INVITE sip:b@x SIP/2.0", Size: 500}}}}})
	res, err := reg.Run(context.Background(), &command.Request{Name: "sip_ladder", Args: []string{"0x1F"}, Perm: command.PermAll})
	if err != nil {
		t.Fatal(err)
	}
	l := res.(command.Value).V.(Ladder)
	if l.CallRef != "0x1f" || len(l.Messages) != 1 || l.Messages[0].Line != "INVITE sip:b@x SIP/2.0" {
		t.Errorf("sip_ladder = %+v", l)
	}
	_, err = reg.Run(context.Background(), &command.Request{Name: "sip_ladder", Args: []string{"0x2"}, Perm: command.PermAll})
	if !errors.Is(err, command.ErrNoEntry) {
		t.Errorf("unknown call: err = %v, want ErrNoEntry", err)
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0x1f", 31, true}, {"0X1F", 31, true}, {"31", 31, true}, {"4a3f7b2c1d", 0x4a3f7b2c1d, true},
		{"", 0, false}, {"0", 0, false}, {"0x", 0, false}, {"zz", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRef(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRef(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkTapRTP measures the packet-path cost of a listened call.
func BenchmarkTapRTP(b *testing.B) {
	f := newFake(1)
	r := NewRegistry(f, Limits{}, nil)
	defer r.Close()
	r.Listen(1, "x", false)
	tp := f.tap(1)
	pay := make([]byte, 160)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tp.RTP(i%2 == 0, 0, "PCMU", pay)
	}
}
