package manager

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Defaults for [Config] zero values.
const (
	DefaultAddr         = "127.0.0.1:5029"
	DefaultMaxConns     = 1024
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleGap is how long a started request may pause before it is
	// taken as complete (legacy: 500 ms poll before each further read).
	DefaultIdleGap = 500 * time.Millisecond
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("manager: server closed")

// Wire texts of the legacy protocol.
const (
	replyNotFound   = "command not found\n"
	replyNeedAES    = "need aes!\n"
	replyFailedAES  = "failed aes decrypt!\n"
	replyTooLarge   = "error: request too large\n"
	replyPermission = "permission denied\n"
)

// noAESNeeded lists the commands a plaintext TCP request may run even when
// a key exists (legacy registerCommand third argument).
var noAESNeeded = map[string]bool{
	"getversion": true, "getbuild": true, "getverbuild": true, "totalcalls": true, "printspool": true,
	"sniffer_stat": true, "datadir_stat": true, "disk_io_calibration": true, "disk_io_recalibrate": true,
	"sniffer_threads": true, "memory_stat": true, "jemalloc_stat": true, "tcmalloc_stats": true,
	"heapprof_start": true, "heapprof_stop": true, "heapprof_dump": true, "thread": true, "usleep": true,
	"packetbuffer_log": true, "packetbuffer_save": true, "need_aes": true, "failed_aes_decrypt": true,
	"support_aes": true, "exists_aes_key": true, "manager_file": true, "sql_errors_skip": true,
}

// ListenAddr builds the TCP address from the managerip and managerport
// options; port 0 disables TCP and gives "".
func ListenAddr(ip string, port int) string {
	if port == 0 {
		return ""
	}
	if ip == "" {
		ip = "127.0.0.1"
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// Config configures a [Server]. Zero values take the defaults above.
type Config struct {
	// Addr is the TCP listen address used by Run ("" disables TCP; see
	// [ListenAddr]). Socket is the managersocket path ("" disables).
	Addr, Socket string
	// Key is the manager_aes_key/manager_aes_iv pair; when valid it
	// overrides KeyStore.
	Key Key
	// KeyStore, if set, provides the GUI-stored key (system.manager_key).
	KeyStore KeyStore
	// KeyTTL bounds how long a KeyStore answer is cached.
	KeyTTL time.Duration
	// EnableUnencrypted accepts plaintext TCP requests for every command.
	EnableUnencrypted bool
	// Perm is granted to every request; 0 means command.PermAll (the
	// legacy protocol has no login).
	Perm command.Perm
	// MaxConns caps concurrent connections; excess ones are closed at once.
	MaxConns int
	// MaxRequest bounds one request in bytes (default MaxRequestSize).
	MaxRequest int
	// ReadTimeout bounds reading one request; WriteTimeout bounds each
	// write of the reply (refreshed per write, so a reader that keeps
	// reading is never cut off); IdleGap ends a request that paused.
	ReadTimeout, WriteTimeout, IdleGap time.Duration
	// Logger receives connection-level errors; nil discards them.
	Logger *slog.Logger
}

// Server serves the manager protocol. Create it with [New]; it starts no
// goroutines until Serve or Run. Safe for concurrent use.
type Server struct {
	reg  *command.Registry
	cfg  Config
	keys *keyCache
	log  *slog.Logger
	sem  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	fileSock  net.Listener
	closed    bool
	wg        sync.WaitGroup

	rejected    atomic.Uint64
	served      atomic.Uint64
	unencrypted atomic.Bool // cfg.EnableUnencrypted, changeable by Reconfigure
}

// Reconfigure applies the settings that may change while serving (a
// configuration reload): the configured AES key and whether plaintext TCP
// requests are accepted. A zero key falls back to the KeyStore.
func (s *Server) Reconfigure(key Key, enableUnencrypted bool) error {
	if key.Key != nil && !key.Valid() {
		return fmt.Errorf("manager: configured aes key/iv too short")
	}
	s.keys.setStatic(key)
	s.unencrypted.Store(enableUnencrypted)
	return nil
}

// New returns a Server dispatching to reg.
func New(reg *command.Registry, cfg Config) (*Server, error) {
	if cfg.Key.Key != nil && !cfg.Key.Valid() {
		return nil, fmt.Errorf("manager: configured aes key/iv too short")
	}
	if cfg.Perm == 0 {
		cfg.Perm = command.PermAll
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = MaxRequestSize
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleGap <= 0 {
		cfg.IdleGap = DefaultIdleGap
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = DefaultKeyTTL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		reg:       reg,
		cfg:       cfg,
		keys:      &keyCache{static: cfg.Key, store: cfg.KeyStore, ttl: cfg.KeyTTL},
		log:       log.With("transport", "manager"),
		sem:       make(chan struct{}, cfg.MaxConns),
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}
	s.unencrypted.Store(cfg.EnableUnencrypted)
	return s, nil
}

// Stats reports how many connections were served and how many were
// rejected because MaxConns was reached.
func (s *Server) Stats() (served, rejected uint64) { return s.served.Load(), s.rejected.Load() }

// Listen binds cfg.Addr (TCP) and cfg.Socket (unix, mode 0600), so that
// bind errors surface at start and the bound addresses are known; pass the
// result to [Server.RunListeners].
func (s *Server) Listen() ([]net.Listener, error) {
	var ls []net.Listener
	if s.cfg.Addr != "" {
		l, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
		ls = append(ls, l)
	}
	if s.cfg.Socket != "" {
		l, err := listenUnix(s.cfg.Socket)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Run listens on cfg.Addr and cfg.Socket, serves until ctx is done, then
// shuts down, giving running commands 5 s to finish.
func (s *Server) Run(ctx context.Context) error {
	ls, err := s.Listen()
	if err != nil {
		return err
	}
	return s.RunListeners(ctx, ls)
}

// RunListeners serves ls until ctx is done, then shuts down, giving
// running commands 5 s to finish.
func (s *Server) RunListeners(ctx context.Context, ls []net.Listener) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- s.Serve(l) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := s.Shutdown(sctx); err == nil {
		err = serr
	}
	if errors.Is(err, ErrServerClosed) {
		err = nil
	}
	return err
}

// listenUnix binds a unix stream socket with mode 0600, replacing a stale
// socket file at path.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("manager: %w", err)
	}
	return l, nil
}

// Serve accepts connections on l until Shutdown or a permanent accept
// error. Requests on a unix listener never need AES.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	local := l.Addr().Network() == "unix"
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed && !errors.Is(err, net.ErrClosed) && isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed", "err", err, "retry", backoff)
				time.Sleep(backoff)
				continue
			}
			s.mu.Lock()
			delete(s.listeners, l)
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			return fmt.Errorf("manager: accept: %w", err)
		}
		backoff = 0
		select {
		case s.sem <- struct{}{}:
		default:
			s.rejected.Add(1)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			<-s.sem
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c, local)
	}
}

// isTemporary reports accept errors worth retrying (EMFILE, ECONNABORTED…).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown closes the listeners (including a manager_file socket), lets
// running commands finish until ctx is done, then closes the remaining
// connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	if s.fileSock != nil {
		s.fileSock.Close()
		s.fileSock = nil
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func (s *Server) release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	<-s.sem
	s.wg.Done()
}

// accept is the framer's AES candidate check: does ct decrypt under the
// cached key? Without a key the first aligned candidate is taken (and
// then fails to decrypt).
func (s *Server) accept(cipherName string, ct []byte) bool {
	k, ok := s.keys.get(s.ctx, false)
	if !ok {
		return true
	}
	_, err := k.Decrypt(cipherName, ct)
	return err == nil
}

func (s *Server) handle(c net.Conn, local bool) {
	defer s.release(c)
	s.served.Add(1)
	deadline := time.Now().Add(s.cfg.ReadTimeout)
	c.SetReadDeadline(deadline)
	f := Framer{Max: s.cfg.MaxRequest, Accept: s.accept}
	buf := make([]byte, 512) // small until the client sends something
	for !f.Done() {
		n, err := c.Read(buf)
		if n > 0 {
			if _, ferr := f.Write(buf[:n]); ferr != nil {
				s.log.Info("request rejected", "remote", c.RemoteAddr(), "reason", ferr)
				s.writeRaw(c, replyTooLarge)
				return
			}
			if len(buf) < 4096 {
				buf = make([]byte, 4096)
			}
			idle := time.Now().Add(s.cfg.IdleGap)
			if idle.After(deadline) {
				idle = deadline
			}
			c.SetReadDeadline(idle)
		}
		if err != nil && !f.Done() {
			if f.Len() == 0 {
				return // idle, half-closed or timed out with nothing: no reply
			}
			break // EOF or idle gap: take what we have
		}
	}
	fr, err := f.End()
	if err != nil {
		s.writeRaw(c, replyFailedAES)
		return
	}
	s.execute(c, fr, local)
}

// execute decrypts the frame, applies the AES gate, runs the command and
// writes the reply.
func (s *Server) execute(c net.Conn, fr Frame, local bool) {
	ctx := s.ctx
	var key Key
	data := fr.Data
	if fr.Encrypted() {
		var ok bool
		var err error
		if key, ok = s.keys.get(ctx, false); ok {
			data, err = key.Decrypt(fr.Cipher, fr.Data)
		}
		if !ok || err != nil {
			// Retry once with a freshly loaded key, as the legacy server does.
			if key, ok = s.keys.get(ctx, true); ok {
				data, err = key.Decrypt(fr.Cipher, fr.Data)
			}
		}
		if !ok || err != nil {
			s.writeRaw(c, replyFailedAES)
			return
		}
	}
	line := requestLine(data)
	name, args := command.ParseLine(line)
	cmd, ok := s.lookup(name)
	w := s.replyWriter(c, fr, key)
	if !ok || name == "" {
		w.text(replyNotFound)
		w.close()
		return
	}
	if !local && !fr.Encrypted() && !s.unencrypted.Load() && !noAESNeeded[cmd.Name] {
		if _, has := s.keys.get(ctx, false); has {
			w.text(replyNeedAES)
			w.close()
			return
		}
	}
	req := &command.Request{Name: cmd.Name, Args: args, Transport: "manager", Perm: s.cfg.Perm}
	res, err := s.reg.Run(ctx, req)
	if err != nil {
		w.text(errorText(cmd.Name, err))
	} else {
		render(w, req, res)
		command.Release(res)
	}
	if err := w.close(); err != nil {
		s.log.Info("reply failed", "remote", c.RemoteAddr(), "command", cmd.Name, "err", err)
	}
}

// requestLine applies the legacy cuts: drop everything from the first
// "\r\n\r\n", then cut at the first '\r', '\n' or NUL.
func requestLine(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		s = s[:i]
	}
	return s
}

// lookup finds name exactly, else the first registered name (in
// alphabetical order) contained in it, as the legacy find_mgmt_cmd does.
// Unlike the legacy server only the command word is searched, never its
// arguments, so JSON text mentioning "reload" cannot run reload.
func (s *Server) lookup(name string) (command.Command, bool) {
	if c, ok := s.reg.Lookup(name); ok {
		return c, true
	}
	for _, c := range s.reg.All() {
		if strings.Contains(name, c.Name) {
			return c, true
		}
	}
	return command.Command{}, false
}

// errorText maps command errors to manager reply text.
func errorText(name string, err error) string {
	switch {
	case errors.Is(err, command.ErrNotFound):
		return replyNotFound
	case errors.Is(err, command.ErrPermission):
		return replyPermission
	case errors.Is(err, command.ErrNoEntry) && name == "active_call_info":
		return "call not found"
	}
	return "error: " + err.Error() + "\n"
}

func (s *Server) writeRaw(c net.Conn, text string) {
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	io.WriteString(c, text)
}

// deadlineWriter refreshes the write deadline before every write, so that
// a client that stops reading is cut off after WriteTimeout.
type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(d.d))
	return d.c.Write(p)
}

// replyWriter is the output chain: renderer → [gzip] → [aes] → bufio → conn.
type replyWriter struct {
	bw   *bufio.Writer
	aes  io.WriteCloser
	gz   *gzip.Writer
	out  io.Writer // current head of the chain
	err  error
	head []byte // written before anything else ("aes:")
}

func (s *Server) replyWriter(c net.Conn, fr Frame, key Key) *replyWriter {
	w := &replyWriter{bw: bufio.NewWriterSize(deadlineWriter{c, s.cfg.WriteTimeout}, 64<<10)}
	w.out = w.bw
	if fr.Encrypted() {
		w.bw.WriteString("aes:")
		aw, err := key.NewWriter(w.bw, fr.Cipher)
		if err != nil {
			w.err = err
		} else {
			w.aes = aw
			w.out = aw
		}
	}
	return w
}

// gzip switches the chain to compress everything written from now on.
func (w *replyWriter) gzip() {
	if w.gz == nil {
		w.gz = gzip.NewWriter(w.out)
		w.out = w.gz
	}
}

func (w *replyWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.out.Write(p)
	w.err = err
	return n, err
}

func (w *replyWriter) text(s string) { io.WriteString(w, s) }

func (w *replyWriter) close() error {
	if w.gz != nil && w.err == nil {
		w.err = w.gz.Close()
	}
	if w.aes != nil && w.err == nil {
		w.err = w.aes.Close()
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// StartSocket implements the manager_file start command: it serves the
// protocol on an extra unix socket at path (a fresh temporary path when
// empty) and returns the path. Only one such socket runs at a time.
func (s *Server) StartSocket(path string) (string, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrServerClosed
	}
	if s.fileSock != nil {
		s.mu.Unlock()
		return "", errors.New("manager: manager_file socket already running")
	}
	s.mu.Unlock()
	if path == "" {
		dir, err := os.MkdirTemp("", "voipsensor-manager-")
		if err != nil {
			return "", fmt.Errorf("manager: %w", err)
		}
		path = filepath.Join(dir, "manager.sock")
	}
	l, err := listenUnix(path)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.fileSock != nil || s.closed {
		s.mu.Unlock()
		l.Close()
		return "", errors.New("manager: manager_file socket already running")
	}
	s.fileSock = l
	s.mu.Unlock()
	go s.Serve(l)
	return path, nil
}

// StopSocket stops the socket started by StartSocket.
func (s *Server) StopSocket() error {
	s.mu.Lock()
	l := s.fileSock
	s.fileSock = nil
	s.mu.Unlock()
	if l == nil {
		return errors.New("manager: manager_file socket not running")
	}
	return l.Close()
}

// SupportAES reports whether AES is possible: a key is configured or a
// KeyStore is wired (legacy support_aes).
func (s *Server) SupportAES() bool { return s.keys.supported() }

// ExistsAESKey reloads the key and reports whether one exists (legacy
// exists_aes_key).
func (s *Server) ExistsAESKey(ctx context.Context) bool {
	_, ok := s.keys.get(ctx, true)
	return ok
}
