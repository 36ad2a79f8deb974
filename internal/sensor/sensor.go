package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/cdr"
	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/command/system"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/pipeline"
	"github.com/voipsensor/voipsensor/internal/tableview"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
)

// Options choose the packet source and tune the daemon beyond the
// configuration file.
type Options struct {
	// ReadFile replaces the interface with a capture file.
	ReadFile string
	// Open replaces the interface with any source (the demo's embedded
	// capture); it is called again for each pass when Loop is set.
	Open func() (capture.Source, error)
	// Realtime, Speed and Loop pace a file source (see capture.ReplayOptions).
	Realtime bool
	Speed    float64
	Loop     bool
	// ShiftToNow stamps replayed frames with the wall clock, so replayed
	// calls look live to every reader.
	ShiftToNow bool
	// StatusEvery is the period of the status log line; 0 means 10 s,
	// negative disables it.
	StatusEvery time.Duration
	// Logger receives the daemon's logs; nil means slog.Default().
	Logger *slog.Logger
	// ConfigPath is the file the configuration came from, re-read by the
	// reload command; empty when the sensor runs on defaults and flags.
	ConfigPath string
	// Overrides are the command-line settings applied on top of the file,
	// re-applied on reload.
	Overrides map[string]string
	// LogLevel, when set, is the level the Logger's handler reads; the MI
	// log_level command changes it at run time.
	LogLevel *slog.LevelVar
	// Args is the process's command line, which the MI command arg shows
	// with every secret setting redacted.
	Args []string
	// StallAfter and StallFor are a test hook: the analysis sleeps StallFor
	// once, after its StallAfter-th frame, as a stalled analysis would
	// (CPU contention, a long GC, a slow sink).
	StallAfter uint64
	StallFor   time.Duration
}

// Endpoint is a listener the sensor bound, for people and tests.
type Endpoint struct {
	Name    string // manager, ami, mi-http, web, ...
	Network string // tcp, unix, udp, unixgram, fifo
	Addr    string
}

// service is one management transport the sensor runs beside capture.
// run serves until ctx is done; abort releases what New bound when the
// sensor is discarded without running.
type service struct {
	name  string
	run   func(ctx context.Context) error
	abort func()
}

// Sensor is the daemon: one packet source, the decoder, the call table and
// the CDR writer, plus the management transports (manager API, AMI, MI,
// web console, server API) that serve one command registry.
type Sensor struct {
	// cfg is the configuration the sensor started with: a copy of New's
	// argument, never modified. current is the configuration in effect,
	// replaced whole (an immutable value) by each reload.
	cfg     config.Config
	current atomic.Pointer[config.Config]
	opts    Options
	log     *slog.Logger
	start   time.Time

	src    capture.Source
	dec    *decode.Decoder
	table  *calltable.Table
	store  cdr.Store
	writer *cdr.Writer
	live   bool // wall clock drives call timeouts when the capture is quiet

	bus     *event.Bus
	sink    *tableview.CDRSink
	quality *tableview.Quality // ended calls' quality, for the metrics and the console's charts
	spool   *spooling          // recording, retention and the spool's files (wire_spool.go)

	hep            hepWiring                  // HEP collector and sender (wire_hep.go)
	sessionSources []func() tableview.Session // each listener's session counters
	manager        *manager.Server            // set by wireManager; reload reconfigures it
	reloadMu       sync.Mutex                 // one Reload at a time
	reg            *command.Registry
	services       []service
	addrs          []Endpoint
	stop           context.CancelFunc // set by Run; Terminate calls it
	stopMu         sync.Mutex

	loop      *pipeline.Loop       // the packet path, built once the wiring is done
	drops     *pipeline.DropLog    // when the capture lost frames, for each CDR's SensorDropped
	storeDown atomic.Bool          // the CDR store is failing
	bufWatch  pipeline.BufferWatch // the packet buffer's overflow state; Run's goroutine only
	cpu       system.ThreadCPU
}

// New builds a sensor from cfg: it opens the CDR store and the packet source
// but starts nothing.
func New(cfg *config.Config, opts Options) (*Sensor, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StatusEvery == 0 {
		opts.StatusEvery = 10 * time.Second
	}
	s := &Sensor{cfg: *cfg, opts: opts, log: opts.Logger, start: time.Now()}
	cur := *cfg
	s.current.Store(&cur)
	cfg = &s.cfg // the sensor's own copy from here on

	ports := new(decode.PortSet)
	for _, r := range cfg.SIPPorts {
		ports.Add(r.Lo, r.Hi)
	}
	s.dec = decode.NewDecoder(decode.Config{SIPPorts: ports, KeepFragments: cfg.Recording.Enabled()}) // recording saves every fragment

	if cfg.SQLDriver == "sqlite" {
		if err := os.MkdirAll(filepath.Dir(cfg.SQLiteFile()), 0o750); err != nil {
			return nil, fmt.Errorf("sensor: %w", err)
		}
	}
	st, err := sqlstore.Open(cfg.SQLDriver, cfg.DSN(), sqlstore.Schema(cfg.CDRSchema))
	if err != nil {
		return nil, fmt.Errorf("sensor: open %s store: %w", cfg.SQLDriver, err)
	}
	s.store = st
	s.writer = cdr.NewWriter(st, cdr.WriterOptions{
		BatchSize:     cfg.CDRBatchSize,
		BatchInterval: cfg.CDRBatchEvery,
		QueueSize:     cfg.CDRQueueSize,
		SpillDir:      cfg.SpoolDir,
		OnStoreError:  s.storeError,
	})
	s.bus = event.NewBus()
	s.quality = tableview.NewQuality()
	s.sink = tableview.NewCDRSink(s.writer, s.quality, cfg.IDSensor, cfg.SIPRegister)
	// Calls last up to absolute_timeout; the log remembers drops that long.
	s.drops = pipeline.NewDropLog(max(cfg.AbsoluteTimeout, time.Hour) + 10*time.Minute)
	s.sink.SetDropCheck(s.drops.Dropped)
	s.table = calltable.New(calltable.Config{
		SIPPorts:        ports,
		MaxCalls:        cfg.CallsLimit,
		RTPTimeout:      cfg.RTPTimeout,
		SetupTimeout:    cfg.SIPWithoutRTPTimeout,
		AbsoluteTimeout: cfg.AbsoluteTimeout,
		Events:          s.bus,
		SIPPackets:      cfg.ActiveCallInfo,
	}, s.sink)

	// The one listener policy, before anything is bound.
	if err := s.checkExposure(); err != nil {
		st.Close()
		return nil, err
	}

	// The input first: a capture that cannot start (no such interface, no
	// permission, not a capture file) stops the start before any listener
	// is bound.
	if s.src, err = s.openSource(); err != nil {
		st.Close()
		return nil, err
	}

	// One registry serves every transport; each wiring step registers its
	// command groups and binds its listeners, in this order.
	s.reg = command.NewRegistry()
	for _, wire := range []func() error{
		s.wireSpool, // first: it wraps the packet source
		s.wireManager,
		s.wireAMI,
		s.wireServer,
		s.wireMI,
		s.wireWeb,
		s.wireHEP,
		s.wireMetrics,
	} {
		if err := wire(); err != nil {
			s.abort()
			return nil, err
		}
	}
	s.loop = pipeline.New(s.src, s.dec, s.captureHandler())
	if opts.StallFor > 0 {
		s.loop.Stall(opts.StallAfter, opts.StallFor)
	}
	return s, nil
}

// checkExposure applies config.CheckExposure: a listener bound beyond
// loopback must authenticate its clients, unless
// allow_unauthenticated_remote says otherwise (then each one is warned
// about).
func (s *Sensor) checkExposure() error {
	stored := false
	exposed := config.Exposure{Addr: s.cfg.ManagerAddr()}
	if st, ok := s.store.(*sqlstore.Store); ok && exposed.Addr != "" && !exposed.Loopback() {
		// Only a manager bound beyond loopback needs to know whether the
		// GUI stored a key.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, found, err := st.GetSystem(ctx, "manager_key")
		cancel()
		stored = err == nil && found && v != ""
	}
	open, err := config.CheckExposure(s.cfg.Exposures(stored), s.cfg.AllowUnauthenticatedRemote)
	if err != nil {
		return fmt.Errorf("sensor: %w", err)
	}
	for _, e := range open {
		s.log.Warn("listener serves the network without authentication (allow_unauthenticated_remote = yes)", "setting", e.Setting, "addr", e.Addr)
	}
	return nil
}

// abort releases what New acquired when New fails.
func (s *Sensor) abort() {
	for _, sv := range s.services {
		if sv.abort != nil {
			sv.abort()
		}
	}
	if s.src != nil {
		s.src.Close()
	}
	s.store.Close()
}

// Endpoints lists the listeners the sensor bound.
func (s *Sensor) Endpoints() []Endpoint { return s.addrs }

// Registry returns the command registry every transport serves.
func (s *Sensor) Registry() *command.Registry { return s.reg }

// Events returns the event bus the call table publishes on.
func (s *Sensor) Events() *event.Bus { return s.bus }

// Terminate starts a graceful stop, as SIGTERM does: Run closes the calls
// still open, flushes their CDRs and returns.
func (s *Sensor) Terminate() {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stop != nil {
		s.stop()
	}
}

// Reload re-reads the configuration file and applies what can change
// while running; it reports the keys that need a restart. Reloads are
// serialised (several transports may ask at once); each one compares the
// file with the configuration in effect and then publishes the new one
// whole.
func (s *Sensor) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.opts.ConfigPath == "" {
		return errNoConfigFile
	}
	nc, _, err := config.Load(s.opts.ConfigPath)
	if err != nil {
		return err
	}
	for k, v := range s.opts.Overrides {
		if err := nc.Set(k, v); err != nil {
			return err
		}
	}
	if err := nc.Validate(); err != nil {
		return err
	}
	applied, restart := config.Reloadable(s.current.Load(), nc)
	if err := s.applyLive(nc); err != nil {
		return err
	}
	s.current.Store(nc)
	s.log.Info("configuration reloaded", "applied", applied, "need_restart", restart)
	if len(restart) > 0 {
		return fmt.Errorf("sensor: reloaded; these keys need a restart: %v", restart)
	}
	return nil
}

// applyLive puts into effect the options config.Reloadable calls live:
// the log level, call timeouts and cap, REGISTER storage, the manager AES
// key and plaintext policy.
func (s *Sensor) applyLive(nc *config.Config) error {
	s.table.SetTimeouts(nc.RTPTimeout, nc.SIPWithoutRTPTimeout, nc.AbsoluteTimeout, nc.CallsLimit)
	if s.opts.LogLevel != nil {
		s.opts.LogLevel.Set(nc.LogLevel)
	}
	s.sink.SetRegistrations(nc.SIPRegister)
	if s.manager != nil {
		key, err := managerKey(nc)
		if err != nil {
			return err
		}
		if err := s.manager.Reconfigure(key, nc.ManagerEnableUnencrypted); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the configuration in effect (after the last reload). It
// is shared: do not modify it.
func (s *Sensor) Config() *config.Config { return s.current.Load() }

// openSource opens the packet source and notes whether it is live.
func (s *Sensor) openSource() (capture.Source, error) {
	o := s.opts
	src, live, err := pipeline.Open(pipeline.Input{
		ReadFile: o.ReadFile, Open: o.Open, Interface: s.cfg.Interface, Filter: s.cfg.Filter,
		RingMB: s.cfg.Ringbuf, BufferMB: s.cfg.MaxBufferMem,
		Realtime: o.Realtime, Speed: o.Speed, Loop: o.Loop, ShiftToNow: o.ShiftToNow,
	})
	if err != nil {
		return nil, fmt.Errorf("sensor: %w", err)
	}
	s.live = live
	return src, nil
}

// httpLimits are the session limits of the HTTP listeners (web console,
// MI over HTTP): the per-address cap and the time to a request header.
func (s *Sensor) httpLimits() conn.Limits {
	return conn.Limits{MaxUnauthPerAddr: s.cfg.MaxConnsPerIP, FirstRequest: s.cfg.FirstRequestTimeout}
}

// Table returns the call table, for the management transports.
func (s *Sensor) Table() *calltable.Table { return s.table }

// Run captures until ctx is done, or until a file source without Loop is
// exhausted. Either way it then closes every call still open, flushes their
// CDRs and closes the store. It returns nil after a clean stop.
func (s *Sensor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.stopMu.Lock()
	s.stop = cancel
	s.stopMu.Unlock()

	svcCtx, svcCancel := context.WithCancel(context.WithoutCancel(ctx))
	var svcWG sync.WaitGroup
	for _, sv := range s.services {
		svcWG.Add(1)
		go func() {
			defer svcWG.Done()
			if err := sv.run(svcCtx); err != nil {
				s.log.Error("transport stopped", "transport", sv.name, "err", err)
			}
		}()
	}
	defer func() {
		svcCancel()
		svcWG.Wait()
	}()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writer.Run(context.WithoutCancel(ctx))
	}()

	s.drops.Observe(time.Now(), 0) // drops seen at the first tick are in the first second
	s.loop.Start()

	var tick <-chan time.Time
	if s.opts.StatusEvery > 0 {
		t := time.NewTicker(s.opts.StatusEvery)
		defer t.Stop()
		tick = t.C
	}
	expire := time.NewTicker(time.Second)
	defer expire.Stop()

	s.log.Info("sensor started", "source", s.sourceName(), "sqldriver", s.cfg.SQLDriver, "id_sensor", s.cfg.IDSensor)
	var err error
wait:
	for {
		select {
		case <-ctx.Done():
			if e := s.stopCapture(); e != nil && !errors.Is(e, capture.ErrClosed) {
				err = e
			}
			break wait
		case <-s.loop.Done():
			err = s.loop.Err()
			break wait
		case <-tick:
			s.logStatus()
		case now := <-expire.C:
			cs := s.src.Stats()
			s.bufWatch.Check(cs, s.log)
			s.drops.Observe(now, cs.KernelDropped+cs.BufferDropped)
			if s.live {
				s.table.Expire(now)
			}
			ts := s.table.Stats()
			s.quality.Tick(now, ts.CallsStarted, s.table.Counts().InProgress)
		}
	}
	return s.shutdown(err, writerDone)
}

// drainTimeout bounds how long a stop waits for the packets captured before
// it to be read out of the kernel ring.
const drainTimeout = 300 * time.Millisecond

// stopCapture ends the packet loop and returns its result; a live source
// is drained to the stop first (pipeline.Loop.Stop).
func (s *Sensor) stopCapture() error {
	drain := time.Duration(0)
	if s.live {
		drain = drainTimeout
	}
	cut, err := s.loop.Stop(drain)
	if !cut.IsZero() {
		s.log.Info("capture stopped", "cut", cut.UTC().Format(time.RFC3339Nano), "frames", s.loop.Frames())
	}
	return err
}

// shutdown closes the calls still open, flushes the CDR writer and closes
// the store, in that order.
func (s *Sensor) shutdown(runErr error, writerDone <-chan struct{}) error {
	s.stopHEPCollector()
	s.table.CloseAll()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.writer.Close(ctx); err != nil {
		s.log.Error("cdr flush incomplete", "err", err)
		runErr = errors.Join(runErr, err)
	}
	<-writerDone
	s.src.Close()
	if err := s.store.Close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	ws, cs := s.writer.Stats(), s.src.Stats()
	s.bufWatch.Check(s.src.Stats(), s.log)
	s.log.Info("sensor stopped", "frames", s.loop.Frames(), "kernel_drops", cs.KernelDropped, "buffer_drops", cs.BufferDropped,
		"buffer_high_mb", cs.BufferHigh>>20, "cdr_written", ws.Written, "cdr_spilled", ws.Spilled, "cdr_failed", ws.Failed)
	return runErr
}

// Status is a point-in-time view of the sensor's counters.
type Status = tableview.Counters

// Alive reports whether the packet loop is making progress
// (pipeline.Loop.Alive), for the systemd watchdog. Safe for concurrent use.
func (s *Sensor) Alive() bool { return s.loop.Alive() }

// Status returns the counters. Safe for concurrent use.
func (s *Sensor) Status() Status {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Status{
		Uptime: time.Since(s.start), Frames: s.loop.Frames(), Bytes: s.loop.Bytes(),
		Capture: s.src.Stats(), Decode: s.loop.DecodeStats(), Table: s.table.Stats(), CDR: s.writer.Stats(),
		HeapByte: ms.HeapAlloc,
	}
}

func (s *Sensor) logStatus() {
	st := s.Status()
	s.log.Info("status",
		"calls", st.Table.Calls, "calls_total", st.Table.CallsStarted, "registrations", st.Table.Registrations,
		"frames", st.Frames, "kernel_drops", st.Capture.KernelDropped, "ring_freezes", st.Capture.RingFreezes,
		"buffer_drops", st.Capture.BufferDropped, "buffer_pct", pipeline.BufferPct(st.Capture.BufferUsed, st.Capture.BufferCapacity),
		"buffer_high_pct", pipeline.BufferPct(st.Capture.BufferHigh, st.Capture.BufferCapacity),
		"malformed", st.Decode.Malformed, "sip_malformed", st.Table.SIPMalformed,
		"cdr_written", st.CDR.Written, "cdr_pending", st.CDR.Pending, "cdr_spilled", st.CDR.Spilled,
		"heap_mb", st.HeapByte>>20, s.spool.statusAttr())
}

func (s *Sensor) sourceName() string {
	switch {
	case s.opts.ReadFile != "":
		return s.opts.ReadFile
	case s.opts.Open != nil:
		return "embedded"
	}
	return s.cfg.Interface
}

// storeError logs a CDR store outage once when it starts and once when it
// ends; the writer keeps records meanwhile (queue, then spill files).
func (s *Sensor) storeError(err error, retrying bool) {
	if err == nil {
		if s.storeDown.Swap(false) {
			s.log.Info("cdr store back", "pending", s.writer.Stats().Pending)
		}
		return
	}
	if !s.storeDown.Swap(true) {
		s.log.Warn("cdr store failing, records queued and retried", "err", err)
	}
}
