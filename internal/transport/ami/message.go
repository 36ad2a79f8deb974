package ami

import (
	"strconv"
	"strings"
)

// Framing limits, as in Asterisk's get_input (1025-byte buffer) and
// AST_MAX_MANHEADERS.
const (
	MaxLine    = 1024 // bytes of one line before its terminator
	MaxHeaders = 128  // header lines of one message
)

// Header is one "Name: Value" line. A line without a colon has an empty
// Name and the whole line as Value; it never matches a lookup.
type Header struct {
	Name, Value string
}

// Message is one parsed client message: its headers in wire order.
type Message struct {
	Headers []Header
}

// Get returns the value of the first header named name (case-insensitive)
// and whether there was one.
func (m *Message) Get(name string) (string, bool) {
	for _, h := range m.Headers {
		if h.Name != "" && strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Value returns the value of the first header named name, or "".
func (m *Message) Value(name string) string {
	v, _ := m.Get(name)
	return v
}

// Action returns the first non-empty Action header, as Asterisk does.
func (m *Message) Action() string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, "Action") && h.Value != "" {
			return h.Value
		}
	}
	return ""
}

// Framer turns a byte stream into messages. It is a small state machine
// independent of any connection, so it can be fed split reads and fuzzed
// alone. Lines end with "\n" or "\r\n"; an empty line ends a message. A
// line longer than [MaxLine] is discarded up to its end and spoils its
// message with [ErrLineTooLong]; lines beyond [MaxHeaders] are dropped and
// spoil it with [ErrTooManyHeaders]. Memory stays bounded by MaxLine and
// MaxHeaders whatever the input. Not safe for concurrent use.
type Framer struct {
	line     []byte
	overlong bool
	msg      Message
	err      error
}

// Feed consumes p and calls fn, in order, for each message completed by an
// empty line. err is nil or a framing error; m is owned by fn. A stray
// empty line yields an empty message.
func (f *Framer) Feed(p []byte, fn func(m *Message, err error)) {
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			f.appendLine(p)
			return
		}
		f.appendLine(p[:i])
		p = p[i+1:]
		f.endLine(fn)
	}
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

func (f *Framer) appendLine(p []byte) {
	if f.overlong {
		return
	}
	// One byte of slack for the '\r' of a "\r\n" terminator.
	if len(f.line)+len(p) > MaxLine+1 {
		f.overlong = true
		f.line = f.line[:0]
		return
	}
	f.line = append(f.line, p...)
}

func (f *Framer) endLine(fn func(*Message, error)) {
	line := f.line
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	overlong := f.overlong || len(line) > MaxLine
	f.overlong = false
	f.line = f.line[:0]
	switch {
	case overlong:
		if f.err == nil {
			f.err = ErrLineTooLong
		}
		return
	case len(line) == 0:
		m, err := f.msg, f.err
		f.msg, f.err = Message{}, nil
		fn(&m, err)
		return
	}
	if len(f.msg.Headers) >= MaxHeaders {
		if f.err == nil {
			f.err = ErrTooManyHeaders
		}
		return
	}
	f.msg.Headers = append(f.msg.Headers, parseHeader(string(line)))
}

// parseHeader splits "Name: value". The name runs to the first colon; the
// value's leading blanks are skipped and its trailing blanks kept.
func parseHeader(s string) Header {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return Header{Value: s}
	}
	return Header{Name: s[:i], Value: strings.TrimLeft(s[i+1:], " \t")}
}

// Escape C-escapes s the way Asterisk's ast_escape_c does: control
// characters, backslash, quotes and '?' become backslash sequences (\n,
// \r, \t, \\, \", \x01 …), so the result never holds CR or LF.
func Escape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '?':
			b.WriteString(`\?`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\x`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

func needsEscape(c byte) bool {
	return c < 0x20 || c == 0x7f || c == '\\' || c == '\'' || c == '"' || c == '?'
}

// safe replaces CR, LF and NUL in a value that is echoed rather than
// escaped (ActionID, UserEvent headers), so it can never break framing.
func safe(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`, "\x00", `\x00`).Replace(s)
}

// builder appends one outgoing message: "Name: value\r\n" lines and the
// closing empty line. Names are constants of this package; values go
// through safe (or Escape at the call site for wire values).
type builder struct{ b []byte }

func (w *builder) add(name, value string) {
	w.b = append(w.b, name...)
	w.b = append(w.b, ": "...)
	w.b = append(w.b, safe(value)...)
	w.b = append(w.b, "\r\n"...)
}

func (w *builder) addInt(name string, v int64) {
	w.b = append(w.b, name...)
	w.b = append(w.b, ": "...)
	w.b = strconv.AppendInt(w.b, v, 10)
	w.b = append(w.b, "\r\n"...)
}

// addID adds ActionID when the request had one.
func (w *builder) addID(id string, ok bool) {
	if ok {
		w.add("ActionID", id)
	}
}

func (w *builder) end() { w.b = append(w.b, "\r\n"...) }
