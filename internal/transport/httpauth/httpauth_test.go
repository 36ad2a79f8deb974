package httpauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadPOST(t *testing.T) {
	tests := []struct {
		name, method, body, token, bearer, basicPass string
		wantOK                                       bool
		wantCode                                     int
	}{
		{name: "no token needed", method: "POST", body: "x", wantOK: true},
		{name: "GET", method: "GET", wantCode: 405},
		{name: "missing token", method: "POST", body: "x", token: "s3", wantCode: 401},
		{name: "bearer", method: "POST", body: "x", token: "s3", bearer: "s3", wantOK: true},
		{name: "wrong bearer", method: "POST", body: "x", token: "s3", bearer: "s4", wantCode: 401},
		{name: "basic password", method: "POST", body: "x", token: "s3", basicPass: "s3", wantOK: true},
		{name: "too large", method: "POST", body: strings.Repeat("a", 11), wantCode: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/mi", strings.NewReader(tt.body))
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			if tt.basicPass != "" {
				r.SetBasicAuth("anyone", tt.basicPass)
			}
			w := httptest.NewRecorder()
			body, ok := ReadPOST(w, r, tt.token, "test", 10)
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
