package sip

// hdr identifies the headers Unmarshal interprets.
type hdr uint8

const (
	hOther hdr = iota
	hCallID
	hFrom
	hTo
	hCSeq
	hVia
	hContact
	hExpires
	hUserAgent
	hServer
	hContentType
	hContentLength
	hReason
	hPAssertedIdentity
	hRemotePartyID
	hAuthorization
	hProxyAuthorization
)

// canonical maps a header name, long or compact, in any case, to its hdr.
func canonical(name []byte) hdr {
	if len(name) == 1 {
		switch name[0] | 0x20 {
		case 'i':
			return hCallID
		case 'f':
			return hFrom
		case 't':
			return hTo
		case 'v':
			return hVia
		case 'm':
			return hContact
		case 'l':
			return hContentLength
		case 'c':
			return hContentType
		}
		return hOther
	}
	var buf [19]byte // len("proxy-authorization")
	if len(name) > len(buf) {
		return hOther
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(name)]) {
	case "call-id":
		return hCallID
	case "from":
		return hFrom
	case "to":
		return hTo
	case "cseq":
		return hCSeq
	case "via":
		return hVia
	case "contact":
		return hContact
	case "expires":
		return hExpires
	case "user-agent":
		return hUserAgent
	case "server":
		return hServer
	case "content-type":
		return hContentType
	case "content-length":
		return hContentLength
	case "reason":
		return hReason
	case "p-asserted-identity":
		return hPAssertedIdentity
	case "remote-party-id":
		return hRemotePartyID
	case "authorization":
		return hAuthorization
	case "proxy-authorization":
		return hProxyAuthorization
	}
	return hOther
}

// compactForms lists the compact header names of RFC 3261 section 7.3.3 and
// the IANA SIP header registry. Read-only.
var compactForms = [...]struct{ short, long string }{
	{"a", "accept-contact"},
	{"b", "referred-by"},
	{"c", "content-type"},
	{"d", "request-disposition"},
	{"e", "content-encoding"},
	{"f", "from"},
	{"i", "call-id"},
	{"j", "reject-contact"},
	{"k", "supported"},
	{"l", "content-length"},
	{"m", "contact"},
	{"n", "identity-info"},
	{"o", "event"},
	{"r", "refer-to"},
	{"s", "subject"},
	{"t", "to"},
	{"u", "allow-events"},
	{"v", "via"},
	{"x", "session-expires"},
	{"y", "identity"},
}

// headerNames returns the long and compact spellings of name ("" when it
// has no compact form).
func headerNames(name string) (long, short string) {
	for _, f := range compactForms {
		if equalFoldString(name, f.long) || equalFoldString(name, f.short) {
			return f.long, f.short
		}
	}
	return name, ""
}

// Header returns the value of the first header called name, matched without
// regard to case and with compact forms honoured (Header("Call-ID") finds
// "i: ..."), by scanning Raw. The value has surrounding whitespace removed
// and aliases Raw; folded lines are left as on the wire. It returns nil when
// the header is absent and an empty non-nil slice when it is empty.
func (m *Message) Header(name string) []byte {
	long, short := headerNames(name)
	b := m.Raw
	pos := 0
	for pos < len(b) && (b[pos] == '\r' || b[pos] == '\n') {
		pos++
	}
	if pos == len(b) {
		return nil
	}
	_, pos, terminated := lineAt(b, pos)
	for terminated && pos < len(b) && b[pos] != '\n' && !(b[pos] == '\r' && pos+1 < len(b) && b[pos+1] == '\n') {
		end, next := headerAt(b, pos)
		h := b[pos:end]
		pos = next
		i := 0
		for i < len(h) && isTokenChar(h[i]) {
			i++
		}
		n := h[:i]
		for i < len(h) && isLWS(h[i]) {
			i++
		}
		if i >= len(h) || h[i] != ':' {
			continue
		}
		if equalFold(n, long) || (short != "" && equalFold(n, short)) {
			return trimLWS(h[i+1:])
		}
	}
	return nil
}

// Clone returns a deep copy of m that does not alias m.Raw. Slices that
// alias m.Raw alias the copy's Raw at the same offsets; any other slice (set
// by hand) is copied on its own.
func (m *Message) Clone() *Message {
	c := *m
	if m.Raw == nil {
		return &c
	}
	raw := make([]byte, len(m.Raw))
	copy(raw, m.Raw)
	r := rebaser{old: m.Raw, new: raw}
	c.Raw = raw
	c.MethodName = r.of(m.MethodName)
	c.RequestURI = r.of(m.RequestURI)
	c.Reason = r.of(m.Reason)
	c.CallID = r.of(m.CallID)
	c.From = r.nameAddr(m.From)
	c.To = r.nameAddr(m.To)
	c.PAssertedIdentity = r.nameAddr(m.PAssertedIdentity)
	c.RemotePartyID = r.nameAddr(m.RemotePartyID)
	c.Via = r.of(m.Via)
	c.Branch = r.of(m.Branch)
	c.Contact = r.nameAddr(m.Contact)
	c.UserAgent = r.of(m.UserAgent)
	c.Server = r.of(m.Server)
	c.ContentType = r.of(m.ContentType)
	c.Body = r.of(m.Body)
	c.ReasonHeader = r.of(m.ReasonHeader)
	c.AuthUser = r.of(m.AuthUser)
	return &c
}

// rebaser moves slices of old to the same offsets in new (a copy of old).
type rebaser struct{ old, new []byte }

func (r rebaser) of(s []byte) []byte {
	if s == nil {
		return nil
	}
	if len(s) == 0 {
		return r.new[:0]
	}
	// A slice b[i:j] of old has cap(old)-i capacity left; confirm it is
	// really inside old by comparing element addresses.
	off := cap(r.old) - cap(s)
	if off >= 0 && off+len(s) <= len(r.old) && &r.old[:cap(r.old)][off] == &s[0] {
		return r.new[off : off+len(s)]
	}
	return append([]byte(nil), s...)
}

func (r rebaser) nameAddr(n NameAddr) NameAddr {
	return NameAddr{
		Display: r.of(n.Display),
		URI:     r.of(n.URI),
		User:    r.of(n.User),
		Host:    r.of(n.Host),
		Port:    r.of(n.Port),
		Tag:     r.of(n.Tag),
	}
}
