package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
)

//go:embed static
var staticFS embed.FS

// Config configures the web console.
type Config struct {
	// Addr is host:port to listen on (":0" picks a port).
	Addr string
	// Token, when set, is accepted as "Authorization: Bearer …", as the
	// vs_token cookie, as the token field of a POST to /login, or once as
	// ?token=… (which sets the cookie and redirects to the same page
	// without it, so the token leaves the address bar and the history).
	Token string
	// User and Password, when set, are accepted as HTTP basic auth.
	User, Password string
	// Hosts are Host names served besides loopback ones (web_hosts).
	Hosts []string
	// SecureCookie marks the session cookie Secure even on plain HTTP (a
	// TLS-terminating proxy in front); it is Secure anyway on a request
	// that came over HTTPS.
	SecureCookie bool
	// Limits bound the listener's connections (conn.Limits; FirstRequest
	// is the time to a complete request header).
	Limits conn.Limits
	// SensorID is this sensor's id_sensor; the player page accepts it or
	// an empty id.
	SensorID int
	// Poll is how often a listen stream polls for audio (20 ms).
	Poll time.Duration
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the web console: static pages embedded in the binary and a
// small JSON API over the command registry. Create it with [New]; bind,
// serve and release it with the lifecycle of every HTTP transport
// ([httpauth.Server]: Listen, Run, Close, Addr, Stats). On shutdown open
// requests get two seconds (listen streams end at once); a listen stream
// extends its own write deadline before every write. Safe for concurrent
// use.
type Server struct {
	*httpauth.Server
	reg   *command.Registry
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	guard httpauth.Guard
	seq   atomic.Uint64
	tag   string // random prefix of listen ids, unique per process
	auth  bool
}

// New returns a server over reg. It binds nothing. Whether an
// unauthenticated console may bind a non-loopback address is the
// sensor's one listener policy, not decided here.
func New(reg *command.Registry, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	s := &Server{reg: reg, cfg: cfg, log: cfg.Logger, auth: cfg.Token != "" || cfg.User != "",
		guard: httpauth.NewGuard(cfg.Addr, cfg.Hosts)}
	var b [3]byte
	rand.Read(b[:])
	s.tag = "w" + hex.EncodeToString(b[:])
	s.Server = httpauth.NewServer(httpauth.ServerConfig{Name: "web", Addr: cfg.Addr, Handler: s, Limits: cfg.Limits,
		Timeouts: httpauth.Timeouts{Write: 30 * time.Second}, Logger: cfg.Logger})
	sub, _ := fs.Sub(staticFS, "static")
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /", http.FileServerFS(sub))
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("GET /api/calls", s.apiCalls)
	s.mux.HandleFunc("GET /api/registrations", s.apiTable("listregisters", `{}`))
	s.mux.HandleFunc("GET /api/call", s.apiRef("active_call_info"))
	s.mux.HandleFunc("GET /api/quality", s.apiRef("call_quality"))
	s.mux.HandleFunc("GET /api/ladder", s.apiRef("sip_ladder"))
	s.mux.HandleFunc("GET /api/history", s.apiValue("quality_history"))
	s.mux.HandleFunc("GET /api/stat", s.apiValue("listen_stat"))
	s.mux.HandleFunc("GET /api/listen", s.apiListen)
	s.mux.HandleFunc("GET /api/chunk/{op}", s.apiChunk)
	s.mux.HandleFunc("GET /api/cdr", s.apiParams("cdr_search", searchParams...))
	s.mux.HandleFunc("GET /api/cdr/detail", s.apiParams("cdr_detail", "callid", "id", "callreference"))
	s.mux.HandleFunc("GET /api/file", s.apiFile)
	return s, nil
}

// isAPI tells the paths that act or return data from the static pages.
func isAPI(path string) bool { return strings.HasPrefix(path, "/api/") || path == "/login" }

// ServeHTTP checks the request against the browser threat model,
// authenticates and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	h.Set("Referrer-Policy", "no-referrer")
	if !s.guard.Check(w, r, isAPI(r.URL.Path)) {
		return
	}
	if s.auth && r.URL.Path != "/login" && !s.authorized(w, r) {
		if s.cfg.User != "" {
			h.Set("WWW-Authenticate", `Basic realm="voipsensor"`)
		}
		http.Error(w, "web: unauthorized", http.StatusUnauthorized)
		return
	}
	if v := r.URL.Query().Get("token"); v != "" && s.cfg.Token != "" && eq(v, s.cfg.Token) {
		// The cookie is set: take the token out of the address bar.
		u := *r.URL
		q := u.Query()
		q.Del("token")
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if t := s.cfg.Token; t != "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && eq(v, t) {
			return true
		}
		if c, err := r.Cookie("vs_token"); err == nil && eq(c.Value, t) {
			return true
		}
		if v := r.URL.Query().Get("token"); v != "" && eq(v, t) {
			s.setCookie(w, r)
			return true
		}
	}
	if s.cfg.User != "" {
		u, p, ok := r.BasicAuth()
		if ok && eq(u, s.cfg.User) && eq(p, s.cfg.Password) {
			return true
		}
	}
	return false
}

// setCookie gives the browser the session cookie: HttpOnly, SameSite
// strict, and Secure when the request came over HTTPS (directly or, as
// its proxy says, to the proxy) or the configuration asks for it.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request) {
	secure := s.cfg.SecureCookie || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	http.SetCookie(w, &http.Cookie{Name: "vs_token", Value: s.cfg.Token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure})
}

// login takes the token from a POSTed form (field "token"), so that it
// never has to travel in a URL, sets the cookie and goes to the console.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if s.cfg.Token == "" || r.ParseForm() != nil || !eq(r.PostForm.Get("token"), s.cfg.Token) {
		http.Error(w, "web: unauthorized", http.StatusUnauthorized)
		return
	}
	s.setCookie(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// run executes one command with the console's grants.
func (s *Server) run(ctx context.Context, name string, args ...string) (command.Result, error) {
	return s.reg.Run(ctx, &command.Request{Name: name, Args: args, Transport: "web", Perm: command.PermAll})
}

// runParams executes one command with named parameters.
func (s *Server) runParams(ctx context.Context, name string, params map[string]string) (command.Result, error) {
	return s.reg.Run(ctx, &command.Request{Name: name, Params: params, Transport: "web", Perm: command.PermAll})
}

// searchParams are the query parameters /api/cdr hands to cdr_search.
var searchParams = []string{"caller", "called", "number", "ip", "callid", "from", "to", "code", "state", "ending",
	"mos_below", "loss_above", "sort", "dir", "limit", "offset"}

// apiParams runs a command with the named query parameters that are set
// (?callid=…&id=…, a parameter "ref" standing for callreference) and
// answers its value.
func (s *Server) apiParams(name string, names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if v := q.Get("ref"); v != "" && !q.Has("callreference") {
			q.Set("callreference", v)
		}
		params := map[string]string{}
		for _, n := range names {
			if v := q.Get(n); v != "" {
				params[n] = v
			}
		}
		res, err := s.runParams(httpauth.RequestContext(r), name, params)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// fileTypes are the content types of the recordings the console offers.
var fileTypes = map[string]string{".pcap": "application/vnd.tcpdump.pcap", ".wav": "audio/wav", ".ogg": "audio/ogg"}

// apiFile sends a recording of the spool (?name=, relative to the spool,
// as cdr_detail lists them) through file_exists and getfile, so that the
// spool's own checks apply: a name leaving the spool is refused (403), a
// missing one is 404. ?download=1 asks the browser to save it.
func (s *Server) apiFile(w http.ResponseWriter, r *http.Request) {
	ctx := httpauth.RequestContext(r)
	name := r.URL.Query().Get("name")
	ext := strings.ToLower(path.Ext(name))
	ctype, ok := fileTypes[ext]
	if name == "" || !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "web: name of a .pcap, .wav or .ogg recording required"})
		return
	}
	res, err := s.run(ctx, "file_exists", name)
	if err != nil {
		s.fail(w, err)
		return
	}
	switch reply := text(res); {
	case reply == "access denied":
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "web: " + name + ": outside the spool"})
		return
	case reply == "not_exists" || reply == "permission_denied":
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "web: " + name + ": " + reply})
		return
	}
	res, err = s.run(ctx, "getfile", name)
	if err != nil {
		s.fail(w, err)
		return
	}
	b := text(res)
	if b == "access denied" || strings.HasPrefix(b, "error: cannot open file") {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "web: " + name + ": not_exists"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.URL.Query().Get("download") != "" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(name)}))
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, b)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var pe *command.ParamError
	switch {
	case errors.Is(err, command.ErrNoEntry):
		code = http.StatusNotFound
	case errors.As(err, &pe):
		code = http.StatusBadRequest
	case errors.Is(err, command.ErrNotFound), errors.Is(err, command.ErrUnavailable):
		code = http.StatusNotImplemented
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiTable runs a table command and answers {"rows":[{column: value}…]}.
func (s *Server) apiTable(name, opts string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.run(httpauth.RequestContext(r), name, opts)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"rows": rowMaps(res), "now": time.Now()})
	}
}

// rowMaps turns a table result into one map per row, column name to
// value; any other result gives no rows.
func rowMaps(res command.Result) []map[string]any {
	rows := []map[string]any{}
	t, ok := res.(*command.Table)
	if !ok {
		return rows
	}
	names := t.Names()
	cells := make([]command.Cell, len(names))
	for i := 0; i < t.Len; i++ {
		t.Fill(i, cells)
		row := make(map[string]any, len(names))
		for c, n := range names {
			row[n] = cells[c].Any()
		}
		rows = append(rows, row)
	}
	command.Release(res)
	return rows
}

// apiCalls answers listcalls like apiTable, each row with the call's SIP
// state ("calling", "ringing", "answered"; "" when calls_in_progress no
// longer lists it) as "state", which listcalls in the sniffer's shape has
// not.
func (s *Server) apiCalls(w http.ResponseWriter, r *http.Request) {
	ctx := httpauth.RequestContext(r)
	res, err := s.run(ctx, "listcalls", `{"limit":-1}`)
	if err != nil {
		s.fail(w, err)
		return
	}
	rows := rowMaps(res)
	state := map[any]any{}
	if res, err := s.run(ctx, "calls_in_progress"); err == nil {
		for _, p := range rowMaps(res) {
			state[p["callreference"]] = p["state"]
		}
	}
	for _, row := range rows {
		row["state"] = ""
		if st, ok := state[row["callreference"]]; ok {
			row["state"] = st
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rows": rows, "now": time.Now()})
}

// apiRef runs a command taking a callreference (?ref=) and answers its value.
func (s *Server) apiRef(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.run(httpauth.RequestContext(r), name, r.URL.Query().Get("ref"))
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// apiValue runs a command without parameters and answers its value.
func (s *Server) apiValue(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.run(httpauth.RequestContext(r), name)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func text(res command.Result) string {
	if t, ok := res.(command.Text); ok {
		return string(t)
	}
	return ""
}

// apiListen streams a call's audio as stereo frames over a chunked
// response until the client goes away or the call ends. Each chunk is a
// 4-byte frame count and an 8-byte server send time (Unix ns), both
// little-endian, then the frames as readaudio gives them to a stereo
// listener, so the page can measure capture-to-playback latency.
func (s *Server) apiListen(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ref := r.URL.Query().Get("ref")
	id := fmt.Sprintf("%s-%d", s.tag, s.seq.Add(1))
	res, err := s.run(ctx, "listen", ref, id, "stereo")
	if err != nil {
		s.fail(w, err)
		return
	}
	if reply := text(res); reply != "success" && reply != "call already listening" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": reply})
		return
	}
	defer s.run(context.WithoutCancel(ctx), "listen_stop", ref, id)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Listen-ID", id)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	var hdr [12]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		res, err := s.run(ctx, "readaudio", ref, id)
		if err != nil {
			return
		}
		b := text(res)
		if strings.HasPrefix(b, "information:") {
			continue
		}
		if strings.HasPrefix(b, "error:") {
			return // call ended or listener dropped
		}
		binary.LittleEndian.PutUint32(hdr[:], uint32(len(b)/stereoFrameBytes))
		binary.LittleEndian.PutUint64(hdr[4:], uint64(time.Now().UnixNano()))
		rc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := w.Write(hdr[:]); err != nil {
			return
		}
		if _, err := w.Write([]byte(b)); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// stereoFrameBytes is the size of one stereo frame of readaudio for a
// stereo listener: an 8-byte capture time and 160 caller/callee s16le
// sample pairs (20 ms).
const stereoFrameBytes = 8 + 160*4

// apiChunk is the ChunkPlayer-compatible API: /api/chunk/listen,
// /api/chunk/read and /api/chunk/stop with callref, sensor_id and id
// parameters, answering the manager commands' replies as they are (raw
// PCM for read, or the text).
func (s *Server) apiChunk(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, id, sensor := q.Get("callref"), q.Get("id"), q.Get("sensor_id")
	if sensor != "" && s.cfg.SensorID > 0 && sensor != fmt.Sprint(s.cfg.SensorID) {
		http.Error(w, "error: unknown sensor id "+sensor, http.StatusNotFound)
		return
	}
	var name string
	switch r.PathValue("op") {
	case "listen":
		name = "listen"
	case "read":
		name = "readaudio"
	case "stop":
		name = "listen_stop"
	default:
		http.NotFound(w, r)
		return
	}
	if id == "" || len(id) > 19 {
		http.Error(w, "error: id of 1 to 19 characters required", http.StatusBadRequest)
		return
	}
	res, err := s.run(httpauth.RequestContext(r), name, ref, id)
	if err != nil {
		http.Error(w, "error: "+err.Error(), http.StatusBadRequest)
		return
	}
	b := text(res)
	w.Header().Set("Cache-Control", "no-store")
	if name == "readaudio" && b != "" && !strings.HasPrefix(b, "information:") && !strings.HasPrefix(b, "error:") {
		w.Header().Set("Content-Type", "application/octet-stream")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Write([]byte(b))
}

var _ http.Handler = (*Server)(nil)
