package sip

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// crlf turns the LF line ends of a test literal into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

const inviteSDP = `INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP proxy.example.com;branch=z9hG4bKxx
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: "Alice \"A\" Liddell" <sip:alice@atlanta.example.com:5062;transport=udp>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>;expires=60, <sip:alice@other.example.com>
P-Asserted-Identity: "Alice" <tel:+15551234567>
Remote-Party-ID: "Alice" <sip:+15551234567@gw.example.com>;party=calling
User-Agent: softphone/1.0
Proxy-Authorization: Digest username="alice", realm="atlanta.example.com", nonce="x, y"
Content-Type: application/sdp
Content-Length: 142

v=0
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com
s=-
c=IN IP4 192.0.2.101
t=0 0
m=audio 49172 RTP/AVP 0
a=rtpmap:0 PCMU/8000
`

func TestUnmarshalFields(t *testing.T) {
	var m Message
	if err := m.Unmarshal([]byte(crlf(inviteSDP))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"Request", m.Request, true},
		{"Method", m.Method, MethodINVITE},
		{"RequestURI", string(m.RequestURI), "sip:bob@biloxi.example.com"},
		{"CallID", string(m.CallID), "a84b4c76e66710@pc33.atlanta.example.com"},
		{"From.Display", string(m.From.Display), `Alice \"A\" Liddell`},
		{"From.URI", string(m.From.URI), "sip:alice@atlanta.example.com:5062;transport=udp"},
		{"From.User", string(m.From.User), "alice"},
		{"From.Host", string(m.From.Host), "atlanta.example.com"},
		{"From.Port", string(m.From.Port), "5062"},
		{"From.Tag", string(m.From.Tag), "1928301774"},
		{"To.Display", string(m.To.Display), "Bob"},
		{"To.Tag", m.To.Tag == nil, true},
		{"CSeq", m.CSeq, uint32(314159)},
		{"CSeqMethod", m.CSeqMethod, MethodINVITE},
		{"Via", string(m.Via), "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"},
		{"Branch", string(m.Branch), "z9hG4bK776asdhds"},
		{"Contact.Host", string(m.Contact.Host), "pc33.atlanta.example.com"},
		{"ContactExpires", m.ContactExpires, 60},
		{"Expires", m.Expires, -1},
		{"PAI.User", string(m.PAssertedIdentity.User), "+15551234567"},
		{"PAI.Display", string(m.PAssertedIdentity.Display), "Alice"},
		{"RPID.Host", string(m.RemotePartyID.Host), "gw.example.com"},
		{"UserAgent", string(m.UserAgent), "softphone/1.0"},
		{"AuthUser", string(m.AuthUser), "alice"},
		{"ContentType", string(m.ContentType), "application/sdp"},
		{"ContentLength", m.ContentLength, 142},
		{"len(Body)", len(m.Body), 142},
		{"Body prefix", string(m.Body[:5]), "v=0\r\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

func TestUnmarshalCases(t *testing.T) {
	type want struct {
		err            error
		callID         string
		fromUser       string
		fromTag        string
		toTag          string
		branch         string
		contact        string
		contactStar    bool
		contactExpires int
		expires        int
		body           string
		reasonHeader   string
		status         int
	}
	base := want{contactExpires: -1, expires: -1}
	with := func(f func(*want)) want { w := base; f(&w); return w }
	tests := []struct {
		name string
		in   string
		want want
	}{
		{"compact forms", "BYE sip:b@h SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: cid1\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n",
			with(func(w *want) { w.callID, w.fromUser, w.fromTag, w.toTag, w.branch = "cid1", "a", "1", "2", "z9hG4bK1" })},
		{"bare LF and mixed case names", "BYE sip:b@h SIP/2.0\nVIA: SIP/2.0/UDP h;BRANCH=z9hG4bK2\nfROM: sip:a@h;tag=1\nTo: sip:b@h\nCALL-id: cid2\ncseq: 3 BYE\n\n",
			with(func(w *want) { w.callID, w.fromUser, w.fromTag, w.branch = "cid2", "a", "1", "z9hG4bK2" })},
		{"whitespace around colon and folding", "BYE sip:b@h SIP/2.0\r\nVia  :\r\n SIP/2.0/UDP h\r\n\t;branch=z9hG4bK3\r\nFrom\t: <sip:a@h>\r\n ;tag=1\r\nTo: <sip:b@h>\r\nCall-ID :  cid3  \r\nCSeq: 4\r\n BYE\r\n\r\n",
			with(func(w *want) { w.callID, w.fromUser, w.fromTag, w.branch = "cid3", "a", "1", "z9hG4bK3" })},
		{"addr-spec params belong to the header", "BYE sip:b@h SIP/2.0\r\nFrom: sip:a@h;tag=xyz\r\nTo: sip:b@h;user=phone;tag=abc\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
			with(func(w *want) { w.callID, w.fromUser, w.fromTag, w.toTag = "c", "a", "xyz", "abc" })},
		{"comma inside quotes and <> is not a separator", "REGISTER sip:h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: \"Doe, John\" <sip:a@h;x=\"1,2\">;expires=30, <sip:b@h>\r\nExpires: 3600\r\n\r\n",
			with(func(w *want) {
				w.callID, w.fromUser, w.fromTag, w.contact, w.contactExpires, w.expires = "c", "a", "1", `sip:a@h;x="1,2"`, 30, 3600
			})},
		{"contact star", "REGISTER sip:h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: *\r\nExpires: 0\r\n\r\n",
			with(func(w *want) { w.callID, w.fromUser, w.fromTag, w.contactStar, w.expires = "c", "a", "1", true, 0 })},
		{"body without Content-Length is the rest", "MESSAGE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nhello\r\nworld",
			with(func(w *want) { w.callID, w.fromUser, w.body = "c", "a", "hello\r\nworld" })},
		{"body is exactly Content-Length", "MESSAGE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 5\r\n\r\nhello\r\nworld",
			with(func(w *want) { w.callID, w.fromUser, w.body = "c", "a", "hello" })},
		{"Content-Length larger than body", "MESSAGE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 50\r\n\r\nhello",
			with(func(w *want) { w.err, w.callID, w.fromUser, w.body = ErrTruncated, "c", "a", "hello" })},
		{"headers cut off", "INVITE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSe",
			with(func(w *want) { w.err, w.callID, w.fromUser = ErrTruncated, "c", "a" })},
		{"missing empty line with Content-Length 0 is accepted", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n",
			with(func(w *want) { w.callID, w.fromUser = "c", "a" })},
		{"leading CRLF keep-alives are skipped", "\r\n\r\nSIP/2.0 486 Busy Here\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nReason: Q.850;cause=17;text=\"User busy\"\r\n\r\n",
			with(func(w *want) {
				w.callID, w.fromUser, w.fromTag, w.toTag, w.status, w.reasonHeader = "c", "a", "1", "2", 486, `Q.850;cause=17;text="User busy"`
			})},
		{"missing Call-ID", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCSeq: 1 BYE\r\n\r\n",
			with(func(w *want) { w.err, w.fromUser, w.fromTag = ErrNoCallID, "a", "1" })},
		{"missing From", "BYE sip:b@h SIP/2.0\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
			with(func(w *want) { w.err, w.callID = ErrNoFrom, "c" })},
		{"missing To", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
			with(func(w *want) { w.err, w.callID, w.fromUser = ErrNoTo, "c", "a" })},
		{"missing CSeq", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\n\r\n",
			with(func(w *want) { w.err, w.callID, w.fromUser = ErrNoCSeq, "c", "a" })},
		{"CSeq without method", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1\r\n\r\n",
			with(func(w *want) { w.err, w.callID, w.fromUser = ErrBadCSeq, "c", "a" })},
		{"Content-Length not a number", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\nContent-Length: 1x\r\n\r\n",
			with(func(w *want) { w.err, w.callID, w.fromUser = ErrBadContentLength, "c", "a" })},
		{"header line without colon", "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\ngarbage\r\n\r\n",
			with(func(w *want) { w.err, w.callID, w.fromUser = ErrMalformedHeader, "c", "a" })},
		{"not SIP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", with(func(w *want) { w.err = ErrNotSIP })},
		{"unknown SIP version", "OPTIONS sip:h SIP/3.0\r\nCall-ID: c\r\n\r\n", with(func(w *want) { w.err, w.callID = ErrMalformedStartLine, "c" })},
		{"binary", "\x80\x00\x01\x02", with(func(w *want) { w.err = ErrNotSIP })},
		{"empty", "", with(func(w *want) { w.err = ErrNotSIP })},
		{"status code out of range", "SIP/2.0 99 Odd\r\n\r\n", with(func(w *want) { w.err = ErrMalformedStartLine })},
		{"IPv6 host and sips", "BYE sips:b@[2001:db8::1]:5061 SIP/2.0\r\nFrom: <sips:a@[2001:db8::2]:5061>;tag=6\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
			with(func(w *want) { w.callID, w.fromUser, w.fromTag = "c", "a", "6" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := m.Unmarshal([]byte(tt.in))
			w := tt.want
			if !errors.Is(err, w.err) {
				t.Fatalf("Unmarshal error = %v, want %v", err, w.err)
			}
			got := want{err: err, callID: string(m.CallID), fromUser: string(m.From.User), fromTag: string(m.From.Tag),
				toTag: string(m.To.Tag), branch: string(m.Branch), contact: string(m.Contact.URI), contactStar: m.ContactStar,
				contactExpires: m.ContactExpires, expires: m.Expires, body: string(m.Body), reasonHeader: string(m.ReasonHeader),
				status: m.StatusCode}
			if got != w {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestNameAddrIPv6(t *testing.T) {
	na, _, ok := parseNameAddr([]byte("<sips:a@[2001:db8::2]:5061>;tag=6"))
	if !ok || string(na.Host) != "2001:db8::2" || string(na.Port) != "5061" || string(na.User) != "a" {
		t.Errorf("parseNameAddr = %q %q %q %v, want a 2001:db8::2 5061 true", na.User, na.Host, na.Port, ok)
	}
}

func TestHeader(t *testing.T) {
	var m Message
	raw := crlf("INVITE sip:b@h SIP/2.0\nf: <sip:a@h>;tag=1\nt: <sip:b@h>\ni: c\nCSeq: 1 INVITE\nk: 100rel, timer\nX-Folded: one\n two\nSubject:\nContent-Length: 0\n\nX-Body: not a header\n")
	m.Unmarshal([]byte(raw))
	tests := []struct {
		name string
		want string
		nil_ bool
	}{
		{"Call-ID", "c", false},
		{"call-id", "c", false},
		{"i", "c", false},
		{"FROM", "<sip:a@h>;tag=1", false},
		{"Supported", "100rel, timer", false},
		{"x-folded", "one\r\n two", false},
		{"Subject", "", false},
		{"s", "", false},
		{"Via", "", true},
		{"X-Body", "", true},
	}
	for _, tt := range tests {
		got := m.Header(tt.name)
		if string(got) != tt.want || (got == nil) != tt.nil_ {
			t.Errorf("Header(%q) = %q (nil %v), want %q (nil %v)", tt.name, got, got == nil, tt.want, tt.nil_)
		}
	}
}

func TestMethodString(t *testing.T) {
	for m := MethodINVITE; m <= MethodPUBLISH; m++ {
		if got := methodOf([]byte(m.String())); got != m {
			t.Errorf("methodOf(%q) = %v, want %v", m.String(), got, m)
		}
	}
	if got := Method(200).String(); got != "UNKNOWN" {
		t.Errorf("Method(200).String() = %q, want UNKNOWN", got)
	}
}

func TestLooksLikeSIP(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"SIP/2.0 200 OK\r\n", true},
		{"INVITE sip:a@b SIP/2.0\r\n", true},
		{"FOO sip:a@b SIP/2.0\n", true},
		{"GET / HTTP/1.1\r\n", false},
		{"\r\n\r\n", false},
		{"INVITE sip:a@b SIP/2.0", false}, // no line end yet
		{"\x80\x08\x00\x01", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := LooksLikeSIP([]byte(tt.in)); got != tt.want {
			t.Errorf("LooksLikeSIP(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestCaptures parses the SIP payloads of the shared lab captures and
// compares with tshark's dissection of the same frames
// (testdata/capture/tshark.tsv, command line in its first line).
func TestCaptures(t *testing.T) {
	f, err := os.Open("testdata/capture/tshark.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 17 {
			t.Fatalf("bad tsv line %q", line)
		}
		frame, _ := strconv.Atoi(c[1])
		name := c[0] + "_" + strings.Repeat("0", 4-len(strconv.Itoa(frame))) + strconv.Itoa(frame) + ".sip"
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/capture", name))
			if err != nil {
				t.Fatal(err)
			}
			if !LooksLikeSIP(b) {
				t.Errorf("LooksLikeSIP = false")
			}
			var m Message
			if err := m.Unmarshal(b); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			status := ""
			if !m.Request {
				status = strconv.Itoa(m.StatusCode)
			}
			expires := ""
			if m.Expires >= 0 {
				expires = strconv.Itoa(m.Expires)
			}
			got := []string{c[0], c[1], string(m.MethodName), status, string(m.CallID), strconv.Itoa(int(m.CSeq)), string(m.Header("CSeq")[len(strconv.Itoa(int(m.CSeq)))+1:]),
				string(m.From.User), string(m.From.Host), string(m.From.Tag), string(m.To.User), string(m.To.Tag), string(m.Branch),
				strconv.Itoa(m.ContentLength), string(m.Contact.URI), string(m.UserAgent), expires}
			for i := range got {
				if got[i] != c[i] {
					t.Errorf("column %d = %q, tshark says %q", i, got[i], c[i])
				}
			}
			if m.CSeqMethod.String() != c[6] {
				t.Errorf("CSeqMethod = %v, tshark says %q", m.CSeqMethod, c[6])
			}
			if len(m.Body) != m.ContentLength {
				t.Errorf("len(Body) = %d, want Content-Length %d", len(m.Body), m.ContentLength)
			}
		})
		n++
	}
	if n < 40 {
		t.Errorf("only %d capture messages checked", n)
	}
}

func TestUnmarshalAllocs(t *testing.T) {
	b := []byte(crlf(inviteSDP))
	var m Message
	allocs := testing.AllocsPerRun(200, func() {
		if err := m.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		_ = m.Header("Max-Forwards")
	})
	if allocs != 0 {
		t.Errorf("Unmarshal+Header allocate %v times per run, want 0", allocs)
	}
}

func TestClone(t *testing.T) {
	b := []byte(crlf(inviteSDP))
	var m Message
	if err := m.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	for i := range b {
		b[i] = 'x' // the clone must not see this
	}
	var want Message
	if err := want.Unmarshal([]byte(crlf(inviteSDP))); err != nil {
		t.Fatal(err)
	}
	if !equalMessages(c, &want) {
		t.Errorf("Clone changed when the original buffer was overwritten:\n got %+v\nwant %+v", c, want)
	}
	if !aliases(c.Raw, c.CallID) || !aliases(c.Raw, c.From.Tag) || !aliases(c.Raw, c.Body) {
		t.Errorf("Clone fields do not alias the clone's Raw")
	}
}

func BenchmarkUnmarshalINVITE(b *testing.B) {
	buf := []byte(crlf(inviteSDP))
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	var m Message
	for b.Loop() {
		if err := m.Unmarshal(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLooksLikeSIP(b *testing.B) {
	buf := []byte(crlf(inviteSDP))
	b.ReportAllocs()
	for b.Loop() {
		if !LooksLikeSIP(buf) {
			b.Fatal("not SIP")
		}
	}
}

func TestIsKeepalive(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"\r\n", true},
		{"\r\n\r\n", true},
		{"    ", true},
		{"\x00\x00\x00\x00", true},
		{"hello", true},
		{"jaK\n", true},
		{"SIP/2.0 200", false},                     // a cut SIP message is malformed SIP, not a keepalive
		{"INVITE sip:a@b SIP/2.0\r\n", false},      // likewise
		{strings.Repeat("x", maxKeepalive), false}, // long junk is not a keepalive
		{"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c\r\n\r\n", false},
	}
	for _, tt := range tests {
		if got := IsKeepalive([]byte(tt.in)); got != tt.want {
			t.Errorf("IsKeepalive(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestBadContentLengthComplete checks that a message whose only fault is
// its Content-Length is reported with ErrBadContentLength but otherwise
// whole, with the rest of the buffer as its body, and that any other fault
// takes precedence.
func TestBadContentLengthComplete(t *testing.T) {
	const head = "INVITE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
	const body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
	var m Message
	err := m.Unmarshal([]byte(head + "Content-Length: bad\r\n\r\n" + body))
	if !errors.Is(err, ErrBadContentLength) || string(m.Body) != body || m.ContentLength != -1 ||
		string(m.CallID) != "c" || m.CSeq != 1 || string(m.From.Tag) != "1" {
		t.Errorf("Unmarshal = %v, body %q, ContentLength %d, Call-ID %q; want ErrBadContentLength, the whole body, -1, c",
			err, m.Body, m.ContentLength, m.CallID)
	}
	err = m.Unmarshal([]byte(head + "Content-Length: 5\r\nl: 6\r\n\r\n" + body))
	if !errors.Is(err, ErrBadContentLength) || string(m.Body) != body {
		t.Errorf("two Content-Lengths: Unmarshal = %v, body %q; want ErrBadContentLength and the rest as body", err, m.Body)
	}
	noCallID := strings.Replace(head, "Call-ID: c\r\n", "", 1)
	if err := m.Unmarshal([]byte(noCallID + "Content-Length: bad\r\n\r\n")); !errors.Is(err, ErrNoCallID) {
		t.Errorf("bad Content-Length and no Call-ID: Unmarshal = %v, want ErrNoCallID", err)
	}
}
