package xmlrpc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/voipsensor/voipsensor/internal/transport/httpauth"

	"github.com/voipsensor/voipsensor/internal/command"
)

// MaxRequest is the largest methodCall body accepted (bytes); larger
// bodies get HTTP 413.
const MaxRequest = 64 << 10

// ReadOnlyPerm is what a read-only handler grants: every class but the
// control ones (system, config, command, originate).
const ReadOnlyPerm = command.PermAll &^ (command.PermSystem | command.PermConfig | command.PermCommand | command.PermOriginate)

// Backend runs one call. params is nil, a JSON array or a JSON object;
// the result is JSON text. An error that is a *[Fault] is sent as is;
// any other error becomes fault -32000.
type Backend interface {
	Call(ctx context.Context, method string, params json.RawMessage, perm command.Perm) (json.RawMessage, error)
}

// Handler serves XML-RPC over HTTP: POST only (405 otherwise), replies
// text/xml with HTTP 200, faults included. Safe for concurrent use.
type Handler struct {
	Backend  Backend
	ReadOnly bool
	// Token, when set, must come as "Authorization: Bearer TOKEN" or as
	// the HTTP Basic password (Python: http://user:TOKEN@host/RPC2).
	Token string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := httpauth.ReadPOST(w, r, "text/xml", h.Token, "voipsensor XML-RPC", MaxRequest)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	method, params, err := ParseCall(body)
	if err != nil {
		w.Write(AppendFault(nil, FaultFor(-32600, "")))
		return
	}
	perm := command.PermAll
	if h.ReadOnly {
		perm = ReadOnlyPerm
	}
	res, err := h.Backend.Call(httpauth.RequestContext(r), method, params, perm)
	if err != nil {
		var f *Fault
		if !errors.As(err, &f) {
			f = FaultFor(-32000, "")
		}
		w.Write(AppendFault(nil, f))
		return
	}
	out, err := AppendResponse(nil, res)
	if err != nil {
		w.Write(AppendFault(nil, FaultFor(-32000, "")))
		return
	}
	w.Write(out)
}

var _ http.Handler = (*Handler)(nil)
