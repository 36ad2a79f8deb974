package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

// historyServer is a console over a registry with stand-ins for
// cdr_search and cdr_detail (answering their named parameters back) and
// the spool's file_exists and getfile (as package files answers them,
// over one recording).
func historyServer(t *testing.T) *Server {
	t.Helper()
	reg := command.NewRegistry()
	echo := func(ctx context.Context, req *command.Request) (command.Result, error) {
		if req.Params["callid"] == "none@x" {
			return nil, fmt.Errorf("history: call none@x: %w", command.ErrNoEntry)
		}
		if req.Params["limit"] == "5000" {
			return nil, command.BadParam("limit", fmt.Errorf("5000 is not between 1 and 1000"))
		}
		return command.Value{V: map[string]any{"name": req.Name, "params": req.Params, "args": req.Args}}, nil
	}
	str := func(names ...string) []command.Param {
		var ps []command.Param
		for _, n := range names {
			ps = append(ps, command.Param{Name: n, Doc: n})
		}
		return ps
	}
	reg.Register(command.Command{Name: "cdr_search", Doc: "test", Perm: command.PermCall, Params: str(searchParams...), Run: echo})
	reg.Register(command.Command{Name: "cdr_detail", Doc: "test", Perm: command.PermCall, Params: str("callid", "id", "callreference"), Run: echo})
	const pcap = "2026-03-01/12/00/SIP/a@x.pcap"
	files := map[string]string{pcap: "\xd4\xc3\xb2\xa1 pcap bytes", "2026-03-01/12/00/AUDIO/a@x.wav": "RIFF wav"}
	reg.Register(command.Command{Name: "file_exists", Doc: "test", Perm: command.PermCall, Params: str("filename"),
		Run: func(_ context.Context, req *command.Request) (command.Result, error) {
			name, _ := req.Param("filename")
			if strings.Contains(name, "..") {
				return command.Text("access denied"), nil
			}
			if b, ok := files[name]; ok {
				return command.Text(fmt.Sprint(len(b))), nil
			}
			return command.Text("not_exists"), nil
		}})
	reg.Register(command.Command{Name: "getfile", Doc: "test", Perm: command.PermCall, Params: str("filename"),
		Run: func(_ context.Context, req *command.Request) (command.Result, error) {
			name, _ := req.Param("filename")
			if b, ok := files[name]; ok {
				return command.Text(b), nil
			}
			return command.Text("error: cannot open file " + name), nil
		}})
	s, err := New(reg, Config{Addr: "127.0.0.1:8090"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func getJSON(t *testing.T, s *Server, path string) (int, map[string]any) {
	t.Helper()
	w := serve(s, httptest.NewRequest("GET", "http://127.0.0.1:8090"+path, nil))
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s: %d %q: %v", path, w.Code, w.Body, err)
	}
	return w.Code, v
}

// TestHistoryAPI checks /api/cdr and /api/cdr/detail: the query string's
// known parameters become the commands' named parameters (ref stands for
// callreference, others are dropped), and errors map to 404 and 400.
func TestHistoryAPI(t *testing.T) {
	s := historyServer(t)
	q := url.Values{"number": {"10%"}, "from": {"2026-03-01T00:00:00Z"}, "state": {"busy"}, "mos_below": {"3.6"},
		"sort": {"mos"}, "dir": {"asc"}, "limit": {"20"}, "offset": {"40"}, "colour": {"red"}, "ip": {""}}
	code, v := getJSON(t, s, "/api/cdr?"+q.Encode())
	if code != http.StatusOK || v["name"] != "cdr_search" {
		t.Fatalf("/api/cdr = %d %v", code, v)
	}
	var got []string
	for k, x := range v["params"].(map[string]any) {
		got = append(got, k+"="+x.(string))
	}
	sort.Strings(got)
	want := "dir=asc from=2026-03-01T00:00:00Z limit=20 mos_below=3.6 number=10% offset=40 sort=mos state=busy"
	if strings.Join(got, " ") != want {
		t.Errorf("cdr_search params = %s, want %s", strings.Join(got, " "), want)
	}
	if code, v := getJSON(t, s, "/api/cdr?limit=5000"); code != http.StatusBadRequest || !strings.Contains(v["error"].(string), "limit") {
		t.Errorf("bad limit: %d %v", code, v)
	}

	code, v = getJSON(t, s, "/api/cdr/detail?callid=a%40x&ref=0x1f&id=7")
	if p := v["params"].(map[string]any); code != 200 || p["callid"] != "a@x" || p["callreference"] != "0x1f" || p["id"] != "7" {
		t.Errorf("/api/cdr/detail = %d %v", code, v)
	}
	if code, v := getJSON(t, s, "/api/cdr/detail?callid=none%40x"); code != http.StatusNotFound || !strings.Contains(v["error"].(string), "no such entry") {
		t.Errorf("unknown call: %d %v", code, v)
	}
}

// TestFileAPI checks /api/file: a recording with its type (as an
// attachment on ?download=1), and refusals for other extensions, names
// leaving the spool and missing files.
func TestFileAPI(t *testing.T) {
	s := historyServer(t)
	w := serve(s, httptest.NewRequest("GET", "http://127.0.0.1:8090/api/file?download=1&name="+url.QueryEscape("2026-03-01/12/00/SIP/a@x.pcap"), nil))
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != 200 || string(body) != "\xd4\xc3\xb2\xa1 pcap bytes" || w.Header().Get("Content-Type") != "application/vnd.tcpdump.pcap" ||
		w.Header().Get("Content-Disposition") != `attachment; filename="a@x.pcap"` {
		t.Errorf("pcap: %d %q %v", w.Code, body, w.Header())
	}
	w = serve(s, httptest.NewRequest("GET", "http://127.0.0.1:8090/api/file?name="+url.QueryEscape("2026-03-01/12/00/AUDIO/a@x.wav"), nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "audio/wav" || w.Header().Get("Content-Disposition") != "" || w.Body.String() != "RIFF wav" {
		t.Errorf("wav: %d %v", w.Code, w.Header())
	}
	for _, tt := range []struct {
		name string
		code int
	}{
		{"../../etc/passwd.pcap", http.StatusForbidden},
		{"2026-03-01/12/00/SIP/gone@x.pcap", http.StatusNotFound},
		{"voipsensor.db", http.StatusBadRequest},
		{"", http.StatusBadRequest},
	} {
		code, v := getJSON(t, s, "/api/file?name="+url.QueryEscape(tt.name))
		if code != tt.code || v["error"] == nil {
			t.Errorf("/api/file?name=%s = %d %v, want %d", tt.name, code, v, tt.code)
		}
	}
}

// TestConsoleHasHistory checks that the embedded page carries the history
// view, the call page of a stored call and the ladder's text.
func TestConsoleHasHistory(t *testing.T) {
	s := historyServer(t)
	for path, want := range map[string][]string{
		"/":       {`href="#/history"`, `id="view-history"`, `id="hist-form"`, `id="view-cdr"`, `id="cdr-ladder-raw"`, `id="cdr-files"`},
		"/app.js": {`"/api/cdr?"`, `"/api/cdr/detail?"`, `"/api/file?name="`, "toHistoryPage", "rawText"},
	} {
		w := serve(s, httptest.NewRequest("GET", "http://127.0.0.1:8090"+path, nil))
		for _, x := range want {
			if !strings.Contains(w.Body.String(), x) {
				t.Errorf("%s lacks %s", path, x)
			}
		}
	}
}
