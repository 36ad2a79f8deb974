package sensor

import (
	"github.com/voipsensor/voipsensor/internal/command/metrics"
	"github.com/voipsensor/voipsensor/internal/tableview"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	metricsrv "github.com/voipsensor/voipsensor/internal/transport/metrics"
)

// wireMetrics registers the metrics command group (fed by the quality
// accumulator, which the CDR sink and the one-second tick update) and
// binds the Prometheus endpoint on metrics_bind unless it is empty.
func (s *Sensor) wireMetrics() error {
	metrics.Register(s.reg, metrics.Deps{Source: s.withHEP(s.spool.withSpool(tableview.Metrics{
		Table: s.table, Counters: s.Status, Quality: s.quality, Sessions: s.sessions, Panics: s.reg.Panics,
	}))})
	if s.cfg.MetricsBind == "" {
		return nil
	}
	srv := metricsrv.New(s.reg, metricsrv.Config{
		Addr: s.cfg.MetricsBind, Token: s.cfg.MetricsToken.Reveal(), Hosts: s.cfg.HTTPHosts,
		Limits: s.httpLimits(), Logger: s.log.With("transport", "metrics"),
	})
	if err := srv.Listen(); err != nil {
		return err
	}
	s.log.Info("metrics listening", "addr", "http://"+srv.Addr().String()+"/metrics")
	s.addrs = append(s.addrs, Endpoint{Name: "metrics", Network: "tcp", Addr: srv.Addr().String()})
	s.addSessions("metrics", "http", srv.Stats)
	s.services = append(s.services, service{"metrics", srv.Run, func() { srv.Close() }})
	return nil
}

// addSessions adds a listener's session counters to the metrics.
func (s *Sensor) addSessions(transport, listener string, stats func() conn.Stats) {
	s.sessionSources = append(s.sessionSources, func() tableview.Session {
		st := stats()
		out := tableview.Session{Transport: transport, Listener: listener, Active: st.Active, Accepted: st.Accepted, Closed: map[string]uint64{}}
		for _, r := range conn.ClosedStates() {
			if n := st.Closed[r]; n > 0 {
				out.Closed[r.String()] = n
			}
		}
		return out
	})
}

// sessions lists every listener's session counters.
func (s *Sensor) sessions() []tableview.Session {
	out := make([]tableview.Session, 0, len(s.sessionSources))
	for _, f := range s.sessionSources {
		out = append(out, f())
	}
	return out
}
