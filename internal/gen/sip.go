package gen

import (
	"strconv"
	"strings"
)

// SIP text is built with append into a scratch buffer. Lines end in CRLF
// (RFC 3261 section 7), header names are in their full form, and
// Content-Length is always present and exact.

const (
	sipPort    = 5060
	sipDomain  = "voipsensor.test"
	authRealm  = "voipsensor.test"
	padLen     = 1700 // X-Padding length for LargeInvite: pushes an INVITE past the 1500-byte MTU
	branchMagi = "z9hG4bK"
)

var reasons = map[int]string{
	100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized", 403: "Forbidden",
	404: "Not Found", 486: "Busy Here", 487: "Request Terminated", 503: "Service Unavailable",
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "SIP/2.0 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, reasons[code]...)
	return append(b, "\r\n"...)
}

func appendHeader(b []byte, name string, values ...string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	for _, v := range values {
		b = append(b, v...)
	}
	return append(b, "\r\n"...)
}

func appendVia(b []byte, host string, branch string) []byte {
	b = append(b, "Via: SIP/2.0/UDP "...)
	b = append(b, host...)
	b = append(b, ":5060;branch="...)
	b = append(b, branchMagi...)
	b = append(b, branch...)
	return append(b, ";rport\r\n"...)
}

// appendBody ends the header section with Content-Type (when body is not
// empty), Content-Length and the empty line, then appends body.
func appendBody(b []byte, ctype string, body []byte) []byte {
	if len(body) > 0 {
		b = appendHeader(b, "Content-Type", ctype)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// quoteDisplayName renders a display name for a name-addr (RFC 3261 section
// 25.1): a bare token when it is one, otherwise a quoted-string with '"' and
// '\' escaped.
func quoteDisplayName(name string) string {
	if name == "" {
		return ""
	}
	token := true
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-.!%*_+`'~", r)) {
			token = false
			break
		}
	}
	if token {
		return name
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range name {
		if r == '"' || r == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	sb.WriteByte('"')
	return sb.String()
}

// appendSDP appends an SDP offer/answer (RFC 4566) for one G.711 audio
// stream plus telephone-event.
func appendSDP(b []byte, user string, sessID uint32, ip string, port uint16, pt byte, codec string, ptimeMS int) []byte {
	id := strconv.FormatUint(uint64(sessID), 10)
	ptS := strconv.Itoa(int(pt))
	b = append(b, "v=0\r\n"...)
	b = append(b, "o="+user+" "+id+" "+id+" IN IP4 "+ip+"\r\n"...)
	b = append(b, "s=voipsensor-gen\r\n"...)
	b = append(b, "c=IN IP4 "+ip+"\r\n"...)
	b = append(b, "t=0 0\r\n"...)
	b = append(b, "m=audio "+strconv.Itoa(int(port))+" RTP/AVP "+ptS+" 101\r\n"...)
	b = append(b, "a=rtpmap:"+ptS+" "+codec+"/8000\r\n"...)
	b = append(b, "a=rtpmap:101 telephone-event/8000\r\n"...)
	b = append(b, "a=fmtp:101 0-16\r\n"...)
	b = append(b, "a=ptime:"+strconv.Itoa(ptimeMS)+"\r\n"...)
	b = append(b, "a=sendrecv\r\n"...)
	return b
}
