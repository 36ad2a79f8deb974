package sip

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// tortureCase is one RFC 4475 test message. The files in testdata/torture
// are the messages of RFC 4475 Appendix B, byte for byte, named as there
// (name.dat → name.sip). The expected values below are read off the message
// text in the RFC; wantErr records what this parser does with the message
// and why that is acceptable for a passive monitor.
type tortureCase struct {
	file    string
	section string // RFC 4475 section
	wantErr error  // nil: parsed
	skip    string // known limitation: reported, not checked

	callID     string
	cseq       uint32
	cseqMethod Method
	method     string // request method, "" for a response
	status     int
	fromTag    string
	toTag      string
	branch     string
}

var tortureCases = []tortureCase{
	// 3.1.1 Valid messages: every one must parse with the expected fields.
	{file: "wsinv", section: "3.1.1.1 A Short Tortuous INVITE",
		callID: "wsinv.ndaksdj@192.0.2.1", cseq: 9, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "98asjd8", toTag: "1918181833n", branch: "390skdjuw"},
	{file: "intmeth", section: "3.1.1.2 Wide Range of Valid Characters",
		callID: "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{", cseq: 139122385, cseqMethod: MethodUnknown,
		method: "!interesting-Method0123456789_*+`.%indeed'~", fromTag: "_token~1'+`*%!-.", branch: "z9hG4bK-.!%66*_+`'~"},
	{file: "esc01", section: "3.1.1.3 Valid Use of the % Escaping Mechanism",
		callID: "esc01.239409asdfakjkn23onasd0-3234", cseq: 234234, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "938", branch: "z9hG4bKkdjuw"},
	{file: "escnull", section: "3.1.1.4 Escaped Nulls in URIs",
		callID: "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd", cseq: 14398234, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "839923423", branch: "z9hG4bKkdjuw"},
	{file: "esc02", section: "3.1.1.5 Use of % When It Is Not an Escape",
		callID: "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf", cseq: 29344, cseqMethod: MethodUnknown, method: "RE%47IST%45R",
		fromTag: "f232jadfj23", branch: "z9hG4bK209%fzsnel234"},
	{file: "lwsdisp", section: "3.1.1.6 Message with No LWS between Display Name and <",
		callID: "lwsdisp.1234abcd@funky.example.com", cseq: 60, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "323", branch: "z9hG4bKkdjuw"},
	{file: "longreq", section: "3.1.1.7 Long Values in Header Fields",
		callID: "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
		cseq:   3882340, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "12982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982424"},
	{file: "dblreq", section: "3.1.1.8 Extra Trailing Octets in a UDP Datagram",
		callID: "dblreq.0ha0isndaksdj99sdfafnl3lk233412", cseq: 8, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "43251j3j324", branch: "z9hG4bKkdjuw23492"},
	{file: "semiuri", section: "3.1.1.9 Semicolon-Separated Parameters in URI User Part",
		callID: "semiuri.0ha0isndaksdj", cseq: 8, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "33242", branch: "z9hG4bKkdjuw"},
	{file: "transports", section: "3.1.1.10 Varied and Unknown Transport Types",
		callID: "transports.kijh4akdnaqjkwendsasfdj", cseq: 60, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "323", branch: "z9hG4bKkdjuw"},
	{file: "mpart01", section: "3.1.1.11 Multipart MIME Message",
		callID: "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..", cseq: 1, cseqMethod: MethodMESSAGE, method: "MESSAGE",
		fromTag: "2fb0dcc9", branch: "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"},
	{file: "unreason", section: "3.1.1.12 Unusual Reason Phrase",
		callID: "unreason.1234ksdfak3j2erwedfsASdf", cseq: 35, cseqMethod: MethodINVITE, status: 200,
		fromTag: "11141343", toTag: "2229", branch: "z9hG4bK1324923"},
	{file: "noreason", section: "3.1.1.13 Empty Reason Phrase",
		callID: "noreason.asndj203insdf99223ndf", cseq: 35, cseqMethod: MethodINVITE, status: 100,
		fromTag: "39ansfi3", toTag: "902jndnke3", branch: "z9hG4bK2398ndaoe"},

	// 3.1.2 Invalid messages: refused with an error, or parsed (no panic).
	{file: "badinv01", section: "3.1.2.1 Extraneous Header Field Separators (parsed: the stray ;,, only cost the Via branch)",
		callID: "badinv01.0ha0isndaksdjasdf3234nas", cseq: 8, cseqMethod: MethodINVITE, method: "INVITE", fromTag: "134161461246"},
	{file: "clerr", section: "3.1.2.2 Content Length Larger Than Message", wantErr: ErrTruncated,
		callID: "clerr.0ha0isndaksdjweiafasdk3", cseq: 8, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "93942939o2", branch: "z9hG4bK-39234-23523"},
	{file: "ncl", section: "3.1.2.3 Negative Content-Length", wantErr: ErrBadContentLength,
		callID: "ncl.0ha0isndaksdj2193423r542w35", cseq: 0, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "32394234", branch: "z9hG4bKkdjuw"},
	{file: "scalar02", section: "3.1.2.4 Request Scalar Fields with Overlarge Values", wantErr: ErrBadCSeq,
		callID: "scalar02.23o0pd9vanlq3wnrlnewofjas9ui32", method: "REGISTER", fromTag: "239232jh3", branch: "z9hG4bK342sdfoi3"},
	{file: "scalarlg", section: "3.1.2.5 Response Scalar Fields with Overlarge Values", wantErr: ErrBadCSeq,
		callID: "scalarlg.noase0of0234hn2qofoaf0232aewf2394r", status: 503, fromTag: "2easdjfejw", branch: "z9hG4bKzzxdiwo34sw"},
	{file: "quotbal", section: "3.1.2.6 Unterminated Quoted String in Display Name", wantErr: ErrBadTo,
		callID: "quotbal.aksdj", cseq: 8, cseqMethod: MethodINVITE, method: "INVITE", fromTag: "93334", branch: "z9hG4bKkdjuw39234"},
	{file: "ltgtruri", section: "3.1.2.7 <> Enclosing Request-URI", wantErr: ErrMalformedStartLine,
		callID: "ltgtruri.1@192.0.2.5", cseq: 1, cseqMethod: MethodINVITE, method: "INVITE", fromTag: "39291"},
	{file: "lwsruri", section: "3.1.2.8 Malformed SIP Request-URI (embedded LWS)", wantErr: ErrMalformedStartLine,
		callID: "lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423", cseq: 2130706432, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "231413434", toTag: "3xfe-9921883-z9f", branch: "z9hG4bKkdjuw2395"},
	{file: "lwsstart", section: "3.1.2.9 Multiple SP Separating Request-Line Elements", wantErr: ErrMalformedStartLine,
		callID: "lwsstart.dfknq234oi243099adsdfnawe3@example.com", cseq: 1893884, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "8814", branch: "z9hG4bKkdjuw3923"},
	{file: "trws", section: "3.1.2.10 SP Characters at End of Request-Line", wantErr: ErrMalformedStartLine,
		callID: "trws.oicu34958239neffasdhr2345r", cseq: 238923, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "329429089", branch: "z9hG4bK299342093"},
	{file: "escruri", section: "3.1.2.11 Escaped Headers in SIP Request-URI (parsed: the monitor does not interpret the Request-URI)",
		callID: "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5", cseq: 149209342, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "341518", branch: "z9hG4bKkdjuw"},
	{file: "baddate", section: "3.1.2.12 Invalid Time Zone in Date Header Field (parsed: Date is not interpreted)",
		callID: "baddate.239423mnsadf3j23lj42--sedfnm234", cseq: 1392934, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "2234923", branch: "z9hG4bKkdjuw"},
	{file: "regbadct", section: "3.1.2.13 Failure to Enclose name-addr URI in <> (parsed: Contact URI runs to the first ;)",
		callID: "regbadct.k345asrl3fdbv@10.0.0.1", cseq: 1, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "998332", branch: "z9hG4bKkdjuw"},
	{file: "badaspec", section: "3.1.2.14 Spaces within addr-spec (parsed: LWS inside <> is trimmed)",
		callID: "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3", cseq: 3923239, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "433423", branch: "z9hG4bKkdju43234"},
	{file: "baddn", section: "3.1.2.15 Non-token Characters in Display Name (parsed: display name kept raw)",
		callID: "baddn.31415@c.example.com", cseq: 3923239, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "43", branch: "z9hG4bKkdjuw"},
	{file: "badvers", section: "3.1.2.16 Unknown Protocol Version", wantErr: ErrMalformedStartLine,
		callID: "badvers.31417@c.example.com", cseq: 1, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "qweoiqpe", branch: "z9hG4bKkdjuw"},
	{file: "mismatch01", section: "3.1.2.17 Start Line and CSeq Method Mismatch", wantErr: ErrCSeqMismatch,
		callID: "mismatch01.dj0234sxdfl3", cseq: 8, cseqMethod: MethodINVITE, method: "OPTIONS",
		fromTag: "34525", branch: "z9hG4bKkdjuw"},
	{file: "mismatch02", section: "3.1.2.18 Unknown Method with CSeq Method Mismatch", wantErr: ErrCSeqMismatch,
		callID: "mismatch02.dj0234sxdfl3", cseq: 8, cseqMethod: MethodINVITE, method: "NEWMETHOD",
		fromTag: "34525", branch: "z9hG4bKkdjuw"},
	{file: "bigcode", section: "3.1.2.19 Overlarge Response Code", wantErr: ErrMalformedStartLine,
		callID: "bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i", cseq: 353494, cseqMethod: MethodINVITE,
		fromTag: "39ansfi3", toTag: "902jndnke3", branch: "z9hG4bK2398ndaoe"},

	// 3.2-3.4 Transaction- and application-layer tests: syntactically
	// parseable; the semantic checks they target belong to a UA or proxy.
	{file: "badbranch", section: "3.2.1 Missing Transaction Identifier",
		callID: "badbranch.sadonfo23i420jv0as0derf3j3n", cseq: 8, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "33242", branch: "z9hG4bK"},
	{file: "insuf", section: "3.3.1 Missing Required Header Fields", wantErr: ErrNoCallID,
		cseq: 193942, cseqMethod: MethodINVITE, method: "INVITE", branch: "z9hG4bKkdj.insuf"},
	{file: "unkscm", section: "3.3.2 Request-URI with Unknown Scheme",
		callID: "unkscm.nasdfasser0q239nwsdfasdkl34", cseq: 3923423, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "384", branch: "z9hG4bKkdjuw39234"},
	{file: "novelsc", section: "3.3.3 Request-URI with Known but Atypical Scheme",
		callID: "novelsc.asdfasser0q239nwsdfasdkl34", cseq: 3923423, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "384", branch: "z9hG4bKkdjuw39234"},
	{file: "unksm2", section: "3.3.4 Unknown URI Schemes in Header Fields",
		callID: "unksm2.daksdj@hyphenated-host.example.com", cseq: 234902, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "3234233", branch: "z9hG4bKkdjuw"},
	{file: "bext01", section: "3.3.5 Proxy-Require and Require",
		callID: "bext01.0ha0isndaksdj", cseq: 8, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "242etr", branch: "z9hG4bKkdjuw"},
	{file: "invut", section: "3.3.6 Unknown Content-Type",
		callID: "invut.0ha0isndaksdjadsfij34n23d", cseq: 235448, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "8392034", branch: "z9hG4bKkdjuw"},
	{file: "regaut01", section: "3.3.7 Unknown Authorization Scheme",
		callID: "regaut01.0ha0isndaksdj", cseq: 9338, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "87321hj23128", branch: "z9hG4bKkdjuw"},
	{file: "multi01", section: "3.3.8 Multiple Values in Single Value Required Fields (parsed: first value wins)",
		callID: "multi01.98asdh@192.0.2.1", cseq: 5, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "3413415", branch: "z9hG4bKkdjuw"},
	{file: "mcl01", section: "3.3.9 Multiple Content-Length Values", wantErr: ErrBadContentLength,
		callID: "mcl01.fhn2323orihawfdoa3o4r52o3irsdf", cseq: 15932, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "3923942", branch: "z9hG4bK293423"},
	{file: "bcast", section: "3.3.10 200 OK Response with Broadcast Via Header Field Value",
		callID: "bcast.0384840201234ksdfak3j2erwedfsASdf", cseq: 35, cseqMethod: MethodINVITE, status: 200,
		fromTag: "11141343", toTag: "2229", branch: "z9hG4bK1324923"},
	{file: "zeromf", section: "3.3.11 Max-Forwards of Zero",
		callID: "zeromf.jfasdlfnm2o2l43r5u0asdfas", cseq: 39234321, cseqMethod: MethodOPTIONS, method: "OPTIONS",
		fromTag: "3ghsd41", branch: "z9hG4bKkdjuw2349i"},
	{file: "cparam01", section: "3.3.12 REGISTER with a Contact Header Parameter",
		callID: "cparam01.70710@saturn.example.com", cseq: 2, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "DkfVgjkrtMwaerKKpe", branch: "z9hG4bKkdjuw"},
	{file: "cparam02", section: "3.3.13 REGISTER with a url-parameter",
		callID: "cparam02.70710@saturn.example.com", cseq: 3, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "838293", branch: "z9hG4bKkdjuw"},
	{file: "regescrt", section: "3.3.14 REGISTER with a URL Escaped Header",
		callID: "regescrt.k345asrl3fdbv@192.0.2.1", cseq: 14398234, cseqMethod: MethodREGISTER, method: "REGISTER",
		fromTag: "8", branch: "z9hG4bKkdjuw"},
	{file: "sdp01", section: "3.3.15 Unacceptable Accept Offering",
		callID: "sdp01.ndaksdj9342dasdd", cseq: 8, cseqMethod: MethodINVITE, method: "INVITE",
		fromTag: "234", branch: "z9hG4bKkdjuw"},
	{file: "inv2543", section: "3.4.1 INVITE with RFC 2543 Syntax",
		callID: "inv2543.1717@ift.client.example.com", cseq: 56, cseqMethod: MethodINVITE, method: "INVITE"},
}

func TestTorture(t *testing.T) {
	files, err := filepath.Glob("testdata/torture/*.sip")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tortureCases) {
		t.Errorf("testdata/torture has %d files, table has %d cases", len(files), len(tortureCases))
	}
	for _, tc := range tortureCases {
		t.Run(tc.file, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			b, err := os.ReadFile(filepath.Join("testdata/torture", tc.file+".sip"))
			if err != nil {
				t.Fatal(err)
			}
			var m Message
			err = m.Unmarshal(b)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("RFC 4475 %s: Unmarshal error = %v, want %v", tc.section, err, tc.wantErr)
			}
			if got := string(m.CallID); got != tc.callID {
				t.Errorf("CallID = %q, want %q", got, tc.callID)
			}
			if m.CSeq != tc.cseq || m.CSeqMethod != tc.cseqMethod {
				t.Errorf("CSeq = %d %v, want %d %v", m.CSeq, m.CSeqMethod, tc.cseq, tc.cseqMethod)
			}
			if got := string(m.MethodName); got != tc.method {
				t.Errorf("MethodName = %q, want %q", got, tc.method)
			}
			if m.Request != (tc.method != "") {
				t.Errorf("Request = %v, want %v", m.Request, tc.method != "")
			}
			if m.StatusCode != tc.status {
				t.Errorf("StatusCode = %d, want %d", m.StatusCode, tc.status)
			}
			if got := string(m.From.Tag); got != tc.fromTag {
				t.Errorf("From.Tag = %q, want %q", got, tc.fromTag)
			}
			if got := string(m.To.Tag); got != tc.toTag {
				t.Errorf("To.Tag = %q, want %q", got, tc.toTag)
			}
			if got := string(m.Branch); got != tc.branch {
				t.Errorf("Branch = %q, want %q", got, tc.branch)
			}
		})
	}
}

// TestTortureDetails checks the finer points RFC 4475 calls out in some
// messages (values read off the RFC text).
func TestTortureDetails(t *testing.T) {
	read := func(name string) *Message {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata/torture", name+".sip"))
		if err != nil {
			t.Fatal(err)
		}
		m := new(Message)
		m.Unmarshal(b)
		return m
	}
	tests := []struct {
		name string
		got  func(*Message) string
		want string
	}{
		// 3.1.1.1: quoted display name with escaped backslash and quote.
		{"wsinv", func(m *Message) string { return string(m.From.Display) }, `J Rosenberg \\\"`},
		{"wsinv", func(m *Message) string { return string(m.Contact.Display) }, `Quoted string \"\"`},
		{"wsinv", func(m *Message) string { return string(m.Contact.User) + "@" + string(m.Contact.Host) }, "jdrosen@example.com"},
		{"wsinv", func(m *Message) string { return string(m.To.User) }, "vivekg"},
		{"wsinv", func(m *Message) string { return string(m.ContentType) }, "application/sdp"},
		{"wsinv", func(m *Message) string { return string(m.Body[:4]) }, "v=0\r"},
		// 3.1.1.2: the user part holds ';', '?' and a password after ':'.
		{"intmeth", func(m *Message) string { return string(m.From.Display) }, "token1~` token2'+_ token3*%!.-"},
		{"intmeth", func(m *Message) string { return string(m.To.User) }, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"},
		// 3.1.1.6: no LWS between display name and <.
		{"lwsdisp", func(m *Message) string { return string(m.From.Display) }, "caller"},
		// 3.1.1.8: the body is Content-Length (0) bytes, not the rest.
		{"dblreq", func(m *Message) string { return string(m.Body) }, ""},
		// 3.1.1.12 / 3.1.1.13: reason phrases.
		{"noreason", func(m *Message) string { return string(m.Reason) }, ""},
		{"esc01", func(m *Message) string { return string(m.From.User) }, "I%20have%20spaces"},
		// 3.1.2.4: overlarge Expires values are clamped to 2**32-1.
		{"scalar02", func(m *Message) string { return itoa(m.Expires) + " " + itoa(m.ContactExpires) }, "4294967295 4294967295"},
		// 3.3.4: unknown schemes keep the URI, with no user or host.
		{"unksm2", func(m *Message) string { return string(m.To.URI) + "|" + string(m.To.Host) }, "isbn:2983792873|"},
		// 3.3.12: Contact with an expires parameter.
		{"cparam01", func(m *Message) string { return string(m.Contact.User) }, "+19725552222"},
		{"regaut01", func(m *Message) string { return string(m.Header("Authorization")) }, "NoOneKnowsThisScheme opaque-data=here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(read(tt.name)); got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
