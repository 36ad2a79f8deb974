package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/transport/manager"
	"github.com/voipsensor/voipsensor/internal/transport/server"
)

// wireServer wires the VoIPmonitor server API (TCP 60024). With server_bind
// set the sensor is a central server: it accepts sensors' service
// connections, answers manager_command/gui_command, records connected
// sensors in the sensors table and registers the aggregated commands
// (listcalls_all, active_sensors). With server_destination set it is a
// probe: it keeps a service connection to the first reachable server and
// runs relayed commands through the registry, rendered as the manager API
// renders them. Both may be set (a tier of servers).
func (s *Sensor) wireServer() error {
	cfg := s.cfg
	if cfg.ServerBind != "" {
		if err := s.wireServerListener(); err != nil {
			return err
		}
	}
	if len(cfg.ServerDestination) > 0 {
		return s.wireServerProbe()
	}
	return nil
}

func (s *Sensor) wireServerListener() error {
	cfg := s.cfg
	log := s.log.With("transport", "server")
	scfg := server.Config{
		Addr:     cfg.ServerAddr(),
		Password: cfg.ServerPassword.Reveal(),
		SensorID: cfg.IDSensor,
		Logger:   log,
	}
	if cfg.ManagerAESKey.IsSet() {
		k, err := manager.DecodeKey(cfg.ManagerAESKey.Reveal(), cfg.ManagerAESIV.Reveal())
		if err != nil {
			return fmt.Errorf("sensor: manager_aes_key/manager_aes_iv: %w", err)
		}
		scfg.ManagerKey = k
	}
	if st, ok := s.store.(*sqlstore.Store); ok {
		scfg.OnConnect = func(sv server.Service) {
			name := sv.Name
			if name == "" {
				name = "sensor " + strconv.Itoa(sv.SensorID)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := st.UpsertSensor(ctx, sqlstore.Sensor{
				ID: sv.SensorID, Name: name, Host: sv.Addr.Addr().Unmap().String(), LastSeen: time.Now(),
			})
			if err != nil {
				log.Error("sensors table update failed", "sensor_id", sv.SensorID, "err", err)
			}
		}
	}
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	server.Register(s.reg, srv)
	l, err := srv.Listen()
	if err != nil {
		return err
	}
	s.log.Info("server API listening", "addr", l.Addr().String())
	s.addrs = append(s.addrs, Endpoint{Name: "server", Network: "tcp", Addr: l.Addr().String()})
	s.services = append(s.services, service{"server", func(ctx context.Context) error {
		return srv.Run(ctx, l)
	}, func() { l.Close() }})
	return nil
}

func (s *Sensor) wireServerProbe() error {
	cfg := s.cfg
	log := s.log.With("transport", "server-probe")
	// Relayed commands run through a manager server without listeners of
	// its own, fed over in-memory pipes, so that their output is exactly
	// what the manager API would send (the legacy probe calls
	// parse_command the same way).
	pl := newPipeListener()
	mgr, err := manager.New(s.reg, manager.Config{Logger: log})
	if err != nil {
		return err
	}
	exec := func(ctx context.Context, line string, w io.Writer) error {
		c, err := pl.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			return err
		}
		_, err = io.Copy(w, c)
		return err
	}
	probe, err := server.NewProbe(server.ProbeConfig{
		Destinations: cfg.ServerDestination,
		Port:         cfg.ServerDestinationPort,
		Password:     cfg.ServerPassword.Reveal(),
		SensorID:     cfg.IDSensor,
		Exec:         exec,
		Logger:       log,
	})
	if err != nil {
		return fmt.Errorf("sensor: server_destination: %w", err)
	}
	s.services = append(s.services, service{"server-probe", func(ctx context.Context) error {
		served := make(chan struct{})
		go func() { defer close(served); mgr.Serve(pl) }()
		err := probe.Run(ctx)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mgr.Shutdown(sctx)
		<-served
		return err
	}, pl.close})
	return nil
}

// pipeListener is an in-memory net.Listener whose connections are
// net.Pipe ends. It reports the "unix" network so the manager server
// treats it as local (no AES gate), like the managersocket.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (p *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeListener) close() { p.once.Do(func() { close(p.done) }) }

func (p *pipeListener) Close() error { p.close(); return nil }

func (p *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (p *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case p.conns <- b:
		return a, nil
	case <-p.done:
		return nil, errors.New("sensor: command runner closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "unix" }
func (pipeAddr) String() string  { return "server-probe" }
