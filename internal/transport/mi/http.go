package mi

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Handler serves JSON-RPC over HTTP as OpenSIPS mi_http does: POST only
// (405 otherwise), an empty body is 400, JSON-RPC errors travel in a 200
// reply, a notification gets 202 with no body. Bodies over [MaxRequest]
// get 413. Safe for concurrent use.
type Handler struct {
	D *Dispatcher
	// ReadOnly drops the control permission classes (see [PermReadOnly]).
	ReadOnly bool
	// Token, when set, must come as "Authorization: Bearer TOKEN" or as
	// the password of HTTP Basic auth (any user); otherwise 401.
	Token string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !Authorized(r, h.Token) {
		w.Header().Set("WWW-Authenticate", `Basic realm="voipsensor MI"`)
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequest))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "400 Bad Request", http.StatusBadRequest)
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		http.Error(w, "400 Bad Request: empty body", http.StatusBadRequest)
		return
	}
	reply, _ := h.D.Serve(r.Context(), body, ListenerPerm(h.ReadOnly), "mi-http")
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(reply)
}

// Authorized reports whether r carries token (always true for an empty
// token): "Authorization: Bearer TOKEN" or Basic auth with password TOKEN.
// The comparison takes constant time.
func Authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimSpace(a[len("Bearer "):])
	} else if _, p, ok := r.BasicAuth(); ok {
		got = p
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

var _ http.Handler = (*Handler)(nil)
