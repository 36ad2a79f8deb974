package sensor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/command/calls"
	"github.com/voipsensor/voipsensor/internal/command/registers"
	"github.com/voipsensor/voipsensor/internal/command/system"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/tableview"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
)

// Version is the sensor's version string, shown by getversion and friends.
var Version = "0.1.0"

// wireManager registers the manager-API command groups and binds the
// VoIPmonitor manager listeners (TCP managerip:managerport, the
// managersocket unix socket).
func (s *Sensor) wireManager() error {
	cfg := s.cfg
	src := tableview.NewSource(s.table, cfg.IDSensor, true)
	// Durations run to the capture clock (the newest packet), which is the
	// wall clock on a live interface and the file's time on a replay.
	captureNow := func() time.Time {
		if t := s.table.Now(); !t.IsZero() {
			return t
		}
		return time.Now()
	}
	calls.Register(s.reg, calls.Deps{Source: src, SensorID: cfg.IDSensor, Now: captureNow})
	registers.Register(s.reg, registers.Deps{Source: src})

	mcfg := manager.Config{
		Addr:              manager.ListenAddr(cfg.ManagerIP, cfg.ManagerPort),
		Socket:            cfg.ManagerSocket,
		SocketDir:         cfg.ManagerFileDir,
		EnableUnencrypted: cfg.ManagerEnableUnencrypted,
		TCPLimits: conn.Limits{MaxConns: cfg.ManagerMaxConns, MaxUnauthPerAddr: cfg.MaxConnsPerIP,
			FirstRequest: cfg.FirstRequestTimeout},
		UnixLimits: conn.Limits{FirstRequest: cfg.FirstRequestTimeout},
		Logger:     s.log.With("transport", "manager"),
	}
	var err error
	if mcfg.Key, err = managerKey(&cfg); err != nil {
		return err
	}
	if st, ok := s.store.(*sqlstore.Store); ok {
		mcfg.KeyStore = keyStore{st}
	}
	srv, err := manager.New(s.reg, mcfg)
	if err != nil {
		return err
	}
	s.manager = srv
	system.Register(s.reg, system.Deps{
		Version: Version, Build: "voipsensor",
		Stats: &tableview.SystemStats{Start: s.start, Source: s.sourceName(), Counters: s.Status,
			CPU: func() float64 { return s.cpu.Percent(s.loop.ThreadID()) }}, Threads: trafficThreads{threadList{s}, s},
		Lifecycle: lifecycle{s}, AES: srv, Sockets: srv,
	})
	if err := srv.Listen(); err != nil {
		return err
	}
	for _, a := range srv.Addrs() {
		s.log.Info("manager API listening", "addr", a.String())
		s.addrs = append(s.addrs, Endpoint{Name: "manager", Network: a.Network(), Addr: a.String()})
	}
	s.addSessions("manager", "tcp+unix", srv.Stats)
	s.services = append(s.services, service{"manager", srv.Run, func() { srv.Close() }})
	return nil
}

// keyStore adapts the SQL store's system table to manager.KeyStore.
type keyStore struct{ st *sqlstore.Store }

func (k keyStore) GetSystem(ctx context.Context, typ string) (string, error) {
	v, ok, err := k.st.GetSystem(ctx, typ)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", nil
	}
	return v, nil
}

// managerKey is the manager's AES key from manager_aes_key and
// manager_aes_iv; the zero Key when none is set.
func managerKey(cfg *config.Config) (manager.Key, error) {
	if !cfg.ManagerAESKey.IsSet() {
		return manager.Key{}, nil
	}
	k, err := manager.DecodeKey(cfg.ManagerAESKey.Reveal(), cfg.ManagerAESIV.Reveal())
	if err != nil {
		return manager.Key{}, fmt.Errorf("sensor: manager_aes_key/manager_aes_iv: %w", err)
	}
	return k, nil
}

// lifecycle implements system.Lifecycle.
type lifecycle struct{ s *Sensor }

func (l lifecycle) Reload(ctx context.Context) error { return l.s.Reload() }
func (l lifecycle) Terminate()                       { l.s.Terminate() }

// errNoConfigFile is returned by Reload when the sensor runs without -c.
var errNoConfigFile = errors.New("sensor: no configuration file to reload (started without -c)")

// trafficThreads adds the capture thread's packet count to threadList,
// for sniffer_threads only_traffic.
type trafficThreads struct {
	threadList
	s *Sensor
}

func (tt trafficThreads) Threads() []system.Thread {
	ts := tt.threadList.Threads()
	for i := range ts {
		ts[i].Packets = tt.s.loop.Frames() // the one thread that reads and analyses frames
	}
	return ts
}
