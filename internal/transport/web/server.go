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
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
)

//go:embed static
var staticFS embed.FS

// ErrNoAuth is returned by [New] for a non-loopback address without a
// token or user and password.
var ErrNoAuth = errors.New("web: a token or user and password is required on a non-loopback address")

// Config configures the web console.
type Config struct {
	// Addr is host:port to listen on (":0" picks a port).
	Addr string
	// Token, when set, is accepted as "Authorization: Bearer …", as the
	// vs_token cookie, or once as ?token=… (which sets the cookie).
	Token string
	// User and Password, when set, are accepted as HTTP basic auth.
	User, Password string
	// SensorID is this sensor's id_sensor; the player page accepts it or
	// an empty id.
	SensorID int
	// Poll is how often a listen stream polls for audio (20 ms).
	Poll time.Duration
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the web console: static pages embedded in the binary and a
// small JSON API over the command registry. Safe for concurrent use.
type Server struct {
	reg  *command.Registry
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	seq  atomic.Uint64
	tag  string // random prefix of listen ids, unique per process
	auth bool
}

// New returns a server over reg. It fails with [ErrNoAuth] when cfg.Addr
// is not a loopback address and no credentials are configured.
func New(reg *command.Registry, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	s := &Server{reg: reg, cfg: cfg, log: cfg.Logger, auth: cfg.Token != "" || cfg.User != ""}
	if !s.auth && !IsLoopback(cfg.Addr) {
		return nil, ErrNoAuth
	}
	var b [3]byte
	rand.Read(b[:])
	s.tag = "w" + hex.EncodeToString(b[:])
	sub, _ := fs.Sub(staticFS, "static")
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /", http.FileServerFS(sub))
	s.mux.HandleFunc("GET /api/calls", s.apiTable("listcalls", `{"limit":-1}`))
	s.mux.HandleFunc("GET /api/registrations", s.apiTable("listregisters", `{}`))
	s.mux.HandleFunc("GET /api/call", s.apiRef("active_call_info"))
	s.mux.HandleFunc("GET /api/ladder", s.apiRef("sip_ladder"))
	s.mux.HandleFunc("GET /api/stat", s.apiStat)
	s.mux.HandleFunc("GET /api/listen", s.apiListen)
	s.mux.HandleFunc("GET /api/chunk/{op}", s.apiChunk)
	return s, nil
}

// IsLoopback reports whether host:port names a loopback address
// ("localhost" counts; an empty host, which binds every address, does not).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// ServeHTTP authenticates and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	h.Set("Referrer-Policy", "no-referrer")
	if s.auth && !s.authorized(w, r) {
		if s.cfg.User != "" {
			h.Set("WWW-Authenticate", `Basic realm="voipsensor"`)
		}
		http.Error(w, "web: unauthorized", http.StatusUnauthorized)
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
			http.SetCookie(w, &http.Cookie{Name: "vs_token", Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
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

// Listen binds cfg.Addr.
func (s *Server) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return l, nil
}

// Serve serves l until ctx is done, then shuts down, giving open requests
// (listen streams end at once) two seconds.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A slow reader of a page or a JSON listing is cut off; the
		// listen stream extends its own deadline before every write.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 16 << 10,
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// run executes one command with the console's grants.
func (s *Server) run(ctx context.Context, name string, args ...string) (command.Result, error) {
	return s.reg.Run(ctx, &command.Request{Name: name, Args: args, Transport: "web", Perm: command.PermAll})
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
		if z, ok := res.(command.Gzip); ok {
			res = z.Result
		}
		rows := []map[string]any{}
		if t, ok := res.(*command.Table); ok {
			names := t.Names()
			for i := 0; i < t.Len; i++ {
				row := make(map[string]any, len(names))
				for c, n := range names {
					row[n] = t.Cell(c, i).Any()
				}
				rows = append(rows, row)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"rows": rows, "now": time.Now()})
	}
}

// apiRef runs a command taking a callreference (?ref=) and answers its value.
func (s *Server) apiRef(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.run(httpauth.RequestContext(r), name, r.URL.Query().Get("ref"))
		if err != nil {
			s.fail(w, err)
			return
		}
		if z, ok := res.(command.Gzip); ok {
			res = z.Result
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) apiStat(w http.ResponseWriter, r *http.Request) {
	res, err := s.run(httpauth.RequestContext(r), "listen_stat")
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
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
