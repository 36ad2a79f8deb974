package sdp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCaptures parses SDP bodies taken from the shared lab captures
// (/work/shared/pcaps). The expected values are tshark's dissection of the
// same frames:
//
//	tshark -r F -Y sdp -T fields -e sdp.owner -e sdp.connection_info.address \
//	  -e sdp.media.media -e sdp.media.port -e sdp.media.proto -e sdp.media.format \
//	  -e sdp.mime.type -e sdp.sample_rate
//
// with RTCP port, direction and ptime read off the a= lines of each body.
func TestCaptures(t *testing.T) {
	pcmu := Format{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}
	pcma := Format{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}
	te := func(fmtp string) Format {
		return Format{PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: fmtp}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	doc := netip.MustParseAddr("192.0.2.2")
	tests := []struct {
		file string
		want Session
	}{
		{"baresip_offer.sdp", Session{Origin: "- 3100090761 1942992856 IN IP4 192.0.2.2", Addr: doc, Media: []Media{{
			Type: "audio", Proto: "RTP/AVP", Addr: doc, Port: 20030, RTCPPort: 20031,
			Formats: []Format{pcmu, te("0-15")}, Ptime: 20, Direction: "sendrecv"}}}},
		{"baresip_answer.sdp", Session{Origin: "- 3197608820 1768675497 IN IP4 192.0.2.2", Addr: doc, Media: []Media{{
			Type: "audio", Proto: "RTP/AVP", Addr: doc, Port: 20058, RTCPPort: 20059,
			Formats: []Format{pcmu, te("0-15")}, Ptime: 20, Direction: "sendrecv"}}}},
		{"sipp_kamailio_offer.sdp", Session{Origin: "alice 53655765 2353687637 IN IP4 127.0.0.1", Addr: lo, Media: []Media{{
			Type: "audio", Proto: "RTP/AVP", Addr: lo, Port: 7000, RTCPPort: 7001,
			Formats: []Format{pcmu, te("")}, Ptime: 20, Direction: "sendrecv"}}}},
		{"sipp_kamailio_answer.sdp", Session{Origin: "bob 53655765 2353687637 IN IP4 127.0.0.1", Addr: lo, Media: []Media{{
			Type: "audio", Proto: "RTP/AVP", Addr: lo, Port: 6000, RTCPPort: 6001,
			Formats: []Format{pcmu, te("")}, Ptime: 20, Direction: "sendrecv"}}}},
		{"sipp_uacpcap_offer.sdp", Session{Origin: "user1 53655765 2353687637 IN IP4 127.0.0.1", Addr: lo, Media: []Media{{
			Type: "audio", Proto: "RTP/AVP", Addr: lo, Port: 6004, RTCPPort: 6005,
			Formats: []Format{pcma, te("0-11,16")}, Direction: "sendrecv"}}}},
		{"sipp_uacpcap_answer.sdp", Session{Origin: "user1 53655765 2353687637 IN IP4 127.0.0.1", Addr: lo, Media: []Media{{
			Type: "audio", Proto: "RTP/AVP", Addr: lo, Port: 6000, RTCPPort: 6001,
			Formats: []Format{pcmu}, Direction: "sendrecv"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseQuirks(t *testing.T) {
	addr := netip.MustParseAddr
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, s *Session)
	}{
		{"LF only and trailing spaces", "v=0  \no=- 1 1 IN IP4 10.0.0.1 \ns=-\nc=IN IP4 10.0.0.1   \nt=0 0\nm=audio 4000 RTP/AVP 8 0   \n",
			func(t *testing.T, s *Session) {
				m := s.Media[0]
				if m.Addr != addr("10.0.0.1") || m.Port != 4000 || len(m.Formats) != 2 || m.Formats[0].Name != "PCMA" || m.Formats[1].Name != "PCMU" {
					t.Errorf("got %+v", m)
				}
			}},
		{"static payload types without rtpmap (RFC 3551 table 4)", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 3 4 9 13 18\r\n",
			func(t *testing.T, s *Session) {
				want := []Format{{PT: 3, Name: "GSM", Rate: 8000, Channels: 1}, {PT: 4, Name: "G723", Rate: 8000, Channels: 1},
					{PT: 9, Name: "G722", Rate: 8000, Channels: 1}, {PT: 13, Name: "CN", Rate: 8000, Channels: 1},
					{PT: 18, Name: "G729", Rate: 8000, Channels: 1}}
				if diff := cmp.Diff(want, s.Media[0].Formats); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if f, ok := s.Media[0].Codec(); !ok || f.Name != "GSM" {
					t.Errorf("Codec() = %+v %v, want GSM", f, ok)
				}
			}},
		{"rtpmap overrides the static table, channels and fmtp", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 96 18\r\na=rtpmap:0 PCMU/16000\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1; stereo=1\r\na=fmtp:18 annexb=no\r\n",
			func(t *testing.T, s *Session) {
				want := []Format{{PT: 0, Name: "PCMU", Rate: 16000, Channels: 1}, {PT: 96, Name: "opus", Rate: 48000, Channels: 2, Fmtp: "useinbandfec=1; stereo=1"},
					{PT: 18, Name: "G729", Rate: 8000, Channels: 1, Fmtp: "annexb=no"}}
				if diff := cmp.Diff(want, s.Media[0].Formats); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{"telephone-event and CN are not the codec", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 101 13 8\r\na=rtpmap:101 telephone-event/8000\r\n",
			func(t *testing.T, s *Session) {
				m := s.Media[0]
				if !m.Formats[0].IsTelephoneEvent() || !m.Formats[1].IsComfortNoise() {
					t.Errorf("formats %+v", m.Formats)
				}
				if f, ok := m.Codec(); !ok || f.PT != 8 {
					t.Errorf("Codec() = %+v, want PT 8", f)
				}
				if f, ok := m.Format(101); !ok || f.Rate != 8000 {
					t.Errorf("Format(101) = %+v %v", f, ok)
				}
			}},
		{"media c= overrides session c=; missing c= in one media inherits", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\nm=video 5000 RTP/AVP 31\r\n",
			func(t *testing.T, s *Session) {
				if s.Media[0].Addr != addr("10.0.0.2") || s.Media[1].Addr != addr("10.0.0.1") || s.Addr != addr("10.0.0.1") {
					t.Errorf("addrs %v %v %v", s.Addr, s.Media[0].Addr, s.Media[1].Addr)
				}
				if f := s.Media[1].Formats[0]; f.Name != "H261" || f.Rate != 90000 || f.Channels != 0 {
					t.Errorf("video format %+v", f)
				}
			}},
		{"no session c= and media without c=", "v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\nm=audio 4002 RTP/AVP 0\r\n",
			func(t *testing.T, s *Session) {
				if s.Media[0].Addr != addr("10.0.0.2") || s.Media[1].Addr.IsValid() {
					t.Errorf("addrs %v %v", s.Media[0].Addr, s.Media[1].Addr)
				}
			}},
		{"port 0 is a rejected stream", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n",
			func(t *testing.T, s *Session) {
				if len(s.Media) != 2 || !s.Media[1].Rejected() || s.Media[1].RTCPPort != 0 || s.Media[0].Rejected() {
					t.Errorf("media %+v", s.Media)
				}
			}},
		{"IPv6", "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\nc=IN IP6 2001:db8::2\r\nm=audio 4000 RTP/AVP 0\r\n",
			func(t *testing.T, s *Session) {
				if s.Media[0].Addr != addr("2001:db8::2") {
					t.Errorf("addr %v", s.Media[0].Addr)
				}
			}},
		{"a=rtcp with address, rtcp-mux", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005 IN IP4 10.0.0.9\r\nm=audio 4010 RTP/SAVPF 0\r\na=rtcp-mux\r\nm=audio 4020 RTP/AVP 0\r\na=rtcp-mux\r\na=rtcp:4031\r\n",
			func(t *testing.T, s *Session) {
				got := [][2]uint16{{s.Media[0].RTCPPort, 0}, {s.Media[1].RTCPPort, 0}, {s.Media[2].RTCPPort, 0}}
				want := [][2]uint16{{4005, 0}, {4010, 0}, {4031, 0}}
				if diff := cmp.Diff(want, got); diff != "" || !s.Media[1].RTCPMux || s.Media[0].RTCPMux {
					t.Errorf("RTCP ports (-want +got):\n%s mux %v %v", diff, s.Media[0].RTCPMux, s.Media[1].RTCPMux)
				}
			}},
		{"session-level direction and ptime are inherited", "v=0\r\nc=IN IP4 10.0.0.1\r\na=sendonly\r\na=ptime:30\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\na=inactive\r\na=ptime:20\r\nm=audio 4004 RTP/AVP 0\r\n",
			func(t *testing.T, s *Session) {
				got := []string{s.Media[0].Direction, s.Media[1].Direction, s.Media[2].Direction}
				if diff := cmp.Diff([]string{"sendonly", "inactive", "sendonly"}, got); diff != "" {
					t.Errorf("directions (-want +got):\n%s", diff)
				}
				if s.Media[0].Ptime != 30 || s.Media[1].Ptime != 20 {
					t.Errorf("ptime %d %d", s.Media[0].Ptime, s.Media[1].Ptime)
				}
			}},
		{"T.38 image stream", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=image 4000 udptl t38\r\na=T38FaxVersion:0\r\n",
			func(t *testing.T, s *Session) {
				m := s.Media[0]
				if m.Type != "image" || m.Proto != "udptl" || len(m.Formats) != 1 || m.Formats[0].Name != "t38" {
					t.Errorf("media %+v", m)
				}
			}},
		{"hold address, port count, multicast ttl", "v=0\r\nc=IN IP4 224.2.1.1/127/3\r\nm=audio 4000/2 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n",
			func(t *testing.T, s *Session) {
				if s.Media[0].Addr != addr("224.2.1.1") || s.Media[0].Port != 4000 || s.Media[1].Addr != addr("0.0.0.0") {
					t.Errorf("media %+v", s.Media)
				}
			}},
		{"unparsable c= and junk lines are skipped", "v=0\r\nc=IN IP4 host.example.com\r\nthis is not sdp\r\na=rtpmap:bad\r\na=rtpmap:0\r\nm=audio 4000 RTP/AVP 0 abc 300\r\na=fmtp:x y\r\n",
			func(t *testing.T, s *Session) {
				if s.Addr.IsValid() || len(s.Media[0].Formats) != 1 {
					t.Errorf("session %+v", s)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrNotSDP},
		{"o=- 1 1 IN IP4 1.2.3.4\r\n", ErrNotSDP},
		{"SIP/2.0 200 OK\r\n", ErrNotSDP},
		{"v=0\r\nm=audio\r\n", ErrBadMedia},
		{"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", ErrBadMedia},
		{"v=0\r\nm=audio x RTP/AVP 0\r\n", ErrBadMedia},
	}
	for _, tt := range tests {
		if _, err := Parse([]byte(tt.in)); !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	body, err := os.ReadFile("testdata/baresip_offer.sdp")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse checks that Parse never panics and that what it returns is
// self-consistent.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.sdp")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if s != nil {
				t.Fatal("non-nil Session with error")
			}
			return
		}
		for _, m := range s.Media {
			if m.Type == "" || m.Proto == "" {
				t.Fatalf("media without type or proto: %+v", m)
			}
			switch m.Direction {
			case "sendrecv", "sendonly", "recvonly", "inactive":
			default:
				t.Fatalf("Direction %q", m.Direction)
			}
			if m.Port == 0 && m.RTCPPort != 0 {
				t.Fatalf("rejected stream with RTCP port %d", m.RTCPPort)
			}
			for _, f := range m.Formats {
				if isRTP(m.Proto) && f.PT > 127 {
					t.Fatalf("payload type %d", f.PT)
				}
			}
		}
		if strings.Count(string(b), "m=") < len(s.Media) {
			t.Fatalf("%d media from %d m= lines", len(s.Media), strings.Count(string(b), "m="))
		}
	})
}
