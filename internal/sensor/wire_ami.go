package sensor

import (
	"context"
	"fmt"
	"time"

	"github.com/voipsensor/voipsensor/internal/tableview"
	"github.com/voipsensor/voipsensor/internal/transport/ami"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// qualityEvery is the period of the event.Quality samples published for
// calls in progress (rendered by AMI as VoIPQuality).
const qualityEvery = 5 * time.Second

// wireAMI binds the Asterisk-compatible manager port when the amiconfig
// file is set, enabled and names at least one user; it also publishes the
// periodic quality events the AMI stream carries. AMI reads the calls in
// progress through the registry (calls_in_progress), like any command.
func (s *Sensor) wireAMI() error {
	if s.cfg.AMIConfig == "" {
		return nil
	}
	acfg, err := ami.LoadConfig(s.cfg.AMIConfig)
	if err != nil {
		return fmt.Errorf("sensor: amiconfig: %w", err)
	}
	if !acfg.Enabled || len(acfg.Users) == 0 {
		s.log.Info("AMI disabled", "amiconfig", s.cfg.AMIConfig, "users", len(acfg.Users))
		return nil
	}
	srv := ami.New(s.reg, s.bus, acfg, ami.Options{
		Logger:        s.log.With("transport", "ami"),
		SensorVersion: Version,
	})
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("sensor: AMI listen: %w", err)
	}
	addr := srv.Addr().String()
	s.log.Info("AMI listening", "addr", addr, "users", len(acfg.Users))
	s.addrs = append(s.addrs, Endpoint{Name: "ami", Network: "tcp", Addr: addr})
	s.addSessions("ami", "tcp", func() conn.Stats { return srv.Stats().Stats })
	s.services = append(s.services, service{"ami", func(ctx context.Context) error {
		go tableview.PublishQuality(ctx, s.table, s.bus, qualityEvery)
		err := srv.Run(ctx)
		st := srv.Stats()
		s.log.Info("AMI stopped", "accepted", st.Accepted, "refused", st.Refused(), "slow_consumers", st.SlowConsumers(),
			"panics", st.Panics, "render_panics", st.RenderPanics, "events_rendered", st.EventsRendered,
			"events_delivered", st.EventsDelivered, "bus_dropped", st.BusDropped)
		return err
	}, func() { srv.Close() }})
	return nil
}
