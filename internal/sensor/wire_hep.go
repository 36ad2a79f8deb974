package sensor

import (
	"fmt"

	"github.com/voipsensor/voipsensor/internal/command/metrics"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/hepfeed"
)

// hepWiring is the HEP collector (with the feeder that hands its packets
// to the table) and sender, each nil when not configured.
type hepWiring struct {
	collector *hep.Collector
	feeder    *hepfeed.Feeder
	sender    *hep.Sender
}

// wireHEP binds the HEP collector on hep_bind and prepares the sender to
// hep_server; either may be off.
func (s *Sensor) wireHEP() error {
	hc := s.cfg.HEP
	log := s.log.With("transport", "hep")
	if addr := hc.CollectorAddr(); addr != "" {
		f := hepfeed.NewFeeder(s.table, hc.SensorIDs)
		c := hep.NewCollector(hep.CollectorConfig{
			Addr: addr, Password: hc.Password.Reveal(), CaptureIDs: hc.AllowCaptureIDs,
			Handler: f.Packet, Logger: log,
		})
		if err := c.Listen(); err != nil {
			return fmt.Errorf("sensor: hep_bind: %w", err)
		}
		s.hep.collector, s.hep.feeder = c, f
		s.log.Info("hep collector listening", "udp", c.UDPAddr().String(), "tcp", c.TCPAddr().String(),
			"password", hc.Password.IsSet(), "capture_ids", len(hc.AllowCaptureIDs))
		s.addrs = append(s.addrs, Endpoint{Name: "hep", Network: "udp", Addr: c.UDPAddr().String()},
			Endpoint{Name: "hep", Network: "tcp", Addr: c.TCPAddr().String()})
		s.services = append(s.services, service{"hep", c.Run, func() { c.Close() }})
		if s.spool != nil && s.spool.rec != nil {
			s.table.SetRecorder(f.SkipRecorder(s.spool.rec))
		}
	}
	if addr := hc.SenderAddr(); addr != "" {
		snd, err := hep.NewSender(hep.SenderConfig{
			Network: hc.ServerTransport, Addr: addr, CaptureID: uint32(hc.CaptureID),
			Password: hc.Password.Reveal(), Logger: log,
		})
		if err != nil {
			return fmt.Errorf("sensor: hep_server: %w", err)
		}
		s.hep.sender = snd
		s.services = append(s.services, service{"hep-sender", snd.Run, nil})
	}
	return nil
}

// stopHEPCollector stops the collector and waits for the packets it is
// handing over, so that none reaches the table after CloseAll.
func (s *Sensor) stopHEPCollector() {
	if s.hep.collector != nil {
		s.hep.collector.Close()
	}
}

// captureHandler is the packet loop's handler: the call table, and the
// HEP sender beside it when hep_server is set.
func (s *Sensor) captureHandler() decode.Handler {
	if s.hep.sender == nil {
		return s.table
	}
	return hepfeed.NewTee(s.table, s.hep.sender, s.cfg.HEP.RTP)
}

// withHEP adds the HEP counters to a metrics source when HEP is on.
func (s *Sensor) withHEP(src metrics.Source) metrics.Source {
	if s.hep.collector == nil && s.hep.sender == nil {
		return src
	}
	return hepMetrics{src, &s.hep}
}

// hepMetrics is a metrics source with the HEP families after the others.
type hepMetrics struct {
	metrics.Source
	w *hepWiring
}

func (m hepMetrics) Families() []metrics.Family {
	return append(m.Source.Families(), hepfeed.Families(m.w.collector, m.w.feeder, m.w.sender)...)
}
