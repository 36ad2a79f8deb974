package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MaxLineSize is the longest line Parse accepts, in bytes; a longer line is
// a [*ParseError] wrapping [ErrLineTooLong].
const MaxLineSize = 64 << 10

// Errors wrapped by [*ParseError].
var (
	ErrSyntax      = errors.New("config: syntax error")
	ErrInvalid     = errors.New("config: invalid value")
	ErrLineTooLong = errors.New("config: line too long")
	ErrUnknownKey  = errors.New("config: unknown key")
)

// ParseError reports a value that cannot be used: where it came from, the
// key, and why. File is "" for [Config.Set] on a value that did not come
// from a file.
type ParseError struct {
	File string // file name given to Parse or Load
	Line int    // 1-based line, 0 when unknown
	Key  string // option key, "" for a syntax error
	Err  error  // reason; wraps ErrSyntax, ErrInvalid, ErrLineTooLong or ErrUnknownKey
}

// Error returns "config: FILE:LINE: KEY: REASON".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "config: "))
	return b.String()
}

// Unwrap returns the reason.
func (e *ParseError) Unwrap() error { return e.Err }

// Warning reports a line that was accepted but ignored or overridden, such
// as an unknown key.
type Warning struct {
	File    string
	Line    int
	Section string
	Key     string
	Msg     string
}

// UnknownKey is the warning for a key the sensor does not know (a
// VoIPmonitor sniffer option it does not implement, or a typo), with the
// closest known key when there is one.
func UnknownKey(file string, line int, section, key string) Warning {
	msg := "unknown key ignored"
	if s := Suggest(key); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return Warning{File: file, Line: line, Section: section, Key: key, Msg: msg}
}

// String returns "FILE:LINE: KEY: MSG" ("FILE: KEY: MSG" without a line).
func (w Warning) String() string {
	if w.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", w.File, w.Key, w.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", w.File, w.Line, w.Key, w.Msg)
}

// Load reads the file at path over [Default]. An empty path returns the
// defaults. Load does not call [Config.Validate]: apply command-line
// overrides with [Config.Set] first, then validate.
func Load(path string) (*Config, []Warning, error) {
	if path == "" {
		return Default(), nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a voipmonitor.conf-style file from r over [Default]; name is
// used in errors and warnings. Unknown keys and repeated single-valued keys
// (the last one wins) produce warnings; a malformed line or an invalid value
// stops parsing with a [*ParseError]. Lists (`sipport`, `mi_datagram`,
// `server_destination`) replace the default on their first line and append
// on later ones.
func Parse(r io.Reader, name string) (*Config, []Warning, error) {
	c := Default()
	var warns []Warning
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineSize)
	seen := make(map[string]int)
	section := ""
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		if text[0] == '[' {
			if text[len(text)-1] != ']' {
				return nil, warns, &ParseError{File: name, Line: line, Err: fmt.Errorf("%w: unterminated section header", ErrSyntax)}
			}
			section = strings.TrimSpace(text[1 : len(text)-1])
			c.Sections = append(c.Sections, section)
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, warns, &ParseError{File: name, Line: line, Err: fmt.Errorf("%w: want key = value", ErrSyntax)}
		}
		key := strings.ToLower(strings.TrimSpace(k))
		if key == "" {
			return nil, warns, &ParseError{File: name, Line: line, Err: fmt.Errorf("%w: empty key", ErrSyntax)}
		}
		val := unquote(strings.TrimSpace(v))
		if err := checkText(val); err != nil {
			return nil, warns, &ParseError{File: name, Line: line, Key: key, Err: err}
		}
		raw := val
		if isSecretKey(key) {
			raw = Secret(val).String()
		}
		c.Raw = append(c.Raw, Entry{Section: section, Key: key, Value: raw, Line: line})
		o, known := lookup(key)
		if !known {
			warns = append(warns, UnknownKey(name, line, section, key))
			continue
		}
		prev, repeated := seen[key]
		seen[key] = line
		if o.list {
			if !repeated {
				o.reset(c)
			}
		} else if repeated {
			warns = append(warns, Warning{File: name, Line: line, Section: section, Key: key,
				Msg: "repeated key overrides line " + strconv.Itoa(prev)})
		}
		if err := o.set(c, val); err != nil {
			return nil, warns, &ParseError{File: name, Line: line, Key: key, Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
		}
		c.setOrigin(key, name, line)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = ErrLineTooLong
		}
		return nil, warns, &ParseError{File: name, Line: line + 1, Err: err}
	}
	return c, warns, nil
}

// Set applies one key = value override with the same validation as a file
// line, as for a command-line flag. A list key is replaced, not appended to;
// give several values as a comma list. Set returns a [*ParseError] wrapping
// ErrUnknownKey or ErrInvalid.
func (c *Config) Set(key, value string) error {
	key = strings.ToLower(strings.TrimSpace(key))
	value = strings.TrimSpace(value)
	o, ok := lookup(key)
	if !ok {
		return &ParseError{Key: key, Err: ErrUnknownKey}
	}
	if err := checkText(value); err != nil {
		return &ParseError{Key: key, Err: err}
	}
	// Work on a copy so that a rejected list value leaves c unchanged.
	tmp := *c
	if o.list {
		o.reset(&tmp)
	}
	if err := o.set(&tmp, value); err != nil {
		return &ParseError{Key: key, Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
	}
	*c = tmp
	c.setOrigin(key, "", 0)
	return nil
}

// Get returns the current value of key as text, with secrets shown as
// "REDACTED" and lists as comma lists. ok is false for an unknown key.
func (c *Config) Get(key string) (value string, ok bool) {
	o, ok := lookup(strings.ToLower(key))
	if !ok {
		return "", false
	}
	if isSecretKey(o.key) {
		return Secret("").String(), true
	}
	return strings.Join(o.get(c), ","), true
}

// isSecretKey reports whether a key's value must not be shown: the known
// secrets, and, for unknown keys, names that look like one.
func isSecretKey(key string) bool {
	if IsSecret(key) {
		return true
	}
	for _, s := range []string{"password", "secret", "token", "_key", "_iv"} {
		if strings.Contains(key, s) {
			return true
		}
	}
	return false
}

// Marshal renders c as a file that [Parse] reads back to an equal Config
// (ignoring Sections and Raw). Secrets are written in clear: write the
// result only where the original file could be.
func (c *Config) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# voipsensor configuration\n")
	for _, k := range Keys() {
		o := options[k]
		vals := o.get(c)
		if o.list && len(vals) == 0 {
			continue // only lists whose default is empty can be empty
		}
		for _, v := range vals {
			b.WriteString(k + " = " + quote(v) + "\n")
		}
	}
	return b.Bytes()
}

func (c *Config) setOrigin(key, file string, line int) {
	if c.origin == nil {
		c.origin = make(map[string]position)
	}
	c.origin[key] = position{file, line}
}

// errAt wraps err in a ParseError that points at where key was last set.
func (c *Config) errAt(key string, err error) *ParseError {
	p := c.origin[key]
	return &ParseError{File: p.file, Line: p.line, Key: key, Err: err}
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// quote wraps v in double quotes when Parse would otherwise change it.
func quote(v string) string {
	if v != strings.TrimSpace(v) || strings.HasPrefix(v, `"`) {
		return `"` + v + `"`
	}
	return v
}

// checkText rejects control characters other than tab in a value.
func checkText(v string) error {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return fmt.Errorf("%w: control character 0x%02x", ErrInvalid, b)
		}
	}
	return nil
}

// Suggest returns the known key closest to an unknown one (at most two
// edits away, '-' and '_' alike), or "".
func Suggest(key string) string {
	key = strings.ReplaceAll(strings.ToLower(key), "-", "_")
	best, bestD := "", 3
	for _, k := range Keys() {
		if d := editDistance(key, strings.ReplaceAll(k, "-", "_")); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
