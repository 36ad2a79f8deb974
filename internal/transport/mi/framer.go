package mi

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/voipsensor/voipsensor/internal/transport/conn"
)

// Dialect tells which FIFO framing a request used.
type Dialect uint8

// FIFO dialects, told apart by the first non-blank byte.
const (
	DialectOpenSIPS Dialect = iota + 1 // ":reply_name:{json}"; "::{json}" never replies
	DialectKamailio                    // {"jsonrpc":…,"reply_name":"…"}
)

// ErrFraming means bytes on the FIFO that start neither a ":name:"
// prefix nor a JSON object; the Framer drops them up to the next line.
var ErrFraming = errors.New("mi: garbage on FIFO")

// MaxReplyName is the longest reply name accepted on the wire (the
// reply path, directory included, must also stay under 128 bytes).
const MaxReplyName = 120

// Frame is one request cut from the FIFO byte stream.
type Frame struct {
	Dialect   Dialect
	ReplyName string // may be empty (OpenSIPS "::", or Kamailio without reply_name)
	Body      []byte // the JSON text; owned by the Frame
	Err       error  // ErrFraming or ErrTooLarge: Body is nil
}

// Framer cuts FIFO requests out of a byte stream that may arrive in any
// split and with several requests per write. The end of the JSON is found
// by counting braces and brackets outside strings, as Kamailio does, so
// incomplete JSON waits for more bytes; garbage that cannot start a
// request is dropped through the next newline (OpenSIPS would stall; we
// resync). A pending request larger than max is dropped. Not safe for
// concurrent use.
type Framer struct {
	buf []byte
	max int
}

// NewFramer returns a Framer holding at most max pending bytes (0 means
// [MaxRequest]).
func NewFramer(max int) *Framer {
	if max <= 0 {
		max = MaxRequest
	}
	return &Framer{max: max}
}

// Write appends p to the pending bytes. It never fails.
func (f *Framer) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	return len(p), nil
}

// Pending returns the number of buffered bytes not yet framed.
func (f *Framer) Pending() int { return len(f.buf) }

// Reset drops the pending bytes (the FIFO reader calls it after a quiet
// period with an incomplete request).
func (f *Framer) Reset() { f.buf = f.buf[:0] }

// Next returns the next complete frame, or ok false when more bytes are
// needed.
func (f *Framer) Next() (fr Frame, ok bool) {
	for {
		i := 0
		for i < len(f.buf) && isSpace(f.buf[i]) {
			i++
		}
		f.consume(i)
		if len(f.buf) == 0 {
			return Frame{}, false
		}
		switch f.buf[0] {
		case ':':
			end := bytes.IndexByte(f.buf[1:], ':')
			if end < 0 {
				if len(f.buf) > MaxReplyName+2 || bytes.IndexByte(f.buf, '\n') >= 0 {
					return f.garbage()
				}
				return Frame{}, false
			}
			name := string(f.buf[1 : 1+end])
			if len(name) > MaxReplyName || bytes.IndexByte(f.buf[1:1+end], '\n') >= 0 {
				return f.garbage()
			}
			j := 2 + end
			for j < len(f.buf) && isSpace(f.buf[j]) {
				j++
			}
			if j == len(f.buf) {
				return f.wait()
			}
			n := conn.JSONEnd(f.buf[j:])
			switch {
			case n == 0:
				return f.wait()
			case n < 0:
				// A reply name is known: hand the bad text to the
				// dispatcher, which answers -32700.
				n = bytes.IndexByte(f.buf[j:], '\n')
				if n < 0 {
					return f.wait() // the rest of the line may still come
				}
			}
			fr = Frame{Dialect: DialectOpenSIPS, ReplyName: name, Body: bytes.Clone(f.buf[j : j+n])}
			f.consume(j + n)
			return fr, true
		case '{', '[':
			n := conn.JSONEnd(f.buf)
			switch {
			case n == 0:
				return f.wait()
			case n < 0:
				return f.garbage()
			}
			fr = Frame{Dialect: DialectKamailio, Body: bytes.Clone(f.buf[:n])}
			var rn struct {
				ReplyName string `json:"reply_name"`
			}
			if json.Unmarshal(fr.Body, &rn) == nil {
				fr.ReplyName = rn.ReplyName
			}
			f.consume(n)
			return fr, true
		default:
			return f.garbage()
		}
	}
}

func (f *Framer) wait() (Frame, bool) {
	if len(f.buf) > f.max {
		f.Reset()
		return Frame{Err: ErrTooLarge}, true
	}
	return Frame{}, false
}

// garbage drops through the next newline; without one it waits for
// more bytes (bounded by max; the FIFO reader also resets after a quiet
// period).
func (f *Framer) garbage() (Frame, bool) {
	n := bytes.IndexByte(f.buf, '\n')
	if n < 0 {
		if len(f.buf) > f.max {
			f.Reset()
			return Frame{Err: ErrFraming}, true
		}
		return Frame{}, false
	}
	f.consume(n + 1)
	return Frame{Err: ErrFraming}, true
}

func (f *Framer) consume(n int) {
	if n == 0 {
		return
	}
	m := copy(f.buf, f.buf[n:])
	f.buf = f.buf[:m]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
