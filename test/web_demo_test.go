package test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDemo runs 'voipsensor demo' as a newcomer would and returns the
// console's base URL from its banner ("web  tcp  ADDR"). The demo stops
// at cleanup (SIGTERM, so that it removes its directory), and on its own
// after -duration if the test process dies first.
func startDemo(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(voipsensorBinary(t), "demo", "-duration", "3m")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	web := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() { // the banner, then nothing: read to the end
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "web" && f[1] == "tcp" {
				web <- f[2]
			}
		}
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo's log:\n%s", stderr.String())
		}
	})
	select {
	case addr := <-web:
		return "http://" + addr + "/"
	case <-exited:
		t.Fatalf("demo exited before printing the console's address:\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("no console address in the demo's banner after 15 s:\n%s", stderr.String())
	}
	return ""
}

// TestWebConsoleDemo tours the console over 'voipsensor demo' (the bundled
// calls replayed in real time) with test/web/demo.js, as a newcomer would
// in the demo's first half minute: the calls list, an answered call's page
// with its ladder, the history and an ended call's page, the dashboard,
// the player's list of calls and the registrations. Every view renders,
// states are names (never the sniffer's numbers), the active badge counts
// the rows each filter and a search show, no view scrolls sideways on a
// 390 px phone, and dark mode is dark. Screenshots of every view (1400 px,
// 390 px, dark) go to test/artifacts/web/demo-*.png.
func TestWebConsoleDemo(t *testing.T) {
	needTool(t, "node")
	chromium, shots := browserReady(t)
	start := time.Now()
	base := startDemo(t)
	outb := runBrowser(t, "web/demo.js", base, chromium, shots, "VS_DEADLINE_MS=30000")
	t.Logf("demo and browser: %v", time.Since(start).Round(time.Millisecond))
	type counts struct {
		Badge, Rows int
		Total       string
		States      []string
	}
	var got struct {
		Error      string
		PageErrors []string
		StateAttrs []string
		Filters    map[string]counts
		Search     struct {
			Query string
			counts
		}
		Call struct {
			Title, State string
			Ladder       []string
			Streams      []struct{ Side, Kind, Direction, Carries string }
		}
		RegStates  []string
		RegCount   int
		HistStates []string
		HistCount  string
		HistRows   int
		CDR        struct {
			Title, State string
			Ladder       []string
		}
		DashCharts   int
		PlayerRows   int
		PlayerStates []string
		Shots        []liveShot
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("demo.js output %q: %v", outb, err)
	}
	if got.Error != "" || len(got.PageErrors) > 0 {
		t.Fatalf("browser run failed: %s %v", got.Error, got.PageErrors)
	}
	t.Logf("filters %+v; search %+v", got.Filters, got.Search)

	// Calls: names for states, and the badge counts what is shown.
	live := map[string]bool{"calling": true, "ringing": true, "answered": true}
	for _, st := range append(append(append([]string(nil), got.StateAttrs...), got.Filters["all"].States...), got.PlayerStates...) {
		if !live[st] {
			t.Errorf("call state %q is not calling, ringing or answered", st)
		}
	}
	for f, c := range got.Filters {
		if c.Badge != c.Rows {
			t.Errorf("filter %s: badge %d, %d rows shown", f, c.Badge, c.Rows)
		}
	}
	if c := got.Search; c.Badge != c.Rows {
		t.Errorf("search for %q: badge %d, %d rows shown", c.Query, c.Badge, c.Rows)
	}
	all := got.Filters["all"].Rows
	if all < 2 || got.Filters["answered"].Rows < 1 || got.Filters["answered"].Rows+got.Filters["ringing"].Rows != all {
		t.Errorf("filters %+v: want at least 2 calls, answered and not answered splitting them", got.Filters)
	}
	for f, c := range got.Filters {
		if want := map[bool]string{true: "", false: "of " + strconv.Itoa(all)}[c.Rows == all]; f != "all" && c.Total != want {
			t.Errorf("filter %s shows %d of %d calls, beside the badge %q; want %q", f, c.Rows, all, c.Total, want)
		}
	}
	if got.Search.Rows < 1 || got.Search.Rows > all {
		t.Errorf("search for %q: %d rows of %d", got.Search.Query, got.Search.Rows, all)
	}

	// An answered call's page: its ladder and its two voice streams.
	if got.Call.State != "answered" {
		t.Errorf("call page %q: state %q, want answered", got.Call.Title, got.Call.State)
	}
	if !isSubsequence(got.Call.Ladder, []string{"INVITE", "200 OK", "ACK"}) {
		t.Errorf("call page's ladder %q, want INVITE, 200 OK, ACK in order", got.Call.Ladder)
	}
	sides := map[string]string{}
	for _, s := range got.Call.Streams {
		if s.Kind == "voice" {
			sides[s.Side] = s.Direction
		}
	}
	if sides["caller"] != sideText("caller") || sides["callee"] != sideText("callee") {
		t.Errorf("call page's voice streams %+v, want one each way", got.Call.Streams)
	}

	// Registrations and the history by state name.
	name := regexp.MustCompile(`^[A-Za-z][A-Za-z ]*$`)
	if got.RegCount != len(got.RegStates) || !slices.Contains(got.RegStates, "OK") ||
		!slices.Contains(got.RegStates, "Failed") || !slices.Contains(got.RegStates, "Unregister") {
		t.Errorf("registrations: badge %d, states %q; want OK, Failed and Unregister, one row each", got.RegCount, got.RegStates)
	}
	for _, st := range got.RegStates {
		if !name.MatchString(st) || strings.HasPrefix(st, "state ") {
			t.Errorf("registration state %q is not a name", st)
		}
	}
	if got.HistRows < 1 || len(got.HistStates) != got.HistRows || got.HistCount != strconv.Itoa(got.HistRows) {
		t.Errorf("history: badge %s, %d rows, states %q", got.HistCount, got.HistRows, got.HistStates)
	}
	for _, st := range got.HistStates {
		if !name.MatchString(st) {
			t.Errorf("history state %q is not a name", st)
		}
	}
	if got.CDR.State != "ended" || !isSubsequence(got.CDR.Ladder, []string{"INVITE"}) {
		t.Errorf("ended call's page %q: state %q, ladder %q", got.CDR.Title, got.CDR.State, got.CDR.Ladder)
	}
	if got.DashCharts != 4 || got.PlayerRows < 1 {
		t.Errorf("dashboard draws %d charts (want 4); the player lists %d calls", got.DashCharts, got.PlayerRows)
	}

	checkShots(t, got.Shots, []string{"calls", "call", "registrations", "history", "cdr", "dashboard", "player"})
	for _, sh := range got.Shots {
		if view := regexp.MustCompile(`^#/([a-z]*)`).FindStringSubmatch(sh.Hash); view == nil || view[1] != sh.Name {
			t.Errorf("screenshot %s shows %s", sh.File, sh.Hash)
		}
	}
	t.Logf("screenshots: %s/demo-*.png", shots)
}
