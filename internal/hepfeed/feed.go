// Package hepfeed joins HEP to the call table: the collector's packets go
// into the table as the datagrams their agents captured (Feeder), the
// datagrams the sensor captures go out to a HEP server beside the table
// (Tee), and both sides' counters become metric families (Families).
package hepfeed

import (
	"sync/atomic"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/rtp"
)

// Feeder hands collected HEP packets to a call table. Its Packet method is
// the collector's handler; safe for concurrent use (the table serialises
// the feeding).
type Feeder struct {
	table *calltable.Table
	// sensorIDs maps an agent's capture id to the id_sensor its calls
	// carry (hep_id_sensor).
	sensorIDs map[uint32]int

	// feeding is set while a collected packet is in the call table, dg
	// is its datagram and rtcp the binary form of a JSON RTCP report
	// being fed. All three are guarded by the table lock: they are used
	// only inside Table.Feed.
	feeding bool
	dg      decode.Datagram
	rtcp    []byte

	// rtcpJSON counts the JSON RTCP reports fed to the table, rtcpJSONBad
	// those that did not parse.
	rtcpJSON, rtcpJSONBad atomic.Uint64
}

// NewFeeder returns a feeder into t. sensorIDs (hep_id_sensor) gives the
// calls of the agents it lists their own id_sensor; it is not modified.
func NewFeeder(t *calltable.Table, sensorIDs map[uint32]int) *Feeder {
	return &Feeder{table: t, sensorIDs: sensorIDs}
}

// Packet feeds one collected HEP packet to the call table as the datagram
// its agent captured: its addresses, ports, protocol and time, without a
// frame around it. SIP, RTP and RTCP are analysed, RTCP binary or as the
// JSON report heplify and rtpengine send (turned back into the binary
// packet it describes, so that it feeds the stream's RTCP figures alike;
// one that does not parse is counted); compressed payloads and other
// protocol types are not. It reports whether the packet was analysed.
func (f *Feeder) Packet(p *hep.Packet) bool {
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
			rj = &rjv // parsed outside the table lock, so not in the shared fields
			if err := hep.ParseRTCPJSON(p.Payload, rj); err != nil {
				f.rtcpJSONBad.Add(1)
				return false
			}
			if !rj.Sender && len(rj.Reports) == 0 {
				return false // SDES, BYE, XR alone: nothing for the statistics
			}
			f.rtcpJSON.Add(1)
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
		f.feeding = true
		f.dg = decode.Datagram{Flow: decode.Flow{Src: p.Src, Dst: p.Dst, Proto: proto}, Time: p.Time, Payload: p.Payload, VLAN: vlan}
		if rj != nil {
			f.rtcp = rj.AppendBinary(f.rtcp[:0])
			f.dg.Payload = f.rtcp
		}
		h.HandleDatagram(&f.dg)
		f.dg.Payload, f.feeding = nil, false
	}
	if id, ok := f.sensorIDs[p.CaptureID]; ok {
		f.table.FeedSensor(id, feed)
	} else {
		f.table.Feed(feed)
	}
	return true
}

// JSONRTCP returns how many RTCP reports came as JSON: analysed, and
// malformed (not analysed).
func (f *Feeder) JSONRTCP() (analysed, malformed uint64) {
	return f.rtcpJSON.Load(), f.rtcpJSONBad.Load()
}

// SkipRecorder wraps the table's recorder so that the packets the feeder
// hands over are not recorded: a recorder saves the captured frame being
// decoded, which is not theirs (and they come on other goroutines).
func (f *Feeder) SkipRecorder(rec calltable.Recorder) calltable.Recorder {
	return skipRecorder{rec, f}
}

type skipRecorder struct {
	calltable.Recorder
	f *Feeder
}

// Record is called with the table lock held, which guards f.feeding.
func (r skipRecorder) Record(kind calltable.RecordKind, ref uint64, callID string, start time.Time, dg *decode.Datagram) {
	if !r.f.feeding {
		r.Recorder.Record(kind, ref, callID, start, dg)
	}
}

var _ calltable.Recorder = skipRecorder{}
