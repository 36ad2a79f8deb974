package mi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// JSON-RPC 2.0 error codes (OpenSIPS mi.h; -32001 is 4.0's ambiguous name).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	CodeServerError    = -32000
)

// Limits shared by every listener.
const (
	// MaxRequest is the largest request text a listener accepts (bytes).
	MaxRequest = 64 << 10
	// MaxReply is the default largest reply text (bytes); a larger result
	// is replaced by a -32000 error.
	MaxReply = 8 << 20
	// DefaultTimeout bounds one command's run.
	DefaultTimeout = 10 * time.Second
)

// Sentinel errors of the listeners.
var (
	// ErrTooLarge means a request exceeded its listener's size limit.
	ErrTooLarge = errors.New("mi: request too large")
	// ErrReplyName means a FIFO reply name is empty where one is needed,
	// or contains '.', '/' or '\', or makes the path too long.
	ErrReplyName = errors.New("mi: bad reply name")
	// ErrReplyFIFO means the reply file is missing, not a FIFO, a symlink,
	// hard-linked, or swapped between lstat and open.
	ErrReplyFIFO = errors.New("mi: unsafe or missing reply FIFO")
)

// Error is a JSON-RPC error object. Data is omitted when empty.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

// Error returns "mi: CODE MESSAGE: DATA".
func (e *Error) Error() string {
	s := "mi: " + strconv.Itoa(e.Code) + " " + e.Message
	if e.Data != "" {
		s += ": " + e.Data
	}
	return s
}

// Coder is implemented by command errors that carry an OpenSIPS
// module-style code and text (404 "No such dialog", 404 "Statistics Not
// Found"); the Dispatcher sends them as is.
type Coder interface {
	error
	MIError() (code int, message string)
}

// Config tunes a [Dispatcher]. Zero values take the package defaults.
type Config struct {
	Timeout  time.Duration // per command; 0 means DefaultTimeout
	MaxReply int           // bytes; 0 means MaxReply
}

// Dispatcher turns JSON-RPC 2.0 request texts into reply texts by running
// registry commands. Safe for concurrent use.
type Dispatcher struct {
	reg      *command.Registry
	timeout  time.Duration
	maxReply int
}

// NewDispatcher returns a Dispatcher over reg.
func NewDispatcher(reg *command.Registry, cfg Config) *Dispatcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxReply <= 0 {
		cfg.MaxReply = MaxReply
	}
	return &Dispatcher{reg: reg, timeout: cfg.Timeout, maxReply: cfg.MaxReply}
}

// PermReadOnly is what a read-only listener grants: every class but the
// control ones (system, config, command, originate).
const PermReadOnly = command.PermAll &^ (command.PermSystem | command.PermConfig | command.PermCommand | command.PermOriginate)

// ListenerPerm returns the Perm a listener grants.
func ListenerPerm(readOnly bool) command.Perm {
	if readOnly {
		return PermReadOnly
	}
	return command.PermAll
}

// Request is a parsed JSON-RPC request envelope.
type Request struct {
	Method string
	Params json.RawMessage // nil, an array or an object
	ID     json.RawMessage // raw id text as sent; nil for a notification
	// ReplyName is Kamailio's FIFO reply name member, when present.
	ReplyName string
}

// Notification reports whether the request had no "id" member.
func (r *Request) Notification() bool { return r.ID == nil }

// ParseRequest validates a JSON-RPC 2.0 request text (§1 of the spec: one
// object with "jsonrpc":"2.0", a string "method", an optional string,
// number or null "id", optional array or object "params"). Text after the
// first JSON value is ignored, as mi_datagram does. A top-level array
// (batch) is an invalid request.
func ParseRequest(b []byte) (*Request, *Error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, &Error{Code: CodeParseError, Message: "Parse error"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, &Error{Code: CodeInvalidRequest, Message: "Invalid Request"}
	}
	bad := &Error{Code: CodeInvalidRequest, Message: "Invalid Request"}
	var ver, method string
	if v, ok := m["jsonrpc"]; !ok || json.Unmarshal(v, &ver) != nil || ver != "2.0" {
		return nil, bad
	}
	if v, ok := m["method"]; !ok || json.Unmarshal(v, &method) != nil {
		return nil, bad
	}
	r := &Request{Method: method}
	if id, ok := m["id"]; ok {
		switch c := firstByte(id); {
		case c == '"', c == 'n', c == '-', c >= '0' && c <= '9':
			r.ID = id
		default:
			return nil, bad
		}
	}
	if p, ok := m["params"]; ok {
		switch firstByte(p) {
		case '[', '{':
			r.Params = p
		default:
			return nil, bad
		}
	}
	if v, ok := m["reply_name"]; ok {
		json.Unmarshal(v, &r.ReplyName) // best effort; checked by the FIFO
	}
	return r, nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// Serve handles one request text and returns the reply text, or nil when
// no reply is due (a valid notification). perm is the listener's grant and
// transport its name ("mi-http", "mi-fifo", …). code is the error code of
// the reply (0 on success), for listeners with per-code wire quirks.
func (d *Dispatcher) Serve(ctx context.Context, text []byte, perm command.Perm, transport string) (reply []byte, code int) {
	req, perr := ParseRequest(text)
	if perr != nil {
		return appendError(nil, nil, perr), perr.Code
	}
	return d.ServeRequest(ctx, req, perm, transport)
}

// ServeRequest is Serve for an already parsed request.
func (d *Dispatcher) ServeRequest(ctx context.Context, req *Request, perm command.Perm, transport string) (reply []byte, code int) {
	res, err := d.Call(ctx, req.Method, req.Params, perm, transport)
	if req.Notification() {
		return nil, 0
	}
	if err != nil {
		return appendError(nil, req.ID, err), err.Code
	}
	if len(res)+len(req.ID)+32 > d.maxReply {
		e := &Error{Code: CodeServerError, Message: "Server error", Data: fmt.Sprintf("reply too large (%d bytes, limit %d)", len(res), d.maxReply)}
		return appendError(nil, req.ID, e), e.Code
	}
	b := make([]byte, 0, len(res)+len(req.ID)+32)
	b = append(b, `{"jsonrpc":"2.0","result":`...)
	b = append(b, res...)
	b = append(b, `,"id":`...)
	b = append(b, req.ID...)
	return append(b, '}'), 0
}

// internalErrorReply answers a request whose handling panicked outside
// the registry (which answers a command's own panic with the request's
// id); the id is not known there.
var internalErrorReply = appendError(nil, nil, &Error{Code: CodeInternalError, Message: "Internal error"})

func appendError(b []byte, id json.RawMessage, e *Error) []byte {
	eb, _ := marshal(e)
	if id == nil {
		id = json.RawMessage("null")
	}
	b = append(b, `{"jsonrpc":"2.0","error":`...)
	b = append(b, eb...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}

// marshal encodes v as compact JSON without HTML escaping (SIP URIs are
// full of '<' and '>').
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Call runs method with JSON params (nil, an array or an object) and
// returns the result as JSON text. It is the entry point of the XML-RPC
// adapter too.
func (d *Dispatcher) Call(ctx context.Context, method string, params json.RawMessage, perm command.Perm, transport string) (json.RawMessage, *Error) {
	c, ok := d.reg.Lookup(method)
	if !ok {
		return nil, &Error{Code: CodeMethodNotFound, Message: "Method not found"}
	}
	req := &command.Request{Name: method, Transport: transport, Perm: perm}
	if e := bindParams(&c, params, req); e != nil {
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	type out struct {
		res command.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := d.reg.Run(ctx, req)
		done <- out{r, err}
	}()
	var o out
	select {
	case o = <-done:
	case <-ctx.Done():
		return nil, &Error{Code: CodeServerError, Message: "Server error", Data: "command timed out"}
	}
	if o.err != nil {
		return nil, mapError(o.err)
	}
	b, err := resultJSON(o.res)
	if err != nil {
		return nil, &Error{Code: CodeServerError, Message: "Server error", Data: "failed to build response"}
	}
	return b, nil
}

// resultJSON renders a command result: Text as a JSON string, Empty as
// "OK", Value and Table as their JSON.
func resultJSON(r command.Result) ([]byte, error) {
	switch v := r.(type) {
	case nil, command.Empty:
		return []byte(`"OK"`), nil
	case command.Text:
		return marshal(string(v))
	case command.Value:
		return marshal(v.V)
	case *command.Table:
		return v.MarshalJSON()
	}
	return nil, fmt.Errorf("mi: unknown result type %T", r)
}

func mapError(err error) *Error {
	var c Coder
	var pe *command.ParamError
	switch {
	case errors.As(err, &c):
		code, msg := c.MIError()
		return &Error{Code: code, Message: msg}
	case errors.Is(err, command.ErrNotFound):
		return &Error{Code: CodeMethodNotFound, Message: "Method not found"}
	case errors.As(err, &pe):
		return &Error{Code: CodeInvalidParams, Message: "Invalid params", Data: pe.Error()}
	case errors.Is(err, command.ErrInternal):
		return &Error{Code: CodeInternalError, Message: "Internal error"}
	case errors.Is(err, command.ErrPermission):
		return &Error{Code: 403, Message: "Forbidden", Data: err.Error()}
	case errors.Is(err, command.ErrNoEntry):
		return &Error{Code: 404, Message: "Not Found", Data: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeServerError, Message: "Server error", Data: "command timed out"}
	}
	return &Error{Code: CodeServerError, Message: "Server error", Data: err.Error()}
}

// bindParams maps JSON params onto the command's declared parameters, as
// OpenSIPS matches recipes: the declared Params with their Required flags
// stand for the recipes "required ones plus any prefix of the optional
// ones". Positional surplus is folded into the last parameter when it is
// of type ParamJSON (so that kamctl's flat "get_statistics dialog: core:"
// works); named params must all be declared.
func bindParams(c *command.Command, params json.RawMessage, req *command.Request) *Error {
	tooMany := &Error{Code: CodeInvalidParams, Message: "Invalid params", Data: "Too few or too many parameters"}
	nreq := 0
	for _, p := range c.Params {
		if p.Required {
			nreq++
		}
	}
	switch firstByte(params) {
	case 0:
		if nreq > 0 {
			return tooMany
		}
		return nil
	case '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(params, &arr); err != nil {
			return &Error{Code: CodeInvalidRequest, Message: "Invalid Request"}
		}
		if len(arr) < nreq {
			return tooMany
		}
		if len(arr) > len(c.Params) {
			last := len(c.Params) - 1
			if last < 0 || c.Params[last].Type != command.ParamJSON {
				return tooMany
			}
			tail, _ := json.Marshal(arr[last:])
			arr = append(arr[:last:last], tail)
		}
		for i, v := range arr {
			s, e := paramText(c.Params[i], v)
			if e != nil {
				return e
			}
			req.Args = append(req.Args, s)
		}
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(params, &obj); err != nil {
			return &Error{Code: CodeInvalidRequest, Message: "Invalid Request"}
		}
		if len(obj) == 0 {
			if nreq > 0 {
				return tooMany
			}
			return nil
		}
		if len(obj) > len(c.Params) || len(obj) < nreq {
			return tooMany
		}
		req.Params = make(map[string]string, len(obj))
		for _, p := range c.Params {
			v, ok := obj[p.Name]
			if !ok {
				if p.Required {
					return &Error{Code: CodeInvalidParams, Message: "Invalid params", Data: "Named parameters do not match"}
				}
				continue
			}
			s, e := paramText(p, v)
			if e != nil {
				return e
			}
			req.Params[p.Name] = s
		}
		if len(req.Params) != len(obj) {
			return &Error{Code: CodeInvalidParams, Message: "Invalid params", Data: "Named parameters do not match"}
		}
	}
	return nil
}

// paramText converts one JSON value to the registry's string form: JSON
// text for ParamJSON, otherwise a string or a number printed as text.
func paramText(p command.Param, v json.RawMessage) (string, *Error) {
	v = bytes.TrimSpace(v)
	if p.Type == command.ParamJSON {
		return string(v), nil
	}
	switch c := firstByte(v); {
	case c == '"':
		var s string
		json.Unmarshal(v, &s)
		return s, nil
	case c == '-' || c >= '0' && c <= '9', c == 't', c == 'f':
		return string(v), nil
	case c == 'n':
		return "", nil
	}
	return "", &Error{Code: CodeInvalidParams, Message: "Invalid params", Data: "Bad type for parameter '" + p.Name + "'"}
}

// MethodNames lists the registry's commands (for system.listMethods-style
// introspection in transports).
func (d *Dispatcher) MethodNames() []string {
	all := d.reg.All()
	out := make([]string, len(all))
	for i, c := range all {
		out[i] = c.Name
	}
	return out
}
