package test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// This file checks saveaudio = wav end to end: `voipsensor run -r` on a
// generated capture (answered, refused and cancelled calls; loss, jitter,
// reordering, duplicates, RTCP) with only saveaudio on leaves one WAV per
// answered call in its minute's AUDIO directory and none for the others;
// each lasts its call's RTP span (within 40 ms) with the caller's 400 Hz
// tone on the left and the callee's 1000 Hz on the right, and sox reads
// it as written (channels, rate, bits, length). A second daemon
// on the same spool serves the WAVs through the manager API (getfile,
// file_exists), lists them in cdr_detail and serves them to the console
// (/api/file) as it plays them; spool_stat and the metrics count them.

// audioCall is the part of the generator's truth this test needs.
type audioCall struct {
	CallID  string    `json:"callid"`
	Start   time.Time `json:"start"`
	State   string    `json:"state"`
	Streams []struct {
		Direction string `json:"direction"`
		Src       string `json:"src"`
		Dst       string `json:"dst"`
	} `json:"streams"`
}

// audioCapture generates the capture and returns its path and calls.
func audioCapture(t *testing.T) (string, []audioCall) {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 8, 3, 4*time.Second
	cfg.Failed, cfg.Cancelled = 0.2, 0.1
	cfg.RTCP = true
	cfg.Loss, cfg.Duplicates, cfg.Reorder, cfg.Jitter = 0.01, 0.01, 0.01, 3*time.Millisecond
	cfg.Seed = 23
	var pcap, js bytes.Buffer
	if _, err := gen.Generate(cfg, &pcap, &js); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "audio.pcap")
	if err := os.WriteFile(name, pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Calls []audioCall `json:"calls"`
	}
	if err := json.Unmarshal(js.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	return name, tr.Calls
}

// rtpSpans returns, for each flow "src>dst", the capture times of its
// first and last RTP packets.
func rtpSpans(t *testing.T, pcap string) map[string][2]time.Time {
	t.Helper()
	f, err := capture.OpenFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spans := map[string][2]time.Time{}
	dec := decode.NewDecoder(decode.Config{})
	var fr capture.Frame
	for {
		if err := f.ReadFrame(&fr); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		dec.Decode(&fr, decode.HandlerFunc(func(dg *decode.Datagram) {
			var h rtp.Header
			if dg.Flow.Src.Port() == 5060 || dg.Flow.Dst.Port() == 5060 || rtp.IsRTCP(dg.Payload) || h.Unmarshal(dg.Payload) != nil {
				return
			}
			k := dg.Flow.Src.String() + ">" + dg.Flow.Dst.String()
			s, ok := spans[k]
			if !ok {
				s[0] = dg.Time
			}
			s[1] = dg.Time
			spans[k] = s
		}))
	}
	return spans
}

// wavChannels checks a WAV's header (stereo, 8 kHz, 16-bit PCM, sizes
// matching the file) and returns its two channels.
func wavChannels(t *testing.T, b []byte) (left, right []int16) {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 44 || string(b[:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || le.Uint16(b[20:]) != 1 ||
		le.Uint16(b[22:]) != 2 || le.Uint32(b[24:]) != 8000 || le.Uint16(b[34:]) != 16 || string(b[36:40]) != "data" ||
		le.Uint32(b[4:]) != uint32(len(b)-8) || le.Uint32(b[40:]) != uint32(len(b)-44) {
		t.Fatalf("not a stereo 8 kHz 16-bit WAV of %d bytes: % x", len(b), b[:min(len(b), 44)])
	}
	for i := 44; i+4 <= len(b); i += 4 {
		left = append(left, int16(le.Uint16(b[i:])))
		right = append(right, int16(le.Uint16(b[i+2:])))
	}
	return left, right
}

// tonePower is the Goertzel power of x at freq Hz (8 kHz sampling).
func tonePower(x []int16, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/8000)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+k*s1-s2, s1
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

func TestAudioRecordDaemon(t *testing.T) {
	pcap, calls := audioCapture(t)
	d := newDaemon(t, "-r", pcap, "-set", "saveaudio=wav")
	if code := d.run(2 * time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.log)
	}
	log := d.log.String()
	spans := rtpSpans(t, pcap)
	answered := 0
	var wavs []string
	for _, c := range calls {
		rel := spool.AudioPath(c.CallID, c.Start, nil)
		b, err := os.ReadFile(filepath.Join(d.spool, rel))
		if c.State != "answered" {
			if err == nil {
				t.Errorf("%s (%s): a WAV without RTP", c.CallID, c.State)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.CallID, err)
			continue
		}
		answered++
		wavs = append(wavs, rel)
		// export --wav hands out the same file.
		exported := filepath.Join(t.TempDir(), "call.wav")
		if out, err := exec.Command(voipsensorBinary(t), "export", "--spooldir", d.spool, "--wav", "--callid", "-o", exported, c.CallID).CombinedOutput(); err != nil {
			t.Errorf("%s: export --wav: %v\n%s", c.CallID, err, out)
		} else if e, err := os.ReadFile(exported); err != nil || !bytes.Equal(e, b) {
			t.Errorf("%s: export --wav wrote %d bytes (%v), the spool's WAV has %d", c.CallID, len(e), err, len(b))
		}
		left, right := wavChannels(t, b)
		// sox reads it as we wrote it.
		if sox, err := exec.LookPath("sox"); err == nil {
			for _, q := range []struct{ flag, want string }{{"-c", "2"}, {"-r", "8000"}, {"-b", "16"}, {"-s", strconv.Itoa(len(left))}} {
				out, err := exec.Command(sox, "--i", q.flag, filepath.Join(d.spool, rel)).CombinedOutput()
				if got := strings.TrimSpace(string(out)); err != nil || got != q.want {
					t.Errorf("%s: sox --i %s = %q (%v), want %s", c.CallID, q.flag, got, err, q.want)
				}
			}
		} else if sharedtest.InCI() {
			t.Error("CI: sox not installed")
		}
		// The call's RTP span: its first packet to the end of its last
		// (20 ms), in either direction.
		var first, last time.Time
		for _, s := range c.Streams {
			sp := spans[s.Src+">"+s.Dst]
			if first.IsZero() || sp[0].Before(first) {
				first = sp[0]
			}
			if sp[1].After(last) {
				last = sp[1]
			}
		}
		span := last.Add(20 * time.Millisecond).Sub(first)
		got := time.Duration(len(left)) * time.Second / 8000
		t.Logf("%s: WAV %v, RTP span %v", c.CallID, got, span)
		if d := got - span; d < -40*time.Millisecond || d > 40*time.Millisecond {
			t.Errorf("%s: WAV lasts %v, its RTP spans %v", c.CallID, got, span)
		}
		// The tones over the second second.
		if len(left) < 2*8000 {
			t.Fatalf("%s: WAV of %d samples", c.CallID, len(left))
		}
		for _, ch := range []struct {
			name    string
			x       []int16
			on, off float64
		}{{"left", left[8000:16000], 400, 1000}, {"right", right[8000:16000], 1000, 400}} {
			if on, off := tonePower(ch.x, ch.on), tonePower(ch.x, ch.off); on < 100*off {
				t.Errorf("%s: %s channel: %v Hz power %.3g, %v Hz %.3g: want the %v Hz tone", c.CallID, ch.name, ch.on, on, ch.off, off, ch.on)
			}
		}
	}
	if answered == 0 || answered == len(calls) {
		t.Fatalf("%d of %d calls answered: the capture should mix answered and unanswered calls", answered, len(calls))
	}
	if got := logInt(log, "recorder stopped", "audio.files"); got != int64(answered) {
		t.Errorf("recorder stopped: audio.files=%d, want %d\n%s", got, answered, log)
	}
	for _, key := range []string{"audio.dropped", "audio.lost", "audio.disk_full", "audio.codec", "errors"} {
		if n := logInt(log, "recorder stopped", key); n != 0 {
			t.Errorf("recorder stopped: %s=%d, want 0", key, n)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(d.spool, "*", "*", "*", "SIP")); len(n) != 0 {
		t.Errorf("SIP pcaps written with savesip off: %v", n)
	}

	t.Run("Retrieval", func(t *testing.T) { testAudioRetrieval(t, d.spool, calls, wavs) })
}

// testAudioRetrieval serves the spool with a second daemon (its input an
// idle FIFO) and fetches each WAV through the manager API and the
// console's API.
func testAudioRetrieval(t *testing.T, spoolDir string, calls []audioCall, wavs []string) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "idle.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "m.sock")
	port := freePort(t)
	d := newDaemon(t, "-r", fifo, "-set", "managersocket="+sock, "-set", "spooldir="+spoolDir,
		"-set", "web_port="+strconv.Itoa(port), "-set", "maxpoolsize=1000", "-set", "saveaudio=wav")
	feed := holdFIFO(t, fifo)
	startDaemonFrom(t, d)
	fifoW := <-feed
	if fifoW == nil {
		t.FailNow()
	}
	defer fifoW.Close()
	cmd := func(line string) string { return string(ncSend(t, 0, sock, []byte(line+"\n"))) }
	base := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	for _, rel := range wavs {
		want, err := os.ReadFile(filepath.Join(spoolDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := cmd("getfile " + rel); got != string(want) {
			t.Errorf("getfile %s: %d bytes, want the WAV's %d", rel, len(got), len(want))
		}
		if got := cmd("file_exists " + rel); got != strconv.Itoa(len(want)) {
			t.Errorf("file_exists %s = %q, want %d", rel, got, len(want))
		}
		r, err := http.Get(base + "api/file?name=" + url.QueryEscape(rel))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || !bytes.Equal(got, want) || r.Header.Get("Content-Type") != "audio/wav" {
			t.Errorf("console /api/file %s: status %d, %s, %d bytes; want the WAV's %d as audio/wav", rel, r.StatusCode, r.Header.Get("Content-Type"), len(got), len(want))
		}
	}
	// An answered call's page lists its WAV (the console's audio player).
	for _, c := range calls {
		if c.State != "answered" {
			continue
		}
		var det histDetail
		sharedtest.Eventually(t, 15*time.Second, "cdr_detail of "+c.CallID, every(func() bool {
			return histGet(t, base, "api/cdr/detail?callid="+url.QueryEscape(c.CallID), &det) == http.StatusOK && det.CDR != nil
		}))
		found := false
		for _, f := range det.Files {
			found = found || f.Type == "AUDIO" && f.Name == spool.AudioPath(c.CallID, c.Start, nil)
		}
		if !found {
			t.Errorf("%s: cdr_detail files %+v lack its WAV", c.CallID, det.Files)
		}
		break
	}
	// spool_stat and the metrics: the recorder's audio counters, the
	// cleaner's AUDIO bytes.
	var st struct {
		Recording *struct {
			Audio bool `json:"audio"`
		} `json:"recording"`
		Cleaner *struct {
			Passes uint64           `json:"passes"`
			Bytes  map[string]int64 `json:"bytes"`
			Files  map[string]int   `json:"files"`
		} `json:"cleaner"`
	}
	sharedtest.Eventually(t, 15*time.Second, "a cleaning pass", func() bool {
		if err := json.Unmarshal([]byte(cmd("spool_stat")), &st); err != nil {
			t.Fatalf("spool_stat: %v", err)
		}
		return st.Cleaner != nil && st.Cleaner.Passes > 0
	})
	if st.Recording == nil || !st.Recording.Audio || st.Cleaner.Files["AUDIO"] != len(wavs) || st.Cleaner.Bytes["AUDIO"] == 0 {
		t.Errorf("spool_stat = %+v %+v, want audio on and the %d WAVs counted", st.Recording, st.Cleaner, len(wavs))
	}
	// The Prometheus endpoint's text.
	addr := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(d.log.String())
	if addr == nil {
		t.Fatalf("no metrics address in the log:\n%s", d.log)
	}
	r, err := http.Get(addr[1])
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, line := range []string{"voipsensor_recording_audio_files_total 0", `voipsensor_recording_audio_dropped_total{reason="codec"} 0`,
		`voipsensor_spool_bytes{type="AUDIO"} ` + strconv.FormatInt(st.Cleaner.Bytes["AUDIO"], 10)} {
		if !strings.Contains(string(m), "\n"+line+"\n") {
			t.Errorf("metrics lack the line %q", line)
		}
	}
}
