package sip

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// aliases reports whether s is empty or lies inside b.
func aliases(b, s []byte) bool {
	if len(s) == 0 {
		return true
	}
	off := cap(b) - cap(s)
	return off >= 0 && off+len(s) <= len(b) && &b[:cap(b)][off] == &s[0]
}

func nameAddrFields(n *NameAddr) [][]byte {
	return [][]byte{n.Display, n.URI, n.User, n.Host, n.Port, n.Tag}
}

// byteFields lists every []byte field of m except Raw.
func byteFields(m *Message) [][]byte {
	f := [][]byte{m.MethodName, m.RequestURI, m.Reason, m.CallID, m.Via, m.Branch, m.UserAgent, m.Server,
		m.ContentType, m.Body, m.ReasonHeader, m.AuthUser}
	for _, n := range []*NameAddr{&m.From, &m.To, &m.PAssertedIdentity, &m.RemotePartyID, &m.Contact} {
		f = append(f, nameAddrFields(n)...)
	}
	return f
}

func equalMessages(a, b *Message) bool {
	if !bytes.Equal(a.Raw, b.Raw) || a.Request != b.Request || a.Method != b.Method || a.StatusCode != b.StatusCode ||
		a.CSeq != b.CSeq || a.CSeqMethod != b.CSeqMethod || a.ContactExpires != b.ContactExpires ||
		a.ContactStar != b.ContactStar || a.Expires != b.Expires || a.ContentLength != b.ContentLength {
		return false
	}
	fa, fb := byteFields(a), byteFields(b)
	for i := range fa {
		if !bytes.Equal(fa[i], fb[i]) || (fa[i] == nil) != (fb[i] == nil) {
			return false
		}
	}
	return true
}

// FuzzUnmarshal checks that Unmarshal never panics, that every field aliases
// the input, that Clone is equal and independent, and that Header and
// LooksLikeSIP survive any input.
func FuzzUnmarshal(f *testing.F) {
	for _, dir := range []string{"testdata/torture", "testdata/capture"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sip"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		err := m.Unmarshal(b)
		LooksLikeSIP(b)
		for i, s := range byteFields(&m) {
			if !aliases(b, s) {
				t.Fatalf("field %d = %q does not alias the input", i, s)
			}
		}
		if err == nil && (len(m.CallID) == 0 || (m.Request && len(m.MethodName) == 0)) {
			t.Fatalf("no error but CallID %q MethodName %q", m.CallID, m.MethodName)
		}
		c := m.Clone()
		if !equalMessages(c, &m) {
			t.Fatalf("Clone differs:\n got %+v\nwant %+v", c, m)
		}
		if len(b) > 0 && &c.Raw[0] == &b[0] {
			t.Fatal("Clone shares Raw with the original")
		}
		for _, s := range byteFields(c) {
			if !aliases(c.Raw, s) {
				t.Fatalf("Clone field %q does not alias the clone's Raw", s)
			}
		}
		if v := m.Header("Call-ID"); v != nil && !aliases(b, v) {
			t.Fatal("Header result does not alias the input")
		}
	})
}
