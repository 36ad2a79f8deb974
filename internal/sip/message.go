package sip

import (
	"bytes"
	"math"
)

// MaxContentLength is the largest Content-Length value accepted; larger
// values are reported as [ErrBadContentLength]. A SIP message over UDP or TCP
// never comes near it.
const MaxContentLength = 1 << 24 // bytes

// Method is a SIP request method. Methods this package does not know are
// [MethodUnknown]; their text is kept in [Message.MethodName].
type Method uint8

// The SIP methods of RFC 3261 and its common extensions.
const (
	MethodUnknown   Method = iota
	MethodINVITE           // RFC 3261
	MethodACK              // RFC 3261
	MethodBYE              // RFC 3261
	MethodCANCEL           // RFC 3261
	MethodREGISTER         // RFC 3261
	MethodOPTIONS          // RFC 3261
	MethodPRACK            // RFC 3262
	MethodUPDATE           // RFC 3311
	MethodINFO             // RFC 6086
	MethodSUBSCRIBE        // RFC 6665
	MethodNOTIFY           // RFC 6665
	MethodREFER            // RFC 3515
	MethodMESSAGE          // RFC 3428
	MethodPUBLISH          // RFC 3903
)

var methodNames = [...]string{
	MethodUnknown:   "UNKNOWN",
	MethodINVITE:    "INVITE",
	MethodACK:       "ACK",
	MethodBYE:       "BYE",
	MethodCANCEL:    "CANCEL",
	MethodREGISTER:  "REGISTER",
	MethodOPTIONS:   "OPTIONS",
	MethodPRACK:     "PRACK",
	MethodUPDATE:    "UPDATE",
	MethodINFO:      "INFO",
	MethodSUBSCRIBE: "SUBSCRIBE",
	MethodNOTIFY:    "NOTIFY",
	MethodREFER:     "REFER",
	MethodMESSAGE:   "MESSAGE",
	MethodPUBLISH:   "PUBLISH",
}

// String returns the method's name as written on the wire, or "UNKNOWN".
func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return "UNKNOWN"
}

// methodOf maps a method token to its Method. Methods are case-sensitive
// (RFC 3261 section 7.1).
func methodOf(b []byte) Method {
	switch string(b) {
	case "INVITE":
		return MethodINVITE
	case "ACK":
		return MethodACK
	case "BYE":
		return MethodBYE
	case "CANCEL":
		return MethodCANCEL
	case "REGISTER":
		return MethodREGISTER
	case "OPTIONS":
		return MethodOPTIONS
	case "PRACK":
		return MethodPRACK
	case "UPDATE":
		return MethodUPDATE
	case "INFO":
		return MethodINFO
	case "SUBSCRIBE":
		return MethodSUBSCRIBE
	case "NOTIFY":
		return MethodNOTIFY
	case "REFER":
		return MethodREFER
	case "MESSAGE":
		return MethodMESSAGE
	case "PUBLISH":
		return MethodPUBLISH
	}
	return MethodUnknown
}

// NameAddr is a parsed From, To, Contact, P-Asserted-Identity or
// Remote-Party-ID value (RFC 3261 section 20.10 and 25.1 name-addr /
// addr-spec). Its slices alias the message buffer.
type NameAddr struct {
	// Display is the display name without its enclosing quotes; escapes
	// (\") are left as they are on the wire. Nil when absent.
	Display []byte
	// URI is the URI without the angle brackets.
	URI []byte
	// User, Host and Port are taken from a sip:, sips: or tel: URI (for tel:
	// only User, the number, is set). Host of an IPv6 reference has no
	// brackets.
	User, Host, Port []byte
	// Tag is the value of the header's tag parameter. Parameters after an
	// addr-spec (a URI without <>) belong to the header, so they are found
	// here too.
	Tag []byte
}

// Message is a view of one SIP request or response. Unmarshal fills it with
// slices that alias the input buffer: the Message is valid until that buffer
// is reused, and [Message.Clone] makes a copy for retention.
type Message struct {
	Raw []byte // the whole buffer given to Unmarshal

	Request    bool   // request (true) or response (false)
	Method     Method // request method; MethodUnknown for extension methods
	MethodName []byte // request method as on the wire
	RequestURI []byte
	StatusCode int    // response status code, 100..699
	Reason     []byte // response reason phrase (may be empty)

	CallID []byte
	From   NameAddr
	To     NameAddr
	// PAssertedIdentity and RemotePartyID are zero when absent.
	PAssertedIdentity NameAddr
	RemotePartyID     NameAddr

	CSeq       uint32
	CSeqMethod Method

	Via    []byte // the top Via value (first value of the first Via header)
	Branch []byte // the branch parameter of Via

	Contact        NameAddr // the first Contact
	ContactExpires int      // the expires parameter of Contact; -1 when absent
	ContactStar    bool     // "Contact: *"

	Expires int // the Expires header; -1 when absent or not a number

	UserAgent []byte
	Server    []byte

	ContentType   []byte
	ContentLength int    // -1 when absent
	Body          []byte // Content-Length bytes, or the rest of the buffer without Content-Length

	ReasonHeader []byte // the Reason header (RFC 3326), e.g. Q.850;cause=16
	AuthUser     []byte // username of the first Authorization or Proxy-Authorization
}

// seen bits for headers whose first occurrence wins.
const (
	seenFrom uint16 = 1 << iota
	seenTo
	seenCSeq
	seenVia
	seenContact
	seenExpires
	seenContentLength
	seenPAI
	seenRPID
	seenAuth
)

// parser holds the per-call state of Unmarshal.
type parser struct {
	seen      uint16
	cseqName  []byte
	firstErr  error
	badLength bool // a Content-Length that is not a number, or two that differ
}

func (p *parser) fail(err error) {
	if p.firstErr == nil {
		p.firstErr = err
	}
}

// Unmarshal parses b into m, first resetting m. The Message aliases b and
// Unmarshal allocates nothing.
//
// The layout is RFC 3261 section 7:
//
//	start-line CRLF *( message-header CRLF ) CRLF [ message-body ]
//
// Bare LF line ends, header folding (section 7.3.1), compact header names
// (section 7.3.3) and empty lines before the start line (section 7.5) are
// accepted. The body is exactly Content-Length bytes when Content-Length is
// present, and the rest of the buffer otherwise (UDP, section 18.3).
//
// A message without Call-ID, From, To or CSeq, with a malformed value in one
// of those or in Content-Length, or shorter than its Content-Length, is
// reported with one of the ErrX errors; m is still filled as far as parsed
// (after a malformed start line the headers are parsed all the same). Only
// [ErrNotSIP] leaves m empty.
func (m *Message) Unmarshal(b []byte) error {
	*m = Message{Raw: b, ContactExpires: -1, Expires: -1, ContentLength: -1}
	pos := 0
	for pos < len(b) && (b[pos] == '\r' || b[pos] == '\n') {
		pos++
	}
	if pos == len(b) {
		return ErrNotSIP
	}
	lineEnd, next, terminated := lineAt(b, pos)
	startErr := m.parseStartLine(b[pos:lineEnd])
	if startErr == ErrNotSIP {
		return startErr
	}
	var p parser
	bodyStart := -1
	pos = next
	for terminated && pos < len(b) {
		if b[pos] == '\n' {
			bodyStart = pos + 1
			break
		}
		if b[pos] == '\r' && pos+1 < len(b) && b[pos+1] == '\n' {
			bodyStart = pos + 2
			break
		}
		end, nx := headerAt(b, pos)
		m.header(&p, b[pos:end])
		pos = nx
	}

	missing := error(nil)
	switch {
	case len(m.CallID) == 0:
		missing = ErrNoCallID
	case p.seen&seenFrom == 0:
		missing = ErrNoFrom
	case p.seen&seenTo == 0:
		missing = ErrNoTo
	case p.seen&seenCSeq == 0:
		missing = ErrNoCSeq
	}
	if startErr != nil {
		// Keep what the headers gave, but the start line decides.
		m.body(bodyStart)
		return startErr
	}
	if bodyStart < 0 && (m.ContentLength > 0 || missing != nil) {
		// The headers were cut off: report that rather than what is missing.
		return ErrTruncated
	}
	if p.firstErr == nil && m.Request && p.seen&seenCSeq != 0 && !bytes.Equal(p.cseqName, m.MethodName) {
		p.fail(ErrCSeqMismatch)
	}
	if p.firstErr != nil {
		m.body(bodyStart)
		return p.firstErr
	}
	if missing != nil {
		m.body(bodyStart)
		return missing
	}
	if p.badLength {
		// Reported last, so that the error promises a message that is
		// otherwise whole; the body is the rest of the buffer, which is
		// exactly the body when a datagram bounds the message (UDP).
		m.ContentLength = -1
		m.body(bodyStart)
		return ErrBadContentLength
	}
	return m.body(bodyStart)
}

// body sets m.Body from the bytes after the empty line at bodyStart (-1 when
// there is no empty line).
func (m *Message) body(bodyStart int) error {
	if bodyStart < 0 || bodyStart >= len(m.Raw) {
		if m.ContentLength > 0 {
			return ErrTruncated
		}
		return nil
	}
	rest := m.Raw[bodyStart:]
	if m.ContentLength < 0 {
		m.Body = rest
		return nil
	}
	if len(rest) < m.ContentLength {
		m.Body = rest
		return ErrTruncated
	}
	if m.ContentLength > 0 {
		m.Body = rest[:m.ContentLength]
	}
	return nil
}

// lineAt returns the end of the line starting at pos (before CR LF), the
// start of the next line and whether the line had a terminator.
func lineAt(b []byte, pos int) (end, next int, terminated bool) {
	i := bytes.IndexByte(b[pos:], '\n')
	if i < 0 {
		end = len(b)
		if end > pos && b[end-1] == '\r' {
			end--
		}
		return end, len(b), false
	}
	end = pos + i
	next = end + 1
	if end > pos && b[end-1] == '\r' {
		end--
	}
	return end, next, true
}

// headerAt returns the end of the logical header line starting at pos,
// following folded continuation lines, and the start of the next line.
func headerAt(b []byte, pos int) (end, next int) {
	for {
		e, nx, term := lineAt(b, pos)
		if !term || nx >= len(b) || (b[nx] != ' ' && b[nx] != '\t') {
			return e, nx
		}
		pos = nx
	}
}

// parseStartLine parses a Request-Line or Status-Line (RFC 3261 7.1, 7.2).
func (m *Message) parseStartLine(line []byte) error {
	if len(line) >= 4 && equalFold(line[:4], "SIP/") {
		m.Request = false
		if len(line) < 11 || !equalFold(line[:8], "SIP/2.0 ") {
			return ErrMalformedStartLine
		}
		c := line[8:]
		if len(c) < 3 || !isDigit(c[0]) || !isDigit(c[1]) || !isDigit(c[2]) || (len(c) > 3 && c[3] != ' ') {
			return ErrMalformedStartLine
		}
		code := int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
		if code < 100 || code > 699 {
			return ErrMalformedStartLine
		}
		m.StatusCode = code
		if len(c) > 4 {
			m.Reason = c[4:]
		}
		return nil
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) || !bytes.Contains(line[sp:], []byte(" SIP/")) {
		return ErrNotSIP
	}
	m.Request = true
	m.MethodName = line[:sp]
	m.Method = methodOf(m.MethodName)
	last := bytes.LastIndexByte(line, ' ')
	if last == sp || !equalFold(line[last+1:], "SIP/2.0") {
		return ErrMalformedStartLine
	}
	uri := line[sp+1 : last]
	if len(uri) == 0 || uri[0] == '<' || bytes.IndexByte(uri, ' ') >= 0 || bytes.IndexByte(uri, '\t') >= 0 {
		return ErrMalformedStartLine
	}
	m.RequestURI = uri
	return nil
}

// header parses one logical header line h (folding included, no final CRLF).
func (m *Message) header(p *parser, h []byte) {
	i := 0
	for i < len(h) && isTokenChar(h[i]) {
		i++
	}
	name := h[:i]
	for i < len(h) && isLWS(h[i]) {
		i++
	}
	if len(name) == 0 || i >= len(h) || h[i] != ':' {
		if len(trimLWS(h)) != 0 {
			p.fail(ErrMalformedHeader)
		}
		return
	}
	v := trimLWS(h[i+1:])
	switch canonical(name) {
	case hCallID:
		if m.CallID == nil {
			m.CallID = v
		}
	case hFrom:
		if p.seen&seenFrom == 0 {
			p.seen |= seenFrom
			var ok bool
			if m.From, _, ok = parseNameAddr(v); !ok {
				p.fail(ErrBadFrom)
			}
		}
	case hTo:
		if p.seen&seenTo == 0 {
			p.seen |= seenTo
			var ok bool
			if m.To, _, ok = parseNameAddr(v); !ok {
				p.fail(ErrBadTo)
			}
		}
	case hCSeq:
		if p.seen&seenCSeq == 0 {
			p.seen |= seenCSeq
			if !m.parseCSeq(p, v) {
				p.fail(ErrBadCSeq)
			}
		}
	case hVia:
		if p.seen&seenVia == 0 {
			p.seen |= seenVia
			m.Via = firstValue(v)
			if semi := bytes.IndexByte(m.Via, ';'); semi >= 0 {
				m.Branch = paramValue(m.Via[semi:], "branch")
			}
		}
	case hContact:
		if p.seen&seenContact == 0 {
			p.seen |= seenContact
			if len(v) == 1 && v[0] == '*' {
				m.ContactStar = true
				return
			}
			na, params, _ := parseNameAddr(firstValue(v))
			m.Contact = na
			if e := paramValue(params, "expires"); e != nil {
				if n, ok := parseDelta(e); ok {
					m.ContactExpires = n
				}
			}
		}
	case hExpires:
		if p.seen&seenExpires == 0 {
			p.seen |= seenExpires
			if n, ok := parseDelta(v); ok {
				m.Expires = n
			}
		}
	case hUserAgent:
		if m.UserAgent == nil {
			m.UserAgent = v
		}
	case hServer:
		if m.Server == nil {
			m.Server = v
		}
	case hContentType:
		if m.ContentType == nil {
			m.ContentType = v
		}
	case hContentLength:
		n, ok := parseContentLength(v)
		if !ok {
			p.badLength = true
			return
		}
		if p.seen&seenContentLength != 0 {
			if n != m.ContentLength {
				p.badLength = true
			}
			return
		}
		p.seen |= seenContentLength
		m.ContentLength = n
	case hReason:
		if m.ReasonHeader == nil {
			m.ReasonHeader = v
		}
	case hPAssertedIdentity:
		if p.seen&seenPAI == 0 {
			p.seen |= seenPAI
			m.PAssertedIdentity, _, _ = parseNameAddr(firstValue(v))
		}
	case hRemotePartyID:
		if p.seen&seenRPID == 0 {
			p.seen |= seenRPID
			m.RemotePartyID, _, _ = parseNameAddr(firstValue(v))
		}
	case hAuthorization, hProxyAuthorization:
		if p.seen&seenAuth == 0 {
			p.seen |= seenAuth
			m.AuthUser = authUser(v)
		}
	}
}

// parseCSeq parses "1*DIGIT LWS Method" (RFC 3261 section 20.16).
func (m *Message) parseCSeq(p *parser, v []byte) bool {
	i := 0
	var n uint64
	for i < len(v) && isDigit(v[i]) {
		n = n*10 + uint64(v[i]-'0')
		if n > math.MaxUint32 {
			return false
		}
		i++
	}
	if i == 0 || i == len(v) || !isLWS(v[i]) {
		return false
	}
	meth := trimLWS(v[i:])
	if len(meth) == 0 || !isToken(meth) {
		return false
	}
	m.CSeq = uint32(n)
	m.CSeqMethod = methodOf(meth)
	p.cseqName = meth
	return true
}

// parseContentLength parses a Content-Length value.
func parseContentLength(v []byte) (int, bool) {
	if len(v) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > MaxContentLength {
			return 0, false
		}
	}
	return n, true
}

// parseDelta parses delta-seconds; values of 2**32 or more are clamped to
// 2**32-1 (RFC 3261 section 20.19 and 10.2.1.1 treat them as that).
func parseDelta(v []byte) (int, bool) {
	if len(v) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		if n < math.MaxUint32 {
			n = n*10 + int(c-'0')
			if n > math.MaxUint32 {
				n = math.MaxUint32
			}
		}
	}
	return n, true
}

// LooksLikeSIP reports whether b starts like a SIP message: a "SIP/2.0 "
// status line, or a method token, a space and a first line that ends in
// "SIP/2.0". It does not parse the rest and allocates nothing.
func LooksLikeSIP(b []byte) bool {
	if len(b) >= 8 && string(b[:8]) == "SIP/2.0 " {
		return true
	}
	i := 0
	for i < len(b) && i < 32 && isTokenChar(b[i]) {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return false
	}
	line := b[i:]
	if len(line) > 1024 {
		line = line[:1024]
	}
	end := bytes.IndexByte(line, '\n')
	if end < 0 {
		return false
	}
	line = line[:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return len(line) >= 8 && string(line[len(line)-8:]) == " SIP/2.0"
}

// maxKeepalive is the longest payload [IsKeepalive] takes for junk: far
// shorter than any SIP message, whose mandatory headers alone are longer.
const maxKeepalive = 32

// IsKeepalive reports whether b is a keepalive rather than a SIP message:
// only CR, LF, space, tab or NUL bytes (the RFC 5626 CRLF pings and pongs,
// the NUL words some phones send), or fewer than 32 bytes that do not
// mention SIP/2.0 (the "hello" or "jaK" probes of some devices). Such
// payloads are counted apart from malformed SIP.
func IsKeepalive(b []byte) bool {
	blank := true
	for _, c := range b {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' && c != 0 {
			blank = false
			break
		}
	}
	if blank {
		return true
	}
	return len(b) < maxKeepalive && !bytes.Contains(b, []byte("SIP/2.0"))
}
