package sensor

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/command/metrics"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// hepWiring is the HEP collector and sender, each nil when not configured.
type hepWiring struct {
	collector *hep.Collector
	sender    *hep.Sender
	// feeding is set while a collected packet is in the call table, dg
	// is its datagram; both guarded by the table lock (used only inside
	// Table.Feed).
	feeding bool
	dg      decode.Datagram
	// rtcp holds the binary form of a JSON RTCP report while it is fed;
	// guarded by the table lock like dg.
	rtcp []byte
	// rtcpJSON counts the JSON RTCP reports fed to the table, rtcpJSONBad
	// those that did not parse.
	rtcpJSON, rtcpJSONBad atomic.Uint64
}

// wireHEP binds the HEP collector on hep_bind and prepares the sender to
// hep_server; either may be off.
func (s *Sensor) wireHEP() error {
	hc := s.cfg.HEP
	log := s.log.With("transport", "hep")
	if addr := hc.CollectorAddr(); addr != "" {
		c := hep.NewCollector(hep.CollectorConfig{
			Addr: addr, Password: hc.Password.Reveal(), CaptureIDs: hc.AllowCaptureIDs,
			Handler: s.hepPacket, Logger: log,
		})
		if err := c.Listen(); err != nil {
			return fmt.Errorf("sensor: hep_bind: %w", err)
		}
		s.hep.collector = c
		s.log.Info("hep collector listening", "udp", c.UDPAddr().String(), "tcp", c.TCPAddr().String(),
			"password", hc.Password.IsSet(), "capture_ids", len(hc.AllowCaptureIDs))
		s.addrs = append(s.addrs, Endpoint{Name: "hep", Network: "udp", Addr: c.UDPAddr().String()},
			Endpoint{Name: "hep", Network: "tcp", Addr: c.TCPAddr().String()})
		s.services = append(s.services, service{"hep", c.Run, func() { c.Close() }})
		if s.spool != nil && s.spool.rec != nil {
			// The recorder saves the frame the capture loop is decoding; a
			// collected packet has none (and comes on another goroutine).
			s.table.SetRecorder(hepSkipRecorder{s.spool.rec, &s.hep})
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

// hepPacket feeds one collected HEP packet to the call table as the
// datagram its agent captured: its addresses, ports, protocol and time,
// without a frame around it. SIP, RTP and RTCP are analysed, RTCP binary
// or as the JSON report heplify and rtpengine send (turned back into the
// binary packet it describes, so that it feeds the stream's RTCP figures
// alike; one that does not parse is counted); compressed payloads and
// other protocol types are not. The calls an agent listed in
// hep_id_sensor creates carry its id_sensor. Called from the collector's
// goroutines.
func (s *Sensor) hepPacket(p *hep.Packet) bool {
	if p.Compressed {
		return false
	}
	var (
		rjv hep.RTCPJSON
		rj  *hep.RTCPJSON // set for a JSON RTCP report
	)
	switch p.Type {
	case hep.TypeSIP, hep.TypeRTP:
	case hep.TypeRTCP:
		if !rtp.IsRTCP(p.Payload) {
			rj = &rjv // parsed outside the table lock, so not in the shared wiring
			if err := hep.ParseRTCPJSON(p.Payload, rj); err != nil {
				s.hep.rtcpJSONBad.Add(1)
				return false
			}
			if !rj.Sender && len(rj.Reports) == 0 {
				return false // SDES, BYE, XR alone: nothing for the statistics
			}
			s.hep.rtcpJSON.Add(1)
		}
	default:
		return false
	}
	var proto decode.Proto
	switch p.IPProto {
	case uint8(decode.ProtoUDP), uint8(decode.ProtoTCP), uint8(decode.ProtoSCTP):
		proto = decode.Proto(p.IPProto)
	default:
		return false
	}
	vlan := decode.NoVLAN
	if p.HasVLAN {
		vlan = p.VLAN
	}
	// One datagram, as HandleDatagram would, but with the table lock held
	// around it: feeding and the shared datagram (no allocation) are
	// guarded by it.
	feed := func(h decode.Handler) {
		w := &s.hep
		w.feeding = true
		w.dg = decode.Datagram{Flow: decode.Flow{Src: p.Src, Dst: p.Dst, Proto: proto}, Time: p.Time, Payload: p.Payload, VLAN: vlan}
		if rj != nil {
			w.rtcp = rj.AppendBinary(w.rtcp[:0])
			w.dg.Payload = w.rtcp
		}
		h.HandleDatagram(&w.dg)
		w.dg.Payload, w.feeding = nil, false
	}
	if id, ok := s.cfg.HEP.SensorIDs[p.CaptureID]; ok {
		s.table.FeedSensor(id, feed)
	} else {
		s.table.Feed(feed)
	}
	return true
}

// hepSkipRecorder passes the table's Record calls to the spool's recorder
// except those of collected packets: the recorder saves the captured frame
// being decoded, which is not theirs. Collected packets are not recorded.
type hepSkipRecorder struct {
	calltable.Recorder
	w *hepWiring
}

// Record is called with the table lock held, which guards w.feeding.
func (r hepSkipRecorder) Record(kind calltable.RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram) {
	if !r.w.feeding {
		r.Recorder.Record(kind, ref, callID, start, dg)
	}
}

// captureHandler is the packet loop's handler: the call table, and the
// HEP sender beside it when hep_server is set.
func (s *Sensor) captureHandler() decode.Handler {
	h := tableHandler{s.table}
	if s.hep.sender == nil {
		return h
	}
	return hepTee{t: s.table, snd: s.hep.sender, ports: s.table, rtp: s.cfg.HEP.RTP}
}

// hepTee hands each datagram to the table, then queues the SIP ones (and
// with rtp the RTP and RTCP ones) for the HEP sender, which copies them:
// nothing here waits for the network.
type hepTee struct {
	t     *calltable.Table
	snd   *hep.Sender
	ports interface{ SIPPort(uint16) bool }
	rtp   bool
}

func (h hepTee) HandleDatagram(dg *decode.Datagram) {
	h.t.HandleDatagram(dg)
	typ, ok := hepType(dg, h.ports, h.rtp)
	if !ok {
		return
	}
	p := hep.Packet{IPProto: uint8(dg.Flow.Proto), Src: dg.Flow.Src, Dst: dg.Flow.Dst, Time: dg.Time, Type: typ, Payload: dg.Payload}
	if dg.VLAN != decode.NoVLAN {
		p.VLAN, p.HasVLAN = dg.VLAN, true
	}
	h.snd.Send(&p)
}

// hepType says what a captured datagram is sent as: SIP when it is on a
// SIP port or starts like SIP (the table's own test; keepalives are not
// sent), and with withRTP an RTCP or RTP packet by its header.
func hepType(dg *decode.Datagram, ports interface{ SIPPort(uint16) bool }, withRTP bool) (hep.ProtoType, bool) {
	b := dg.Payload
	if sip.LooksLikeSIP(b) {
		return hep.TypeSIP, true
	}
	if ports.SIPPort(dg.Flow.Src.Port()) || ports.SIPPort(dg.Flow.Dst.Port()) {
		return hep.TypeSIP, !sip.IsKeepalive(b)
	}
	if !withRTP || dg.Flow.Proto != decode.ProtoUDP || len(b) < 8 || b[0]>>6 != 2 {
		return 0, false
	}
	if rtp.IsRTCP(b) {
		return hep.TypeRTCP, true
	}
	return hep.TypeRTP, len(b) >= 12
}

// withHEP adds the HEP counters to a metrics source when HEP is on.
func (s *Sensor) withHEP(src metrics.Source) metrics.Source {
	if s.hep.collector == nil && s.hep.sender == nil {
		return src
	}
	return hepMetrics{src, s}
}

// hepMetrics is a metrics source with the HEP families after the others.
type hepMetrics struct {
	metrics.Source
	s *Sensor
}

func (m hepMetrics) Families() []metrics.Family {
	return append(m.Source.Families(), m.s.hepFamilies()...)
}

// hepFamilies are the collector's and the sender's counters as metric
// families.
func (s *Sensor) hepFamilies() []metrics.Family {
	var fams []metrics.Family
	counter := func(name, help, key string, vals map[string]float64) {
		f := metrics.Family{Name: name, Help: help, Type: metrics.Counter}
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			f.Samples = append(f.Samples, metrics.Sample{Labels: map[string]string{key: k}, Value: vals[k]})
		}
		fams = append(fams, f)
	}
	if c := s.hep.collector; c != nil {
		st := c.Stats()
		counter("voipsensor_hep_received_total", "HEP packets received by the collector, by outcome.", "outcome", map[string]float64{
			"analysed": float64(st.Delivered), "ignored": float64(st.Ignored), "malformed": float64(st.Malformed),
			"auth_failed": float64(st.AuthFailures), "unknown_agent": float64(st.UnknownAgents),
		})
		fams = append(fams,
			metrics.Family{Name: "voipsensor_hep_received_bytes_total", Help: "Bytes of the HEP packets received.", Type: metrics.Counter,
				Samples: []metrics.Sample{{Value: float64(st.Bytes)}}},
			metrics.Family{Name: "voipsensor_hep_bad_chunks_total", Help: "HEP chunks of a wrong length skipped in packets that were otherwise analysed.", Type: metrics.Counter,
				Samples: []metrics.Sample{{Value: float64(st.BadChunks)}}},
			metrics.Family{Name: "voipsensor_hep_connections", Help: "HEP TCP connections open.", Type: metrics.Gauge,
				Samples: []metrics.Sample{{Value: float64(st.Conns)}}},
		)
		counter("voipsensor_hep_rtcp_json_total", "RTCP reports received as JSON (heplify, rtpengine), by outcome: analysed, or malformed (did not parse, not analysed).", "outcome", map[string]float64{
			"analysed": float64(s.hep.rtcpJSON.Load()), "malformed": float64(s.hep.rtcpJSONBad.Load()),
		})
	}
	if snd := s.hep.sender; snd != nil {
		st := snd.Stats()
		counter("voipsensor_hep_sent_total", "HEP packets of the sender, by outcome: sent, dropped (queue full), failed (lost in a failed write).", "outcome", map[string]float64{
			"sent": float64(st.Sent), "dropped": float64(st.Dropped), "failed": float64(st.Failed),
		})
		up := 0.0
		if st.Connected {
			up = 1
		}
		fams = append(fams,
			metrics.Family{Name: "voipsensor_hep_sent_bytes_total", Help: "Bytes of the HEP packets sent.", Type: metrics.Counter,
				Samples: []metrics.Sample{{Value: float64(st.Bytes)}}},
			metrics.Family{Name: "voipsensor_hep_send_queue", Help: "HEP packets waiting to be sent.", Type: metrics.Gauge,
				Samples: []metrics.Sample{{Value: float64(st.Queued)}}},
			metrics.Family{Name: "voipsensor_hep_connected", Help: "1 while the HEP sender's connection is up.", Type: metrics.Gauge,
				Samples: []metrics.Sample{{Value: up}}},
			metrics.Family{Name: "voipsensor_hep_reconnects_total", Help: "HEP sender connections re-established.", Type: metrics.Counter,
				Samples: []metrics.Sample{{Value: float64(st.Reconnects)}}},
		)
	}
	return fams
}

// nullSource is the packet source of interface = none: nothing, until
// closed. The sensor then only analyses what its HEP collector receives.
type nullSource struct {
	once   sync.Once
	closed chan struct{}
}

func newNullSource() *nullSource { return &nullSource{closed: make(chan struct{})} }

func (n *nullSource) ReadFrame(*capture.Frame) error { <-n.closed; return capture.ErrClosed }
func (n *nullSource) Stats() capture.Stats           { return capture.Stats{} }
func (n *nullSource) Close() error                   { n.once.Do(func() { close(n.closed) }); return nil }

var (
	_ capture.Source     = (*nullSource)(nil)
	_ decode.Handler     = hepTee{}
	_ metrics.Source     = hepMetrics{}
	_ calltable.Recorder = hepSkipRecorder{}
)
