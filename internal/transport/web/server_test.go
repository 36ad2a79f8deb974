package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

const testToken = "s3cret-token"

// newTestServer returns a console bound (in name only: nothing listens)
// to 127.0.0.1:8090 over a registry whose listen_stat answers "{}".
func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	reg := command.NewRegistry()
	reg.Register(command.Command{Name: "listen_stat", Doc: "test", Perm: command.PermSystem, Run: func(context.Context, *command.Request) (command.Result, error) {
		return command.Value{V: map[string]int{}}, nil
	}})
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8090"
	}
	s, err := New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func sessionCookie(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == "vs_token" {
			return c
		}
	}
	return nil
}

// TestTokenLeavesTheURL: a token given once in the query sets the cookie
// and redirects to the same address without it (other parameters kept),
// so it leaves the address bar, the history and Referer headers.
func TestTokenLeavesTheURL(t *testing.T) {
	s := newTestServer(t, Config{Token: testToken})
	r := httptest.NewRequest("GET", "http://127.0.0.1:8090/player.html?ref=0x1f&token="+testToken, nil)
	w := serve(s, r)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", w.Code)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Has("token") || strings.Contains(loc.String(), testToken) {
		t.Errorf("redirect keeps the token: %s", loc)
	}
	if loc.Path != "/player.html" || loc.Query().Get("ref") != "0x1f" {
		t.Errorf("redirect to %s, want /player.html?ref=0x1f", loc)
	}
	c := sessionCookie(w)
	if c == nil || c.Value != testToken || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v, want HttpOnly SameSite=Strict vs_token", c)
	}
	if c.Secure {
		t.Error("cookie Secure on plain HTTP without web_secure_cookie")
	}
	// The cookie alone then opens the API.
	r = httptest.NewRequest("GET", "http://127.0.0.1:8090/api/stat", nil)
	r.AddCookie(c)
	if w := serve(s, r); w.Code != http.StatusOK {
		t.Errorf("API with the cookie: status %d, want 200", w.Code)
	}
}

// TestSecureCookie: the cookie is Secure when the request came over HTTPS
// to a TLS-terminating proxy (X-Forwarded-Proto) or when configured.
func TestSecureCookie(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		header string
		want   bool
	}{
		{"plain", Config{Token: testToken}, "", false},
		{"forwarded https", Config{Token: testToken}, "https", true},
		{"configured", Config{Token: testToken, SecureCookie: true}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			r := httptest.NewRequest("POST", "http://127.0.0.1:8090/login", strings.NewReader("token="+testToken))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.header != "" {
				r.Header.Set("X-Forwarded-Proto", tc.header)
			}
			w := serve(s, r)
			c := sessionCookie(w)
			if w.Code != http.StatusSeeOther || c == nil {
				t.Fatalf("login: status %d, cookie %v", w.Code, c)
			}
			if c.Secure != tc.want {
				t.Errorf("Secure = %v, want %v", c.Secure, tc.want)
			}
		})
	}
}

// TestAuthRequired: with a token configured, the API answers 401 without
// it, and accepts it as a Bearer header; a wrong token in the login form
// sets no cookie.
func TestAuthRequired(t *testing.T) {
	s := newTestServer(t, Config{Token: testToken})
	if w := serve(s, httptest.NewRequest("GET", "http://127.0.0.1:8090/api/stat", nil)); w.Code != http.StatusUnauthorized {
		t.Errorf("no credentials: status %d, want 401", w.Code)
	}
	r := httptest.NewRequest("GET", "http://127.0.0.1:8090/api/stat", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	if w := serve(s, r); w.Code != http.StatusOK {
		t.Errorf("Bearer token: status %d, want 200", w.Code)
	}
	r = httptest.NewRequest("POST", "http://127.0.0.1:8090/login", strings.NewReader("token=wrong"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := serve(s, r)
	if w.Code != http.StatusUnauthorized || sessionCookie(w) != nil {
		t.Errorf("wrong token: status %d, cookie %v; want 401 and none", w.Code, sessionCookie(w))
	}
	if strings.Contains(w.Body.String(), testToken) {
		t.Error("reply shows the token")
	}
}

// TestBrowserThreatModel: the console on loopback refuses a rebinding
// Host (421) and a cross-site API request (403), sends no CORS header,
// and serves its own origin and scripts without Origin.
func TestBrowserThreatModel(t *testing.T) {
	s := newTestServer(t, Config{Hosts: []string{"sensor.lan"}})
	for _, tc := range []struct {
		name, host, origin string
		want               int
	}{
		{"script", "127.0.0.1:8090", "", http.StatusOK},
		{"localhost", "localhost:8090", "", http.StatusOK},
		{"own origin", "127.0.0.1:8090", "http://127.0.0.1:8090", http.StatusOK},
		{"listed host", "sensor.lan:8090", "", http.StatusOK},
		{"rebinding", "evil.example:8090", "", http.StatusMisdirectedRequest},
		{"cross-site", "127.0.0.1:8090", "http://evil.example", http.StatusForbidden},
		{"other port", "127.0.0.1:8090", "http://127.0.0.1:9999", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://127.0.0.1:8090/api/stat", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := serve(s, r)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d", w.Code, tc.want)
			}
			for k := range w.Header() {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("CORS header %s sent", k)
				}
			}
		})
	}
}

// TestAPICalls: the console's call rows carry the SIP state that
// calls_in_progress gives (listcalls, in the sniffer's shape, has none),
// and /api/quality and /api/history answer call_quality and
// quality_history.
func TestAPICalls(t *testing.T) {
	s := newTestServer(t, Config{})
	table := func(cols []string, rows ...[]command.Cell) *command.Table {
		tb := &command.Table{Len: len(rows), Emit: func(i int, w command.CellWriter) {
			for _, c := range rows[i] {
				command.WriteCell(w, c)
			}
		}}
		for _, c := range cols {
			tb.Columns = append(tb.Columns, command.Column{Name: c})
		}
		return tb
	}
	released := false
	s.reg.Register(command.Command{Name: "listcalls", Doc: "test", Perm: command.PermCall, Run: func(context.Context, *command.Request) (command.Result, error) {
		tb := table([]string{"callreference", "caller"},
			[]command.Cell{command.Str("0x1"), command.Str("100")}, []command.Cell{command.Str("0x2"), command.Str("200")})
		tb.OnRelease(func() { released = true })
		return tb, nil
	}})
	s.reg.Register(command.Command{Name: "calls_in_progress", Doc: "test", Perm: command.PermCall, Run: func(context.Context, *command.Request) (command.Result, error) {
		return table([]string{"callreference", "state"}, []command.Cell{command.Str("0x1"), command.Str("ringing")}), nil
	}})
	var gotRef string
	s.reg.Register(command.Command{Name: "call_quality", Doc: "test", Perm: command.PermCall,
		Params: []command.Param{{Name: "callreference", Type: command.ParamString, Doc: "the call"}},
		Run: func(_ context.Context, req *command.Request) (command.Result, error) {
			gotRef, _ = req.Param("callreference")
			return command.Value{V: map[string]string{"callreference": gotRef}}, nil
		}})
	s.reg.Register(command.Command{Name: "quality_history", Doc: "test", Perm: command.PermReporting, Run: func(context.Context, *command.Request) (command.Result, error) {
		return command.Value{V: []int{1, 2}}, nil
	}})
	for _, tt := range []struct{ path, want string }{
		{"/api/calls", `"rows":[{"caller":"100","callreference":"0x1","state":"ringing"},{"caller":"200","callreference":"0x2","state":""}]`},
		{"/api/quality?ref=0x1", `{"callreference":"0x1"}`},
		{"/api/history", `[1,2]`},
	} {
		w := serve(s, httptest.NewRequest("GET", "http://127.0.0.1:8090"+tt.path, nil))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("GET %s: %d %s, want 200 with %s", tt.path, w.Code, w.Body, tt.want)
		}
	}
	if !released || gotRef != "0x1" {
		t.Errorf("listcalls rows released: %v; call_quality asked for %q", released, gotRef)
	}
}
