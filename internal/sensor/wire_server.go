package sensor

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/voipsensor/voipsensor/internal/cdr/sqlstore"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
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
		// The session cap and the unauthenticated share of it keep their
		// defaults (server.DefaultMaxConns, three quarters).
		Limits: conn.Limits{MaxUnauthPerAddr: cfg.MaxConnsPerIP, FirstRequest: cfg.FirstRequestTimeout},
		Logger: log,
	}
	if cfg.ManagerAESKey.IsSet() {
		// Only a key that is set: ManagerKey is an interface, and a zero
		// Key in it would still make the server ask for AES.
		k, err := managerKey(&cfg)
		if err != nil {
			return err
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
	s.addSessions("server", "tcp", srv.Stats)
	s.services = append(s.services, service{"server", func(ctx context.Context) error {
		return srv.Run(ctx, l)
	}, func() { l.Close() }})
	return nil
}

func (s *Sensor) wireServerProbe() error {
	cfg := s.cfg
	log := s.log.With("transport", "server-probe")
	// Relayed commands run through the manager's Execute, so that their
	// output is exactly what the manager API would send (the legacy probe
	// calls parse_command the same way). The central server authenticated
	// this sensor's connection, so the relay is trusted like the unix
	// socket: no AES gate.
	exec := func(ctx context.Context, line string, w io.Writer) error {
		return s.manager.Execute(ctx, w, []byte(line+"\n"), true)
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
	s.services = append(s.services, service{"server-probe", probe.Run, nil})
	return nil
}
