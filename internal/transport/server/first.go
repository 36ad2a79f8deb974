package server

import (
	"bytes"
	"errors"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// MaxFirstMessage bounds the opening message of a connection, in bytes.
const MaxFirstMessage = 64 << 10

// ErrFirstTooLarge means the opening message exceeded [MaxFirstMessage].
var ErrFirstTooLarge = errors.New("server: opening message too large")

// firstFramer collects a connection's opening message (spec 7: a plaintext
// JSON object, complete when the buffer starts with '{' and holds a whole
// object, or when it holds "\r\n", or when it is manager-AES-wrapped as
// "aes…:<ciphertext>:sea"). Bytes after the message are the remainder, the
// start of a response connection's body. Not safe for concurrent use.
type firstFramer struct {
	buf    []byte
	msg    []byte
	rest   []byte
	done   bool
	accept func(cipherName string, ct []byte) bool // optional AES candidate check
}

// Write appends p and reports whether the message is complete.
func (f *firstFramer) Write(p []byte) (bool, error) {
	if f.done {
		return true, nil
	}
	if len(f.buf)+len(p) > MaxFirstMessage {
		return false, ErrFirstTooLarge
	}
	f.buf = append(f.buf, p...)
	f.scan()
	return f.done, nil
}

// End takes what is buffered as the message (EOF before a terminator).
func (f *firstFramer) End() []byte {
	if !f.done {
		f.msg, f.rest, f.done = f.buf, nil, true
	}
	return f.msg
}

func (f *firstFramer) scan() {
	b := f.buf
	if isAESWrapped(b) {
		if end, ok := aesEnd(b, f.accept); ok {
			f.finish(end, end)
		}
		return
	}
	crlf := bytes.Index(b, []byte("\r\n"))
	if len(b) > 0 && b[0] == '{' {
		// An object nested deeper than conn.MaxJSONDepth is not taken
		// as one: it ends at the line terminator like any other text.
		if end := conn.JSONEnd(b); end > 0 && (crlf < 0 || end <= crlf) {
			// The rest keeps any line terminator after the object: it
			// may arrive in a later read anyway, so the consumer of a
			// body (response) drops it (trimEOL).
			f.finish(end, end)
			return
		}
	}
	if crlf >= 0 {
		f.finish(crlf, crlf+2)
	}
}

func (f *firstFramer) finish(end, rest int) {
	f.msg, f.rest, f.done = f.buf[:end], f.buf[rest:], true
}

// isAESWrapped reports whether b starts like a manager AES request:
// "aes" in any case, then a cipher name of under 20 bytes and ':'.
func isAESWrapped(b []byte) bool {
	if len(b) < 3 || !bytes.EqualFold(b[:3], []byte("aes")) {
		return false
	}
	i := bytes.IndexByte(b, ':')
	return i < 0 && len(b) < 20 || i > 0 && i < 20
}

// aesEnd finds the first ":sea" after a non-empty, block-aligned
// ciphertext that accept (if set) takes, and returns the index after it.
func aesEnd(b []byte, accept func(string, []byte) bool) (int, bool) {
	c := bytes.IndexByte(b, ':')
	if c < 0 {
		return 0, false
	}
	for from := c + 1; ; {
		i := bytes.Index(b[from:], []byte(":sea"))
		if i < 0 {
			return 0, false
		}
		i += from
		ct := b[c+1 : i]
		// A rejected candidate at the very end of the buffer is still
		// taken: more bytes are unlikely to come, and the caller reports
		// the decryption failure.
		if len(ct) > 0 && len(ct)%16 == 0 && (accept == nil || i+4 == len(b) || accept(string(b[:c]), ct)) {
			return i + 4, true
		}
		from = i + 1
	}
}

// splitAES splits a wrapped message into cipher name and ciphertext.
func splitAES(msg []byte) (string, []byte) {
	c := bytes.IndexByte(msg, ':')
	return string(msg[:c]), bytes.TrimSuffix(msg[c+1:], []byte(":sea"))
}

// trimEOL drops the line terminator that may follow an opening JSON
// object when it arrived after the object was already complete.
func trimEOL(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return b[2:]
	}
	return bytes.TrimPrefix(b, []byte("\n"))
}
