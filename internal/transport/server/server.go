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
)

// Defaults for Config zero values.
const (
	DefaultPort           = 60024
	DefaultPingEvery      = 5 * time.Second
	DefaultPongTimeout    = 5 * time.Second
	DefaultTaskTimeout    = 5 * time.Minute
	DefaultDuplicateDelay = 5 * time.Second
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultMaxConns       = 1024
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
	// ErrServerClosed is returned by Serve after Shutdown.
	ErrServerClosed = errors.New("server: closed")
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
	// Password is server_password; sensors must send it.
	Password string
	// SensorID is the server's own id_sensor (-1 when unset); a sensor
	// with the same id is refused.
	SensorID int
	// ManagerKey, if non-nil, decrypts AES-wrapped gui_command requests;
	// plaintext requests for commands that need AES then get "need aes!".
	ManagerKey Cipher
	// ServiceRSABits and OtherRSABits size the per-connection RSA keys
	// (defaults 4096 and 2048).
	ServiceRSABits int
	// PingEvery is the period of ping blocks on a service connection;
	// a sensor that sends nothing (no pong) for PingEvery+PongTimeout is
	// dropped.
	PingEvery, PongTimeout time.Duration
	// TaskTimeout bounds the wait for a relayed command's answer.
	TaskTimeout time.Duration
	// DuplicateDelay is waited before refusing a duplicate sensor id;
	// negative means no delay.
	DuplicateDelay time.Duration
	// ReadTimeout bounds reading an opening message and a handshake;
	// WriteTimeout bounds each write.
	ReadTimeout, WriteTimeout time.Duration
	// MaxConns caps concurrent connections; MaxResponse bounds one relayed
	// output.
	MaxConns, MaxResponse int
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

// Server is the central server of the server API. Create it with [New];
// it starts no goroutines until Serve. Safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	svcKeys *keyPool
	sem     chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	taskSeq atomic.Uint64

	mu        sync.Mutex
	services  map[int]*svc
	tasks     map[string]*task
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// svc is one live service connection.
type svc struct {
	Service
	key   SessionKey
	conn  net.Conn
	queue chan []byte
	done  chan struct{}
	once  sync.Once
}

func (v *svc) kill() {
	v.once.Do(func() {
		close(v.done)
		v.conn.Close()
	})
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
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = DefaultMaxResponse
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: log.With("transport", "server"),
		svcKeys: &keyPool{bits: cfg.ServiceRSABits},
		sem:     make(chan struct{}, cfg.MaxConns),
		ctx:     ctx, cancel: cancel,
		services:  map[int]*svc{},
		tasks:     map[string]*task{},
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}, nil
}

// Listen binds cfg.Addr, so that a bind error surfaces at start. It also
// starts generating the first service RSA key in the background.
func (s *Server) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.svcKeys.refill()
	return l, nil
}

// Run serves l until ctx is done, then shuts down.
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		return err
	}
	return nil
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, l)
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		select {
		case s.sem <- struct{}{}:
		default:
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
		go s.handle(c)
	}
}

// Shutdown closes the listeners and every connection (service connections
// included) and waits for the handlers until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	<-s.sem
	s.wg.Done()
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
}

func (s *Server) handle(c net.Conn) {
	defer s.release(c)
	c.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
	f := firstFramer{accept: s.acceptAES}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			done, ferr := f.Write(buf[:n])
			if ferr != nil {
				s.reply(c, TextMalformed)
				return
			}
			if done {
				break
			}
		}
		if err != nil {
			if f.End(); len(f.msg) == 0 {
				return
			}
			break
		}
	}
	msg, cipherName := f.msg, ""
	if isAESWrapped(msg) {
		var err error
		cipherName, msg, err = s.unwrapAES(msg)
		if err != nil {
			s.reply(c, TextFailedAES)
			return
		}
	}
	var op opening
	if err := json.Unmarshal(bytes.TrimSpace(msg), &op); err != nil {
		s.log.Info("malformed opening message", "remote", c.RemoteAddr(), "err", err)
		s.reply(c, TextMalformed)
		return
	}
	switch op.Type {
	case "manager_command":
		s.managerCommand(c, op)
	case "gui_command":
		s.guiCommand(c, op, cipherName)
	case "service":
		s.service(c, bufio.NewReader(io.MultiReader(bytes.NewReader(f.rest), c)))
	case "response":
		s.response(c, op, f.rest)
	default:
		// Unknown types close silently, as the legacy server does.
		s.log.Debug("unknown connection type", "remote", c.RemoteAddr(), "type", op.Type)
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
func (s *Server) reply(c net.Conn, text string) {
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

func (s *Server) managerCommand(c net.Conn, op opening) {
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

func (s *Server) guiCommand(c net.Conn, op opening, cipherName string) {
	out := s.guiAnswer(op, cipherName)
	if cipherName != "" {
		ct, err := s.cfg.ManagerKey.Encrypt(cipherName, out)
		if err != nil {
			s.reply(c, TextFailedAES)
			return
		}
		out = append([]byte("aes:"), ct...)
	}
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	c.Write(out)
}

func (s *Server) guiAnswer(op opening, cipherName string) []byte {
	id, ok := parseSensorID(op.SensorID)
	if !ok {
		return []byte(TextNoSensorID)
	}
	if cipherName == "" && s.cfg.ManagerKey != nil && !noAESNeeded(op.Command) {
		return []byte(TextNeedAES)
	}
	out, err := s.Relay(s.ctx, id, op.Command)
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
// when a manager key exists (spec 2.1).
func noAESNeeded(line string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch name {
	case "getversion", "getbuild", "getverbuild", "totalcalls", "printspool", "sniffer_stat",
		"datadir_stat", "disk_io_calibration", "disk_io_recalibrate", "sniffer_threads",
		"memory_stat", "jemalloc_stat", "tcmalloc_stats", "heapprof_start", "heapprof_stop",
		"heapprof_dump", "thread", "usleep", "packetbuffer_log", "packetbuffer_save", "need_aes",
		"failed_aes_decrypt", "support_aes", "exists_aes_key", "manager_file", "sql_errors_skip":
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
// is one AES-128-CBC stream under that sensor's service key.
func (s *Server) response(c net.Conn, op opening, rest []byte) {
	s.mu.Lock()
	t := s.tasks[op.TaskID]
	s.mu.Unlock()
	if t == nil {
		s.reply(c, TextUnknownTask)
		return
	}
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

func (s *Server) service(c net.Conn, r *bufio.Reader) {
	remote := c.RemoteAddr().String()
	c.SetDeadline(time.Now().Add(s.cfg.ReadTimeout))
	priv, err := s.svcKeys.get()
	if err != nil {
		s.log.Error("rsa key generation failed", "err", err)
		return
	}
	pemText, _ := PublicKeyPEM(&priv.PublicKey)
	js, _ := json.Marshal(map[string]string{"rsa_key": pemText})
	if err := writePlain(c, js); err != nil {
		return
	}
	refuse := func(text string, attrs ...any) {
		s.log.Info("sensor refused", append([]any{"remote", remote, "reason", text}, attrs...)...)
		writePlain(c, []byte(text))
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
			refuse(TextBadBlock, "err", err)
		}
		return
	}
	pt, err := RSADecrypt(priv, blk)
	if err != nil || Sum(pt) != h.Sum {
		refuse(TextBadBlock, "err", cmpErr(err, ErrChecksum))
		return
	}
	var hi hello
	if err := json.Unmarshal(pt, &hi); err != nil {
		refuse(TextMalformed, "err", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(hi.Password), []byte(s.cfg.Password)) != 1 {
		refuse(TextBadPassword)
		return
	}
	id, ok := parseSensorID(hi.SensorID)
	if !ok {
		refuse(TextNoSensorID)
		return
	}
	key := SessionKey{CKey: hi.AESCKey, IVec: hi.AESIVec}
	if !key.Valid() {
		refuse(TextBadKeys)
		return
	}
	if s.cfg.SensorID >= 0 && id == s.cfg.SensorID {
		refuse(TextSameSensorID)
		return
	}
	ap, _ := netip.ParseAddrPort(remote)
	ver, _ := hi.SensorVersion.Int64()
	sv := &svc{
		Service: Service{SensorID: id, Name: hi.SensorString, Addr: ap, Version: ver, Since: time.Now()},
		key:     key, conn: c, queue: make(chan []byte, maxTaskQueue), done: make(chan struct{}),
	}
	s.mu.Lock()
	old := s.services[id]
	if old != nil && hi.Restore == 0 {
		s.mu.Unlock()
		if s.cfg.DuplicateDelay > 0 {
			select {
			case <-time.After(s.cfg.DuplicateDelay):
			case <-s.ctx.Done():
				return
			}
		}
		c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		refuse(fmt.Sprintf(textDuplicateFmt, id))
		return
	}
	s.services[id] = sv
	s.mu.Unlock()
	if old != nil {
		old.kill() // restore: the sensor's new connection replaces its old one
	}
	answer := []byte(TextOK)
	if hi.AutoParameters != 0 {
		answer = []byte(`{"result":"OK","type_compress":0,"type_compress_query":0,"type_compress_store":0}`)
	}
	c.SetDeadline(time.Time{})
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err := writePlain(c, answer); err != nil {
		s.drop(sv)
		return
	}
	s.log.Info("sensor connected", "sensor_id", id, "remote", remote, "restore", hi.Restore != 0)
	if s.cfg.OnConnect != nil {
		s.cfg.OnConnect(sv.Service)
	}
	go s.serviceWriter(sv)
	s.serviceReader(sv, r)
	s.drop(sv)
	s.log.Info("sensor disconnected", "sensor_id", id, "remote", remote)
	if s.cfg.OnDisconnect != nil {
		s.cfg.OnDisconnect(sv.Service)
	}
}

func cmpErr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// drop kills sv and removes it unless a restore already replaced it.
func (s *Server) drop(sv *svc) {
	sv.kill()
	s.mu.Lock()
	if s.services[sv.SensorID] == sv {
		delete(s.services, sv.SensorID)
	}
	s.mu.Unlock()
}

// serviceReader reads the sensor's blocks (pong, stop) until the
// connection fails or stays silent for PingEvery+PongTimeout.
func (s *Server) serviceReader(sv *svc, r io.Reader) {
	for {
		sv.conn.SetReadDeadline(time.Now().Add(s.cfg.PingEvery + s.cfg.PongTimeout))
		p, err := readPlain(r, maxServiceBlock)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Info("service read failed", "sensor_id", sv.SensorID, "err", err)
			}
			return
		}
		switch string(p) {
		case "pong", "OK":
		case "stop":
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
			sv.kill()
			return
		}
	}
}
