package test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// TestWebConsoleBrowser drives headless chromium through the console with
// playwright-core: calls list, search, call details with the SIP ladder,
// Listen (the tone frequencies must arrive on the right channels),
// registrations, and the ChunkPlayer-compatible page. Screenshots go to
// test/artifacts/web/. It measures capture-to-playback latency.
func TestWebConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		sharedtest.Missing(t, "chromium not installed (scripts/install-deps.sh installs it)")
	}
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		sharedtest.Missing(t, "playwright-core not installed in test/node_modules (scripts/install-deps.sh installs it)")
	}
	base := startConsole(t, 40*time.Second)
	shots, _ := filepath.Abs(filepath.Join("artifacts", "web"))
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "web/console.js")
	cmd.Env = append(os.Environ(), "VS_URL="+base, "VS_CHROMIUM="+chromium,
		"VS_ARTIFACTS="+shots, "VS_PROFILE="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("console.js: %v\n%s", err, stderr.String())
	}
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
			N             int
			Avg, Max, P95 float64
		}
		Stopped       string
		Registrations int
		PlayerUnknown string
		GoertzelM     float64
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("console.js output %q: %v\n%s", outb, err, stderr.String())
	}
	t.Logf("browser: %+v", got)
	if got.Error != "" || len(got.PageErrors) > 0 {
		t.Fatalf("browser run failed: %s %v\n%s", got.Error, got.PageErrors, stderr.String())
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
	if got.Latency.N < 20 || got.Latency.P95 <= 0 || got.Latency.P95 > 300 {
		t.Errorf("capture-to-playback latency: %+v; want at least 20 samples, p95 under 300 ms", got.Latency)
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
