package test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/spool"
)

// TestHistoryBrowser runs test/web/history.js against the two daemons of
// TestHistoryDaemon (the recording run with saveaudio = wav), after
// removing one call's recordings as the cleaner would. It checks the
// search, each row's recordings, the ended call's page, the SIP pcap the
// browser downloads (the spool's file, which tshark reads as the call's
// SIP), the recording (decoded from the WAV the player loads and played
// through the page's Web Audio player: the caller's 400 Hz tone on the
// left, the callee's 1000 Hz on the right) and a live call turning into
// its history page. Screenshots go to test/artifacts/web/history-*.png.
func TestHistoryBrowser(t *testing.T) {
	chromium, shots := browserReady(t)
	base, spoolDir, calls, _ := historyDaemons(t)
	answered, refused := answeredAndRefused(t, calls)
	cleaned := otherCall(t, calls, answered, refused)
	if names := cleanCall(t, base, spoolDir, cleaned.CallID); len(names) == 0 {
		t.Fatalf("%s: no recordings to clean", cleaned.CallID)
	}
	// The search: the call's number pattern, within the minute of its
	// start (datetime-local, in the browser's zone: the test's TZ).
	prefix := answered.Caller[:len(answered.Caller)-3] + "%"
	from := answered.Start.Local().Truncate(time.Minute)
	outb := runBrowser(t, "web/history.js", base, chromium, shots, "VS_NUMBER="+prefix, "VS_CALLID="+answered.CallID, "VS_CLEANED="+cleaned.CallID,
		"VS_FROM="+from.Format("2006-01-02T15:04:05"), "VS_TO="+from.Add(time.Minute).Format("2006-01-02T15:04:05"))
	type view struct {
		Rows       []string
		Count      string
		Width      int
		Title      string
		State      string
		Ladder     []string
		LadderNote string
		ByeText    string
		RowFiles   []string
		Files      []string
		Download   struct {
			Name  string
			Path  string
			Bytes int
			Magic string
		}
	}
	type channel struct {
		PeakHz      float64
		P400, P1000 float64
	}
	type sample struct {
		T, L, R        float64
		LevelL, LevelR float64
	}
	var got struct {
		Error       string
		PageErrors  []string
		Views       map[string]view
		LiveHash    string
		EndedHash   string
		EndedLadder []string
		EndedNote   string
		Cleaned     struct {
			Rows  int
			Files []string
			Text  string
		}
		WAV struct {
			Src      string
			Bytes    int
			Channels int
			Rate     float64
			Seconds  float64
			L, R     channel
		}
		Played struct {
			Samples  []sample
			Duration float64
		}
	}
	if err := json.Unmarshal(bytes.TrimSpace(outb), &got); err != nil {
		t.Fatalf("history.js output %q: %v", outb, err)
	}
	if got.Error != "" || len(got.PageErrors) > 0 {
		t.Fatalf("browser run failed: %s %v", got.Error, got.PageErrors)
	}
	for _, name := range []string{"desktop", "phone"} {
		v := got.Views[name]
		if len(v.Rows) == 0 || !strings.Contains(strings.Join(v.Rows, " "), answered.CallID) || v.Count == "0" {
			t.Errorf("%s: search rows %v (count %s), want %s among them", name, v.Rows, v.Count, answered.CallID)
		}
		if name == "phone" && v.Width > 390 {
			t.Errorf("phone: the history page is %d px wide", v.Width)
		}
		if !strings.Contains(v.State, "ended: answered") || !strings.Contains(v.State, answered.CallID) {
			t.Errorf("%s: call summary %q", name, v.State)
		}
		if len(v.Ladder) < 5 || v.Ladder[0] != "INVITE" || !strings.Contains(strings.Join(v.Ladder, " "), "BYE") || !strings.Contains(v.LadderNote, "SIP pcap") {
			t.Errorf("%s: ladder %q (%s), want INVITE … BYE from the SIP pcap", name, v.Ladder, v.LadderNote)
		}
		if !strings.HasPrefix(v.ByeText, "BYE sip:") || !strings.Contains(v.ByeText, "Call-ID: "+answered.CallID) {
			t.Errorf("%s: BYE text %q", name, v.ByeText)
		}
		if v.Download.Bytes < 100 || (v.Download.Magic != "d4c3b2a1" && v.Download.Magic != "4d3cb2a1") || !strings.HasSuffix(v.Download.Name, ".pcap") {
			t.Errorf("%s: download %+v, files %v", name, v.Download, v.Files)
		}
		if !slices.Equal(v.RowFiles, []string{"pcap", "audio"}) || !slices.Equal(v.Files, []string{"SIP", "RTP", "AUDIO"}) {
			t.Errorf("%s: the row shows recordings %v, the page %v; want pcap and audio, SIP, RTP and AUDIO", name, v.RowFiles, v.Files)
		}
	}
	checkDownloadedPcap(t, got.Views["desktop"].Download.Path, spoolDir, answered.CallID)
	if got.Cleaned.Rows != 1 || !slices.Equal(got.Cleaned.Files, []string{"none"}) || got.Cleaned.Text != "no files" {
		t.Errorf("cleaned call %s: %+v, want one row showing no files", cleaned.CallID, got.Cleaned)
	}

	// The recording: the WAV the player loads is stereo 8 kHz, the
	// caller's tone on the left and the callee's on the right, each
	// direction's tone 20 dB above the other's; played, the page's
	// analysers see the same while both directions sound.
	w := got.WAV
	src, _ := url.Parse(w.Src)
	name := src.Query().Get("name")
	wav, err := os.Stat(filepath.Join(spoolDir, filepath.FromSlash(name)))
	if err != nil || path.Base(name) != spool.BaseName(answered.CallID)+".wav" || path.Base(path.Dir(name)) != "AUDIO" || int64(w.Bytes) != wav.Size() {
		t.Errorf("the player loads %s (%d bytes), want the call's WAV in the spool (%v)", w.Src, w.Bytes, err)
	}
	if w.Channels != 2 || w.Rate != 8000 || w.Seconds < 1 {
		t.Errorf("recording: %+v, want a stereo 8 kHz WAV", w)
	}
	near := func(f, want float64) bool { return math.Abs(f-want) <= 15 }
	if !near(w.L.PeakHz, callerHz) || !near(w.R.PeakHz, calleeHz) || w.L.P400 < 100*w.L.P1000 || w.R.P1000 < 100*w.R.P400 {
		t.Errorf("decoded WAV: left %+v, right %+v; want the caller's %d Hz left, the callee's %d Hz right", w.L, w.R, callerHz, calleeHz)
	}
	var both, right int
	for _, s := range got.Played.Samples {
		if s.LevelL > 0.05 && s.LevelR > 0.05 {
			both++
			if near(s.L, callerHz) && near(s.R, calleeHz) {
				right++
			}
		}
	}
	if both < 10 || right < both*9/10 || got.Played.Duration < 1 {
		t.Errorf("played through the page: %d of %d samples with both directions sounding peak at %d Hz left and %d Hz right (duration %.1f s); samples %+v",
			right, both, callerHz, calleeHz, got.Played.Duration, got.Played.Samples)
	}
	t.Logf("recording: %.1f s, decoded peaks L %.0f Hz R %.0f Hz; played: %d of %d samples right", w.Seconds, w.L.PeakHz, w.R.PeakHz, right, both)
	if !strings.HasPrefix(got.LiveHash, "#/call/") || !strings.HasPrefix(got.EndedHash, "#/cdr/") ||
		!strings.Contains(strings.Join(got.EndedLadder, " "), "BYE") || !strings.Contains(got.EndedNote, "memory") {
		t.Errorf("live call: %s → %s, ladder %q (%s)", got.LiveHash, got.EndedHash, got.EndedLadder, got.EndedNote)
	}
}

// checkDownloadedPcap checks that the pcap the browser downloaded is the
// spool's SIP pcap of callID byte for byte, and that tshark reads it as
// that call's SIP: every message of the call, INVITE to the BYE's 200, and
// nothing of another call.
func checkDownloadedPcap(t *testing.T, file, spoolDir, callID string) {
	t.Helper()
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("downloaded pcap: %v", err)
	}
	var want []byte
	err = filepath.WalkDir(spoolDir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Base(filepath.Dir(p)) == "SIP" && e.Name() == spool.BaseName(callID)+".pcap" {
			want, err = os.ReadFile(p)
		}
		return err
	})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("downloaded pcap: %d bytes, the spool's SIP pcap %d (%v)", len(got), len(want), err)
	}
	var methods []string
	for _, r := range tsharkRows(t, file, "sip.Call-ID", "sip.Method", "sip.Status-Code", "sip.CSeq.method") {
		if r[0] != callID {
			t.Errorf("tshark: a frame of call %q in %s's pcap", r[0], callID)
		}
		methods = append(methods, r[1]+r[2]+"/"+r[3])
	}
	if len(methods) < 5 || methods[0] != "INVITE/INVITE" || !slices.Contains(methods, "BYE/BYE") || methods[len(methods)-1] != "200/BYE" {
		t.Errorf("tshark reads the downloaded pcap as %v, want INVITE … BYE, 200", methods)
	}
}
