package sensor

import (
	"context"
	"fmt"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/transport/ami"
)

// qualityEvery is the period of the event.Quality samples published for
// calls in progress (rendered by AMI as VoIPQuality).
const qualityEvery = 5 * time.Second

// wireAMI binds the Asterisk-compatible manager port when the amiconfig
// file is set, enabled and names at least one user; it also publishes the
// periodic quality events the AMI stream carries.
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
		Calls:         callsInProgress{s.table},
		SensorVersion: Version,
	})
	l, err := srv.Listen()
	if err != nil {
		return fmt.Errorf("sensor: AMI listen: %w", err)
	}
	s.log.Info("AMI listening", "addr", l.Addr().String(), "users", len(acfg.Users))
	s.addrs = append(s.addrs, Endpoint{Name: "ami", Network: "tcp", Addr: l.Addr().String()})
	s.services = append(s.services, service{"ami", func(ctx context.Context) error {
		go publishQuality(ctx, s.table, s.bus, qualityEvery)
		err := srv.Run(ctx, l)
		st := srv.Stats()
		s.log.Info("AMI stopped", "accepted", st.Accepted, "rejected", st.Rejected, "slow_consumers", st.SlowConsumers,
			"events_rendered", st.EventsRendered, "events_delivered", st.EventsDelivered, "bus_dropped", st.BusDropped)
		return err
	}, func() { l.Close() }})
	return nil
}

// callsInProgress implements ami.Calls from table snapshots.
type callsInProgress struct{ t *calltable.Table }

func (c callsInProgress) InProgress() []*event.Event {
	snap := c.t.Snapshot()
	out := make([]*event.Event, 0, len(snap.Calls))
	for _, ci := range snap.Calls {
		if ci.State.InProgress() {
			out = append(out, ci.Event(event.Quality, snap.Time))
		}
	}
	return out
}

// publishQuality publishes one event.Quality per call in progress every
// period until ctx is done.
func publishQuality(ctx context.Context, t *calltable.Table, bus *event.Bus, period time.Duration) {
	tk := time.NewTicker(period)
	defer tk.Stop()
	src := callsInProgress{t}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			for _, e := range src.InProgress() {
				bus.Publish(e)
			}
		}
	}
}
