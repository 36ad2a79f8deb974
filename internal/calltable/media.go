package calltable

import (
	"net/netip"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/event"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// handleRTP accounts one RTP packet on a call's media address. viaDst tells
// whether c is the call of the destination address, whose stream hint is
// hint. Must hold t.mu.
func (t *Table) handleRTP(c *Call, hint *Stream, viaDst bool, dg *decode.Datagram) {
	// Load the call's tap and the hint's SSRC first: both are usually cache
	// misses, and issued together they overlap instead of queueing behind
	// the header parse and the stream statistics.
	tap := c.tap
	var hintSSRC uint32
	if hint != nil {
		hintSSRC = hint.SSRC
	}
	h := &t.hdr
	if err := h.Unmarshal(dg.Payload); err != nil {
		t.stats.RTPMalformed++
		return
	}
	s := hint
	if s != nil && (hintSSRC != h.SSRC || s.Flow != dg.Flow) {
		s = nil
	}
	if s == nil {
		if s = c.stream(dg.Flow, h.SSRC); s == nil {
			if len(c.Streams) >= t.cfg.MaxStreamsPerCall {
				t.stats.StreamsDropped++
				return
			}
			s = c.newStream(dg.Flow, h)
		}
		if viaDst {
			t.media.setRecv(dg.Flow.Dst, c, s)
		}
	}
	s.RTP.Add(h, dg.Time)
	s.ttl.add(dg.TTL)
	if tap != nil {
		tap.RTP(s.Side, h.PayloadType, s.codec, h.Seq, h.Timestamp, h.Payload, dg.Time)
	}
	if s.hasEvent && h.PayloadType == s.eventPT {
		t.handleEvent(c, s, dg, h.Timestamp, h.Payload)
	}
	c.LastPacket = dg.Time
	t.stats.RTPPackets++
}

// stream finds the stream with this flow and SSRC. Streams are keyed by
// both: replayed captures reuse SSRCs across calls and directions.
func (c *Call) stream(f decode.Flow, ssrc uint32) *Stream {
	for _, s := range c.Streams {
		if s.SSRC == ssrc && s.Flow == f {
			return s
		}
	}
	return nil
}

// newStream adds a stream for the first packet of a new flow+SSRC.
func (c *Call) newStream(f decode.Flow, h *rtp.Header) *Stream {
	s := &Stream{Flow: f, SSRC: h.SSRC, Side: c.senderOf(f)}
	eventPT := c.eventPT()
	pt := h.PayloadType
	if int(pt) == eventPT {
		// The first packet is a DTMF event; size the stream for the
		// voice codec the SDP offers first.
		pt = c.firstVoicePT(eventPT)
	}
	cfg := rtp.StreamConfig{EventPT: eventPT, CNPT: c.cnPT()}
	if eventPT >= 0 {
		s.eventPT, s.hasEvent = uint8(eventPT), true
	}
	if f, ok := c.format(pt); ok && f.Rate != 0 {
		cfg.Codec, cfg.ClockRate = f.Name, f.Rate
	} else if name, rate, ok := rtp.ClockRate(pt); ok {
		cfg.Codec, cfg.ClockRate = name, rate
	}
	s.codec = cfg.Codec
	s.RTP.Init(cfg)
	c.Streams = append(c.Streams, s)
	return s
}

// senderOf tells which side sends on flow f: the side that receives at the
// destination is the other one; failing that, the side advertising the
// source (symmetric RTP).
func (c *Call) senderOf(f decode.Flow) Side {
	if side := c.sideOfMedia(f.Dst); side != SideNone {
		return side.other()
	}
	return c.sideOfMedia(f.Src)
}

func (c *Call) firstVoicePT(eventPT int) uint8 {
	cn := c.cnPT()
	for i := range c.Media {
		for _, f := range c.Media[i].Formats {
			if int(f.PT) != eventPT && int(f.PT) != cn {
				return f.PT
			}
		}
	}
	return 0
}

// handleRTCP applies an RTCP compound packet: sender reports are remembered
// on the stream they describe (for round-trip times), report blocks feed the
// statistics of the stream they report on. Must hold t.mu.
func (t *Table) handleRTCP(c *Call, dg *decode.Datagram) {
	// The SR's sender sends the stream it describes; a report block's
	// sender receives the stream it reports on.
	from := dg.Flow.Src
	err := rtp.ParseRTCP(dg.Payload, func(p *rtp.RTCPPacket) {
		if p.Type == rtp.TypeSR {
			c.rtcpStreams(p.SSRC, from, true, func(s *Stream) { s.RTP.AddSR(rtp.NTPMid32(p.NTP), dg.Time) })
		}
		for i := range p.Reports {
			rb := &p.Reports[i]
			c.rtcpStreams(rb.SSRC, from, false, func(s *Stream) {
				s.RTP.AddReport(*rb, dg.Time)
				if e := t.emit(event.RTCPReport, c, dg.Time); e != nil {
					t.fillRTCP(e, s, p, rb, dg)
				}
			})
		}
		for i := range p.VoIP {
			xr := &p.VoIP[i]
			c.rtcpStreams(xr.SSRC, from, false, func(s *Stream) { s.RTP.AddXR(*xr) })
		}
	})
	if err != nil {
		t.stats.RTCPMalformed++
		return
	}
	c.LastPacket = dg.Time
	c.rtcpSeen = true
	t.stats.RTCPPackets++
}

// rtcpStreams calls fn for each stream with SSRC ssrc that an RTCP packet
// from the endpoint at from is about: the ones it sends (sent) or receives. The
// endpoint is matched by its RTP address and port, the port above it (RFC
// 3550 §11) or its advertised a=rtcp port, so that two parties on one host
// (one address, different ports) each get their own reports even when they
// share an SSRC; when no stream matches that way, by address alone (RTCP
// from an unrelated port, behind NAT). Must hold t.mu.
func (c *Call) rtcpStreams(ssrc uint32, from netip.AddrPort, sent bool, fn func(*Stream)) {
	end := func(s *Stream) netip.AddrPort {
		if sent {
			return s.Flow.Src
		}
		return s.Flow.Dst
	}
	n := 0
	for _, s := range c.Streams {
		if s.SSRC == ssrc && c.rtcpOf(end(s), from) {
			fn(s)
			n++
		}
	}
	if n > 0 {
		return
	}
	for _, s := range c.Streams {
		if s.SSRC == ssrc && end(s).Addr() == from.Addr() {
			fn(s)
		}
	}
}

// rtcpOf tells whether from is the RTCP address of the RTP endpoint rtpEnd.
func (c *Call) rtcpOf(rtpEnd, from netip.AddrPort) bool {
	if rtpEnd.Addr() != from.Addr() {
		return false
	}
	if p := rtpEnd.Port(); from.Port() == p || from.Port() == p+1 {
		return true
	}
	for i := range c.Media {
		if m := &c.Media[i]; m.Addr == rtpEnd && m.RTCP == from {
			return true
		}
	}
	return false
}

// fillRTCP describes one report block in an RTCPReport event. Lock must be
// held.
func (t *Table) fillRTCP(e *event.Event, s *Stream, p *rtp.RTCPPacket, rb *rtp.ReportBlock, dg *decode.Datagram) {
	e.Direction = direction(s.Side)
	st := s.RTP.Stats()
	e.RTCP = event.RTCP{
		Sent:           p.Type == rtp.TypeSR,
		ReporterSSRC:   p.SSRC,
		SourceSSRC:     rb.SSRC,
		FractionLost:   float64(rb.FractionLost) / 256,
		CumulativeLost: rb.CumulativeLost,
		RTTMS:          st.RTCP.RTTAvgMS, // running mean of the capture-time method
		PacketCount:    p.PacketCount,
		OctetCount:     p.OctetCount,
		From:           dg.Flow.Src,
		To:             dg.Flow.Dst,
	}
	if rate := s.RTP.ClockRate(); rate > 0 {
		e.RTCP.JitterMS = float64(rb.Jitter) / (float64(rate) / 1000)
	}
}
