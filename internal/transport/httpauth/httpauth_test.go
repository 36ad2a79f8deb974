package httpauth

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestReadPOST(t *testing.T) {
	tests := []struct {
		name, method, ctype, body, token, bearer, basicPass string
		wantOK                                              bool
		wantCode                                            int
	}{
		{name: "no token needed", method: "POST", body: "x", wantOK: true},
		{name: "charset parameter", method: "POST", ctype: "application/json; charset=utf-8", body: "x", wantOK: true},
		{name: "GET", method: "GET", wantCode: 405},
		{name: "text/plain (CSRF)", method: "POST", ctype: "text/plain", body: "x", wantCode: 415},
		{name: "form (CSRF)", method: "POST", ctype: "application/x-www-form-urlencoded", body: "x", wantCode: 415},
		{name: "no content type", method: "POST", ctype: "-", body: "x", wantCode: 415},
		{name: "missing token", method: "POST", body: "x", token: "s3", wantCode: 401},
		{name: "bearer", method: "POST", body: "x", token: "s3", bearer: "s3", wantOK: true},
		{name: "wrong bearer", method: "POST", body: "x", token: "s3", bearer: "s4", wantCode: 401},
		{name: "basic password", method: "POST", body: "x", token: "s3", basicPass: "s3", wantOK: true},
		{name: "too large", method: "POST", body: strings.Repeat("a", 11), wantCode: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/mi", strings.NewReader(tt.body))
			switch tt.ctype {
			case "":
				r.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			if tt.basicPass != "" {
				r.SetBasicAuth("anyone", tt.basicPass)
			}
			w := httptest.NewRecorder()
			body, ok := ReadPOST(w, r, "application/json", tt.token, "test", 10)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v (status %d)", ok, tt.wantOK, w.Code)
			}
			if ok && string(body) != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
			if !ok && w.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", w.Code, tt.wantCode)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") != `Basic realm="test"` {
				t.Errorf("challenge = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGuard(t *testing.T) {
	lo := NewGuard("127.0.0.1:8090", []string{"sensor.lab"})
	any := NewGuard("0.0.0.0:8090", nil)
	tests := []struct {
		name string
		g    Guard
		host string
		hdr  map[string]string
		api  bool
		tls  bool
		want int
	}{
		{"loopback ip", lo, "127.0.0.1:8090", nil, true, false, 200},
		{"other loopback ip", lo, "127.0.0.2:8090", nil, true, false, 200},
		{"localhost", lo, "localhost:8090", nil, true, false, 200},
		{"sub.localhost", lo, "app.localhost:8090", nil, true, false, 200},
		{"ipv6 loopback", lo, "[::1]:8090", nil, true, false, 200},
		{"configured name", lo, "Sensor.Lab:8090", nil, true, false, 200},
		{"rebinding name", lo, "evil.example", nil, true, false, 421},
		{"rebinding name on a page", lo, "evil.example:8090", nil, false, false, 421},
		{"lan ip on loopback bind", lo, "192.168.1.5:8090", nil, true, false, 421},
		{"any host on a wildcard bind", any, "sensor.example.net", nil, true, false, 200},
		{"same origin", lo, "127.0.0.1:8090", map[string]string{"Origin": "http://127.0.0.1:8090"}, true, false, 200},
		{"same origin https", lo, "127.0.0.1:8090", map[string]string{"Origin": "https://127.0.0.1:8090"}, true, true, 200},
		{"scheme differs", lo, "127.0.0.1:8090", map[string]string{"Origin": "https://127.0.0.1:8090"}, true, false, 403},
		{"foreign origin", lo, "127.0.0.1:8090", map[string]string{"Origin": "http://evil.example"}, true, false, 403},
		{"other port is another origin", lo, "127.0.0.1:8090", map[string]string{"Origin": "http://127.0.0.1:3000"}, true, false, 403},
		{"null origin", lo, "127.0.0.1:8090", map[string]string{"Origin": "null"}, true, false, 403},
		{"foreign origin on a page", lo, "127.0.0.1:8090", map[string]string{"Origin": "http://evil.example"}, false, false, 200},
		{"cross-site fetch", lo, "127.0.0.1:8090", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, false, 403},
		{"same-site fetch (other port)", lo, "127.0.0.1:8090", map[string]string{"Sec-Fetch-Site": "same-site"}, true, false, 403},
		{"same-origin fetch", lo, "127.0.0.1:8090", map[string]string{"Sec-Fetch-Site": "same-origin"}, true, false, 200},
		{"typed address bar", lo, "127.0.0.1:8090", map[string]string{"Sec-Fetch-Site": "none"}, true, false, 200},
		{"cross-site navigation to a page", lo, "127.0.0.1:8090", map[string]string{"Sec-Fetch-Site": "cross-site"}, false, false, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(string) bool { return tt.api })
			r := httptest.NewRequest("GET", "/x", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
			for k := range w.Header() {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("CORS header %s sent", k)
				}
			}
		})
	}
}

// TestServerPanic: a handler's panic is counted and answered by Internal,
// or without Internal the connection is dropped (as net/http does); the
// server keeps serving either way.
func TestServerPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("handler exploded")
		}
		w.Write([]byte("ok"))
	})
	internal := func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal", http.StatusInternalServerError)
	}
	for _, tt := range []struct {
		name     string
		internal func(http.ResponseWriter, *http.Request)
		want     string // "" for a dropped connection
	}{
		{"dropped", nil, ""},
		{"answered", internal, "500 internal\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(ServerConfig{Name: "test", Addr: "127.0.0.1:0", Handler: h, Internal: tt.internal,
				Logger: slog.New(slog.DiscardHandler)})
			if err := s.Run(context.Background()); err == nil {
				t.Error("Run before Listen: no error")
			}
			if err := s.Listen(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			get := func(path string) (string, error) {
				resp, err := http.Get("http://" + s.Addr().String() + path)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				return strconv.Itoa(resp.StatusCode) + " " + string(b), err
			}
			got, err := get("/boom")
			if tt.want == "" && err == nil || tt.want != "" && got != tt.want {
				t.Errorf("/boom: %q, %v; want %q", got, err, tt.want)
			}
			if got, err := get("/ok"); got != "200 ok" {
				t.Errorf("after the panic /ok: %q, %v", got, err)
			}
			if n := s.Stats().Panics; n != 1 {
				t.Errorf("Stats().Panics = %d, want 1", n)
			}
		})
	}
}
