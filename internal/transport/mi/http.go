package mi

import (
	"net/http"
	"strings"

	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
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
	body, ok := httpauth.ReadPOST(w, r, "application/json", h.Token, "voipsensor MI", MaxRequest)
	if !ok {
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		http.Error(w, "400 Bad Request: empty body", http.StatusBadRequest)
		return
	}
	reply, _ := h.D.Serve(httpauth.RequestContext(r), body, ListenerPerm(h.ReadOnly), "mi-http")
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(reply)
}

var _ http.Handler = (*Handler)(nil)
