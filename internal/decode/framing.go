package decode

import (
	"bytes"
	"errors"
)

// Framing errors. They reset the stream; they are counted, never returned.
var (
	errGarbage  = errors.New("decode: stream does not start with a SIP message")
	errTooLarge = errors.New("decode: SIP message larger than MaxTCPBuffer")
)

// maxStartLine bounds a SIP request or status line while it is incomplete.
const maxStartLine = 8 << 10

// skipKeepalive skips the CRLF keepalives (RFC 5626 section 4.4.1: "\r\n\r\n"
// pings and "\r\n" pongs) that may sit between messages on a stream.
func skipKeepalive(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// frameSIP returns the length of the SIP message at the start of b (RFC 3261
// section 18.3: the message ends Content-Length bytes after the blank line
// that ends the headers; a missing Content-Length means no body). It returns
// 0, nil when b holds only the beginning of a message, errGarbage when b
// does not start like a SIP message or has an unreadable Content-Length, and
// errTooLarge when the message would exceed limit bytes.
//
// b must not start with CR or LF (see skipKeepalive).
func frameSIP(b []byte, limit int) (int, error) {
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		if len(b) > maxStartLine || !printable(b) {
			return 0, errGarbage
		}
		return 0, nil
	}
	if !isStartLine(bytes.TrimSuffix(b[:eol], []byte("\r"))) {
		return 0, errGarbage
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > limit {
			return 0, errTooLarge
		}
		return 0, nil
	}
	cl, ok := contentLength(b[eol+1 : end+2])
	if !ok {
		return 0, errGarbage
	}
	body := end + 4
	if cl > limit-body {
		return 0, errTooLarge
	}
	if len(b) < body+cl {
		return 0, nil
	}
	return body + cl, nil
}

// printable reports whether b could be the beginning of a start line.
func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\r' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// isStartLine reports whether line is a SIP Request-Line
// ("METHOD SP Request-URI SP SIP/2.0") or Status-Line ("SIP/2.0 SP 3DIGIT SP
// Reason-Phrase").
func isStartLine(line []byte) bool {
	const version = "SIP/2.0"
	if rest, ok := bytes.CutPrefix(line, []byte(version+" ")); ok {
		return len(rest) >= 3 && isDigit(rest[0]) && isDigit(rest[1]) && isDigit(rest[2]) &&
			(len(rest) == 3 || rest[3] == ' ')
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !bytes.HasSuffix(line, []byte(" "+version)) || len(line) < sp+1+1+len(version)+1 {
		return false
	}
	for _, c := range line[:sp] {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isTokenChar reports whether c may appear in a SIP token (RFC 3261
// section 25.1: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
// "'" / "~").
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', isDigit(c):
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

// contentLength finds the Content-Length header (or its compact form "l")
// among the CRLF-terminated header lines in hdr, case-insensitively. The
// first occurrence wins; none means 0. ok is false when the value is not a
// decimal number.
func contentLength(hdr []byte) (n int, ok bool) {
	for len(hdr) > 0 {
		eol := bytes.IndexByte(hdr, '\n')
		line := hdr
		if eol >= 0 {
			line, hdr = hdr[:eol], hdr[eol+1:]
		} else {
			hdr = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimRight(line[:colon], " \t")
		if !bytes.EqualFold(name, []byte("content-length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		v := bytes.Trim(line[colon+1:], " \t\r")
		if len(v) == 0 || len(v) > 9 {
			return 0, false
		}
		for _, c := range v {
			if !isDigit(c) {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	return 0, true
}
