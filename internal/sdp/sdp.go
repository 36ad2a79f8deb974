package sdp

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Errors returned by [Parse].
var (
	// ErrNotSDP means the body does not start with a "v=" line.
	ErrNotSDP = errors.New("sdp: body does not start with v=")
	// ErrBadMedia means an m= line has fewer than three fields or a port
	// that is not a number below 65536.
	ErrBadMedia = errors.New("sdp: malformed m= line")
)

// Format is one payload format of a media section.
type Format struct {
	// PT is the RTP payload type. For a non-RTP protocol (such as
	// "udptl t38") PT is 0 and Name holds the format token.
	PT uint8
	// Name is the encoding name from a=rtpmap, or from the RFC 3551 static
	// table when there is no rtpmap ("PCMU", "telephone-event"...). Empty
	// for a dynamic payload type without rtpmap.
	Name string
	// Rate is the clock rate in Hz (0 when unknown).
	Rate uint32
	// Channels is the number of audio channels (1 by default for audio,
	// 0 for video).
	Channels int
	// Fmtp is the a=fmtp parameter string, if any ("0-15").
	Fmtp string
}

// IsTelephoneEvent reports whether f carries RFC 4733 DTMF events.
func (f Format) IsTelephoneEvent() bool { return strings.EqualFold(f.Name, "telephone-event") }

// IsComfortNoise reports whether f is RFC 3389 comfort noise.
func (f Format) IsComfortNoise() bool { return strings.EqualFold(f.Name, "CN") }

// Media is one m= section.
type Media struct {
	Type  string     // audio, video, image, application...
	Proto string     // RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, udptl...
	Addr  netip.Addr // the media c= address, else the session c= address; zero if none parses
	// Port is the RTP port; 0 means the stream is rejected or disabled.
	Port uint16
	// RTCPPort is the a=rtcp port, else Port when RTCPMux, else Port+1
	// (0 for a rejected stream).
	RTCPPort uint16
	RTCPMux  bool // a=rtcp-mux (RFC 5761)
	Formats  []Format
	Ptime    int // a=ptime in ms, media- or session-level; 0 when absent
	// Direction is sendrecv, sendonly, recvonly or inactive: the media
	// attribute, else the session attribute, else sendrecv.
	Direction string
}

// Rejected reports whether the stream was rejected or disabled (port 0).
func (m *Media) Rejected() bool { return m.Port == 0 }

// Codec returns the first format that is neither telephone-event nor
// comfort noise: the voice or video codec in use. ok is false when there is
// none.
func (m *Media) Codec() (f Format, ok bool) {
	for _, f := range m.Formats {
		if !f.IsTelephoneEvent() && !f.IsComfortNoise() {
			return f, true
		}
	}
	return Format{}, false
}

// Format returns the format with payload type pt.
func (m *Media) Format(pt uint8) (f Format, ok bool) {
	for _, f := range m.Formats {
		if f.PT == pt {
			return f, true
		}
	}
	return Format{}, false
}

// Session is a parsed SDP body.
type Session struct {
	Origin string     // the o= value
	Addr   netip.Addr // the session-level c= address; zero if absent
	Media  []Media    // in m= order (offer and answer pair by index)
}

// staticFormat is an RFC 3551 section 6 static payload type.
type staticFormat struct {
	name     string
	rate     uint32
	channels int
}

// staticFormats is the RFC 3551 table 4 and 5 (audio and video).
var staticFormats = map[uint8]staticFormat{
	0: {"PCMU", 8000, 1}, 3: {"GSM", 8000, 1}, 4: {"G723", 8000, 1}, 5: {"DVI4", 8000, 1},
	6: {"DVI4", 16000, 1}, 7: {"LPC", 8000, 1}, 8: {"PCMA", 8000, 1}, 9: {"G722", 8000, 1},
	10: {"L16", 44100, 2}, 11: {"L16", 44100, 1}, 12: {"QCELP", 8000, 1}, 13: {"CN", 8000, 1},
	14: {"MPA", 90000, 0}, 15: {"G728", 8000, 1}, 16: {"DVI4", 11025, 1}, 17: {"DVI4", 22050, 1},
	18: {"G729", 8000, 1}, 25: {"CelB", 90000, 0}, 26: {"JPEG", 90000, 0}, 28: {"nv", 90000, 0},
	31: {"H261", 90000, 0}, 32: {"MPV", 90000, 0}, 33: {"MP2T", 90000, 0}, 34: {"H263", 90000, 0},
}

// Parse parses an SDP body (RFC 8866 section 5). It is tolerant of what
// real endpoints send: LF-only line ends, trailing white space, unknown or
// malformed attribute lines (skipped), c= lines whose address does not parse
// (Addr left zero) and media sections without c=. It fails only when the
// body does not start with v= or an m= line is unusable.
func Parse(body []byte) (*Session, error) {
	s := &Session{}
	var (
		sessDir   string
		sessPtime int
		cur       *Media
		mediaAddr []bool // whether Media[i] had its own c=
		rtcpSet   []bool
		sawV      bool
	)
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, " \t\r")
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 {
			continue
		}
		if !sawV {
			if !bytes.HasPrefix(line, []byte("v=")) {
				return nil, ErrNotSDP
			}
			sawV = true
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		val := string(bytes.TrimSpace(line[2:]))
		switch line[0] {
		case 'o':
			if cur == nil {
				s.Origin = val
			}
		case 'c':
			a, ok := parseConnection(val)
			if !ok {
				break
			}
			if cur == nil {
				s.Addr = a
			} else {
				cur.Addr = a
				mediaAddr[len(mediaAddr)-1] = true
			}
		case 'm':
			m, err := parseMediaLine(val)
			if err != nil {
				return nil, err
			}
			s.Media = append(s.Media, m)
			mediaAddr = append(mediaAddr, false)
			rtcpSet = append(rtcpSet, false)
			cur = &s.Media[len(s.Media)-1]
		case 'a':
			name, arg, _ := strings.Cut(val, ":")
			switch name {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if cur == nil {
					sessDir = name
				} else {
					cur.Direction = name
				}
			case "ptime":
				if n, err := strconv.Atoi(strings.TrimSpace(arg)); err == nil && n > 0 {
					if cur == nil {
						sessPtime = n
					} else {
						cur.Ptime = n
					}
				}
			case "rtpmap":
				if cur != nil {
					applyRtpmap(cur, arg)
				}
			case "fmtp":
				if cur != nil {
					pt, params, _ := strings.Cut(strings.TrimSpace(arg), " ")
					if n, err := strconv.ParseUint(pt, 10, 8); err == nil {
						for i := range cur.Formats {
							if cur.Formats[i].PT == uint8(n) && isRTP(cur.Proto) {
								cur.Formats[i].Fmtp = strings.TrimSpace(params)
							}
						}
					}
				}
			case "rtcp":
				if cur != nil {
					port, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
					if n, err := strconv.ParseUint(port, 10, 16); err == nil {
						cur.RTCPPort = uint16(n)
						rtcpSet[len(rtcpSet)-1] = true
					}
				}
			case "rtcp-mux":
				if cur != nil {
					cur.RTCPMux = true
				}
			}
		}
	}
	if !sawV {
		return nil, ErrNotSDP
	}
	for i := range s.Media {
		m := &s.Media[i]
		if !mediaAddr[i] {
			m.Addr = s.Addr
		}
		if m.Direction == "" {
			m.Direction = sessDir
			if m.Direction == "" {
				m.Direction = "sendrecv"
			}
		}
		if m.Ptime == 0 {
			m.Ptime = sessPtime
		}
		switch {
		case m.Port == 0:
			m.RTCPPort = 0
		case rtcpSet[i]:
		case m.RTCPMux:
			m.RTCPPort = m.Port
		case m.Port < 65535:
			m.RTCPPort = m.Port + 1
		}
	}
	return s, nil
}

// parseConnection parses "IN IP4 192.0.2.1[/ttl[/n]]" (RFC 8866 5.7).
func parseConnection(v string) (netip.Addr, bool) {
	f := strings.Fields(v)
	if len(f) < 3 || !strings.EqualFold(f[0], "IN") {
		return netip.Addr{}, false
	}
	addr, _, _ := strings.Cut(f[2], "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	return a, true
}

// parseMediaLine parses "audio 49170[/2] RTP/AVP 0 8 101" (RFC 8866 5.14).
func parseMediaLine(v string) (Media, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Media{}, ErrBadMedia
	}
	portStr, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return Media{}, ErrBadMedia
	}
	m := Media{Type: f[0], Proto: f[2], Port: uint16(port)}
	rtp := isRTP(m.Proto)
	for _, tok := range f[3:] {
		if !rtp {
			m.Formats = append(m.Formats, Format{Name: tok})
			continue
		}
		n, err := strconv.ParseUint(tok, 10, 8)
		if err != nil || n > 127 {
			continue // not an RTP payload type
		}
		fm := Format{PT: uint8(n)}
		if st, ok := staticFormats[fm.PT]; ok {
			fm.Name, fm.Rate, fm.Channels = st.name, st.rate, st.channels
		}
		m.Formats = append(m.Formats, fm)
	}
	return m, nil
}

// isRTP reports whether proto carries RTP payload types (RTP/AVP,
// RTP/SAVPF, UDP/TLS/RTP/SAVPF...).
func isRTP(proto string) bool { return strings.Contains(strings.ToUpper(proto), "RTP/") }

// applyRtpmap applies "101 telephone-event/8000[/1]" (RFC 8866 6.6) to the
// format with that payload type.
func applyRtpmap(m *Media, arg string) {
	pt, enc, ok := strings.Cut(strings.TrimSpace(arg), " ")
	if !ok {
		return
	}
	n, err := strconv.ParseUint(pt, 10, 8)
	if err != nil {
		return
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	for i := range m.Formats {
		f := &m.Formats[i]
		if f.PT != uint8(n) {
			continue
		}
		f.Name = parts[0]
		f.Rate = 0
		if len(parts) > 1 {
			if r, err := strconv.ParseUint(parts[1], 10, 32); err == nil {
				f.Rate = uint32(r)
			}
		}
		f.Channels = 0
		if m.Type == "audio" {
			f.Channels = 1
		}
		if len(parts) > 2 {
			if c, err := strconv.Atoi(parts[2]); err == nil && c > 0 {
				f.Channels = c
			}
		}
	}
}
