package hep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ErrRTCPJSON is wrapped by every error of [ParseRTCPJSON]: the payload is
// not a JSON RTCP report it can read.
var ErrRTCPJSON = errors.New("hep: malformed JSON RTCP")

var (
	errJSONSyntax = fmt.Errorf("%w: syntax", ErrRTCPJSON)
	errJSONDepth  = fmt.Errorf("%w: nested too deep", ErrRTCPJSON)
	errJSONRange  = fmt.Errorf("%w: number out of range", ErrRTCPJSON)
)

// maxJSONDepth bounds the nesting ParseRTCPJSON follows (the reports are
// two levels deep; anything deeper is skipped up to this depth).
const maxJSONDepth = 16

// maxRTCPJSONBlocks is the most report blocks an RTCP packet can carry
// (its 5-bit count); further blocks in the JSON are ignored.
const maxRTCPJSONBlocks = 31

// RTCPReportBlock is one reception report of an [RTCPJSON] (RFC 3550
// §6.4.1), with the JSON member names capture agents use.
type RTCPReportBlock struct {
	SourceSSRC   uint32 // "source_ssrc"
	FractionLost uint8  // "fraction_lost", ×256
	PacketsLost  int32  // "packets_lost", cumulative (24 bits on the wire)
	HighestSeq   uint32 // "highest_seq_no", extended
	Jitter       uint32 // "ia_jitter", timestamp units
	LSR          uint32 // "lsr"
	DLSR         uint32 // "dlsr"
}

// RTCPJSON is an RTCP packet as heplify, rtpengine, captagent and
// Kamailio-side agents send it in a HEP packet of type 5 (RTCP) when they
// decoded it themselves: a JSON object such as
//
//	{"type":200,"ssrc":1234,"report_count":1,
//	 "sender_information":{"ntp_timestamp_sec":3900000000,"ntp_timestamp_usec":1,
//	   "rtp_timestamp":160,"packets":50,"octets":8000},
//	 "report_blocks":[{"source_ssrc":5678,"fraction_lost":0,"packets_lost":0,
//	   "highest_seq_no":1050,"ia_jitter":12,"lsr":0,"dlsr":0}]}
//
// (heplify protos/rtcp.go, rtpengine rtcp.c homer_*, captagent rtcp_parser.h).
// Other members (report_blocks_xr, sdes_*, extended_report_information) are
// skipped. Reports aliases a field of the RTCPJSON.
type RTCPJSON struct {
	Type uint8  // "type": 200 SR, 201 RR, others carry no report here
	SSRC uint32 // "ssrc": the reporter
	// Sender tells that "sender_information" was present: the packet is
	// a sender report.
	Sender          bool
	NTPSec, NTPFrac uint32 // "ntp_timestamp_sec", "ntp_timestamp_usec" (the raw 32-bit fraction)
	RTPTime         uint32 // "rtp_timestamp"
	Packets, Octets uint32 // "packets", "octets"
	Reports         []RTCPReportBlock

	blocks [maxRTCPJSONBlocks]RTCPReportBlock
}

// ParseRTCPJSON reads the JSON RTCP report b into r. It is lenient where
// agents differ and the meaning is unambiguous: numbers may be quoted
// ("3373905459"), negative where the field is a 32-bit counter that wrapped
// (rtp_timestamp), or have a fraction (truncated); members come in any
// order; a comma before a closing bracket and trailing white space or NUL
// bytes are accepted. Anything else that is not JSON, a top level that is
// not an object, numbers that do not fit 32 bits and nesting deeper than
// 16 are errors wrapping [ErrRTCPJSON]. It allocates nothing.
func ParseRTCPJSON(b []byte, r *RTCPJSON) error {
	*r = RTCPJSON{}
	s := jsonScanner{b: b}
	s.ws()
	if s.peek() != '{' {
		return errJSONSyntax
	}
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "type":
			v, err := s.uint(255)
			r.Type = uint8(v)
			return err
		case "ssrc":
			return s.u32(&r.SSRC)
		case "sender_information":
			if s.peek() != '{' {
				return s.skip()
			}
			r.Sender = true
			return s.object(func(key []byte) error {
				switch string(key) {
				case "ntp_timestamp_sec":
					return s.u32(&r.NTPSec)
				case "ntp_timestamp_usec":
					return s.u32(&r.NTPFrac)
				case "rtp_timestamp":
					return s.u32(&r.RTPTime)
				case "packets":
					return s.u32(&r.Packets)
				case "octets":
					return s.u32(&r.Octets)
				}
				return s.skip()
			})
		case "report_blocks":
			if s.peek() != '[' {
				return s.skip()
			}
			return s.array(func() error {
				if s.peek() != '{' || len(r.Reports) == maxRTCPJSONBlocks {
					return s.skip()
				}
				rb := &r.blocks[len(r.Reports)]
				r.Reports = r.blocks[:len(r.Reports)+1]
				return s.object(func(key []byte) error {
					switch string(key) {
					case "source_ssrc":
						return s.u32(&rb.SourceSSRC)
					case "fraction_lost":
						v, err := s.uint(255)
						rb.FractionLost = uint8(v)
						return err
					case "packets_lost":
						v, err := s.int()
						rb.PacketsLost = int32(v)
						return err
					case "highest_seq_no":
						return s.u32(&rb.HighestSeq)
					case "ia_jitter":
						return s.u32(&rb.Jitter)
					case "lsr":
						return s.u32(&rb.LSR)
					case "dlsr":
						return s.u32(&rb.DLSR)
					}
					return s.skip()
				})
			})
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	for ; s.i < len(b); s.i++ {
		if c := b[s.i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != 0 {
			return errJSONSyntax
		}
	}
	return nil
}

// AppendBinary appends r as a binary RTCP packet (RFC 3550 §6.4.1 SR or
// §6.4.2 RR) to dst: a sender report when r.Sender or Type is 200, else a
// receiver report. A report with neither sender information nor report
// blocks appends nothing.
//
//	|V=2|P|    RC   |   PT=SR=200   |             length            |
//	|                         SSRC of sender                        |
//	|  NTP sec | NTP frac | RTP timestamp | packets | octets  (SR)  |
//	|  report blocks, 24 bytes each                                 |
func (r *RTCPJSON) AppendBinary(dst []byte) []byte {
	sr := r.Sender || r.Type == 200
	if !sr && len(r.Reports) == 0 {
		return dst
	}
	words := 1 + 6*len(r.Reports) // SSRC + blocks, in 32-bit words
	pt := byte(201)
	if sr {
		words += 5
		pt = 200
	}
	be := binary.BigEndian
	dst = append(dst, 0x80|byte(len(r.Reports)), pt, 0, 0)
	be.PutUint16(dst[len(dst)-2:], uint16(words))
	dst = be.AppendUint32(dst, r.SSRC)
	if sr {
		dst = be.AppendUint32(dst, r.NTPSec)
		dst = be.AppendUint32(dst, r.NTPFrac)
		dst = be.AppendUint32(dst, r.RTPTime)
		dst = be.AppendUint32(dst, r.Packets)
		dst = be.AppendUint32(dst, r.Octets)
	}
	for _, rb := range r.Reports {
		dst = be.AppendUint32(dst, rb.SourceSSRC)
		dst = be.AppendUint32(dst, uint32(rb.FractionLost)<<24|uint32(rb.PacketsLost)&0xffffff)
		dst = be.AppendUint32(dst, rb.HighestSeq)
		dst = be.AppendUint32(dst, rb.Jitter)
		dst = be.AppendUint32(dst, rb.LSR)
		dst = be.AppendUint32(dst, rb.DLSR)
	}
	return dst
}

// jsonScanner walks a JSON text without building values: just enough for
// ParseRTCPJSON. It is a small state machine over b, separate from the
// RTCP fields so that it can be fuzzed with them.
type jsonScanner struct {
	b     []byte
	i     int
	depth int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads an object, calling fn with each member's key (unescaped
// keys only: an escaped key is passed raw) positioned at its value; fn must
// consume the value.
func (s *jsonScanner) object(fn func(key []byte) error) error {
	if s.peek() != '{' {
		return errJSONSyntax
	}
	if s.depth++; s.depth > maxJSONDepth {
		return errJSONDepth
	}
	s.i++
	for {
		switch s.peek() {
		case '}':
			s.i++
			s.depth--
			return nil
		case '"':
		default:
			return errJSONSyntax
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return errJSONSyntax
		}
		s.i++
		s.ws()
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++ // a trailing comma is accepted: '}' may follow
		case '}':
		default:
			return errJSONSyntax
		}
	}
}

// array reads an array, calling fn positioned at each element; fn must
// consume it.
func (s *jsonScanner) array(fn func() error) error {
	if s.peek() != '[' {
		return errJSONSyntax
	}
	if s.depth++; s.depth > maxJSONDepth {
		return errJSONDepth
	}
	s.i++
	for {
		if s.peek() == ']' {
			s.i++
			s.depth--
			return nil
		}
		if err := fn(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
		default:
			return errJSONSyntax
		}
	}
}

// str reads a string and returns its raw contents (escapes left as they
// are).
func (s *jsonScanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errJSONSyntax
	}
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '\\':
			i++
		case c == '"':
			s.i = i + 1
			return s.b[start:i], nil
		case c < 0x20:
			return nil, errJSONSyntax
		}
	}
	return nil, errJSONSyntax
}

// skip reads any value.
func (s *jsonScanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		// Any number, of any size: members skipped are not read.
		start := s.i
		for s.i < len(s.b) && strings.IndexByte("+-.eE0123456789", s.b[s.i]) >= 0 {
			s.i++
		}
		if s.b[s.i-1] < '0' || s.b[s.i-1] > '9' || s.i-start > 64 {
			return errJSONSyntax
		}
		return nil
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return nil
		}
	}
	return errJSONSyntax
}

// int reads a number, or a string holding one, as an integer in
// [-2^31, 2^32-1].
func (s *jsonScanner) int() (int64, error) {
	if s.peek() == '"' {
		raw, err := s.str()
		if err != nil {
			return 0, err
		}
		var t jsonScanner
		v, err := t.number(raw)
		if err != nil || t.i != len(raw) {
			return 0, errJSONSyntax
		}
		return v, nil
	}
	return s.number(s.b[s.i:])
}

// uint is int within [0, max].
func (s *jsonScanner) uint(max int64) (int64, error) {
	v, err := s.int()
	if err != nil {
		return 0, err
	}
	if v < 0 || v > max {
		return 0, errJSONRange
	}
	return v, nil
}

// u32 reads a 32-bit counter into p: negative values are the two's
// complement of a counter printed as signed.
func (s *jsonScanner) u32(p *uint32) error {
	v, err := s.int()
	*p = uint32(v)
	return err
}

// number reads a JSON number at the start of b (advancing s.i by its
// length); a fraction or exponent is accepted and truncated away.
func (s *jsonScanner) number(b []byte) (int64, error) {
	i, neg := 0, false
	if i < len(b) && b[i] == '-' {
		neg, i = true, 1
	}
	start := i
	var v int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if v = v*10 + int64(b[i]-'0'); v > 1<<32 {
			return 0, errJSONRange
		}
	}
	if i == start {
		return 0, errJSONSyntax
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		return 0, errJSONRange // exponents are not counters
	}
	s.i += i
	if neg {
		v = -v
	}
	if v < -(1<<31) || v > 1<<32-1 {
		return 0, errJSONRange
	}
	return v, nil
}
