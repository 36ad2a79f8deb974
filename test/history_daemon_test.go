package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// This file checks the history of ended calls end to end (issue 16, items
// 2, 4 and 5): a first daemon reads a generated capture at full speed with
// savesip, savertp and saveaudio, leaving CDRs in SQLite and SIP and RTP
// pcaps and WAVs in its spool; a second daemon on the same spool serves
// the console while it replays other calls in real time. Through the
// console's API, the first daemon's calls are found by number patterns and
// state, each row saying which of its recordings the spool still holds,
// and an ended call's page data (its CDR, its whole ladder with the BYE's
// text, read back from its SIP pcap; its recordings) is served; one of the
// second daemon's calls, once ended, turns from its live reference into
// its history page, its ladder from memory.

// histCall is the part of cdr_search's and cdr_detail's JSON the test
// reads.
type histCall struct {
	ID       int64    `json:"id"`
	CallID   string   `json:"callid"`
	Caller   string   `json:"caller"`
	Called   string   `json:"called"`
	State    string   `json:"state"`
	Answered bool     `json:"answered"`
	Code     int      `json:"lastSIPresponseNum"`
	MOS      *float64 `json:"mos"`
	// Files is cdr_search's: which recordings the spool still holds.
	Files *histFiles `json:"files"`
}

type histFiles struct {
	SIP   bool `json:"sip"`
	RTP   bool `json:"rtp"`
	Audio bool `json:"audio"`
}

type histDetail struct {
	CallID  string    `json:"callid"`
	CDR     *histCall `json:"cdr"`
	Pending bool      `json:"pending"`
	Streams []struct {
		Side     string `json:"side"`
		Received int64  `json:"received"`
	} `json:"streams"`
	Ladder *struct {
		Source   string `json:"source"`
		Messages []struct {
			Line string `json:"line"`
			Raw  string `json:"raw"`
			Size int    `json:"size"`
		} `json:"messages"`
	} `json:"ladder"`
	Files []struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"files"`
}

// histGet fetches base+path and decodes its JSON into v; it returns the
// status code.
func histGet(t *testing.T, base, path string, v any) int {
	t.Helper()
	r, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if v != nil && r.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, b)
		}
	}
	return r.StatusCode
}

// every runs cond at most every 100 ms for sharedtest.Eventually: each
// try is an HTTP request.
func every(cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < 100*time.Millisecond {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// checkLadderBYE checks that a call's ladder starts with its INVITE and
// holds its BYE with the whole text: headers naming the call.
func checkLadderBYE(t *testing.T, d *histDetail, source string) {
	t.Helper()
	if d.Ladder == nil || d.Ladder.Source != source || len(d.Ladder.Messages) < 4 {
		t.Fatalf("%s: ladder %+v, want one from %s", d.CallID, d.Ladder, source)
	}
	if first := d.Ladder.Messages[0].Line; !strings.HasPrefix(first, "INVITE ") {
		t.Errorf("%s: the ladder starts with %q", d.CallID, first)
	}
	i := slices.IndexFunc(d.Ladder.Messages, func(m struct {
		Line string `json:"line"`
		Raw  string `json:"raw"`
		Size int    `json:"size"`
	}) bool {
		return strings.HasPrefix(m.Line, "BYE ")
	})
	if i < 0 {
		t.Fatalf("%s: no BYE among %d messages", d.CallID, len(d.Ladder.Messages))
	}
	bye := d.Ladder.Messages[i]
	if len(bye.Raw) != bye.Size || !strings.HasPrefix(bye.Raw, bye.Line+"\r\n") || !strings.Contains(bye.Raw, "Call-ID: "+d.CallID+"\r\n") ||
		!strings.Contains(bye.Raw, " BYE\r\n") {
		t.Errorf("%s: BYE text (%d of %d bytes):\n%s", d.CallID, len(bye.Raw), bye.Size, bye.Raw)
	}
	if i+1 >= len(d.Ladder.Messages) || !strings.HasPrefix(d.Ladder.Messages[i+1].Line, "SIP/2.0 200") {
		t.Errorf("%s: no 200 after the BYE", d.CallID)
	}
}

// searchFiles returns the files flags of the one row cdr_search finds
// for callID.
func searchFiles(t *testing.T, base, callID string) *histFiles {
	t.Helper()
	var res struct{ Calls []histCall }
	if code := histGet(t, base, "api/cdr?callid="+url.QueryEscape(callID), &res); code != http.StatusOK || len(res.Calls) != 1 {
		t.Fatalf("api/cdr?callid=%s: status %d, %d rows", callID, code, len(res.Calls))
	}
	return res.Calls[0].Files
}

// cleanCall removes the recordings of callID from the spool, as the
// cleaner does, and returns their names.
func cleanCall(t *testing.T, base, spoolDir, callID string) []string {
	t.Helper()
	var d histDetail
	if code := histGet(t, base, "api/cdr/detail?callid="+url.QueryEscape(callID), &d); code != http.StatusOK {
		t.Fatalf("detail of %s: status %d", callID, code)
	}
	var names []string
	for _, f := range d.Files {
		if err := os.Remove(filepath.Join(spoolDir, filepath.FromSlash(f.Name))); err != nil {
			t.Fatal(err)
		}
		names = append(names, f.Name)
	}
	return names
}

// otherCall is the last call of calls that is none of these.
func otherCall(t *testing.T, calls []genCall, not ...*genCall) *genCall {
	t.Helper()
	for i := len(calls) - 1; i >= 0; i-- {
		if !slices.ContainsFunc(not, func(c *genCall) bool { return c.CallID == calls[i].CallID }) {
			return &calls[i]
		}
	}
	t.Fatal("no other call in the capture")
	return nil
}

// historyDaemons runs the recording daemon to its end, then starts the
// console's daemon on the same spool, and returns the console's URL, the
// spool and the two captures' calls (the keep-alive one's first call is
// answered and ends at least 15 s before the capture).
func historyDaemons(t *testing.T) (base, spoolDir string, calls, keepCalls []genCall) {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 10, 3, 2*time.Second
	cfg.Failed, cfg.Cancelled, cfg.Seed = 0.25, 0.15, 11
	pcap, calls := generateCapture(t, cfg)
	rec := newDaemon(t, "-r", pcap, "-set", "savesip=yes", "-set", "savertp=yes", "-set", "saveaudio=wav")
	if code := rec.run(60 * time.Second); code != 0 {
		t.Fatalf("recording run: exit code %d\n%s", code, rec.log)
	}

	// Calls replayed in real time keep the console's daemon up: the first
	// ends after about 3 s, the last well after its CDR is stored (the
	// seed decides; checked here).
	keepCfg := gen.DefaultConfig()
	keepCfg.Calls, keepCfg.CPS, keepCfg.TalkTime, keepCfg.Seed = 4, 0.1, 2*time.Second, 5
	keepCfg.Start = time.Now()
	keep, keepCalls := generateCapture(t, keepCfg)
	if gap := keepCalls[len(keepCalls)-1].End.Sub(keepCalls[0].End); gap < 15*time.Second || keepCalls[0].State != "answered" {
		t.Fatalf("the keep-alive capture's first call is %s and the last ends %v after it; want answered and ≥ 15 s", keepCalls[0].State, gap)
	}
	port := freePort(t)
	startDaemon(t, "-r", keep, "--realtime", "-set", "spooldir="+rec.spool, "-set", "web_port="+strconv.Itoa(port))
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/", rec.spool, calls, keepCalls
}

// answeredAndRefused picks the first answered call and the first refused
// one (a final error other than 487) of calls.
func answeredAndRefused(t *testing.T, calls []genCall) (answered, refused *genCall) {
	t.Helper()
	for i := range calls {
		switch {
		case answered == nil && calls[i].State == "answered":
			answered = &calls[i]
		case refused == nil && calls[i].LastCode >= 400 && calls[i].LastCode != 487:
			refused = &calls[i]
		}
	}
	if answered == nil || refused == nil {
		t.Fatalf("the capture lacks an answered or a refused call: %+v", calls)
	}
	return answered, refused
}

func TestHistoryDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the daemon twice")
	}
	base, spoolDir, calls, keepCalls := historyDaemons(t)
	answered, refused := answeredAndRefused(t, calls)

	t.Run("search", func(t *testing.T) {
		search := func(q url.Values) (total int, ids []string) {
			t.Helper()
			var res struct {
				Total int        `json:"total"`
				Calls []histCall `json:"calls"`
			}
			if code := histGet(t, base, "api/cdr?"+q.Encode(), &res); code != http.StatusOK {
				t.Fatalf("api/cdr?%s: status %d", q.Encode(), code)
			}
			for _, c := range res.Calls {
				ids = append(ids, c.CallID)
			}
			slices.Sort(ids)
			return res.Total, ids
		}
		want := func(f func(c *genCall) bool) []string {
			var ids []string
			for i := range calls {
				if f(&calls[i]) {
					ids = append(ids, calls[i].CallID)
				}
			}
			slices.Sort(ids)
			return ids
		}
		prefix := answered.Caller[:len(answered.Caller)-3]
		for _, tt := range []struct {
			name string
			q    url.Values
			want []string
		}{
			{"number prefix", url.Values{"number": {prefix + "%"}}, want(func(c *genCall) bool {
				return strings.HasPrefix(c.Caller, prefix) || strings.HasPrefix(c.Called, prefix)
			})},
			{"caller one character", url.Values{"caller": {answered.Caller[:len(answered.Caller)-1] + "_"}}, want(func(c *genCall) bool {
				return len(c.Caller) == len(answered.Caller) && c.Caller[:len(c.Caller)-1] == answered.Caller[:len(answered.Caller)-1]
			})},
			{"called suffix", url.Values{"called": {"%" + answered.Called[2:]}}, want(func(c *genCall) bool { return strings.HasSuffix(c.Called, answered.Called[2:]) })},
			{"answered", url.Values{"state": {"answered"}, "limit": {"100"}}, want(func(c *genCall) bool { return c.State == "answered" })},
			{"refused code", url.Values{"code": {strconv.Itoa(refused.LastCode)}}, want(func(c *genCall) bool { return c.LastCode == refused.LastCode })},
			{"date range", url.Values{"from": {answered.Start.Format(time.RFC3339)}, "to": {answered.Start.Add(time.Second).Format(time.RFC3339)}},
				want(func(c *genCall) bool {
					return !c.Start.Before(answered.Start.Truncate(time.Second)) && c.Start.Before(answered.Start.Truncate(time.Second).Add(time.Second))
				})},
		} {
			total, ids := search(tt.q)
			if !slices.Equal(ids, tt.want) || total != len(tt.want) {
				t.Errorf("%s (%s): total %d, %v; want %v", tt.name, tt.q.Encode(), total, ids, tt.want)
			}
			if !slices.Contains(tt.want, answered.CallID) && tt.name != "refused code" {
				t.Errorf("%s: the query does not find the call it is about", tt.name)
			}
		}
		// A page of two, sorted by caller; the next page follows it.
		var p1, p2 struct{ Calls []histCall }
		histGet(t, base, "api/cdr?sort=caller&dir=asc&limit=2", &p1)
		histGet(t, base, "api/cdr?sort=caller&dir=asc&limit=2&offset=2", &p2)
		if len(p1.Calls) != 2 || len(p2.Calls) != 2 || p1.Calls[1].Caller > p2.Calls[0].Caller {
			t.Errorf("pages by caller: %+v then %+v", p1.Calls, p2.Calls)
		}
		for _, bad := range []string{"api/cdr?limit=100000", "api/cdr?from=2026-02-01&to=2026-01-01", "api/cdr?state=ringing", "api/cdr?ip=nowhere"} {
			if code := histGet(t, base, bad, nil); code != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", bad, code)
			}
		}
	})

	// Each row says which recordings the spool still holds: the answered
	// call all three, the refused one its SIP pcap; a call whose files the
	// cleaner removed none (and it keeps its CDR and its page).
	t.Run("files per row", func(t *testing.T) {
		if f := searchFiles(t, base, answered.CallID); f == nil || *f != (histFiles{SIP: true, RTP: true, Audio: true}) {
			t.Errorf("answered call: files %+v, want SIP, RTP and audio", f)
		}
		if f := searchFiles(t, base, refused.CallID); f == nil || !f.SIP || f.Audio {
			t.Errorf("refused call: files %+v, want its SIP pcap and no audio", f)
		}
		other := otherCall(t, calls, answered, refused)
		if f := searchFiles(t, base, other.CallID); f == nil || !f.SIP {
			t.Fatalf("%s before cleaning: files %+v", other.CallID, f)
		}
		if names := cleanCall(t, base, spoolDir, other.CallID); len(names) == 0 {
			t.Fatalf("%s: no files to clean", other.CallID)
		}
		if f := searchFiles(t, base, other.CallID); f == nil || *f != (histFiles{}) {
			t.Errorf("%s after cleaning: files %+v, want none", other.CallID, f)
		}
		var d histDetail
		if code := histGet(t, base, "api/cdr/detail?callid="+url.QueryEscape(other.CallID), &d); code != http.StatusOK || d.CDR == nil || len(d.Files) != 0 {
			t.Errorf("cleaned call's page: status %d, cdr %+v, files %+v", code, d.CDR, d.Files)
		}
		// A page's rows all carry the flags.
		var page struct{ Calls []histCall }
		histGet(t, base, "api/cdr?limit=100", &page)
		for _, c := range page.Calls {
			if c.Files == nil {
				t.Errorf("%s: files null", c.CallID)
			}
		}
	})

	t.Run("stored call from the spool", func(t *testing.T) {
		var d histDetail
		if code := histGet(t, base, "api/cdr/detail?callid="+url.QueryEscape(answered.CallID), &d); code != http.StatusOK {
			t.Fatalf("detail: status %d", code)
		}
		if d.CDR == nil || d.Pending || d.CDR.State != "answered" || d.CDR.Code != 200 || d.CDR.Caller != answered.Caller || d.CDR.MOS == nil {
			t.Errorf("cdr = %+v, pending %v", d.CDR, d.Pending)
		}
		if len(d.Streams) != 2 || d.Streams[0].Received == 0 {
			t.Errorf("streams = %+v", d.Streams)
		}
		checkLadderBYE(t, &d, "spool")
		types := map[string]string{}
		for _, f := range d.Files {
			types[f.Type] = f.Name
		}
		if types["SIP"] == "" || types["RTP"] == "" {
			t.Fatalf("files = %+v, want the SIP and RTP pcaps", d.Files)
		}
		// The download is the spool's file, byte for byte.
		r, err := http.Get(base + "api/file?download=1&name=" + url.QueryEscape(types["SIP"]))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r.Body)
		r.Body.Close()
		disk, err := os.ReadFile(filepath.Join(spoolDir, filepath.FromSlash(types["SIP"])))
		if err != nil || r.StatusCode != 200 || !bytes.Equal(got, disk) || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("download: status %d, %d bytes, disk %d bytes (%v), %v", r.StatusCode, len(got), len(disk), err, r.Header)
		}
		// Also by the row's id from the search, and the refused call.
		if code := histGet(t, base, "api/cdr/detail?id="+strconv.FormatInt(d.CDR.ID, 10), &d); code != 200 || d.CallID != answered.CallID {
			t.Errorf("detail by id %d: %d %s", d.CDR.ID, code, d.CallID)
		}
		var f histDetail
		histGet(t, base, "api/cdr/detail?callid="+url.QueryEscape(refused.CallID), &f)
		if f.CDR == nil || f.CDR.Answered || f.CDR.Code != refused.LastCode || len(f.Streams) != 0 || f.Ladder == nil {
			t.Errorf("refused call: %+v", f)
		}
		for path, want := range map[string]int{
			"api/cdr/detail?callid=nobody%40nowhere":                                                        http.StatusNotFound,
			"api/file?name=" + url.QueryEscape("../../../etc/passwd.pcap"):                                  http.StatusForbidden,
			"api/file?name=" + url.QueryEscape(strings.Replace(types["SIP"], answered.CallID, "gone@x", 1)): http.StatusNotFound,
		} {
			if code := histGet(t, base, path, nil); code != want {
				t.Errorf("%s: status %d, want %d", path, code, want)
			}
		}
	})

	t.Run("live call turns into its history page", func(t *testing.T) {
		id := keepCalls[0].CallID
		var ref string
		sharedtest.Eventually(t, 15*time.Second, "the first live call listed", every(func() bool {
			var calls struct{ Rows []map[string]any }
			histGet(t, base, "api/calls", &calls)
			for _, c := range calls.Rows {
				if c["callid"] == id {
					ref, _ = c["callreference"].(string)
				}
			}
			return ref != ""
		}))
		// The call ends: its live page is gone, its reference leads to its
		// history, first from memory, then with its stored CDR.
		sharedtest.Eventually(t, 20*time.Second, "the live call's end", every(func() bool {
			return histGet(t, base, "api/call?ref="+ref, nil) == http.StatusNotFound
		}))
		var d histDetail
		sharedtest.Eventually(t, 30*time.Second, "the ended call's CDR", every(func() bool {
			d = histDetail{}
			code := histGet(t, base, "api/cdr/detail?ref="+ref, &d)
			if code != http.StatusOK || d.CallID != id {
				t.Fatalf("detail by reference %s: status %d, callid %q", ref, code, d.CallID)
			}
			return !d.Pending
		}))
		checkLadderBYE(t, &d, "memory")
		if d.CDR == nil || d.CDR.CallID != id || d.CDR.State != "answered" || len(d.Files) != 0 {
			t.Errorf("cdr = %+v, files %+v", d.CDR, d.Files)
		}
		var res struct{ Total int }
		histGet(t, base, "api/cdr?callid="+url.QueryEscape(id), &res)
		if res.Total != 1 {
			t.Errorf("api/cdr by Call-ID: %d rows, want 1", res.Total)
		}
	})
}
