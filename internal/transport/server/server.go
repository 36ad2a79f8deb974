package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Defaults for Config zero values.
const (
	DefaultPort           = 60024
	DefaultPingEvery      = 5 * time.Second
	DefaultPongTimeout    = 5 * time.Second
	DefaultTaskTimeout    = 5 * time.Minute
	DefaultDuplicateDelay = 5 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	// DefaultMaxConns caps the listener's connections; DefaultMaxUnauth
	// of them may be unauthenticated, so that logged-in sensors and
	// authorized GUI requests always find room during a flood.
	DefaultMaxConns  = 1024
	DefaultMaxUnauth = DefaultMaxConns * 3 / 4
	// DefaultMaxConnsPerAddr caps the unauthenticated connections of one
	// client address.
	DefaultMaxConnsPerAddr = 64
	// DefaultMaxResponse bounds one relayed command output, in bytes.
	DefaultMaxResponse = 256 << 20
	// maxTaskQueue bounds the commands waiting to be pushed to one sensor.
	maxTaskQueue = 64
	// maxServiceBlock bounds a block a sensor sends on its service channel.
	maxServiceBlock = 1 << 20
)

// Legacy reply texts (spec 7).
const (
	TextMissingService = "missing sniffer service - connect sensor?"
	TextTimeout        = "timeout"
	TextBadPassword    = "bad password"
	TextSameSensorID   = "client sensor_id must be different from receiver sensor_id"
	TextNeedAES        = "need aes!\n"
	TextFailedAES      = "failed aes decrypt!\n"
	TextOK             = "OK"
	// Replies of this implementation where the legacy server just closes.
	TextMalformed    = "error: malformed request"
	TextBadBlock     = "error: bad block"
	TextBadKeys      = "error: missing or short aes_ckey/aes_ivec"
	TextNoSensorID   = "error: missing sensor_id"
	TextSensorGone   = "error: sensor disconnected"
	TextSensorBusy   = "error: sensor busy"
	TextUnknownTask  = "unknown gui task id"
	TextInternal     = "error: internal error"
	textDuplicateFmt = "client with sensor_id %d is already connected, refusing connection"
)

// Relay errors.
var (
	// ErrNoService means no sensor with that id holds a service connection.
	ErrNoService = errors.New("server: missing sniffer service")
	// ErrTimeout means the sensor did not answer within the time limit.
	ErrTimeout = errors.New("server: sensor did not answer in time")
	// ErrServiceGone means the sensor disconnected before answering.
	ErrServiceGone = errors.New("server: sensor disconnected")
	// ErrBusy means too many commands are already queued for the sensor.
	ErrBusy = errors.New("server: sensor busy")
)

// Cipher is the manager AES key (manager_aes_key/manager_aes_iv) that
// gui_command requests may be wrapped with; manager.Key implements it.
type Cipher interface {
	Decrypt(cipherName string, ct []byte) ([]byte, error)
	Encrypt(cipherName string, pt []byte) ([]byte, error)
}

// Config configures a [Server]. Zero durations and sizes take the defaults
// above.
type Config struct {
	// Addr is the listen address (server_bind:server_bind_port).
	Addr string
	// Password is server_password: sensors must send it, and so must
	// gui_command and manager_command requests from another host unless
	// they are wrapped with ManagerKey (see [Server] for the rule).
	Password string
	// SensorID is the server's own id_sensor (-1 when unset); a sensor
	// with the same id is refused.
	SensorID int
	// ManagerKey, if non-nil, decrypts AES-wrapped gui_command requests;
	// plaintext requests for commands that need AES then get "need aes!".
	ManagerKey Cipher
	// ServiceRSABits sizes the service RSA key (default 4096).
	ServiceRSABits int
	// KeyRotation is how long one service RSA key pair serves before a
	// fresh one, made in the background, replaces it (default
	// DefaultKeyRotation); negative means never.
	KeyRotation time.Duration
	// PingEvery is the period of ping blocks on a service connection;
	// a sensor that sends nothing (no pong) for PingEvery+PongTimeout is
	// dropped.
	PingEvery, PongTimeout time.Duration
	// TaskTimeout bounds the wait for a relayed command's answer.
	TaskTimeout time.Duration
	// DuplicateDelay is waited before refusing a duplicate sensor id;
	// negative means no delay.
	DuplicateDelay time.Duration
	// ReadTimeout bounds a service handshake after its opening message
	// (the RSA key, then the sensor's RSA block); the opening message
	// itself must arrive within Limits.FirstRequest. WriteTimeout bounds
	// each write.
	ReadTimeout, WriteTimeout time.Duration
	// Limits bound the listener (conn.Limits: sessions, unauthenticated
	// sessions in all and per address, time to the opening message).
	// Zero fields take the kit's defaults, except MaxConns
	// (DefaultMaxConns), MaxUnauth (three quarters of MaxConns) and
	// MaxUnauthPerAddr (DefaultMaxConnsPerAddr).
	Limits conn.Limits
	// AuthDelay is how long a failed login (a bad password on a service
	// handshake or on a gui_command/manager_command request) waits
	// before its answer; each further failure from the same address
	// doubles it, up to AuthDelayMax. Defaults DefaultAuthDelay and
	// DefaultAuthDelayMax; a negative AuthDelay means no delay.
	AuthDelay, AuthDelayMax time.Duration
	// MaxResponse bounds one relayed output.
	MaxResponse int
	// OnConnect and OnDisconnect, if set, are called (from the connection's
	// goroutine) when a sensor's service starts and ends.
	OnConnect, OnDisconnect func(Service)
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
}

// Service describes a sensor connected over a service connection.
type Service struct {
	SensorID int
	// Name is the sensor_string the sensor sent (may be empty).
	Name string
	// Addr is the sensor's remote address.
	Addr    netip.AddrPort
	Version int64
	Since   time.Time
}

// Server is the central server of the server API. Create it with [New],
// bind with [Server.Listen], serve with [Server.Run]; it starts no
// goroutines before Listen. Safe for concurrent use.
//
// Sessions run on the transport session kit (package conn): a cap on the
// listener's connections and a lower one on those not logged in yet, a
// per-address cap on the latter, a deadline to the opening message,
// accept backoff when file descriptors run out, contained panics and a
// drain on shutdown. A sensor's service connection counts as logged in
// once its password is accepted, a gui_command or manager_command request
// once it is authorized (see authorize in auth.go), a response connection
// once it names a task in flight; failed passwords are answered only
// after a per-address delay ([Config.AuthDelay]).
type Server struct {
	cfg     Config
	log     *slog.Logger
	keys    *keyHolder
	auth    *authBackoff
	authLog conn.Throttle
	taskSeq atomic.Uint64

	// wait is the failed-login delay and local tells whether a client is
	// on this host; tests replace both.
	wait  func(ctx context.Context, d time.Duration) bool
	local func(c *conn.Conn) bool

	mu        sync.Mutex
	services  map[int]*svc
	tasks     map[string]*task
	listeners []*conn.Listener
}

// svc is one live service connection.
type svc struct {
	Service
	key   SessionKey
	conn  *conn.Conn
	queue chan []byte
	done  chan struct{}
	once  sync.Once
}

// stop marks the service ended: its writer and the relays waiting on it
// return.
func (v *svc) stop() { v.once.Do(func() { close(v.done) }) }

// kill ends the service and closes its session; the first reason given
// is the session's.
func (v *svc) kill(reason conn.ClosedState) {
	v.stop()
	v.conn.Close(reason)
}

// task is one relayed command waiting for its response connection.
type task struct {
	sv   *svc
	done chan taskResult // buffered 1
}

type taskResult struct {
	out []byte
	err error
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.ServiceRSABits == 0 {
		cfg.ServiceRSABits = ServiceRSABits
	}
	if cfg.ServiceRSABits < 1024 {
		return nil, fmt.Errorf("server: rsa key of %d bits is too small", cfg.ServiceRSABits)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.PingEvery, DefaultPingEvery)
	def(&cfg.PongTimeout, DefaultPongTimeout)
	def(&cfg.TaskTimeout, DefaultTaskTimeout)
	def(&cfg.DuplicateDelay, DefaultDuplicateDelay)
	def(&cfg.ReadTimeout, DefaultReadTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.KeyRotation, DefaultKeyRotation)
	def(&cfg.AuthDelay, DefaultAuthDelay)
	def(&cfg.AuthDelayMax, DefaultAuthDelayMax)
	cfg.AuthDelayMax = max(cfg.AuthDelayMax, cfg.AuthDelay)
	lim := &cfg.Limits
	if lim.MaxConns == 0 {
		lim.MaxConns = DefaultMaxConns
	}
	if lim.MaxUnauth == 0 && lim.MaxConns > 0 {
		lim.MaxUnauth = max(lim.MaxConns*3/4, 1)
	}
	if lim.MaxUnauthPerAddr == 0 {
		lim.MaxUnauthPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = DefaultMaxResponse
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, log: log.With("transport", "server"),
		keys:     newKeyHolder(cfg.ServiceRSABits, cfg.KeyRotation),
		auth:     newAuthBackoff(cfg.AuthDelay, cfg.AuthDelayMax),
		authLog:  conn.Throttle{Every: time.Second},
		wait:     sleepCtx,
		local:    (*conn.Conn).Local,
		services: map[int]*svc{},
		tasks:    map[string]*task{},
	}, nil
}

// Listen binds cfg.Addr, so that a bind error surfaces at start. It also
// starts generating the service RSA key in the background, so that the
// first sensor rarely waits for it.
func (s *Server) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.keys.start()
	return l, nil
}

// Run serves l under cfg.Limits until ctx is done, then stops accepting,
// ends the service connections, lets the other sessions finish (the
// kit's drain) and returns nil. Temporary accept errors (EMFILE, ENFILE)
// pause the listener instead of stopping it; a permanent one is returned.
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	x := conn.New(l, s.cfg.Limits, conn.Options{Name: "server", Logger: s.log,
		OnPanic: func(c *conn.Conn) { io.WriteString(c, TextInternal) }})
	s.mu.Lock()
	s.listeners = append(s.listeners, x)
	s.mu.Unlock()
	s.keys.start()
	return x.Serve(ctx, s.handle)
}

// Stats sums the counters of the listeners being served.
func (s *Server) Stats() conn.Stats {
	s.mu.Lock()
	ls := append([]*conn.Listener(nil), s.listeners...)
	s.mu.Unlock()
	return conn.Sum(ls)
}

// Active returns the connected sensors ordered by id.
func (s *Server) Active() []Service {
	s.mu.Lock()
	out := make([]Service, 0, len(s.services))
	for _, v := range s.services {
		out = append(out, v.Service)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].SensorID < out[j].SensorID })
	return out
}

// opening is the JSON of an opening message; fields of every type.
type opening struct {
	Type     string          `json:"type_connection"`
	Command  string          `json:"command"`
	SensorID json.RawMessage `json:"sensor_id"`
	TaskID   string          `json:"gui_task_id"`
	// Password is server_password on gui_command and manager_command
	// requests (an extension: the legacy GUI sends none; see authorize).
	Password string `json:"password"`
}

// handle serves one connection: it reads the opening message (within
// the kit's first-request deadline) and dispatches on its type.
func (s *Server) handle(ctx context.Context, c *conn.Conn) {
	f := firstFramer{accept: s.acceptAES}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			done, ferr := f.Write(buf[:n])
			if ferr != nil {
				s.reply(c, TextMalformed)
				c.Close(conn.ClosedTooLarge)
				return
			}
			if done {
				break
			}
		}
		if err != nil {
			if f.End(); len(f.msg) == 0 || c.Closed() {
				closeRead(c, err)
				return
			}
			break
		}
	}
	c.Started()
	msg, cipherName := f.msg, ""
	if isAESWrapped(msg) {
		var err error
		cipherName, msg, err = s.unwrapAES(msg)
		if err != nil {
			s.reply(c, TextFailedAES)
			c.Close(conn.ClosedProtocolError)
			return
		}
	}
	var op opening
	if err := json.Unmarshal(bytes.TrimSpace(msg), &op); err != nil {
		s.log.Info("malformed opening message", "remote", c.RemoteString(), "err", err)
		s.reply(c, TextMalformed)
		c.Close(conn.ClosedProtocolError)
		return
	}
	switch op.Type {
	case "manager_command", "gui_command":
		ok, byPassword := s.authorize(c, op, cipherName != "")
		if !ok {
			s.failLogin(ctx, c, op.Type, func() { s.reply(c, TextBadPassword) })
			return
		}
		if byPassword {
			s.auth.succeeded(c.Remote().Addr())
		}
		c.Authenticated()
		if op.Type == "manager_command" {
			s.managerCommand(c, op)
		} else {
			s.guiCommand(ctx, c, op, cipherName)
		}
	case "service":
		s.service(ctx, c, bufio.NewReader(io.MultiReader(bytes.NewReader(f.rest), c)))
	case "response":
		s.response(c, op, f.rest)
	default:
		// Unknown types close silently, as the legacy server does.
		s.log.Debug("unknown connection type", "remote", c.RemoteString(), "type", op.Type)
		c.Close(conn.ClosedProtocolError)
	}
}

// closeRead closes c after a failed read, with the reason it failed for.
func closeRead(c *conn.Conn, err error) {
	var ne net.Error
	switch {
	case c.Draining():
		c.Close(conn.ClosedShutdown)
	case errors.Is(err, io.EOF):
		c.Close(conn.ClosedClient)
	case errors.As(err, &ne) && ne.Timeout():
		c.Close(conn.ClosedFirstRequest)
	default:
		c.Close(conn.ClosedReadError)
	}
}

func (s *Server) acceptAES(cipherName string, ct []byte) bool {
	if s.cfg.ManagerKey == nil {
		return true
	}
	_, err := s.cfg.ManagerKey.Decrypt(cipherName, ct)
	return err == nil
}

func (s *Server) unwrapAES(msg []byte) (string, []byte, error) {
	name, ct := splitAES(msg)
	if s.cfg.ManagerKey == nil {
		return name, nil, ErrDecrypt
	}
	pt, err := s.cfg.ManagerKey.Decrypt(name, ct)
	return name, pt, err
}

// reply writes text and leaves the close to the caller.
func (s *Server) reply(c *conn.Conn, text string) {
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	io.WriteString(c, text)
}

// ActiveJSON renders the manager_command "active" reply.
func ActiveJSON(list []Service) []byte {
	type entry struct {
		IP       string `json:"ip"`
		Port     uint16 `json:"port"`
		SensorID int    `json:"sensor_id"`
	}
	var v struct {
		Count    int     `json:"count"`
		Services []entry `json:"services,omitempty"`
	}
	v.Count = len(list)
	for _, sv := range list {
		v.Services = append(v.Services, entry{sv.Addr.Addr().Unmap().String(), sv.Addr.Port(), sv.SensorID})
	}
	b, _ := json.Marshal(v)
	return b
}

func (s *Server) managerCommand(c *conn.Conn, op opening) {
	if op.Command != "active" {
		s.reply(c, "unknown command: "+op.Command)
		return
	}
	s.reply(c, string(ActiveJSON(s.Active())))
}

// parseSensorID accepts a JSON number or a string holding one.
func parseSensorID(raw json.RawMessage) (int, bool) {
	t := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.Atoi(t)
	return n, err == nil
}

func (s *Server) guiCommand(ctx context.Context, c *conn.Conn, op opening, cipherName string) {
	out := s.guiAnswer(ctx, op, cipherName)
	if cipherName != "" {
		ct, err := s.cfg.ManagerKey.Encrypt(cipherName, out)
		if err != nil {
			s.reply(c, TextFailedAES)
			return
		}
		out = append([]byte("aes:"), ct...)
	}
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := c.Write(out); err != nil {
		c.Close(conn.ClosedWriteError)
	}
}

func (s *Server) guiAnswer(ctx context.Context, op opening, cipherName string) []byte {
	id, ok := parseSensorID(op.SensorID)
	if !ok {
		return []byte(TextNoSensorID)
	}
	if cipherName == "" && s.cfg.ManagerKey != nil && !noAESNeeded(op.Command) {
		return []byte(TextNeedAES)
	}
	out, err := s.Relay(ctx, id, op.Command)
	switch {
	case errors.Is(err, ErrNoService):
		return []byte(TextMissingService)
	case errors.Is(err, ErrTimeout):
		return []byte(TextTimeout)
	case errors.Is(err, ErrBusy):
		return []byte(TextSensorBusy)
	case err != nil:
		return []byte(TextSensorGone)
	}
	return out
}

// noAESNeeded lists the manager commands a plaintext request may run even
// when a manager key exists (spec 2.1), less manager_file: the legacy
// list has it, but it opens a socket serving every command, so a relayed
// manager_file needs the same authority as reload.
func noAESNeeded(line string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch name {
	case "getversion", "getbuild", "getverbuild", "totalcalls", "printspool", "sniffer_stat",
		"datadir_stat", "disk_io_calibration", "disk_io_recalibrate", "sniffer_threads",
		"memory_stat", "jemalloc_stat", "tcmalloc_stats", "heapprof_start", "heapprof_stop",
		"heapprof_dump", "thread", "usleep", "packetbuffer_log", "packetbuffer_save", "need_aes",
		"failed_aes_decrypt", "support_aes", "exists_aes_key", "sql_errors_skip":
		return true
	}
	return false
}

// Relay sends the manager command line to the sensor's service connection
// and returns its output. It waits up to cfg.TaskTimeout (or ctx).
// Errors: [ErrNoService], [ErrTimeout], [ErrServiceGone], [ErrBusy],
// [ErrDecrypt] for an undecryptable response, or ctx's error.
func (s *Server) Relay(ctx context.Context, sensorID int, line string) ([]byte, error) {
	s.mu.Lock()
	sv := s.services[sensorID]
	if sv == nil {
		s.mu.Unlock()
		return nil, ErrNoService
	}
	id := strconv.FormatInt(time.Now().UnixMicro(), 10) + ":" + strconv.FormatUint(s.taskSeq.Add(1), 10)
	t := &task{sv: sv, done: make(chan taskResult, 1)}
	s.tasks[id] = t
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.tasks, id)
		s.mu.Unlock()
	}()
	select {
	case sv.queue <- []byte(id + "/" + line):
	case <-sv.done:
		return nil, ErrServiceGone
	default:
		return nil, ErrBusy
	}
	timer := time.NewTimer(s.cfg.TaskTimeout)
	defer timer.Stop()
	select {
	case r := <-t.done:
		return r.out, r.err
	case <-sv.done:
		return nil, ErrServiceGone
	case <-timer.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, ErrTimeout
		}
		return nil, ctx.Err()
	}
}

// response takes a sensor's answer to a task: the rest of the connection
// is one AES-128-CBC stream under that sensor's service key. Naming a task
// in flight counts as logging in: the id was handed to that sensor only.
func (s *Server) response(c *conn.Conn, op opening, rest []byte) {
	s.mu.Lock()
	t := s.tasks[op.TaskID]
	s.mu.Unlock()
	if t == nil {
		s.reply(c, TextUnknownTask)
		c.Close(conn.ClosedProtocolError)
		return
	}
	c.Authenticated()
	c.SetReadDeadline(time.Now().Add(s.cfg.TaskTimeout))
	r := io.LimitReader(io.MultiReader(bytes.NewReader(rest), c), int64(s.cfg.MaxResponse)+32)
	ct, err := io.ReadAll(r)
	if len(ct)%16 != 0 {
		ct = trimEOL(ct) // the "\r\n" ending the opening object
	}
	var res taskResult
	switch {
	case err != nil:
		res.err = fmt.Errorf("server: reading response: %w", err)
	case len(ct) > s.cfg.MaxResponse+16:
		res.err = fmt.Errorf("server: response over %d bytes", s.cfg.MaxResponse)
	case len(ct) == 0:
		res.out = nil
	default:
		res.out, res.err = t.sv.key.Decrypt(ct)
	}
	select {
	case t.done <- res:
	default: // a second response for the same task is ignored
	}
}

// hello is the RSA-encrypted service handshake (spec 7, service flow 3).
type hello struct {
	SensorID       json.RawMessage `json:"sensor_id"`
	SensorString   string          `json:"sensor_string"`
	Password       string          `json:"password"`
	AESCKey        string          `json:"aes_ckey"`
	AESIVec        string          `json:"aes_ivec"`
	SensorVersion  json.Number     `json:"sensor_version"`
	Restore        int             `json:"restore"`
	AutoParameters int             `json:"auto_parameters"`
}

// service runs a sensor's service connection: the handshake (the shared
// RSA key out, the sensor's RSA block in, all within cfg.ReadTimeout),
// then the ping/task loop until either side ends it.
func (s *Server) service(ctx context.Context, c *conn.Conn, r *bufio.Reader) {
	remote := c.RemoteString()
	deadline := time.Now().Add(s.cfg.ReadTimeout)
	c.SetDeadline(deadline)
	kctx, cancel := context.WithDeadline(ctx, deadline)
	priv, err := s.keys.get(kctx)
	cancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			c.Close(conn.ClosedShutdown)
		case errors.Is(err, context.DeadlineExceeded):
			c.Close(conn.ClosedFirstRequest)
		default:
			s.log.Error("service rsa key not available", "err", err)
			s.reply(c, TextInternal)
			c.Close(conn.ClosedPanic)
		}
		return
	}
	pemText, _ := PublicKeyPEM(&priv.PublicKey)
	js, _ := json.Marshal(map[string]string{"rsa_key": pemText})
	if err := writePlain(c, js); err != nil {
		c.Close(conn.ClosedWriteError)
		return
	}
	refuse := func(text string, reason conn.ClosedState, attrs ...any) {
		s.log.Info("sensor refused", append([]any{"remote", remote, "reason", text}, attrs...)...)
		c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		writePlain(c, []byte(text))
		c.Close(reason)
	}
	// Skip the line terminator of the opening message.
	for {
		b, err := r.Peek(1)
		if err != nil || (b[0] != '\r' && b[0] != '\n') {
			break
		}
		r.Discard(1)
	}
	blk, h, err := ReadBlock(r, priv.Size())
	if err != nil {
		if errors.Is(err, ErrBadBlock) || errors.Is(err, ErrBlockTooLarge) {
			refuse(TextBadBlock, conn.ClosedProtocolError, "err", err)
		} else {
			closeRead(c, err)
		}
		return
	}
	pt, err := RSADecrypt(priv, blk)
	if err != nil || Sum(pt) != h.Sum {
		refuse(TextBadBlock, conn.ClosedProtocolError, "err", cmpErr(err, ErrChecksum))
		return
	}
	var hi hello
	if err := json.Unmarshal(pt, &hi); err != nil {
		refuse(TextMalformed, conn.ClosedProtocolError, "err", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(hi.Password), []byte(s.cfg.Password)) != 1 {
		s.failLogin(ctx, c, "service", func() {
			c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			writePlain(c, []byte(TextBadPassword))
		})
		return
	}
	s.auth.succeeded(c.Remote().Addr())
	c.Authenticated()
	id, ok := parseSensorID(hi.SensorID)
	if !ok {
		refuse(TextNoSensorID, conn.ClosedProtocolError)
		return
	}
	key := SessionKey{CKey: hi.AESCKey, IVec: hi.AESIVec}
	if !key.Valid() {
		refuse(TextBadKeys, conn.ClosedProtocolError)
		return
	}
	if s.cfg.SensorID >= 0 && id == s.cfg.SensorID {
		refuse(TextSameSensorID, conn.ClosedProtocolError)
		return
	}
	ver, _ := hi.SensorVersion.Int64()
	sv := &svc{
		Service: Service{SensorID: id, Name: hi.SensorString, Addr: c.Remote(), Version: ver, Since: time.Now()},
		key:     key, conn: c, queue: make(chan []byte, maxTaskQueue), done: make(chan struct{}),
	}
	s.mu.Lock()
	old := s.services[id]
	if old != nil && hi.Restore == 0 {
		s.mu.Unlock()
		if s.cfg.DuplicateDelay > 0 && !sleepCtx(ctx, s.cfg.DuplicateDelay) {
			c.Close(conn.ClosedShutdown)
			return
		}
		refuse(fmt.Sprintf(textDuplicateFmt, id), conn.ClosedProtocolError)
		return
	}
	s.services[id] = sv
	s.mu.Unlock()
	if old != nil {
		old.kill(conn.ClosedDone) // restore: the sensor's new connection replaces its old one
	}
	// From here on the service is registered: whatever ends this function
	// (an error, a shutdown, a panic in OnConnect) removes it. After a
	// panic the session is left open for the kit, which answers and
	// closes it as ClosedPanic.
	connected, returned := false, false
	defer func() {
		if !returned {
			s.drop(sv, conn.ClosedNone)
			return
		}
		s.drop(sv, conn.ClosedDone)
		s.log.Info("sensor disconnected", "sensor_id", id, "remote", remote, "reason", c.Reason())
		if connected && s.cfg.OnDisconnect != nil {
			s.cfg.OnDisconnect(sv.Service)
		}
	}()
	stop := context.AfterFunc(ctx, func() { sv.kill(conn.ClosedShutdown) })
	defer stop()
	answer := []byte(TextOK)
	if hi.AutoParameters != 0 {
		answer = []byte(`{"result":"OK","type_compress":0,"type_compress_query":0,"type_compress_store":0}`)
	}
	c.SetDeadline(time.Time{})
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err := writePlain(c, answer); err != nil {
		sv.kill(conn.ClosedWriteError)
		returned = true
		return
	}
	s.log.Info("sensor connected", "sensor_id", id, "remote", remote, "restore", hi.Restore != 0)
	if s.cfg.OnConnect != nil {
		s.cfg.OnConnect(sv.Service)
	}
	connected = true
	go s.serviceWriter(sv)
	s.serviceReader(sv, r)
	returned = true
}

func cmpErr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// drop ends sv, closes its session with reason unless that is
// ClosedNone, and removes it unless a restore already replaced it.
func (s *Server) drop(sv *svc, reason conn.ClosedState) {
	sv.stop()
	if reason != conn.ClosedNone {
		sv.conn.Close(reason)
	}
	s.mu.Lock()
	if s.services[sv.SensorID] == sv {
		delete(s.services, sv.SensorID)
	}
	s.mu.Unlock()
}

// serviceReader reads the sensor's blocks (pong, stop) until the
// connection fails or stays silent for PingEvery+PongTimeout.
func (s *Server) serviceReader(sv *svc, r io.Reader) {
	c := sv.conn
	for {
		if c.Draining() {
			sv.kill(conn.ClosedShutdown)
			return
		}
		c.SetReadDeadline(time.Now().Add(s.cfg.PingEvery + s.cfg.PongTimeout))
		p, err := readPlain(r, maxServiceBlock)
		if err != nil {
			var ne net.Error
			switch {
			case c.Closed():
			case c.Draining():
				sv.kill(conn.ClosedShutdown)
			case errors.Is(err, io.EOF):
				sv.kill(conn.ClosedClient)
			case errors.As(err, &ne) && ne.Timeout():
				s.log.Info("sensor silent, dropped", "sensor_id", sv.SensorID)
				sv.kill(conn.ClosedIdle)
			default:
				s.log.Info("service read failed", "sensor_id", sv.SensorID, "err", err)
				sv.kill(conn.ClosedReadError)
			}
			return
		}
		switch string(p) {
		case "pong", "OK":
		case "stop":
			sv.kill(conn.ClosedClient)
			return
		default:
			s.log.Debug("unexpected service block", "sensor_id", sv.SensorID, "len", len(p))
		}
	}
}

// serviceWriter pushes queued tasks and a ping every PingEvery.
func (s *Server) serviceWriter(sv *svc) {
	t := time.NewTicker(s.cfg.PingEvery)
	defer t.Stop()
	for {
		var b []byte
		select {
		case <-sv.done:
			return
		case b = <-sv.queue:
		case <-t.C:
			b = []byte("ping")
		}
		sv.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := writePlain(sv.conn, b); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				sv.kill(conn.ClosedWriteTimeout)
			} else {
				sv.kill(conn.ClosedWriteError)
			}
			return
		}
	}
}
