package gen

import (
	"encoding/binary"
	"math"
	"time"
)

// rtcpInterval is the fixed RTCP report interval (RFC 3550 suggests 5 s as
// the minimum; real endpoints use about that).
const rtcpInterval = int64(5 * time.Second)

// ntpEpochOffset is the number of seconds from 1900-01-01 to 1970-01-01.
const ntpEpochOffset = 2208988800

// sendRTCP sends a compound RTCP packet (SR with one report block about
// other, then SDES CNAME) from s's RTP port+1 to its peer's port+1.
func (s *stream) sendRTCP(g *generator, other *stream) {
	t := s.rtcpNext
	s.rtcpNext += rtcpInterval
	if s.rtcpNext > s.start+int64(s.count)*s.ptime {
		s.rtcpNext = math.MaxInt64
	}
	cname := "gen-" + s.src.host()
	sdesLen := 4 + 4 + 2 + len(cname) + 1 // header, SSRC, CNAME item, END
	sdesLen = (sdesLen + 3) &^ 3
	b := make([]byte, 52+sdesLen)

	// Sender report (RFC 3550 section 6.4.1):
	// |V=2|P|    RC   |   PT=SR=200   |             length            |
	// |                         SSRC of sender                        |
	// |              NTP timestamp, most significant word             |
	// |             NTP timestamp, least significant word             |
	// |                         RTP timestamp                         |
	// |                     sender's packet count                     |
	// |                      sender's octet count                     |
	// | report block: SSRC_1, fraction lost | cumulative lost,        |
	// |   extended highest seq, jitter, LSR, DLSR                     |
	b[0] = 0x81
	b[1] = 200
	binary.BigEndian.PutUint16(b[2:], 52/4-1)
	binary.BigEndian.PutUint32(b[4:], s.ssrc)
	abs := g.start.UnixNano() + t
	binary.BigEndian.PutUint32(b[8:], uint32(abs/1e9+ntpEpochOffset))
	binary.BigEndian.PutUint32(b[12:], uint32((abs%1e9)<<32/1e9))
	binary.BigEndian.PutUint32(b[16:], s.ts0+uint32((t-s.start)*sampleRate/1e9))
	binary.BigEndian.PutUint32(b[20:], uint32(s.sent))
	binary.BigEndian.PutUint32(b[24:], uint32(s.sent*s.spp))
	rb := b[28:52]
	binary.BigEndian.PutUint32(rb[0:], other.ssrc)
	if other.k > 0 {
		// Received = written so far (duplicates included), as RFC 3550 A.3 counts.
		expected := other.k
		received := other.written
		lost := expected - received
		intExp := expected - other.rrExpected
		intRecv := received - other.rrReceived
		other.rrExpected, other.rrReceived = expected, received
		if intExp > 0 && intRecv < intExp {
			rb[4] = byte((intExp - intRecv) * 256 / intExp)
		}
		lost = max(min(lost, 0x7fffff), -0x800000)
		rb[5], rb[6], rb[7] = byte(lost>>16), byte(lost>>8), byte(lost)
		binary.BigEndian.PutUint32(rb[8:], uint32(other.seq0)+uint32(other.k-1))
	}

	// SDES with one chunk: SSRC, CNAME item, END, padding (RFC 3550 6.5).
	sd := b[52:]
	sd[0] = 0x81
	sd[1] = 202
	binary.BigEndian.PutUint16(sd[2:], uint16(sdesLen/4-1))
	binary.BigEndian.PutUint32(sd[4:], s.ssrc)
	sd[8] = 1 // CNAME
	sd[9] = byte(len(cname))
	copy(sd[10:], cname)

	g.sendUDP(t, endpoint{s.src.ip, s.src.port + 1}, endpoint{s.dst.ip, s.dst.port + 1}, b)
}
