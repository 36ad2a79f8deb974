package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Probe defaults.
const (
	DefaultReceiveTimeout = 30 * time.Second
	DefaultMinBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	// maxProbeTasks bounds the relayed commands a probe runs at once.
	maxProbeTasks = 16
)

// RefusedError is a server's refusal of the service handshake; Reason is
// its text ("bad password", "client with sensor_id 3 is already connected,
// refusing connection", …).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "server: refused: " + e.Reason }

// Exec runs one manager command line and writes its output (the manager
// API's rendering) to w.
type Exec func(ctx context.Context, line string, w io.Writer) error

// ProbeConfig configures a [Probe]. Zero durations take the defaults.
type ProbeConfig struct {
	// Destinations are the servers in failover order (server_destination):
	// "host" or "host:port"; Port (server_destination_port) fills in a
	// missing port.
	Destinations []string
	Port         int
	// Password is server_password; SensorID is id_sensor.
	Password     string
	SensorID     int
	SensorString string
	Version      int64
	// Exec runs the relayed commands.
	Exec Exec
	// ReceiveTimeout: reconnect when the server sends nothing (not even a
	// ping) for this long.
	ReceiveTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after every destination
	// failed; it doubles per failed round and resets after a handshake.
	MinBackoff, MaxBackoff time.Duration
	// TaskTimeout bounds one relayed command.
	TaskTimeout time.Duration
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Probe is the sensor side of the server API: it keeps one service
// connection to the first server of Destinations that accepts it. Create
// it with [NewProbe]; Run does the work. Safe for concurrent use.
type Probe struct {
	cfg ProbeConfig
	log *slog.Logger
	sem chan struct{}

	mu      sync.Mutex
	current string // address of the connected server
	last    error  // last connection error
	tasks   sync.WaitGroup
}

// NewProbe checks cfg and returns a Probe.
func NewProbe(cfg ProbeConfig) (*Probe, error) {
	if len(cfg.Destinations) == 0 {
		return nil, errors.New("server: probe needs at least one destination")
	}
	if cfg.Exec == nil {
		return nil, errors.New("server: probe needs Exec")
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.ReceiveTimeout, DefaultReceiveTimeout)
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.TaskTimeout, DefaultTaskTimeout)
	def(&cfg.DialTimeout, DefaultDialTimeout)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Probe{cfg: cfg, log: log.With("transport", "server-probe"), sem: make(chan struct{}, maxProbeTasks)}, nil
}

// Addr returns the address of destination d with the default port added.
func (p *Probe) addr(d string) string {
	if _, _, err := net.SplitHostPort(d); err == nil {
		return d
	}
	return net.JoinHostPort(strings.Trim(d, "[]"), strconv.Itoa(p.cfg.Port))
}

// Connected returns the server the probe is connected to, or "".
func (p *Probe) Connected() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// LastError returns the error that ended the last connection attempt.
func (p *Probe) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Run connects and serves until ctx is done, failing over across the
// destinations and backing off when all of them fail. It waits for running
// tasks before returning and always returns nil after ctx is done.
func (p *Probe) Run(ctx context.Context) error {
	defer p.tasks.Wait()
	backoff := p.cfg.MinBackoff
	restore := false
	for ctx.Err() == nil {
		established := false
		for _, d := range p.cfg.Destinations {
			addr := p.addr(d)
			ok, err := p.session(ctx, addr, restore)
			p.mu.Lock()
			p.current, p.last = "", err
			p.mu.Unlock()
			if ctx.Err() != nil {
				return nil
			}
			if ok {
				established, restore = true, true
				p.log.Warn("server connection lost", "server", addr, "err", err)
				break
			}
			p.log.Warn("server connection failed", "server", addr, "err", err)
		}
		if established {
			backoff = p.cfg.MinBackoff
			continue
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
	}
	return nil
}

// session runs one service connection; ok reports whether the handshake
// succeeded.
func (p *Probe) session(ctx context.Context, addr string, restore bool) (ok bool, err error) {
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	key, err := p.handshake(c, restore)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	p.current = addr
	p.mu.Unlock()
	p.log.Info("connected to server", "server", addr, "sensor_id", p.cfg.SensorID)
	for {
		c.SetReadDeadline(time.Now().Add(p.cfg.ReceiveTimeout))
		b, err := readPlain(c, MaxBlockSize)
		if err != nil {
			return true, err
		}
		switch s := string(b); s {
		case "ping":
			c.SetWriteDeadline(time.Now().Add(p.cfg.ReceiveTimeout))
			if err := writePlain(c, []byte("pong")); err != nil {
				return true, err
			}
		case "stop":
			return true, errors.New("server: stopped by server")
		default:
			id, line, found := strings.Cut(s, "/")
			if !found {
				p.log.Info("unexpected block from server", "len", len(b))
				continue
			}
			p.startTask(ctx, addr, key, id, line)
		}
	}
}

// Handshake: service opening, RSA key, encrypted hello, answer.
func (p *Probe) handshake(c net.Conn, restore bool) (SessionKey, error) {
	c.SetDeadline(time.Now().Add(p.cfg.ReceiveTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, `{"type_connection":"service"}`+"\r\n"); err != nil {
		return SessionKey{}, err
	}
	b, err := readPlain(c, 64<<10)
	if err != nil {
		return SessionKey{}, err
	}
	var rk struct {
		RSAKey string `json:"rsa_key"`
	}
	if err := json.Unmarshal(b, &rk); err != nil || rk.RSAKey == "" {
		return SessionKey{}, &RefusedError{Reason: string(b)}
	}
	pub, err := ParsePublicKeyPEM(rk.RSAKey)
	if err != nil {
		return SessionKey{}, err
	}
	key := NewSessionKey()
	h := map[string]any{
		"sensor_id": p.cfg.SensorID, "password": p.cfg.Password,
		"aes_ckey": key.CKey, "aes_ivec": key.IVec,
		"sensor_version": p.cfg.Version, "check_ping_response": 1,
	}
	if p.cfg.SensorString != "" {
		h["sensor_string"] = p.cfg.SensorString
	}
	if restore {
		h["restore"] = 1
	}
	js, _ := json.Marshal(h)
	ct, err := RSAEncrypt(pub, js)
	if err != nil {
		return SessionKey{}, err
	}
	if _, err := c.Write(AppendBlock(nil, ct, Sum(js))); err != nil {
		return SessionKey{}, err
	}
	ans, err := readPlain(c, 64<<10)
	if err != nil {
		return SessionKey{}, err
	}
	if string(ans) == TextOK {
		return key, nil
	}
	var r struct {
		Result string `json:"result"`
	}
	if json.Unmarshal(ans, &r) == nil && r.Result == TextOK {
		return key, nil
	}
	return SessionKey{}, &RefusedError{Reason: string(ans)}
}

func (p *Probe) startTask(ctx context.Context, addr string, key SessionKey, id, line string) {
	select {
	case p.sem <- struct{}{}:
	default:
		p.log.Warn("too many relayed commands; dropping one", "task", id)
		return
	}
	p.tasks.Add(1)
	go func() {
		defer p.tasks.Done()
		defer func() { <-p.sem }()
		if err := p.runTask(ctx, addr, key, id, line); err != nil {
			p.log.Info("relayed command failed", "task", id, "err", err)
		}
	}()
}

// runTask runs line and sends its output over a response connection: the
// opening line, then one continuous AES-128-CBC stream.
func (p *Probe) runTask(ctx context.Context, addr string, key SessionKey, id, line string) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.TaskTimeout)
	defer cancel()
	var out bytes.Buffer
	if err := p.cfg.Exec(ctx, line, &out); err != nil {
		out.Reset()
		out.WriteString("error: " + err.Error())
	}
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(p.cfg.TaskTimeout))
	open, _ := json.Marshal(map[string]string{"type_connection": "response", "gui_task_id": id})
	if _, err := c.Write(append(open, '\r', '\n')); err != nil {
		return err
	}
	w, err := key.NewWriter(c)
	if err != nil {
		return err
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("server: sending response: %w", err)
	}
	return nil
}
