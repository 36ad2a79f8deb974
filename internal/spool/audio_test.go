package spool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/g711"
	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// audioTruth is the part of the generator's truth the audio tests need.
type audioTruth struct {
	CallID  string    `json:"callid"`
	Start   time.Time `json:"start"`
	Codec   string    `json:"codec"`
	Streams []struct {
		Direction string `json:"direction"`
		Src, Dst  string
		SSRC      uint32 `json:"ssrc"`
		Lost      int    `json:"lost"`
	} `json:"streams"`
}

// genAudio generates a capture of answered calls with a 400 Hz tone from
// the caller and 1000 Hz from the callee (internal/gen/signal.go) and
// returns its frames and truth.
func genAudio(t *testing.T, set func(*gen.Config)) ([]capture.Frame, []audioTruth) {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 1, 1, 3*time.Second
	cfg.Seed = 7
	set(&cfg)
	var pcap, js bytes.Buffer
	if _, err := gen.Generate(cfg, &pcap, &js); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Calls []audioTruth `json:"calls"`
	}
	if err := json.Unmarshal(js.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	f, err := capture.NewFileReader(bytes.NewReader(pcap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames []capture.Frame
	for {
		var fr capture.Frame
		if err := f.ReadFrame(&fr); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		fr.Data = bytes.Clone(fr.Data)
		frames = append(frames, fr)
	}
	return frames, tr.Calls
}

// recordFrames runs frames through a decoder and a call table that feeds
// r, as the packet loop does, and stops r once the table closed its calls.
func recordFrames(t *testing.T, r *Recorder, frames []capture.Frame) {
	t.Helper()
	stop := runRecorder(r)
	tab := calltable.New(calltable.Config{}, nil)
	tab.SetRecorder(r)
	dec := decode.NewDecoder(decode.Config{})
	for i := range frames {
		r.Frame(&frames[i])
		dec.Decode(&frames[i], tab)
	}
	tab.CloseAll()
	stop()
}

// readWAV checks the header of a saveaudio WAV and returns its channels.
func readWAV(t *testing.T, name string) (left, right []int16) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 {
		t.Fatalf("%s: %d bytes, no WAV header", name, len(b))
	}
	le := binary.LittleEndian
	data := le.Uint32(b[40:])
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"RIFF", string(b[0:4]), "RIFF"},
		{"RIFF size", le.Uint32(b[4:]), uint32(len(b) - 8)},
		{"WAVE", string(b[8:16]), "WAVEfmt "},
		{"fmt size", le.Uint32(b[16:]), uint32(16)},
		{"format (PCM)", le.Uint16(b[20:]), uint16(1)},
		{"channels", le.Uint16(b[22:]), uint16(2)},
		{"rate", le.Uint32(b[24:]), uint32(8000)},
		{"byte rate", le.Uint32(b[28:]), uint32(32000)},
		{"block align", le.Uint16(b[32:]), uint16(4)},
		{"bits", le.Uint16(b[34:]), uint16(16)},
		{"data", string(b[36:40]), "data"},
		{"data size", data, uint32(len(b) - 44)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s = %v, want %v", name, c.what, c.got, c.want)
		}
	}
	pcm := b[44:]
	for i := 0; i+4 <= len(pcm); i += 4 {
		left = append(left, int16(le.Uint16(pcm[i:])))
		right = append(right, int16(le.Uint16(pcm[i+2:])))
	}
	return left, right
}

// goertzel returns the power of x at freq Hz (8 kHz sampling).
func goertzel(x []int16, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/8000)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+k*s1-s2, s1
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

// rtpPacket is one captured RTP packet of a call, with the channel it
// belongs to.
type rtpPacket struct {
	ch      int // 0 caller (left), 1 callee (right)
	at      time.Time
	ts      uint32
	pt      uint8
	payload []byte
}

// callPackets lists the RTP packets of the call's streams in capture
// order.
func callPackets(t *testing.T, frames []capture.Frame, c audioTruth) []rtpPacket {
	t.Helper()
	chans := map[string]int{}
	for _, s := range c.Streams {
		chans[s.Src+">"+s.Dst] = map[string]int{"caller_to_callee": 0, "callee_to_caller": 1}[s.Direction]
	}
	var out []rtpPacket
	dec := decode.NewDecoder(decode.Config{})
	for i := range frames {
		dec.Decode(&frames[i], decode.HandlerFunc(func(dg *decode.Datagram) {
			ch, ok := chans[dg.Flow.Src.String()+">"+dg.Flow.Dst.String()]
			var h rtp.Header
			if !ok || rtp.IsRTCP(dg.Payload) || h.Unmarshal(dg.Payload) != nil {
				return
			}
			out = append(out, rtpPacket{ch: ch, at: dg.Time, ts: h.Timestamp, pt: h.PayloadType, payload: bytes.Clone(h.Payload)})
		}))
	}
	return out
}

// g711Decode decodes each packet's payload with internal/g711.
func g711Decode(pkts []rtpPacket) [][]int16 {
	out := make([][]int16, len(pkts))
	for i, p := range pkts {
		out[i] = make([]int16, len(p.payload))
		if p.pt == 8 {
			g711.DecodeAlawTo(out[i], p.payload)
		} else {
			g711.DecodeUlawTo(out[i], p.payload)
		}
	}
	return out
}

// soxDecode decodes each packet's payload with sox, the reference the
// issue names: the payloads of each codec concatenated into one raw
// µ-law or A-law file, decoded to 16-bit linear in one run.
func soxDecode(t *testing.T, pkts []rtpPacket) [][]int16 {
	t.Helper()
	sox := sharedtest.Tool(t, "sox")
	out := make([][]int16, len(pkts))
	for _, codec := range []struct {
		pt   uint8
		kind string
	}{{0, "ul"}, {8, "al"}} {
		var in []byte
		for _, p := range pkts {
			if p.pt == codec.pt {
				in = append(in, p.payload...)
			}
		}
		if len(in) == 0 {
			continue
		}
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "in."+codec.kind), filepath.Join(dir, "out.raw")
		if err := os.WriteFile(src, in, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(sox, "-t", codec.kind, "-r", "8000", "-c", "1", src,
			"-t", "raw", "-e", "signed-integer", "-b", "16", "-L", dst).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v\n%s", err, b)
		}
		raw, err := os.ReadFile(dst)
		if err != nil || len(raw) != 2*len(in) {
			t.Fatalf("sox decoded %d bytes to %d, err %v", len(in), len(raw), err)
		}
		for i, p := range pkts {
			if p.pt != codec.pt {
				continue
			}
			out[i] = make([]int16, len(p.payload))
			for j := range out[i] {
				out[i][j] = int16(binary.LittleEndian.Uint16(raw[2*j:]))
			}
			raw = raw[2*len(p.payload):]
		}
	}
	return out
}

// checkWAV checks a call's WAV against its captured RTP: its length is
// the RTP's span, every packet's samples are ref's decoding of its
// payload (ref[i] is pkts[i]'s) at the place its stream's first arrival
// and its timestamp give (both directions on one time line), everything
// else is silence (lost
// packets, the time before a direction starts), and the caller's tone is
// on the left, the callee's on the right. The span is compared within
// tol: the capture's jitter moves the first and last arrivals.
func checkWAV(t *testing.T, name string, pkts []rtpPacket, ref [][]int16, tol time.Duration) {
	t.Helper()
	left, right := readWAV(t, name)
	wav := [2][]int16{left, right}
	origin := pkts[0].at
	var first [2]*rtpPacket
	var anchor [2]int64
	var last time.Time
	want := int64(0)
	covered := [2][]bool{make([]bool, len(left)), make([]bool, len(left))}
	for i := range pkts {
		p := &pkts[i]
		if first[p.ch] == nil {
			first[p.ch] = p
			anchor[p.ch] = int64(p.at.Sub(origin)) * 8000 / int64(time.Second)
		}
		last = p.at
		pos := anchor[p.ch] + int64(int32(p.ts-first[p.ch].ts))
		end := pos + int64(len(p.payload))
		want = max(want, end)
		if end > int64(len(left)) {
			continue
		}
		if got := wav[p.ch][pos:end]; !slices.Equal(got, ref[i]) {
			t.Errorf("channel %d at %d: the WAV's samples differ from the packet's decoding", p.ch, pos)
		}
		for j := pos; j < end; j++ {
			covered[p.ch][j] = true
		}
	}
	if int64(len(left)) != want {
		t.Errorf("WAV holds %d samples, want %d", len(left), want)
	}
	span := last.Sub(origin) + 20*time.Millisecond // the last packet's 20 ms
	if d := time.Duration(len(left)) * time.Second / 8000; d < span-tol || d > span+tol {
		t.Errorf("WAV lasts %v, the RTP %v", d, span)
	}
	for ch := range 2 {
		silent := 0
		for j, v := range wav[ch] {
			if !covered[ch][j] {
				silent++
				if v != 0 {
					t.Fatalf("channel %d: sample %d = %d where no packet was: want silence", ch, j, v)
				}
			}
		}
		t.Logf("channel %d: %d samples of silence", ch, silent)
	}
	// The tones, over the second second.
	if len(left) < 2*8000 {
		t.Fatalf("WAV too short for the tone check: %d samples", len(left))
	}
	for ch, f := range [2][2]float64{{400, 1000}, {1000, 400}} {
		if first[ch] == nil {
			continue
		}
		x := wav[ch][8000 : 2*8000]
		if on, off := goertzel(x, f[0]), goertzel(x, f[1]); on < 100*off {
			t.Errorf("channel %d: power at %v Hz %.3g, at %v Hz %.3g: want the %v Hz tone", ch, f[0], on, f[1], off, f[0])
		}
	}
}

// TestAudioWAV records generated calls with saveaudio and checks each WAV
// against the capture (checkWAV), its samples against internal/g711's and
// sox's decoding of the payloads: µ-law with packets lost, A-law with
// jitter, reordering, duplicates and loss, and two calls at once with one
// WAV file open at a time (each write reopens its file).
func TestAudioWAV(t *testing.T) {
	for _, tt := range []struct {
		name     string
		set      func(*gen.Config)
		maxFiles int
	}{
		{"PCMU loss", func(c *gen.Config) { c.Loss = 0.05 }, 0},
		{"PCMA jitter reorder duplicates", func(c *gen.Config) {
			c.Codec, c.Loss, c.Reorder, c.Duplicates, c.Jitter = "PCMA", 0.03, 0.05, 0.03, 15*time.Millisecond
		}, 0},
		{"two calls one file open", func(c *gen.Config) { c.Calls, c.Concurrency, c.Loss = 2, 2, 0.02 }, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frames, calls := genAudio(t, tt.set)
			dir := t.TempDir()
			r := New(Options{Dir: dir, Audio: true, Location: time.UTC, MaxOpenFiles: tt.maxFiles})
			recordFrames(t, r, frames)
			lost := 0
			for _, c := range calls {
				if len(c.Streams) != 2 {
					t.Fatalf("%s: %d streams, want an answered call", c.CallID, len(c.Streams))
				}
				lost += c.Streams[0].Lost + c.Streams[1].Lost
				name := filepath.Join(dir, AudioPath(c.CallID, c.Start, time.UTC))
				pkts := callPackets(t, frames, c)
				checkWAV(t, name, pkts, g711Decode(pkts), 20*time.Millisecond)
				t.Run("sox", func(t *testing.T) { checkWAV(t, name, pkts, soxDecode(t, pkts), 20*time.Millisecond) })
			}
			if lost == 0 {
				t.Errorf("no packet lost: the silence of lost packets is not tested")
			}
			st := r.Stats()
			if st.AudioFiles != uint64(len(calls)) || st.AudioOpen != 0 || st.Errors != 0 || st.AudioDropped != 0 ||
				st.AudioLost != 0 || st.AudioLate != 0 || st.AudioCodec != 0 || st.AudioPackets == 0 {
				t.Errorf("stats %+v, want %d WAV files, all closed, packets written, nothing lost", st, len(calls))
			}
			if st.FilesCreated != 0 {
				t.Errorf("%d pcaps created with savesip and savertp off", st.FilesCreated)
			}
		})
	}
}

// TestAudioOtherCodec: the callee's packets in G.729 (payload type 18) are
// left out and counted, the codec named in the log once; the caller's
// G.711 is in its WAV as ever.
func TestAudioOtherCodec(t *testing.T) {
	frames, calls := genAudio(t, func(*gen.Config) {})
	c := calls[0]
	var callee string
	for _, s := range c.Streams {
		if s.Direction == "callee_to_caller" {
			callee = s.Src + ">" + s.Dst
		}
	}
	dec := decode.NewDecoder(decode.Config{})
	n := 0
	for i := range frames {
		dec.Decode(&frames[i], decode.HandlerFunc(func(dg *decode.Datagram) {
			if dg.Flow.Src.String()+">"+dg.Flow.Dst.String() == callee && !rtp.IsRTCP(dg.Payload) {
				dg.Payload[1] = dg.Payload[1]&0x80 | 18 // the payload aliases the frame
				n++
			}
		}))
	}
	var logBuf syncBuf
	dir := t.TempDir()
	r := New(Options{Dir: dir, Audio: true, Location: time.UTC, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	recordFrames(t, r, frames)
	name := filepath.Join(dir, AudioPath(c.CallID, c.Start, time.UTC))
	// The WAV starts with the caller's first packet; the callee's channel
	// is silent throughout (checkWAV: no packet covers it).
	var caller []rtpPacket
	for _, p := range callPackets(t, frames, c) {
		if p.ch == 0 {
			caller = append(caller, p)
		}
	}
	checkWAV(t, name, caller, g711Decode(caller), time.Millisecond)
	if st := r.Stats(); st.AudioCodec != uint64(n) || n == 0 {
		t.Errorf("AudioCodec = %d, want the callee's %d packets", st.AudioCodec, n)
	}
	if got := strings.Count(logBuf.String(), "codec=G729"); got != 1 {
		t.Errorf("G729 named %d times in the log, want once:\n%s", got, logBuf.String())
	}
}

// audioFeed feeds a call by hand: an INVITE whose SDP puts the caller at
// 10.0.0.1:4000, then RTP from there of 20 ms of µ-law each.
type audioFeed struct {
	t   *testing.T
	r   *Recorder
	seq uint16
	at  time.Time
}

func (f *audioFeed) invite() {
	sdp := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	msg := "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: <sip:a@x>;tag=a1\r\nTo: <sip:b@x>\r\n" +
		"Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: " +
		strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
	fr, dg := udpFrame(f.t, "10.0.0.1:5060", "10.0.0.2:5060", []byte(msg), f.at)
	f.r.Frame(fr)
	f.r.Record(calltable.RecordSIP, 1, "c", t0, dg)
}

func (f *audioFeed) rtp(n int) {
	for range n {
		p := make([]byte, 12+160)
		p[0] = 0x80
		binary.BigEndian.PutUint16(p[2:], f.seq)
		binary.BigEndian.PutUint32(p[4:], uint32(f.seq)*160)
		binary.BigEndian.PutUint32(p[8:], 0x1234)
		for i := 12; i < len(p); i++ {
			p[i] = g711.EncodeUlaw(1000)
		}
		fr, dg := udpFrame(f.t, "10.0.0.1:4000", "10.0.0.2:4002", p, f.at)
		f.r.Frame(fr)
		f.r.Record(calltable.RecordRTP, 1, "c", t0, dg)
		f.seq++
		f.at = f.at.Add(20 * time.Millisecond)
	}
}

// TestAudioDiskFull points a call's WAV at /dev/full: recording stops
// with one log line as for the pcaps, the packets are counted as lost to
// the full disk, and once the path is writable again the WAV goes on: a
// valid file whose lost part is silence and whose later part is the
// caller's audio, at its place.
func TestAudioDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	var logBuf syncBuf
	r := New(Options{Dir: dir, Audio: true, Location: time.UTC, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	name := filepath.Join(dir, AudioPath("c", t0, time.UTC))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", name); err != nil {
		t.Fatal(err)
	}
	stop := runRecorder(r)
	defer stop()
	f := &audioFeed{t: t, r: r, at: t0}
	f.invite()
	f.rtp(50) // one second: the first half-second write fails
	sharedtest.Eventually(t, 10*time.Second, "recording paused", func() bool { return r.Stats().Paused })
	sharedtest.Eventually(t, 10*time.Second, "packets lost to the full disk", func() bool {
		f.rtp(1)
		return r.Stats().AudioDiskFull >= 10
	})
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	sharedtest.Eventually(t, 10*time.Second, "recording resumed", func() bool {
		f.rtp(30) // over half a second: a write
		return !r.Stats().Paused
	})
	f.rtp(10)
	r.Ended(1)
	sharedtest.Eventually(t, 10*time.Second, "WAV closed", func() bool { return r.Stats().AudioOpen == 0 && r.Stats().QueueBytes == 0 })
	left, right := readWAV(t, name)
	if want := int(f.seq) * 160; len(left) != want {
		t.Errorf("WAV holds %d samples, want %d: every packet at its place", len(left), want)
	}
	tail := left[len(left)-160:]
	if v := g711.DecodeUlaw(g711.EncodeUlaw(1000)); tail[0] != v || tail[159] != v {
		t.Errorf("the last packet's samples are %d…%d, want %d", tail[0], tail[159], v)
	}
	if left[0] != 0 || !slices.Equal(right, make([]int16, len(right))) {
		t.Errorf("the part lost to the full disk, or the callee's silent channel, is not silence")
	}
	if n := strings.Count(logBuf.String(), "recording stopped"); n != 1 {
		t.Errorf("%d 'recording stopped' lines, want 1:\n%s", n, logBuf.String())
	}
	if st := r.Stats(); st.AudioFiles != 1 || st.AudioPackets == 0 {
		t.Errorf("stats %+v, want 1 WAV created, packets written", st)
	}
}

// TestAudioContinue: a WAV found at a call's path (its Call-ID again in
// the same minute) is continued after its data; a file that is not a
// saveaudio WAV is written over.
func TestAudioContinue(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, AudioPath("c", t0, time.UTC))
	for round, want := range []int{50 * 160, 2 * 50 * 160} {
		r := New(Options{Dir: dir, Audio: true, Location: time.UTC})
		stop := runRecorder(r)
		f := &audioFeed{t: t, r: r, at: t0}
		f.invite()
		f.rtp(50)
		r.Ended(1)
		stop()
		if left, _ := readWAV(t, name); len(left) != want {
			t.Errorf("round %d: %d samples, want %d", round, len(left), want)
		}
	}
	if err := os.WriteFile(name, []byte("not a WAV at all, longer than a header......"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(Options{Dir: dir, Audio: true, Location: time.UTC})
	stop := runRecorder(r)
	f := &audioFeed{t: t, r: r, at: t0}
	f.invite()
	f.rtp(50)
	r.Ended(1)
	stop()
	if left, _ := readWAV(t, name); len(left) != 50*160 {
		t.Errorf("over a foreign file: %d samples, want %d", len(left), 50*160)
	}
}

// TestAudioBufferFull: with the writer stalled, audio that finds the
// batch full is dropped and counted, and Record does not wait.
func TestAudioBufferFull(t *testing.T) {
	r := New(Options{Dir: t.TempDir(), Audio: true, BufferBytes: 64 << 10, Location: time.UTC})
	stalled, release := make(chan struct{}), make(chan struct{})
	first := true
	r.beforeBatch = func() {
		if first {
			first = false
			close(stalled)
			<-release
		}
	}
	stop := runRecorder(r)
	defer stop()
	f := &audioFeed{t: t, r: r, at: t0}
	f.invite()
	<-stalled
	start := time.Now()
	f.rtp(1000)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 packets took %v with the writer stalled", d)
	}
	if st := r.Stats(); st.AudioDropped == 0 || st.AudioDropped >= 1000 {
		t.Errorf("AudioDropped = %d, want the packets beyond the 16 KiB batch", st.AudioDropped)
	}
	close(release)
	r.Ended(1)
	sharedtest.Eventually(t, 10*time.Second, "WAV written", func() bool { return r.Stats().AudioPackets > 0 && r.Stats().AudioOpen == 0 })
}
