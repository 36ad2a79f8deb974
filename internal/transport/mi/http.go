package mi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
)

// httpDrain is how long open MI requests get when the HTTP listener shuts
// down.
const httpDrain = 5 * time.Second

// XMLResponder answers XML-RPC request bodies; the xmlrpc package's
// Responder over this package's [Dispatcher] is the one the sensor wires
// (transports do not import each other).
type XMLResponder interface {
	// Respond answers one methodCall body, running the call with perm.
	Respond(ctx context.Context, body []byte, perm command.Perm) []byte
	// Internal is the reply to a request whose handling panicked.
	Internal() []byte
}

// HTTPConfig configures an [HTTPServer].
type HTTPConfig struct {
	Addr string // host:port (mi_http)
	// Token, when set, must come as "Authorization: Bearer TOKEN" or as
	// the password of HTTP Basic auth (any user); otherwise 401.
	Token string
	// ReadOnly drops the control permission classes (see [PermReadOnly]).
	ReadOnly bool
	Hosts    []string    // Host names served besides loopback ones (web_hosts)
	Limits   conn.Limits // connection caps; FirstRequest bounds the request header
	Logger   *slog.Logger
	// XMLRPC, when set, serves XML-RPC on POST /RPC2.
	XMLRPC XMLResponder
}

// HTTPServer is MI over HTTP as OpenSIPS mi_http and mi_xmlrpc serve it:
// JSON-RPC 2.0 on POST /mi and XML-RPC on POST /RPC2, on one listener
// behind the browser guard ([httpauth.Guard]; every path is an API path).
// Both paths admit requests alike ([httpauth.ReadPOST]): POST only (405),
// their own media type, application/json or text/xml (415), the token
// (401), at most [MaxRequest] bytes (413). On /mi an empty body is 400,
// JSON-RPC errors travel in a 200 reply and a notification gets 202 with
// no body; on /RPC2 every reply is 200 text/xml, faults included. A
// request whose handling panics is answered with the internal error of
// its encoding (-32603) and counted in Stats.
//
// Create it with [NewHTTPServer]; bind, serve and release it with the
// lifecycle of every HTTP transport ([httpauth.Server]: Listen, Run,
// Close, Addr, Stats). Safe for concurrent use.
type HTTPServer struct {
	*httpauth.Server
}

// NewHTTPServer returns the MI HTTP listener over d. It binds nothing.
func NewHTTPServer(d *Dispatcher, cfg HTTPConfig) *HTTPServer {
	perm := ListenerPerm(cfg.ReadOnly)
	mux := http.NewServeMux()
	jsonRPC := &endpoint{mediaType: "application/json", realm: "voipsensor MI", token: cfg.Token, perm: perm, refuseEmpty: true,
		serve: func(ctx context.Context, body []byte, p command.Perm) []byte {
			reply, _ := d.Serve(ctx, body, p, "mi-http")
			return reply
		},
		internal: internalErrorReply}
	mux.Handle("/mi", jsonRPC)
	var xmlRPC *endpoint
	if cfg.XMLRPC != nil {
		xmlRPC = &endpoint{mediaType: "text/xml", realm: "voipsensor XML-RPC", token: cfg.Token, perm: perm,
			serve: cfg.XMLRPC.Respond, internal: cfg.XMLRPC.Internal()}
		mux.Handle("/RPC2", xmlRPC)
	}
	guard := httpauth.NewGuard(cfg.Addr, cfg.Hosts)
	return &HTTPServer{httpauth.NewServer(httpauth.ServerConfig{
		Name:     "mi http",
		Addr:     cfg.Addr,
		Handler:  guard.Wrap(mux, func(string) bool { return true }),
		Limits:   cfg.Limits,
		Timeouts: httpauth.Timeouts{Drain: httpDrain},
		Logger:   cfg.Logger,
		Internal: func(w http.ResponseWriter, r *http.Request) {
			e := jsonRPC
			if xmlRPC != nil && r.URL.Path == "/RPC2" {
				e = xmlRPC
			}
			e.send(w, e.internal)
		},
	})}
}

// endpoint is one encoding of MI on the HTTP listener: the admission the
// encodings share, then serve on the body.
type endpoint struct {
	mediaType, realm, token string
	perm                    command.Perm
	refuseEmpty             bool // an empty body is 400 (JSON-RPC)
	// serve answers a body; nil means no reply is due (a JSON-RPC
	// notification), sent as 202 with no body.
	serve    func(ctx context.Context, body []byte, perm command.Perm) []byte
	internal []byte // the reply to a request whose handling panicked
}

// ServeHTTP implements http.Handler.
func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := httpauth.ReadPOST(w, r, e.mediaType, e.token, e.realm, MaxRequest)
	if !ok {
		return
	}
	if e.refuseEmpty && len(strings.TrimSpace(string(body))) == 0 {
		http.Error(w, "400 Bad Request: empty body", http.StatusBadRequest)
		return
	}
	reply := e.serve(httpauth.RequestContext(r), body, e.perm)
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	e.send(w, reply)
}

// send writes a reply of the endpoint's media type with HTTP 200.
func (e *endpoint) send(w http.ResponseWriter, reply []byte) {
	w.Header().Set("Content-Type", e.mediaType)
	w.Write(reply)
}

var _ http.Handler = (*endpoint)(nil)
