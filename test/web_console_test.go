package test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// The generator's tone payload: 400 Hz from the caller, 1000 Hz from the
// callee (internal/gen/signal.go clips), at -10 dBFS.
const (
	callerHz = 400
	calleeHz = 1000
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startConsole replays a generated tone capture in real time, stamped
// with the current time, and returns the console's base URL.
func startConsole(t *testing.T, talk time.Duration) string {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.CPS = 2, 2, 0 // the second call starts a few seconds in
	cfg.TalkTime = talk
	cfg.Registrations = 3
	cfg.Start = time.Now()
	var pcap bytes.Buffer
	if _, err := gen.Generate(cfg, &pcap, nilWriter{}); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "tone.pcap")
	if err := os.WriteFile(name, pcap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	startDaemon(t, "-r", name, "--realtime", "-set", "web_port="+strconv.Itoa(port))
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/"
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// browserReady skips a browser test without chromium or playwright-core
// and returns the browser binary and the screenshot directory:
// test/artifacts/web/, which git ignores (/test/artifacts/ in .gitignore)
// and CI keeps as the run's artefacts.
func browserReady(t *testing.T) (chromium, shots string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		sharedtest.Missing(t, "chromium not installed (scripts/install-deps.sh installs it)")
	}
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		sharedtest.Missing(t, "playwright-core not installed in test/node_modules (scripts/install-deps.sh installs it)")
	}
	shots, _ = filepath.Abs(filepath.Join("artifacts", "web"))
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return chromium, shots
}

// runBrowser runs a test/web script with the console at base and returns
// its one line of JSON output.
func runBrowser(t *testing.T, script, base, chromium, shots string, env ...string) []byte {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Env = append(append(os.Environ(), "VS_URL="+base, "VS_CHROMIUM="+chromium,
		"VS_ARTIFACTS="+shots, "VS_PROFILE="+t.TempDir()), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	t.Logf("%s:\n%s", script, stderr.String())
	return outb
}

// TestWebConsoleBrowser drives headless chromium through the console with
// playwright-core: calls list, search, call details with the SIP ladder,
// Listen (the tone frequencies must arrive on the right channels),
// registrations, and the player (an unknown reference typed by hand, then
// a call picked from the list). Screenshots go to test/artifacts/web/. It
// measures capture-to-playback latency.
func TestWebConsoleBrowser(t *testing.T) {
	chromium, shots := browserReady(t)
	base := startConsole(t, 40*time.Second)
	outb := runBrowser(t, "web/console.js", base, chromium, shots)
	var got struct {
		Error      string
		PageErrors []string
		Calls      []string
		SearchRows int
		SearchNone int
		Ref        string
		Ladder     []string
		Streams    int
		GoertzelL  float64
		GoertzelR  float64
		AnalyserL  float64
		AnalyserR  float64
		Latency    struct {
			N                  int
			Avg, Max, P50, P95 float64
		}
		Stopped       string
		Registrations int
		PlayerUnknown string
		GoertzelM     float64
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("console.js output %q: %v", outb, err)
	}
	t.Logf("browser: %+v", got)
	if got.Error != "" || len(got.PageErrors) > 0 {
		t.Fatalf("browser run failed: %s %v", got.Error, got.PageErrors)
	}
	if len(got.Calls) < 1 {
		t.Errorf("calls list shows no rows")
	}
	if got.SearchRows != 1 || got.SearchNone != 0 {
		t.Errorf("search by caller left %d rows, nonsense search %d; want 1 and 0", got.SearchRows, got.SearchNone)
	}
	if want := []string{"INVITE", "100 Trying", "180 Ringing", "200 OK", "ACK"}; !equalPrefix(got.Ladder, want) {
		t.Errorf("ladder labels = %q, want to start with %q", got.Ladder, want)
	}
	if got.Streams != 2 {
		t.Errorf("streams table has %d rows, want 2", got.Streams)
	}
	near := func(f, want float64) bool { return math.Abs(f-want) <= 15 }
	if !near(got.GoertzelL, callerHz) || !near(got.GoertzelR, calleeHz) {
		t.Errorf("received PCM peaks at L %.0f Hz, R %.0f Hz; want caller %d Hz left, callee %d Hz right", got.GoertzelL, got.GoertzelR, callerHz, calleeHz)
	}
	if !near(got.AnalyserL, callerHz) || !near(got.AnalyserR, calleeHz) {
		t.Errorf("Web Audio analysers peak at L %.0f Hz, R %.0f Hz; want %d and %d", got.AnalyserL, got.AnalyserR, callerHz, calleeHz)
	}
	// Capture to playback: by design about 140 ms (the 20 ms poll, the
	// player's 60 ms cushion, the audio output's own latency), measured
	// here and logged. A speed figure is not asserted in a test (a busy
	// 2-core runner stalls the browser for a second now and then: p95
	// 1,185 ms with p50 284 ms was seen in CI13); what is asserted is that
	// playback followed the call, sample after sample, and that the player
	// keeps up: half the samples within 5 s, which a player that let its
	// backlog grow would miss.
	t.Logf("capture-to-playback latency: %+v", got.Latency)
	if got.Latency.N < 20 || got.Latency.P50 <= 0 || got.Latency.P50 > 5000 {
		t.Errorf("capture-to-playback latency: %+v; want at least 20 samples, p50 within 5 s", got.Latency)
	}
	if got.Stopped != "stopped" {
		t.Errorf("after Stop the status reads %q", got.Stopped)
	}
	if got.Registrations < 1 {
		t.Errorf("registrations page shows %d rows", got.Registrations)
	}
	if got.PlayerUnknown != "call not found" {
		t.Errorf("player with an unknown callref says %q, want %q", got.PlayerUnknown, "call not found")
	}
	if !near(got.GoertzelM, callerHz) && !near(got.GoertzelM, calleeHz) {
		t.Errorf("player's mixed PCM peaks at %.0f Hz, want %d or %d", got.GoertzelM, callerHz, calleeHz)
	}
}

// TestWebConsoleQuality replays the console scenario (two UAs on one host
// in a lossy call with DTMF, comfort noise and video; a clean call; a call
// left ringing; registrations; console_scenario_test.go) in real time and
// drives the console with test/web/quality.js. It checks what the issue
// found wrong: the MOS shown live is the CDR's (within 0.1 after the
// call), no MOS is shown before RTP nor before a 10 s interval closed,
// stream directions follow the SDP's ports, the DTMF and video streams are
// labelled, states are names, dates carry the date and the zone, the
// badge counts what a filter shows, and no view overflows a 390 px
// phone. Screenshots of every view (desktop, phone, dark) go to
// test/artifacts/web/quality-*.png.
func TestWebConsoleQuality(t *testing.T) {
	chromium, shots := browserReady(t)
	name := filepath.Join(t.TempDir(), "scenario.pcap")
	if err := os.WriteFile(name, scenarioPcap(consoleScenario(), time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	d := startDaemon(t, "-r", name, "--realtime", "-set", "web_port="+strconv.Itoa(port))
	base := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	outb := runBrowser(t, "web/quality.js", base, chromium, shots, "VS_CALLID="+scenarioCallA, "VS_DEADLINE_MS=60000")
	type sample struct {
		T                 int64
		State, MOSA, MOSB string
		MOSAV, MOSBV      *float64
		LossA, LossB      string
	}
	var got struct {
		Error, Ref string
		PageErrors []string
		Filters    map[string]struct {
			Badge, Rows int
			Total       string
			States      []string
		}
		CallStates    []string
		StartedCells  []string
		StartedHeader string
		Seen          []sample
		Streams       []struct{ Side, Kind, Src, Direction, Carries, MOS string }
		ChartLines    int
		RegStates     []string
		SinceCells    []string
		DashCharts    int
		PlayerRows    int
		PlayerStatus  string
		Shots         []struct {
			Name, Mode, File, Bg string
			Overflow             int
		}
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("quality.js output %q: %v", outb, err)
	}
	if got.Error != "" || len(got.PageErrors) > 0 {
		t.Fatalf("browser run failed: %s %v", got.Error, got.PageErrors)
	}

	// The badge counts the rows each filter shows; answered and not
	// answered split all calls.
	for f, v := range got.Filters {
		if v.Badge != v.Rows {
			t.Errorf("filter %s: badge %d, %d rows shown", f, v.Badge, v.Rows)
		}
	}
	if f := got.Filters; f["all"].Rows < 3 || f["answered"].Rows+f["ringing"].Rows != f["all"].Rows || f["answered"].Total == "" {
		t.Errorf("filters: %+v; want answered and not answered to split at least 3 calls, with the total beside a filtered badge", f)
	}
	names := map[string]bool{"calling": true, "ringing": true, "answered": true}
	for _, st := range got.CallStates {
		if !names[st] {
			t.Errorf("call state %q is not calling, ringing or answered", st)
		}
	}
	for _, st := range got.RegStates {
		if !map[string]bool{"OK": true, "Failed": true, "Unregister": true}[st] {
			t.Errorf("registration state %q is not a name", st)
		}
	}
	if !slices.Contains(got.RegStates, "OK") || !slices.Contains(got.RegStates, "Failed") || !slices.Contains(got.RegStates, "Unregister") {
		t.Errorf("registration states %q; want OK, Failed and Unregister", got.RegStates)
	}
	date := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	for _, c := range append(slices.Clone(got.StartedCells), got.SinceCells...) {
		if !date.MatchString(c) {
			t.Errorf("date cell %q, want YYYY-MM-DD HH:MM:SS", c)
		}
	}
	if !regexp.MustCompile(`^Started \(UTC([+−]\d\d:\d\d)?\)$`).MatchString(got.StartedHeader) {
		t.Errorf("Started header %q does not name the zone", got.StartedHeader)
	}

	// What the watcher saw of call A: no MOS without RTP in that
	// direction, none within 8.5 s of the first RTP (no interval closed
	// yet), a MOS once intervals closed.
	if len(got.Seen) < 10 {
		t.Fatalf("watcher saw call A %d times", len(got.Seen))
	}
	var firstRTP int64
	ringing := 0
	for _, s := range got.Seen {
		if s.State != "answered" {
			ringing++
		}
		if firstRTP == 0 && (s.LossA != "–" || s.LossB != "–") {
			firstRTP = s.T
		}
		noRTP := s.LossA == "–" && s.LossB == "–"
		early := firstRTP == 0 || s.T < firstRTP+8500
		if (noRTP || early || s.State != "answered") && (s.MOSA != "–" || s.MOSB != "–") {
			t.Errorf("call A shows MOS %q/%q (state %s, loss %q/%q) %d ms after its first RTP", s.MOSA, s.MOSB, s.State, s.LossA, s.LossB, s.T-firstRTP)
		}
	}
	last := got.Seen[len(got.Seen)-1]
	t.Logf("call A: %d samples, %d before the answer; last MOS %s/%s, loss %s/%s", len(got.Seen), ringing, last.MOSA, last.MOSB, last.LossA, last.LossB)
	if ringing == 0 {
		t.Errorf("the watcher never saw call A ringing (browser too late to check the MOS before RTP)")
	}
	if last.MOSAV == nil || last.MOSBV == nil {
		t.Fatalf("call A's last MOS shown: %q/%q, want figures", last.MOSA, last.MOSB)
	}

	// After the call its CDR holds the MOS the console showed last, and
	// its a_/b_ streams are the voice streams from the caller's and the
	// callee's ports.
	var a, b, aport, bport sql.NullInt64
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("sqlite", d.sqliteDB())
		if err != nil {
			t.Fatal(err)
		}
		err = db.QueryRow("SELECT a_mos_f1_mult10, b_mos_f1_mult10, a_sport, b_sport FROM cdr WHERE callid = ?", scenarioCallA).Scan(&a, &b, &aport, &bport)
		db.Close()
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("call A's CDR: %v", err)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("call A's CDR: MOS f1 %v/%v, a_sport %v, b_sport %v", a, b, aport, bport)
	if math.Abs(float64(a.Int64)/10-*last.MOSAV) > 0.1 || math.Abs(float64(b.Int64)/10-*last.MOSBV) > 0.1 {
		t.Errorf("live MOS %v/%v, CDR %v/%v: want equal within 0.1", *last.MOSAV, *last.MOSBV, float64(a.Int64)/10, float64(b.Int64)/10)
	}
	if *last.MOSBV >= *last.MOSAV || *last.MOSBV > 4.2 {
		t.Errorf("live MOS caller→called %v, called→caller %v: want the 4 %%-loss direction clearly worse", *last.MOSAV, *last.MOSBV)
	}
	if aport.Int64 != 16000 || bport.Int64 != 16002 {
		t.Errorf("CDR streams from ports %v and %v, want 16000 (caller's voice) and 16002 (callee's voice)", aport, bport)
	}

	// Call A's streams on its page.
	kinds := map[string]int{}
	for _, s := range got.Streams {
		kinds[s.Kind]++
		if want := scenarioSides[s.Src]; s.Side != want {
			t.Errorf("stream from %s (%s): side %q, want %q", s.Src, s.Kind, s.Side, want)
		}
		if wantDir := map[string]string{"caller": "caller → called", "callee": "called → caller"}[s.Side]; s.Direction != wantDir {
			t.Errorf("stream from %s: direction %q, want %q", s.Src, s.Direction, wantDir)
		}
		switch s.Kind {
		case "dtmf":
			if s.Carries != "DTMF (RFC 2833)" || s.MOS != "–" {
				t.Errorf("DTMF stream labelled %q with MOS %q", s.Carries, s.MOS)
			}
		case "video":
			if s.Carries != "video" || s.MOS != "–" {
				t.Errorf("video stream labelled %q with MOS %q", s.Carries, s.MOS)
			}
		case "voice":
			if !strings.HasPrefix(s.Carries, "PCMU") || s.MOS == "–" {
				t.Errorf("voice stream from %s: %q, MOS %q", s.Src, s.Carries, s.MOS)
			}
		}
	}
	if kinds["voice"] != 2 || kinds["dtmf"] != 1 || kinds["video"] != 1 {
		t.Errorf("call A's streams by kind: %v, want 2 voice, 1 dtmf, 1 video", kinds)
	}
	if !slices.ContainsFunc(got.Streams, func(s struct{ Side, Kind, Src, Direction, Carries, MOS string }) bool {
		return s.Kind == "voice" && s.Side == "caller" && strings.Contains(s.Carries, "CN")
	}) {
		t.Errorf("the caller's voice stream does not mention its comfort noise: %+v", got.Streams)
	}
	if got.ChartLines != 6 || got.DashCharts != 4 {
		t.Errorf("quality charts draw %d lines (want MOS, loss and jitter for 2 streams: 6); dashboard %d charts (want 4)", got.ChartLines, got.DashCharts)
	}
	if got.PlayerRows < 2 || !strings.HasPrefix(got.PlayerStatus, "playing ") {
		t.Errorf("player: %d calls to pick, status %q", got.PlayerRows, got.PlayerStatus)
	}

	// Every view at three sizes; a phone never scrolls sideways; dark mode
	// is dark.
	views := map[string]int{}
	for _, sh := range got.Shots {
		views[sh.Name]++
		if sh.Mode == "phone" && sh.Overflow > 0 {
			t.Errorf("%s on a 390 px phone is %d px too wide (%s)", sh.Name, sh.Overflow, sh.File)
		}
		if dark := luminance(sh.Bg) < 0.2; dark != (sh.Mode == "dark") {
			t.Errorf("%s %s: background %s", sh.Name, sh.Mode, sh.Bg)
		}
	}
	for _, v := range []string{"calls", "call", "registrations", "dashboard", "player"} {
		if views[v] != 3 {
			t.Errorf("%d screenshots of %s, want 3", views[v], v)
		}
	}
	t.Logf("screenshots: %s/quality-*.png", shots)
}

// luminance is the relative luminance (0–1) of a CSS rgb() colour.
func luminance(css string) float64 {
	var r, g, b float64
	if _, err := fmt.Sscanf(css, "rgb(%g, %g, %g)", &r, &g, &b); err != nil {
		return -1
	}
	return (0.2126*r + 0.7152*g + 0.0722*b) / 255
}

func equalPrefix(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestWebConsoleHTTP checks the console's API without a browser: listen
// streams framed stereo PCM, unknown calls give clear errors, the
// ChunkPlayer API speaks the manager replies, assets are embedded, and
// many concurrent listeners on one call leave the capture unharmed.
func TestWebConsoleHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the daemon")
	}
	base := startConsole(t, 30*time.Second)
	getJSON := func(path string, v any) int {
		t.Helper()
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		json.NewDecoder(r.Body).Decode(v)
		return r.StatusCode
	}
	var calls struct{ Rows []map[string]any }
	deadline := time.Now().Add(10 * time.Second)
	// Wait for a call whose RTP flows (the call is listed from its INVITE).
	for (len(calls.Rows) < 1 || calls.Rows[0]["src_received"] == nil || calls.Rows[0]["src_received"].(float64) < 10) && time.Now().Before(deadline) {
		getJSON("api/calls", &calls)
		time.Sleep(200 * time.Millisecond)
	}
	if len(calls.Rows) < 1 {
		t.Fatalf("api/calls: no rows")
	}
	ref := calls.Rows[0]["callreference"].(string)

	var e struct{ Error string }
	if code := getJSON("api/call?ref=0xdeadbeef", &e); code != 404 || !strings.Contains(e.Error, "no such entry") {
		t.Errorf("unknown call: %d %q", code, e.Error)
	}
	if code := getJSON("api/listen?ref=0xdeadbeef", &e); code != 404 || e.Error != "call not found" {
		t.Errorf("listen to unknown call: %d %q", code, e.Error)
	}
	for _, pw := range [][2]string{
		{"api/chunk/read?callref=0xdeadbeef&id=x", "error: call not found"},
		{"api/chunk/read?callref=" + ref + "&id=x", "error: worker not found"},
		{"api/chunk/listen?callref=" + ref + "&id=x", "success"},
		{"api/chunk/listen?callref=" + ref + "&id=y", "call already listening"},
		{"api/chunk/read?callref=" + ref + "&id=z", "error: client of worker not found"},
		{"api/chunk/listen?callref=" + ref + "&id=x&sensor_id=1", "call already listening"}, // id_sensor unset: any id
	} {
		path, want := pw[0], pw[1]
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(r.Body)
		r.Body.Close()
		if b.String() != want {
			t.Errorf("%s = %q, want %q", path, b.String(), want)
		}
	}

	// 300 listeners that never read: the sensor keeps capturing, memory
	// stays bounded, and the stats count the drops.
	for i := 0; i < 300; i++ {
		r, err := http.Get(base + "api/chunk/listen?callref=" + ref + "&id=slow" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body) // the connection goes back to the pool
		r.Body.Close()
	}
	// A stereo stream: chunks of [u32 frames][i64 send time][frames].
	r, err := http.Get(base + "api/listen?ref=" + ref)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 8192)
	start := time.Now()
	end := start.Add(2 * time.Second)
	for time.Now().Before(end) {
		n, err := r.Body.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	r.Body.Close()
	frames := 0
	for len(buf) >= 12 {
		nf := int(uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24)
		size := 12 + nf*(8+640)
		if len(buf) < size {
			break
		}
		frames += nf
		buf = buf[size:]
	}
	elapsed := time.Since(start)
	t.Logf("stream: %d frames of 20 ms in %v", frames, elapsed)
	if want := int(elapsed / (20 * time.Millisecond)); frames < want*6/10 {
		t.Errorf("stream delivered %d frames in %v, want about %d", frames, elapsed, want)
	}
	var st map[string]float64
	time.Sleep(1500 * time.Millisecond)
	getJSON("api/stat", &st)
	t.Logf("listen_stat after 300 idle listeners: %v", st)
	if st["listeners"] < 300 {
		t.Errorf("listeners = %v, want >= 300", st["listeners"])
	}
	// The capture still keeps up: the calls are still there and their
	// packet counters still grow.
	var before, after struct{ Rows []map[string]any }
	getJSON("api/calls", &before)
	time.Sleep(time.Second)
	getJSON("api/calls", &after)
	if len(after.Rows) < 1 || after.Rows[0]["src_received"].(float64) <= before.Rows[0]["src_received"].(float64) {
		t.Errorf("capture stalled with 300 listeners: before %v after %v", before.Rows[0]["src_received"], after.Rows[0]["src_received"])
	}

	// Embedded assets, no CDN.
	for _, p := range []string{"", "app.js", "style.css"} {
		r, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || regexp.MustCompile(`https?://(?:[a-z0-9-]+\.)+[a-z]{2,}/`).MatchString(strings.ReplaceAll(b.String(), "http://www.w3.org/2000/svg", "")) {
			t.Errorf("GET /%s: %d, or it references an external URL", p, r.StatusCode)
		}
	}
}
