package xmlrpc

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Backend runs one call. params is nil, a JSON array or a JSON object;
// the result is JSON text. An error that is a *[Fault] is sent as is;
// any other error becomes fault -32000.
type Backend interface {
	Call(ctx context.Context, method string, params json.RawMessage, perm command.Perm) (json.RawMessage, error)
}

// Responder answers XML-RPC request bodies by running their calls on
// Backend. It is XML-RPC without HTTP: the MI HTTP listener admits POST
// /RPC2 (method, media type text/xml, token, size) and sends what Respond
// returns as a text/xml reply with HTTP 200, faults included. Safe for
// concurrent use when Backend is.
type Responder struct {
	Backend Backend
}

// Respond answers one methodCall body with a methodResponse, running the
// call with perm: the result, or a fault (-32600 for a body that is no
// methodCall, the Backend's *[Fault], -32000 for any other error or a
// result that cannot be encoded).
func (rs Responder) Respond(ctx context.Context, body []byte, perm command.Perm) []byte {
	method, params, err := ParseCall(body)
	if err != nil {
		return AppendFault(nil, FaultFor(-32600, ""))
	}
	res, err := rs.Backend.Call(ctx, method, params, perm)
	if err != nil {
		var f *Fault
		if !errors.As(err, &f) {
			f = FaultFor(-32000, "")
		}
		return AppendFault(nil, f)
	}
	out, err := AppendResponse(nil, res)
	if err != nil {
		return AppendFault(nil, FaultFor(-32000, ""))
	}
	return out
}

// Internal returns the methodResponse for a request whose handling
// panicked: fault -32603.
func (Responder) Internal() []byte { return AppendFault(nil, FaultFor(-32603, "")) }
