package rtp

import (
	"encoding/binary"
	"time"
)

// RTCP packet types (RFC 3550 §12.1, RFC 3611 §5).
const (
	TypeSR   = 200
	TypeRR   = 201
	TypeSDES = 202
	TypeBYE  = 203
	TypeAPP  = 204
	TypeXR   = 207
)

// xrVoIPMetrics is the RFC 3611 §4.7 block type.
const xrVoIPMetrics = 7

// ReportBlock is one RFC 3550 §6.4.1 reception report: what a receiver says
// about source SSRC.
type ReportBlock struct {
	SSRC         uint32
	FractionLost uint8 // lost fraction since the last report, ×256
	// CumulativeLost is sign-extended from 24 bits (negative with duplicates).
	CumulativeLost int32
	ExtHighestSeq  uint32
	Jitter         uint32 // interarrival jitter in timestamp units
	LSR            uint32 // middle 32 bits of the NTP time of the last SR
	DLSR           uint32 // delay since that SR, 1/65536 s
}

// XRVoIPMetrics is an RFC 3611 §4.7 VoIP Metrics report block. Rates and
// densities are ×256; durations and delays in ms; levels in dB; 127 in
// RFactor, ExtRFactor, MOSLQ and MOSCQ means unavailable; MOS values ×10.
type XRVoIPMetrics struct {
	SSRC                                        uint32
	LossRate, DiscardRate                       uint8
	BurstDensity, GapDensity                    uint8
	BurstDuration, GapDuration                  uint16
	RoundTripDelay, EndSystemDelay              uint16
	SignalLevel, NoiseLevel                     int8
	RERL, Gmin                                  uint8
	RFactor, ExtRFactor, MOSLQ, MOSCQ, RXConfig uint8
	JBNominal, JBMaximum, JBAbsMax              uint16
}

// RTCPPacket is one packet of a compound RTCP datagram. Reports and VoIP
// alias storage inside the RTCPPacket and Body aliases the parsed buffer;
// all are valid only during the callback of [ParseRTCP].
type RTCPPacket struct {
	Type  uint8
	Count uint8 // RC or SC field
	// SSRC is the sender (SR, RR, APP, XR) or the first chunk/source (SDES,
	// BYE); zero when there is none.
	SSRC uint32
	// Sender info, SR only.
	NTP         uint64
	RTPTime     uint32
	PacketCount uint32
	OctetCount  uint32
	Reports     []ReportBlock   // SR and RR
	VoIP        []XRVoIPMetrics // XR VoIP Metrics blocks
	Body        []byte          // everything after the 4-byte common header

	reports [31]ReportBlock
	voip    [4]XRVoIPMetrics
}

// NTPMid32 returns the middle 32 bits of a 64-bit NTP timestamp, the form
// used by LSR (RFC 3550 §6.4.1).
func NTPMid32(ntp uint64) uint32 { return uint32(ntp >> 16) }

// ParseRTCP walks the compound RTCP datagram b and calls fn for each packet
// (RFC 3550 §6.1, §6.4; RFC 3611 for XR). Unknown packet types and XR
// blocks are passed through with only the common fields set. It returns an
// error at the first malformed packet; packets before it have been
// delivered. The RTCPPacket given to fn is reused and must not be retained.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|V=2|P|    RC   |   PT=SR=200   |             length            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         SSRC of sender                        |
//	+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//	|      NTP timestamp (64) | RTP timestamp | packet count | octets (SR)
//	+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//	| report blocks, 24 bytes each: SSRC, fraction lost(8),         |
//	| cumulative lost(24), ext highest seq, jitter, LSR, DLSR       |
//
// length is the packet size in 32-bit words minus one.
func ParseRTCP(b []byte, fn func(p *RTCPPacket)) error {
	if len(b) < 4 {
		return ErrRTCPShort
	}
	var p RTCPPacket
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrRTCPShort
		}
		if b[0]>>6 != 2 {
			return ErrVersion
		}
		n := 4 * (int(binary.BigEndian.Uint16(b[2:])) + 1)
		if n > len(b) {
			return ErrRTCPLength
		}
		if err := p.unmarshal(b[:n]); err != nil {
			return err
		}
		fn(&p)
		b = b[n:]
	}
	return nil
}

func (p *RTCPPacket) unmarshal(b []byte) error {
	*p = RTCPPacket{Type: b[1], Count: b[0] & 0x1f, Body: b[4:]}
	body := b[4:]
	if b[0]&0x20 != 0 { // padding: last byte counts the padding octets
		pad := int(b[len(b)-1])
		if pad == 0 || pad > len(body) {
			return ErrPadding
		}
		body = body[:len(body)-pad]
	}
	be := binary.BigEndian
	switch p.Type {
	case TypeSR, TypeRR:
		need := 4
		if p.Type == TypeSR {
			need = 24
		}
		if len(body) < need+24*int(p.Count) {
			return ErrRTCPShort
		}
		p.SSRC = be.Uint32(body)
		if p.Type == TypeSR {
			p.NTP = be.Uint64(body[4:])
			p.RTPTime = be.Uint32(body[12:])
			p.PacketCount = be.Uint32(body[16:])
			p.OctetCount = be.Uint32(body[20:])
		}
		rb := body[need:]
		for i := 0; i < int(p.Count); i++ {
			r := rb[24*i : 24*i+24]
			p.reports[i] = ReportBlock{
				SSRC:           be.Uint32(r),
				FractionLost:   r[4],
				CumulativeLost: int32(be.Uint32(r[4:])<<8) >> 8,
				ExtHighestSeq:  be.Uint32(r[8:]),
				Jitter:         be.Uint32(r[12:]),
				LSR:            be.Uint32(r[16:]),
				DLSR:           be.Uint32(r[20:]),
			}
		}
		p.Reports = p.reports[:p.Count]
	case TypeSDES, TypeBYE, TypeAPP:
		if p.Count > 0 || p.Type == TypeAPP {
			if len(body) < 4 {
				return ErrRTCPShort
			}
			p.SSRC = be.Uint32(body)
		}
	case TypeXR:
		if len(body) < 4 {
			return ErrRTCPShort
		}
		p.SSRC = be.Uint32(body)
		blocks := body[4:]
		for len(blocks) > 0 {
			if len(blocks) < 4 {
				return ErrRTCPShort
			}
			n := 4 * (int(be.Uint16(blocks[2:])) + 1)
			if n > len(blocks) {
				return ErrRTCPLength
			}
			if blocks[0] == xrVoIPMetrics && n >= 36 && len(p.VoIP) < len(p.voip) {
				v := blocks[4:36]
				p.voip[len(p.VoIP)] = XRVoIPMetrics{
					SSRC: be.Uint32(v), LossRate: v[4], DiscardRate: v[5],
					BurstDensity: v[6], GapDensity: v[7],
					BurstDuration: be.Uint16(v[8:]), GapDuration: be.Uint16(v[10:]),
					RoundTripDelay: be.Uint16(v[12:]), EndSystemDelay: be.Uint16(v[14:]),
					SignalLevel: int8(v[16]), NoiseLevel: int8(v[17]), RERL: v[18], Gmin: v[19],
					RFactor: v[20], ExtRFactor: v[21], MOSLQ: v[22], MOSCQ: v[23], RXConfig: v[24],
					JBNominal: be.Uint16(v[26:]), JBMaximum: be.Uint16(v[28:]), JBAbsMax: be.Uint16(v[30:]),
				}
				p.VoIP = p.voip[:len(p.VoIP)+1]
			}
			blocks = blocks[n:]
		}
	}
	return nil
}

// RTCPStats summarises what receivers reported about a [Stream] in RTCP
// (VoIPmonitor's rtcp_* CDR fields).
type RTCPStats struct {
	Reports         uint32  // report blocks seen
	FractionLostMax uint8   // ×256
	FractionLostAvg float64 // ×256
	// FractionLostReports counts the report blocks with a non-zero
	// fraction lost (VoIPmonitor's rtcp_fraclost_pktcount).
	FractionLostReports uint32
	// CumulativeLost is the last reported value, sign-extended.
	CumulativeLost int32
	// JitterMaxMS and JitterAvgMS are the reported jitter divided by
	// clock_rate/1000.
	JitterMaxMS, JitterAvgMS float64
	// RTTAvgMS and RTTMaxMS use the capture-time method: RR capture time −
	// capture time of the SR named by LSR − DLSR (spec §2.4). RTTCount
	// counts the reports that matched one of the last four SRs and gave a
	// non-negative loop; negative loops are dropped.
	RTTAvgMS, RTTMaxMS float64
	RTTCount           uint32
	// XRMOSLQ is the last RTCP-XR MOS-LQ (1–5), 0 when none was reported.
	XRMOSLQ float64
}

// rtcpState is what RTCP said about a [Stream]: the last sender reports of
// its sender (for round-trip times) and the receivers' report blocks.
type rtcpState struct {
	srs [4]srEntry
	srN uint8
	acc rtcpAcc
}

// rtcpState returns the stream's RTCP state, allocating it on first use.
func (s *Stream) rtcpState() *rtcpState {
	if s.rtcp == nil {
		s.rtcp = new(rtcpState)
	}
	return s.rtcp
}

type srEntry struct {
	mid uint32
	at  int64
}

type rtcpAcc struct {
	reports uint32
	fracN   uint32 // reports with a non-zero fraction lost
	fracMax uint8
	mosLQ   uint8
	cumLost int32
	rttN    uint32
	fracSum uint64
	jitMax  uint32
	jitSum  uint64
	rttSum  float64
	rttMax  float64
}

func (r *rtcpState) stats(rate uint32) RTCPStats {
	if r == nil {
		return RTCPStats{}
	}
	a := &r.acc
	st := RTCPStats{
		Reports:             a.reports,
		FractionLostMax:     a.fracMax,
		FractionLostReports: a.fracN,
		CumulativeLost:      a.cumLost,
		RTTMaxMS:            a.rttMax,
		RTTCount:            a.rttN,
		XRMOSLQ:             float64(a.mosLQ) / 10,
	}
	if a.reports > 0 {
		st.FractionLostAvg = float64(a.fracSum) / float64(a.reports)
		if r := float64(rate) / 1000; r > 0 {
			st.JitterMaxMS = float64(a.jitMax) / r
			st.JitterAvgMS = float64(a.jitSum) / float64(a.reports) / r
		}
	}
	if a.rttN > 0 {
		st.RTTAvgMS = a.rttSum / float64(a.rttN)
	}
	return st
}

// AddSR records a sender report that this stream's sender sent, by the
// middle 32 bits of its NTP time and its capture time. The last four are
// kept for matching LSR in later reports.
func (s *Stream) AddSR(ntpMid32 uint32, arrival time.Time) {
	r := s.rtcpState()
	r.srs[r.srN%uint8(len(r.srs))] = srEntry{mid: ntpMid32, at: arrival.UnixNano()}
	r.srN++
}

// AddReport accounts a report block about this stream (rb.SSRC is this
// stream's SSRC) captured at arrival.
func (s *Stream) AddReport(rb ReportBlock, arrival time.Time) {
	r := s.rtcpState()
	a := &r.acc
	a.reports++
	a.fracMax = max(a.fracMax, rb.FractionLost)
	a.fracSum += uint64(rb.FractionLost)
	if rb.FractionLost != 0 {
		a.fracN++
	}
	a.cumLost = rb.CumulativeLost
	a.jitMax = max(a.jitMax, rb.Jitter)
	a.jitSum += uint64(rb.Jitter)
	if rb.LSR == 0 {
		return
	}
	for _, sr := range r.srs {
		if sr.at == 0 || sr.mid != rb.LSR {
			continue
		}
		rtt := float64(arrival.UnixNano()-sr.at)/1e6 - float64(rb.DLSR)*1000/65536
		if rtt < 0 {
			// The reporter's DLSR is longer than the loop the probe saw
			// (its clock or its DLSR rounding disagrees): not a measurement.
			return
		}
		a.rttSum += rtt
		a.rttMax = max(a.rttMax, rtt)
		a.rttN++
		return
	}
}

// AddXR accounts an RTCP-XR VoIP Metrics block about this stream.
func (s *Stream) AddXR(m XRVoIPMetrics) {
	if m.MOSLQ != 0 && m.MOSLQ != 127 {
		s.rtcpState().acc.mosLQ = m.MOSLQ
	}
}

// AddQualityReport accounts a receiver's own summary of this stream, as a
// SIP X-RTP-Stat header carries it at the end of a call (packets lost and
// interarrival jitter in milliseconds), as one report block: lost is the
// cumulative loss, the fraction lost is lost over received + lost, and the
// jitter is converted to the stream's timestamp units. A negative figure
// means the report did not give it; lost then counts as 0.
func (s *Stream) AddQualityReport(received, lost int64, jitterMS float64, arrival time.Time) {
	rate := float64(s.clockRate)
	if rate == 0 {
		rate = 8000
	}
	rb := ReportBlock{}
	if lost > 0 {
		rb.CumulativeLost = int32(min(lost, 1<<23-1))
		if total := received + lost; received >= 0 && total > 0 {
			rb.FractionLost = uint8(min(255, lost*256/total))
		}
	}
	if jitterMS > 0 {
		rb.Jitter = uint32(min(jitterMS*rate/1000, float64(^uint32(0))))
	}
	s.AddReport(rb, arrival)
}
