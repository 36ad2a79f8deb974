package manager

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Defaults for [Config] zero values.
const (
	DefaultAddr         = "127.0.0.1:5029"
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleGap is how long a started request may pause before it is
	// taken as complete (legacy: 500 ms poll before each further read).
	DefaultIdleGap = 500 * time.Millisecond
	// DefaultMaxConnsPerAddr caps the connections one TCP client address
	// may hold at once (every manager connection is one request, so a GUI
	// server polling for many users stays well under it).
	DefaultMaxConnsPerAddr = 64
	// DefaultUnixMaxConns is the unix socket's own cap: whatever floods
	// the TCP port, the local administrator gets in.
	DefaultUnixMaxConns = 256
)

// ErrServerClosed is returned by Run when Listen was never called, and
// by StartSocket once the server has stopped.
var ErrServerClosed = errors.New("manager: server closed")

// ErrNoSocketDir means manager_file was asked for a socket but the
// configuration names no directory to create it in.
var ErrNoSocketDir = errors.New("manager: manager_file: no socket directory configured (set manager_file_dir or managersocket)")

// Wire texts of the legacy protocol.
const (
	replyNotFound   = "command not found\n"
	replyNeedAES    = "need aes!\n"
	replyFailedAES  = "failed aes decrypt!\n"
	replyTooLarge   = "error: request too large\n"
	replyPermission = "permission denied\n"
	replyInternal   = "error: internal error\n"
)

// noAESNeeded lists the commands a plaintext TCP request may run even when
// a key exists (legacy registerCommand third argument). manager_file is
// not among them, unlike in the sniffer: it opens an unauthenticated door
// (a unix socket needs no AES), so it needs the same authority as reload.
var noAESNeeded = map[string]bool{
	"getversion": true, "getbuild": true, "getverbuild": true, "totalcalls": true, "printspool": true,
	"sniffer_stat": true, "datadir_stat": true, "disk_io_calibration": true, "disk_io_recalibrate": true,
	"sniffer_threads": true, "memory_stat": true, "jemalloc_stat": true, "tcmalloc_stats": true,
	"heapprof_start": true, "heapprof_stop": true, "heapprof_dump": true, "thread": true, "usleep": true,
	"packetbuffer_log": true, "packetbuffer_save": true, "need_aes": true, "failed_aes_decrypt": true,
	"support_aes": true, "exists_aes_key": true, "sql_errors_skip": true,
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
	// Addr is the TCP listen address ("" disables TCP; see [ListenAddr]).
	// Socket is the managersocket path ("" disables).
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
	// legacy protocol has no login: the AES key is its credential).
	Perm command.Perm
	// TCPLimits and UnixLimits bound each listener on its own (conn.Limits;
	// FirstRequest is the time to a complete request). Zero fields take
	// the kit's defaults, except the per-address cap on TCP
	// (DefaultMaxConnsPerAddr) and the unix cap (DefaultUnixMaxConns).
	TCPLimits, UnixLimits conn.Limits
	// SocketDir is the only directory manager_file may create sockets in;
	// "" means the directory of Socket, and without Socket manager_file is
	// refused.
	SocketDir string
	// MaxRequest bounds one request in bytes (default MaxRequestSize).
	MaxRequest int
	// WriteTimeout bounds each write of the reply (refreshed per write, so
	// a reader that keeps reading is never cut off); IdleGap ends a
	// request that paused.
	WriteTimeout, IdleGap time.Duration
	// Logger receives connection-level errors; nil discards them.
	Logger *slog.Logger
}

// Server serves the manager protocol: [New], [Server.Listen],
// [Server.Run]. Safe for concurrent use.
type Server struct {
	reg  *command.Registry
	cfg  Config
	keys *keyCache
	log  *slog.Logger

	ctx    context.Context // commands run in it; cancelled when Run returns
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners []*conn.Listener
	runCtx    context.Context // set while Run runs, for manager_file sockets
	file      *fileSocket
	wg        sync.WaitGroup // manager_file sockets being served

	unencrypted atomic.Bool // cfg.EnableUnencrypted, changeable by Reconfigure
}

// fileSocket is a manager_file socket being served.
type fileSocket struct {
	path string
	l    *conn.Listener
	stop context.CancelFunc
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

// New returns a Server dispatching to reg. It binds and starts nothing.
func New(reg *command.Registry, cfg Config) (*Server, error) {
	if cfg.Key.Key != nil && !cfg.Key.Valid() {
		return nil, fmt.Errorf("manager: configured aes key/iv too short")
	}
	if cfg.Perm == 0 {
		cfg.Perm = command.PermAll
	}
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = MaxRequestSize
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
	if cfg.TCPLimits.MaxUnauthPerAddr == 0 {
		cfg.TCPLimits.MaxUnauthPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.UnixLimits.MaxConns == 0 {
		cfg.UnixLimits.MaxConns = DefaultUnixMaxConns
	}
	if cfg.SocketDir == "" && cfg.Socket != "" {
		cfg.SocketDir = filepath.Dir(cfg.Socket)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		reg:    reg,
		cfg:    cfg,
		keys:   &keyCache{static: cfg.Key, store: cfg.KeyStore, ttl: cfg.KeyTTL},
		log:    log,
		ctx:    ctx,
		cancel: cancel,
	}
	s.unencrypted.Store(cfg.EnableUnencrypted)
	return s, nil
}

// Listen binds cfg.Addr (TCP) and cfg.Socket (unix, mode 0600, never over
// somebody else's file), so that bind errors surface at start.
func (s *Server) Listen() error {
	var ls []*conn.Listener
	fail := func(err error) error {
		for _, l := range ls {
			l.Close()
		}
		return err
	}
	if s.cfg.Addr != "" {
		l, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fail(fmt.Errorf("manager: %w", err))
		}
		ls = append(ls, s.wrap(l, s.cfg.TCPLimits, "manager tcp"))
	}
	if s.cfg.Socket != "" {
		l, err := conn.ListenUnixStream(s.cfg.Socket)
		if err != nil {
			return fail(fmt.Errorf("manager: managersocket: %w", err))
		}
		ls = append(ls, s.wrap(l, s.cfg.UnixLimits, "manager unix"))
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, ls...)
	s.mu.Unlock()
	return nil
}

func (s *Server) wrap(l net.Listener, lim conn.Limits, name string) *conn.Listener {
	return conn.New(l, lim, conn.Options{Name: name, Logger: s.log,
		OnPanic: func(c *conn.Conn) { io.WriteString(c, replyInternal) }})
}

// Addrs returns the bound addresses.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Close releases what Listen bound, for a server discarded before Run.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.Close()
	}
	return nil
}

// Run serves every bound listener until ctx is done, then stops
// accepting, lets the requests in progress finish (each listener's
// Drain) and returns. Commands still running after that see their
// context cancelled.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	ls := s.listeners
	s.runCtx = ctx
	s.mu.Unlock()
	if len(ls) == 0 {
		<-ctx.Done()
		s.cancel()
		return nil
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- l.Serve(ctx, s.handle) }()
	}
	var err error
	for range ls {
		err = errors.Join(err, <-errc)
	}
	s.StopSocket()
	s.wg.Wait()
	s.cancel()
	return err
}

// Stats sums the counters of the manager's listeners.
func (s *Server) Stats() conn.Stats {
	s.mu.Lock()
	ls := append([]*conn.Listener(nil), s.listeners...)
	if s.file != nil {
		ls = append(ls, s.file.l)
	}
	s.mu.Unlock()
	return conn.Sum(ls)
}

// Execute runs one complete request as if it had arrived on a connection
// and writes the reply to w: the server API relays the GUI's commands
// through it. trusted requests skip the AES gate, as the unix socket's do
// (the relay has authenticated its peer).
func (s *Server) Execute(ctx context.Context, w io.Writer, request []byte, trusted bool) error {
	f := Framer{Max: s.cfg.MaxRequest, Accept: s.accept}
	if _, err := f.Write(request); err != nil {
		_, werr := io.WriteString(w, replyTooLarge)
		return werr
	}
	fr, err := f.End()
	if err != nil {
		_, werr := io.WriteString(w, replyFailedAES)
		return werr
	}
	return s.execute(ctx, w, fr, trusted, "relay")
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

// handle serves one connection: one request, one reply, as the legacy
// server does. The kit closes a connection that sends no complete request
// within its first-request deadline.
func (s *Server) handle(ctx context.Context, c *conn.Conn) {
	f := Framer{Max: s.cfg.MaxRequest, Accept: s.accept}
	buf := make([]byte, 512) // small until the client sends something
	for !f.Done() {
		n, err := c.Read(buf)
		if n > 0 {
			if _, ferr := f.Write(buf[:n]); ferr != nil {
				s.log.Info("request rejected", "remote", c.RemoteString(), "reason", ferr)
				s.writeRaw(c, replyTooLarge)
				c.Close(conn.ClosedTooLarge)
				return
			}
			if len(buf) < 4096 {
				buf = make([]byte, 4096)
			}
			c.SetReadDeadline(time.Now().Add(s.cfg.IdleGap))
		}
		if err != nil && !f.Done() {
			if f.Len() == 0 {
				// Idle, half-closed or woken by a shutdown with nothing:
				// no reply.
				if c.Draining() {
					c.Close(conn.ClosedShutdown)
				} else {
					c.Close(conn.ClosedClient)
				}
				return
			}
			break // EOF, idle gap or a drain: take what we have
		}
	}
	c.Started()
	fr, err := f.End()
	if err != nil {
		s.writeRaw(c, replyFailedAES)
		return
	}
	if err := s.execute(s.ctx, c, fr, c.Unix(), c.RemoteString()); err != nil {
		c.Close(conn.ClosedWriteError)
	}
}

// execute decrypts the frame, applies the AES gate (skipped for local),
// runs the command and writes the reply to out.
func (s *Server) execute(ctx context.Context, out io.Writer, fr Frame, local bool, remote string) error {
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
			s.writeRaw(out, replyFailedAES)
			return nil
		}
	}
	line := requestLine(data)
	name, args := command.ParseLine(line)
	cmd, ok := s.lookup(name)
	w := s.replyWriter(out, fr, key)
	if !ok || name == "" {
		w.text(replyNotFound)
		return w.close()
	}
	if !strings.HasPrefix(line, cmd.Name) {
		args = legacyArgs(cmd.Name, line, args)
	}
	if !local && !fr.Encrypted() && !s.unencrypted.Load() && !noAESNeeded[cmd.Name] {
		if _, has := s.keys.get(ctx, false); has {
			w.text(replyNeedAES)
			return w.close()
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
		s.log.Info("reply failed", "remote", remote, "command", cmd.Name, "err", err)
		return err
	}
	return nil
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

// legacyArgOffsets are the commands whose sniffer handler reads its
// parameter text at a fixed offset from the start of the request, not
// after the command word: listcalls at strlen("listcalls") (then skipping
// spaces), listregisters one byte further.
var legacyArgOffsets = map[string]struct {
	extra      int
	skipSpaces bool
}{
	"listcalls":     {0, true},
	"listregisters": {1, false},
}

// legacyArgs returns the arguments of a request that does not start with
// its command's name (leading white space, or the name found inside a
// longer word) as the sniffer reads them: for the commands in
// legacyArgOffsets, the text at the fixed offset, so that " listcalls"
// gives listcalls the parameter "s" (not JSON, ignored, but the totals
// element comes, as the sniffer's does); other commands keep args.
func legacyArgs(name, line string, args []string) []string {
	off, ok := legacyArgOffsets[name]
	if !ok {
		return args
	}
	text := ""
	if i := len(name) + off.extra; i < len(line) {
		text = line[i:]
	}
	if off.skipSpaces {
		text = strings.TrimLeft(text, " ")
	}
	if text == "" {
		return nil
	}
	return []string{text}
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
	case errors.Is(err, command.ErrInternal):
		return replyInternal
	}
	return "error: " + err.Error() + "\n"
}

func (s *Server) writeRaw(w io.Writer, text string) {
	if c, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	}
	io.WriteString(w, text)
}

// deadlineWriter refreshes the write deadline before every write, so that
// a client that stops reading is cut off after WriteTimeout. Writers
// without deadlines (a relay's buffer) are written as they are.
type deadlineWriter struct {
	w io.Writer
	d time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if c, ok := d.w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		c.SetWriteDeadline(time.Now().Add(d.d))
	}
	return d.w.Write(p)
}

// replyWriter is the output chain: renderer → [gzip] → [aes] → bufio → conn.
type replyWriter struct {
	bw  *bufio.Writer
	aes io.WriteCloser
	gz  *gzip.Writer
	out io.Writer // current head of the chain
	err error
}

func (s *Server) replyWriter(out io.Writer, fr Frame, key Key) *replyWriter {
	w := &replyWriter{bw: bufio.NewWriterSize(deadlineWriter{out, s.cfg.WriteTimeout}, 64<<10)}
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

// StartSocket implements manager_file start: it serves the protocol on an
// extra unix socket and returns its path. The socket is created only in
// cfg.SocketDir (a bare name or a path directly inside it; empty picks a
// fresh name there), with mode 0600, never over an existing file other
// than a stale socket of this user's, and it is removed when stopped only
// if it is still the one created. Only one such socket runs at a time,
// and only while Run runs.
func (s *Server) StartSocket(path string) (string, error) {
	dir := s.cfg.SocketDir
	if dir == "" {
		return "", ErrNoSocketDir
	}
	if path == "" {
		var rnd [6]byte
		rand.Read(rnd[:])
		path = filepath.Join(dir, "manager-file-"+hex.EncodeToString(rnd[:])+".sock")
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	path = filepath.Clean(path)
	if filepath.Dir(path) != filepath.Clean(dir) {
		return "", fmt.Errorf("manager: manager_file: %s is outside the socket directory %s", path, dir)
	}
	s.mu.Lock()
	ctx := s.runCtx
	busy := s.file != nil
	s.mu.Unlock()
	if ctx == nil || ctx.Err() != nil {
		return "", ErrServerClosed
	}
	if busy {
		return "", errors.New("manager: manager_file socket already running")
	}
	l, err := conn.ListenUnixStream(path)
	if err != nil {
		return "", fmt.Errorf("manager: manager_file: %w", err)
	}
	fctx, stop := context.WithCancel(ctx)
	fs := &fileSocket{path: path, l: s.wrap(l, s.cfg.UnixLimits, "manager file"), stop: stop}
	s.mu.Lock()
	if s.file != nil {
		s.mu.Unlock()
		stop()
		l.Close()
		return "", errors.New("manager: manager_file socket already running")
	}
	s.file = fs
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fs.l.Serve(fctx, s.handle)
	}()
	s.log.Info("manager_file socket started", "path", path)
	return path, nil
}

// StopSocket stops the socket started by StartSocket and removes it.
func (s *Server) StopSocket() error {
	s.mu.Lock()
	fs := s.file
	s.file = nil
	s.mu.Unlock()
	if fs == nil {
		return errors.New("manager: manager_file socket not running")
	}
	fs.stop()
	return nil
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
