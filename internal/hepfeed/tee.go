package hepfeed

import (
	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/rtp"
	"github.com/voipsensor/voipsensor/internal/sip"
)

// Tee hands each captured datagram to the call table, then queues the SIP
// ones (and with withRTP the RTP and RTCP ones) for a HEP sender, which
// copies them: nothing here waits for the network.
type Tee struct {
	t       *calltable.Table
	snd     *hep.Sender
	withRTP bool
}

// NewTee returns the packet loop's handler when hep_server is set.
func NewTee(t *calltable.Table, snd *hep.Sender, withRTP bool) Tee {
	return Tee{t: t, snd: snd, withRTP: withRTP}
}

// HandleDatagram implements decode.Handler.
func (h Tee) HandleDatagram(dg *decode.Datagram) {
	h.t.HandleDatagram(dg)
	typ, ok := Type(dg, h.t, h.withRTP)
	if !ok {
		return
	}
	p := hep.Packet{IPProto: uint8(dg.Flow.Proto), Src: dg.Flow.Src, Dst: dg.Flow.Dst, Time: dg.Time, Type: typ, Payload: dg.Payload}
	if dg.VLAN != decode.NoVLAN {
		p.VLAN, p.HasVLAN = dg.VLAN, true
	}
	h.snd.Send(&p)
}

// SIPPorts says which ports carry SIP (a *calltable.Table does).
type SIPPorts interface{ SIPPort(uint16) bool }

// Type says what a captured datagram is sent as: SIP when it is on a SIP
// port or starts like SIP (the table's own test; keepalives are not
// sent), and with withRTP an RTCP or RTP packet by its header.
func Type(dg *decode.Datagram, ports SIPPorts, withRTP bool) (hep.ProtoType, bool) {
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

var _ decode.Handler = Tee{}
