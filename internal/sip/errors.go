package sip

import "errors"

// Errors returned by [Message.Unmarshal]. Except for [ErrNotSIP] and
// [ErrMalformedStartLine], the Message is still filled as far as it could be
// parsed when one of them is returned.
var (
	// ErrNotSIP means the buffer does not start with a SIP request or status line.
	ErrNotSIP = errors.New("sip: not a SIP message")
	// ErrTruncated means the buffer ends before the end of the headers or
	// before Content-Length bytes of body.
	ErrTruncated = errors.New("sip: truncated message")
	// ErrMalformedStartLine means the request or status line does not follow
	// RFC 3261 section 7.1/7.2 (extra spaces, unknown SIP version, bad
	// status code, Request-URI in angle brackets...).
	ErrMalformedStartLine = errors.New("sip: malformed start line")
	// ErrMalformedHeader means a header line has no "name:" prefix.
	ErrMalformedHeader = errors.New("sip: malformed header line")
	// ErrNoCallID means the message has no (or an empty) Call-ID header.
	ErrNoCallID = errors.New("sip: missing Call-ID")
	// ErrNoFrom means the message has no From header.
	ErrNoFrom = errors.New("sip: missing From")
	// ErrNoTo means the message has no To header.
	ErrNoTo = errors.New("sip: missing To")
	// ErrNoCSeq means the message has no CSeq header.
	ErrNoCSeq = errors.New("sip: missing CSeq")
	// ErrBadFrom means the From header is not a valid name-addr or addr-spec.
	ErrBadFrom = errors.New("sip: malformed From")
	// ErrBadTo means the To header is not a valid name-addr or addr-spec.
	ErrBadTo = errors.New("sip: malformed To")
	// ErrBadCSeq means the CSeq header is not "number method" with a number
	// below 2**32.
	ErrBadCSeq = errors.New("sip: malformed CSeq")
	// ErrCSeqMismatch means a request's CSeq method differs from its
	// request-line method (RFC 3261 section 8.1.1.5).
	ErrCSeqMismatch = errors.New("sip: CSeq method does not match request method")
	// ErrBadContentLength means Content-Length is not a non-negative integer
	// below [MaxContentLength], or appears twice with different values. It
	// is reported only when nothing else is wrong with the message: the
	// Message is then complete, with ContentLength -1 and Body the rest of
	// the buffer, which a transport that bounds each message (UDP, SCTP,
	// WebSocket) may accept as is.
	ErrBadContentLength = errors.New("sip: malformed Content-Length")
)
