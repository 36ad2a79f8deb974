package sip

import "bytes"

// parseNameAddr parses a name-addr or addr-spec followed by header
// parameters (RFC 3261 section 20.10):
//
//	( name-addr / addr-spec ) *( SEMI param )
//	name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
//	display-name = *(token LWS) / quoted-string
//
// It returns the parameters part (starting at its first ';', possibly empty)
// and false when v is not a valid value; na is filled as far as parsed.
func parseNameAddr(v []byte) (na NameAddr, params []byte, ok bool) {
	v = trimLWS(v)
	if len(v) == 0 {
		return na, nil, false
	}
	i := 0
	if v[0] == '"' {
		end := quotedEnd(v)
		if end < 0 {
			return na, nil, false
		}
		na.Display = v[1:end]
		i = end + 1
		for i < len(v) && isLWS(v[i]) {
			i++
		}
		if i >= len(v) || v[i] != '<' {
			return na, nil, false
		}
	} else if lt := bytes.IndexByte(v, '<'); lt >= 0 {
		if d := trimLWS(v[:lt]); len(d) > 0 {
			na.Display = d
		}
		i = lt
	}
	var rest []byte
	if i < len(v) && v[i] == '<' {
		gt := bytes.IndexByte(v[i:], '>')
		if gt < 0 {
			return na, nil, false
		}
		na.URI = trimLWS(v[i+1 : i+gt])
		rest = v[i+gt+1:]
	} else {
		// addr-spec: parameters after the URI belong to the header.
		end := bytes.IndexByte(v, ';')
		if end < 0 {
			end = len(v)
		}
		na.URI = trimLWS(v[:end])
		rest = v[end:]
	}
	if len(na.URI) == 0 {
		return na, nil, false
	}
	parseURI(&na)
	if semi := bytes.IndexByte(rest, ';'); semi >= 0 {
		params = rest[semi:]
		na.Tag = paramValue(params, "tag")
	}
	return na, params, true
}

// quotedEnd returns the index of the quote closing the quoted-string that
// starts at v[0], honouring quoted-pairs, or -1.
func quotedEnd(v []byte) int {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// parseURI fills User, Host and Port of na from na.URI for the sip, sips and
// tel schemes (RFC 3261 section 19.1.1, RFC 3966).
func parseURI(na *NameAddr) {
	u := na.URI
	colon := bytes.IndexByte(u, ':')
	if colon <= 0 {
		return
	}
	scheme, rest := u[:colon], u[colon+1:]
	switch {
	case equalFold(scheme, "tel"):
		if semi := bytes.IndexByte(rest, ';'); semi >= 0 {
			rest = rest[:semi]
		}
		na.User = rest
		return
	case equalFold(scheme, "sip"), equalFold(scheme, "sips"):
	default:
		return
	}
	// The user part may hold ';', '?' and ':' (password) but not '@'.
	if at := bytes.IndexByte(rest, '@'); at >= 0 {
		user := rest[:at]
		if c := bytes.IndexByte(user, ':'); c >= 0 {
			user = user[:c]
		}
		na.User = user
		rest = rest[at+1:]
	}
	for i, c := range rest {
		if c == ';' || c == '?' {
			rest = rest[:i]
			break
		}
	}
	if len(rest) > 0 && rest[0] == '[' {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			na.Host = rest[1:]
			return
		}
		na.Host = rest[1:end]
		if end+1 < len(rest) && rest[end+1] == ':' {
			na.Port = rest[end+2:]
		}
		return
	}
	if c := bytes.IndexByte(rest, ':'); c >= 0 {
		na.Host, na.Port = rest[:c], rest[c+1:]
		return
	}
	na.Host = rest
}

// paramValue returns the value of the parameter called name (matched
// without regard to case) in params, a list of ";name[=value]" with LWS
// allowed around the separators. A quoted value is returned without its
// quotes. It returns nil when absent and an empty slice for a parameter
// without a value.
func paramValue(params []byte, name string) []byte {
	i := 0
	for i < len(params) {
		if params[i] != ';' {
			// Skip to the next ';' outside a quoted string.
			if params[i] == '"' {
				e := quotedEnd(params[i:])
				if e < 0 {
					return nil
				}
				i += e
			}
			i++
			continue
		}
		i++
		for i < len(params) && isLWS(params[i]) {
			i++
		}
		s := i
		for i < len(params) && isTokenChar(params[i]) {
			i++
		}
		pname := params[s:i]
		for i < len(params) && isLWS(params[i]) {
			i++
		}
		match := equalFold(pname, name)
		if i >= len(params) || params[i] != '=' {
			if match {
				return params[s:s]
			}
			continue
		}
		i++
		for i < len(params) && isLWS(params[i]) {
			i++
		}
		if i < len(params) && params[i] == '"' {
			e := quotedEnd(params[i:])
			if e < 0 {
				return nil
			}
			if match {
				return params[i+1 : i+e]
			}
			i += e + 1
			continue
		}
		s = i
		for i < len(params) && params[i] != ';' && params[i] != ',' && !isLWS(params[i]) {
			i++
		}
		if match {
			return params[s:i]
		}
	}
	return nil
}

// firstValue returns the first element of a comma-separated header value,
// not splitting inside quoted strings or <>.
func firstValue(v []byte) []byte {
	inAngle := false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			e := quotedEnd(v[i:])
			if e < 0 {
				return trimLWS(v)
			}
			i += e
		case '<':
			inAngle = true
		case '>':
			inAngle = false
		case ',':
			if !inAngle {
				return trimLWS(v[:i])
			}
		}
	}
	return trimLWS(v)
}

// authUser returns the username parameter of a credentials value
// (RFC 3261 section 25.1: Digest username="alice", realm=...).
func authUser(v []byte) []byte {
	i := 0
	for i < len(v) && isTokenChar(v[i]) {
		i++ // the scheme
	}
	for i < len(v) {
		for i < len(v) && (isLWS(v[i]) || v[i] == ',') {
			i++
		}
		s := i
		for i < len(v) && isTokenChar(v[i]) {
			i++
		}
		pname := v[s:i]
		for i < len(v) && isLWS(v[i]) {
			i++
		}
		if i >= len(v) || v[i] != '=' {
			if i == s {
				i++ // not a parameter: step over the stray byte
			}
			continue
		}
		i++
		for i < len(v) && isLWS(v[i]) {
			i++
		}
		var val []byte
		if i < len(v) && v[i] == '"' {
			e := quotedEnd(v[i:])
			if e < 0 {
				return nil
			}
			val = v[i+1 : i+e]
			i += e + 1
		} else {
			s = i
			for i < len(v) && v[i] != ',' && !isLWS(v[i]) {
				i++
			}
			val = v[s:i]
		}
		if equalFold(pname, "username") {
			return val
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isLWS reports whether c is linear white space, folded line ends included.
func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isTokenChar reports whether c may appear in a token (RFC 3261 section 25.1).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func trimLWS(b []byte) []byte {
	for len(b) > 0 && isLWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isLWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the ASCII string s without regard to case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func equalFoldString(a, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
