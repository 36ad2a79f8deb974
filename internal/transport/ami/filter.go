package ami

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Filter is one event filter: legacy (a regular expression over the whole
// event text, "!" to exclude) or advanced (criteria name(), header(),
// method(), action()). Immutable after ParseFilter; safe for concurrent use.
type Filter struct {
	Include bool
	Name    string // exact, case-sensitive event name; "" matches any
	Header  string // test only the values of lines starting "Header:"
	Method  string // regex, exact, starts_with, ends_with, contains, none
	Pattern string
	re      *regexp.Regexp
}

// ParseFilter builds a filter. criteria is "" for the legacy form, else
// the comma list inside eventfilter(...) or a Filter action's
// MatchCriteria. A leading "!" on pattern means exclude unless action()
// says otherwise. Errors wrap [ErrFilter].
func ParseFilter(criteria, pattern string) (*Filter, error) {
	f := &Filter{Include: true, Method: "none"}
	if strings.HasPrefix(pattern, "!") {
		f.Include = false
		pattern = pattern[1:]
	}
	f.Pattern = pattern
	if criteria == "" {
		f.Method = "regex"
		re, err := regexp.Compile("(?s)" + pattern)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFilter, err)
		}
		f.re = re
		return f, nil
	}
	seen := map[string]bool{}
	for _, c := range strings.Split(criteria, ",") {
		c = strings.TrimSpace(c)
		open := strings.IndexByte(c, '(')
		if open <= 0 || !strings.HasSuffix(c, ")") {
			return nil, fmt.Errorf("%w: criterion %q", ErrFilter, c)
		}
		key, arg := strings.ToLower(c[:open]), c[open+1:len(c)-1]
		if seen[key] {
			return nil, fmt.Errorf("%w: %s given twice", ErrFilter, key)
		}
		seen[key] = true
		switch key {
		case "action":
			switch strings.ToLower(arg) {
			case "include":
				f.Include = true
			case "exclude":
				f.Include = false
			default:
				return nil, fmt.Errorf("%w: action(%s)", ErrFilter, arg)
			}
		case "name":
			f.Name = arg
		case "header":
			f.Header = arg
		case "method":
			switch m := strings.ToLower(arg); m {
			case "regex", "exact", "starts_with", "ends_with", "contains", "none":
				f.Method = m
			default:
				return nil, fmt.Errorf("%w: method(%s)", ErrFilter, arg)
			}
		default:
			return nil, fmt.Errorf("%w: unknown criterion %q", ErrFilter, key)
		}
	}
	if (pattern == "") != (f.Method == "none") {
		return nil, fmt.Errorf("%w: method %s with pattern %q", ErrFilter, f.Method, pattern)
	}
	if f.Method == "regex" {
		re, err := regexp.Compile("(?s)" + pattern)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFilter, err)
		}
		f.re = re
	}
	return f, nil
}

// Match reports whether the event named name, rendered as text, matches.
func (f *Filter) Match(name string, text []byte) bool {
	if f.Name != "" && f.Name != name {
		return false
	}
	if f.Method == "none" {
		return true
	}
	if f.Header == "" {
		return f.matchValue(text)
	}
	for line := range bytes.SplitSeq(text, []byte("\r\n")) {
		if len(line) > len(f.Header) && line[len(f.Header)] == ':' && bytes.EqualFold(line[:len(f.Header)], []byte(f.Header)) {
			if f.matchValue(bytes.TrimLeft(line[len(f.Header)+1:], " ")) {
				return true
			}
		}
	}
	return false
}

func (f *Filter) matchValue(v []byte) bool {
	switch f.Method {
	case "regex":
		return f.re.Match(v)
	case "exact":
		return string(v) == f.Pattern
	case "starts_with":
		return bytes.HasPrefix(v, []byte(f.Pattern))
	case "ends_with":
		return bytes.HasSuffix(v, []byte(f.Pattern))
	case "contains":
		return bytes.Contains(v, []byte(f.Pattern))
	}
	return false
}

// passFilters applies Asterisk's order: no filters pass everything;
// include filters need one match; exclude filters drop any match.
func passFilters(fs []*Filter, name string, text []byte) bool {
	if len(fs) == 0 {
		return true
	}
	hasInclude, included := false, false
	for _, f := range fs {
		if f.Include {
			hasInclude = true
			if !included && f.Match(name, text) {
				included = true
			}
		}
	}
	if hasInclude && !included {
		return false
	}
	for _, f := range fs {
		if !f.Include && f.Match(name, text) {
			return false
		}
	}
	return true
}
