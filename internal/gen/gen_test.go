package gen

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The truth schema as documented in doc.go, declared independently of the
// generator's own types; decoding uses DisallowUnknownFields, so the
// documentation, this declaration and the output must agree.
type truthFile struct {
	Calls []struct {
		CallID      string  `json:"callid"`
		Caller      string  `json:"caller"`
		Called      string  `json:"called"`
		CallerName  string  `json:"caller_name"`
		CallerIP    string  `json:"caller_ip"`
		CalleeIP    string  `json:"callee_ip"`
		Start       string  `json:"start"`
		Answer      *string `json:"answer"`
		End         string  `json:"end"`
		LastSIPCode int     `json:"last_sip_code"`
		HangupBy    string  `json:"hangup_by"`
		State       string  `json:"state"`
		Codec       string  `json:"codec"`
		Streams     []struct {
			Direction   string `json:"direction"`
			Src         string `json:"src"`
			Dst         string `json:"dst"`
			SSRC        uint32 `json:"ssrc"`
			PayloadType int    `json:"payload_type"`
			Sent        int    `json:"sent"`
			Written     int    `json:"written"`
			Lost        int    `json:"lost"`
			Duplicates  int    `json:"duplicates"`
			Reordered   int    `json:"reordered"`
			FirstSeq    int    `json:"first_seq"`
			LastSeq     int    `json:"last_seq"`
		} `json:"streams"`
	} `json:"calls"`
	Registrations []struct {
		User     string `json:"user"`
		Contact  string `json:"contact"`
		State    string `json:"state"`
		Expires  int    `json:"expires"`
		Attempts int    `json:"attempts"`
	} `json:"registrations"`
	Packets int `json:"packets"`
}

func parseTruth(t *testing.T, b []byte) truthFile {
	t.Helper()
	var tr truthFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&tr); err != nil {
		t.Fatalf("truth does not decode: %v\n%.500s", err, b)
	}
	return tr
}

func generate(t testing.TB, cfg Config) (Summary, []byte, []byte) {
	t.Helper()
	var p, tr bytes.Buffer
	s, err := Generate(cfg, &p, &tr)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s, p.Bytes(), tr.Bytes()
}

// sipMsg is a SIP message as seen in the capture, parsed by the test itself.
type sipMsg struct {
	time     time.Time
	src, dst string
	first    string // request or status line
	headers  map[string][]string
	body     []byte
	size     int
}

func (m *sipMsg) header(name string) string {
	if v := m.headers[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m *sipMsg) code() int {
	if !strings.HasPrefix(m.first, "SIP/2.0 ") {
		return 0
	}
	c, _ := strconv.Atoi(m.first[8:11])
	return c
}

func parseSIP(t *testing.T, b []byte) sipMsg {
	t.Helper()
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("SIP message without an empty line: %q", b)
	}
	lines := strings.Split(string(head), "\r\n")
	m := sipMsg{first: lines[0], headers: map[string][]string{}, body: body, size: len(b)}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad header line %q", l)
		}
		n := strings.ToLower(strings.TrimSpace(name))
		m.headers[n] = append(m.headers[n], strings.TrimSpace(value))
	}
	return m
}

type streamKey struct {
	src, dst string
	ssrc     uint32
}

// rtpSeen accumulates what the capture holds for one stream.
type rtpSeen struct {
	count   int
	seqs    map[uint16]int
	late    int // first copies arriving after a higher sequence number
	maxExt  int64
	started bool
	markers []uint16
	pt      byte
	last    uint16 // sequence number of the last packet in the capture
}

// capture is everything the test extracts from a pcap with gopacket.
type capture struct {
	records   int
	fragments int
	nano      bool
	sip       []sipMsg
	rtp       map[streamKey]*rtpSeen
	rtcp      int
}

func readCapture(t *testing.T, pcap []byte) capture {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	c := capture{rtp: map[streamKey]*rtpSeen{}, nano: r.Resolution() == gopacket.TimestampResolutionNanosecond}
	defrag := ip4defrag.NewIPv4Defragmenter()
	var prev time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", c.records+1, err)
		}
		c.records++
		if ci.Timestamp.Before(prev) {
			t.Fatalf("record %d at %v precedes the previous one at %v", c.records, ci.Timestamp, prev)
		}
		prev = ci.Timestamp
		if ci.CaptureLength != len(data) || ci.Length != len(data) {
			t.Fatalf("record %d: caplen %d, len %d, data %d", c.records, ci.CaptureLength, ci.Length, len(data))
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if f := p.ErrorLayer(); f != nil {
			t.Fatalf("record %d does not decode: %v", c.records, f.Error())
		}
		ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("record %d is not IPv4: %v", c.records, p)
		}
		if int(ip.Length) != len(data)-14 {
			t.Fatalf("record %d: IPv4 total length %d, frame carries %d", c.records, ip.Length, len(data)-14)
		}
		var udp *layers.UDP
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			c.fragments++
			whole, err := defrag.DefragIPv4(ip)
			if err != nil {
				t.Fatalf("record %d: defrag: %v", c.records, err)
			}
			if whole == nil {
				continue
			}
			q := gopacket.NewPacket(whole.Payload, layers.LayerTypeUDP, gopacket.Default)
			udp, _ = q.Layer(layers.LayerTypeUDP).(*layers.UDP)
		} else {
			udp, _ = p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		}
		if udp == nil {
			t.Fatalf("record %d has no UDP layer", c.records)
		}
		if int(udp.Length) != 8+len(udp.Payload) {
			t.Fatalf("record %d: UDP length %d, payload %d", c.records, udp.Length, len(udp.Payload))
		}
		src := fmt.Sprintf("%v:%d", ip.SrcIP, udp.SrcPort)
		dst := fmt.Sprintf("%v:%d", ip.DstIP, udp.DstPort)
		pl := udp.Payload
		switch {
		case udp.SrcPort == 5060 || udp.DstPort == 5060:
			m := parseSIP(t, pl)
			m.time, m.src, m.dst = ci.Timestamp, src, dst
			c.sip = append(c.sip, m)
		case udp.SrcPort%2 == 1:
			if pl[0]>>6 != 2 || pl[1] != 200 {
				t.Fatalf("record %d: odd port but not an RTCP SR: % x", c.records, pl[:8])
			}
			c.rtcp++
		default:
			if len(pl) < 12 || pl[0] != 0x80 {
				t.Fatalf("record %d: not RTP v2 without padding/extension/CSRC: % x", c.records, pl[:min(len(pl), 12)])
			}
			k := streamKey{src, dst, binary.BigEndian.Uint32(pl[8:])}
			s := c.rtp[k]
			if s == nil {
				s = &rtpSeen{seqs: map[uint16]int{}, pt: pl[1] & 0x7f}
				c.rtp[k] = s
			}
			seq := binary.BigEndian.Uint16(pl[2:])
			if pl[1]&0x80 != 0 {
				s.markers = append(s.markers, seq)
			}
			s.count++
			s.last = seq
			s.seqs[seq]++
			if s.seqs[seq] == 1 {
				// Extend relative to the previous packet (they are never 32768 apart).
				var ext int64
				if !s.started {
					ext, s.started = int64(seq), true
				} else {
					ext = s.maxExt + int64(int16(seq-uint16(s.maxExt)))
				}
				if ext < s.maxExt {
					s.late++
				} else {
					s.maxExt = ext
				}
			}
		}
	}
	return c
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad time %q: %v", s, err)
	}
	return tm
}

// checkCapture verifies that the pcap holds exactly what the truth claims.
func checkCapture(t *testing.T, cfg Config, s Summary, tr truthFile, c capture) {
	t.Helper()
	if c.records != s.Packets || tr.Packets != s.Packets {
		t.Errorf("records in file %d, Summary.Packets %d, truth packets %d", c.records, s.Packets, tr.Packets)
	}
	if c.nano != cfg.Nanosecond {
		t.Errorf("nanosecond resolution = %v, want %v", c.nano, cfg.Nanosecond)
	}
	if len(tr.Calls) != cfg.Calls || s.Calls != cfg.Calls {
		t.Errorf("truth has %d calls, Summary %d, want %d", len(tr.Calls), s.Calls, cfg.Calls)
	}
	hops := 1
	if cfg.Proxy {
		hops = 2
	}
	byCallID := map[string][]sipMsg{}
	for _, m := range c.sip {
		if n, err := strconv.Atoi(m.header("Content-Length")); err != nil || n != len(m.body) {
			t.Errorf("%s: Content-Length %q, body %d bytes", m.first, m.header("Content-Length"), len(m.body))
		}
		byCallID[m.header("Call-ID")] = append(byCallID[m.header("Call-ID")], m)
	}
	streams := 0
	seenCallID := map[string]bool{}
	for _, call := range tr.Calls {
		if seenCallID[call.CallID] {
			t.Errorf("duplicate Call-ID %s", call.CallID)
		}
		seenCallID[call.CallID] = true
		msgs := byCallID[call.CallID]
		if len(msgs) == 0 {
			t.Errorf("call %s: no SIP in the capture", call.CallID)
			continue
		}
		inv := msgs[0]
		if !strings.HasPrefix(inv.first, "INVITE sip:"+call.Called+"@") {
			t.Errorf("call %s: first message %q", call.CallID, inv.first)
		}
		if !strings.Contains(inv.header("From"), "<sip:"+call.Caller+"@"+call.CallerIP+">") {
			t.Errorf("call %s: From %q lacks caller %s", call.CallID, inv.header("From"), call.Caller)
		}
		if call.CallerName != "" && !strings.Contains(inv.header("From"), strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(call.CallerName)) {
			t.Errorf("call %s: From %q lacks display name %q", call.CallID, inv.header("From"), call.CallerName)
		}
		if inv.header("User-Agent") == "" || !bytes.Contains(inv.body, []byte("m=audio ")) {
			t.Errorf("call %s: INVITE without User-Agent or SDP", call.CallID)
		}
		if got := mustTime(t, call.Start); !got.Equal(inv.time) {
			t.Errorf("call %s: start %v, INVITE captured at %v", call.CallID, got, inv.time)
		}
		if got := mustTime(t, call.End); !got.Equal(msgs[len(msgs)-1].time) {
			t.Errorf("call %s: end %v, last SIP captured at %v", call.CallID, got, msgs[len(msgs)-1].time)
		}
		// The final response to the INVITE, as the caller receives it.
		final := 0
		var answerAt time.Time
		for _, m := range msgs {
			if m.code() >= 200 && strings.HasSuffix(m.header("CSeq"), " INVITE") {
				if final == 0 {
					answerAt = m.time
				}
				final = m.code()
			}
		}
		if final != call.LastSIPCode {
			t.Errorf("call %s: final INVITE response %d in capture, truth says %d", call.CallID, final, call.LastSIPCode)
		}
		methods := map[string]int{}
		for _, m := range msgs {
			if m.code() == 0 {
				methods[strings.Fields(m.first)[0]]++
			}
		}
		var want map[string]int
		switch call.State {
		case "answered":
			want = map[string]int{"INVITE": hops, "ACK": hops, "BYE": hops}
			if call.Answer == nil || !mustTime(t, *call.Answer).Equal(answerAt) {
				t.Errorf("call %s: answer %v, 200 OK captured at %v", call.CallID, call.Answer, answerAt)
			}
			if len(call.Streams) != 2 {
				t.Errorf("call %s answered with %d streams", call.CallID, len(call.Streams))
			}
			bye := msgs[len(msgs)-2*hops]
			fromCaller := strings.HasPrefix(bye.src, call.CallerIP+":")
			if !strings.HasPrefix(bye.first, "BYE ") || fromCaller != (call.HangupBy == "caller") {
				t.Errorf("call %s: hangup_by %s but %q from %s", call.CallID, call.HangupBy, bye.first, bye.src)
			}
		case "failed":
			want = map[string]int{"INVITE": hops, "ACK": hops}
		case "cancelled":
			want = map[string]int{"INVITE": hops, "ACK": hops, "CANCEL": hops}
		default:
			t.Errorf("call %s: state %q", call.CallID, call.State)
		}
		if fmt.Sprint(methods) != fmt.Sprint(want) {
			t.Errorf("call %s (%s): requests %v, want %v", call.CallID, call.State, methods, want)
		}
		for _, st := range call.Streams {
			streams++
			if st.Written != st.Sent-st.Lost+st.Duplicates {
				t.Errorf("call %s %s: written %d != sent %d - lost %d + duplicates %d", call.CallID, st.Direction, st.Written, st.Sent, st.Lost, st.Duplicates)
			}
			seen := c.rtp[streamKey{st.Src, st.Dst, st.SSRC}]
			if seen == nil {
				t.Errorf("call %s %s: stream %s→%s ssrc %#x not in capture", call.CallID, st.Direction, st.Src, st.Dst, st.SSRC)
				continue
			}
			distinct := len(seen.seqs)
			if seen.count != st.Written || distinct != st.Sent-st.Lost || seen.count-distinct != st.Duplicates || seen.late != st.Reordered {
				t.Errorf("call %s %s: capture has %d packets, %d distinct, %d late; truth written %d sent %d lost %d dup %d reordered %d",
					call.CallID, st.Direction, seen.count, distinct, seen.late, st.Written, st.Sent, st.Lost, st.Duplicates, st.Reordered)
			}
			if seen.last != uint16(st.LastSeq) {
				t.Errorf("call %s %s: last packet captured has seq %d, truth last_seq %d", call.CallID, st.Direction, seen.last, st.LastSeq)
			}
			if seen.seqs[uint16(st.FirstSeq)] == 0 || seen.seqs[uint16(st.LastSeq)] == 0 || uint16(st.FirstSeq+st.Sent-1) != uint16(st.LastSeq) {
				t.Errorf("call %s %s: first_seq %d / last_seq %d (sent %d) not as captured", call.CallID, st.Direction, st.FirstSeq, st.LastSeq, st.Sent)
			}
			for q := range seen.seqs {
				if uint16(q-uint16(st.FirstSeq)) >= uint16(st.Sent) {
					t.Errorf("call %s %s: seq %d outside [%d, +%d)", call.CallID, st.Direction, q, st.FirstSeq, st.Sent)
				}
			}
			if len(seen.markers) == 0 || seen.markers[0] != uint16(st.FirstSeq) || len(seen.markers) > 1+st.Duplicates {
				t.Errorf("call %s %s: marker on seqs %v, want only on %d", call.CallID, st.Direction, seen.markers, st.FirstSeq)
			}
			if int(seen.pt) != st.PayloadType {
				t.Errorf("call %s %s: PT %d, truth %d", call.CallID, st.Direction, seen.pt, st.PayloadType)
			}
		}
	}
	if streams != len(c.rtp) || s.Streams != streams {
		t.Errorf("capture has %d RTP streams, truth %d, Summary %d", len(c.rtp), streams, s.Streams)
	}

	// Registrations: REGISTER requests per user and the last response.
	if len(tr.Registrations) != cfg.Registrations {
		t.Errorf("truth has %d registrations, want %d", len(tr.Registrations), cfg.Registrations)
	}
	for _, reg := range tr.Registrations {
		attempts, last := 0, 0
		for _, m := range c.sip {
			if !strings.HasPrefix(m.header("To"), "<sip:"+reg.User+"@") {
				continue
			}
			if strings.HasPrefix(m.first, "REGISTER ") {
				attempts++
				if !strings.Contains(m.header("Contact"), reg.Contact) {
					t.Errorf("user %s: Contact %q, truth %q", reg.User, m.header("Contact"), reg.Contact)
				}
			} else {
				last = m.code()
			}
		}
		wantCode := map[string]int{"OK": 200, "Unregister": 200, "Failed": 403}[reg.State]
		if attempts != reg.Attempts || last != wantCode {
			t.Errorf("user %s (%s): %d REGISTERs and final %d in capture, truth attempts %d", reg.User, reg.State, attempts, last, reg.Attempts)
		}
	}
}

func TestGenerateReadsBack(t *testing.T) {
	base := DefaultConfig()
	base.Calls, base.Concurrency, base.TalkTime = 12, 4, 4*time.Second
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"clean", func(c *Config) {}},
		{"impaired", func(c *Config) {
			c.Loss, c.Duplicates, c.Reorder, c.Jitter = 0.05, 0.03, 0.03, 30*time.Millisecond
			c.Failed, c.Cancelled = 0.25, 0.25
			c.Registrations, c.RegisterFailed = 20, 0.3
			c.RTCP = true
			c.Payload = "speech"
		}},
		{"proxy large PCMA ns", func(c *Config) {
			c.Proxy, c.LargeInvite, c.Nanosecond = true, true, true
			c.Codec, c.Ptime = "PCMA", 30*time.Millisecond
			c.Failed, c.Cancelled, c.Registrations = 0.2, 0.2, 5
			c.Reorder, c.Jitter = 0.05, 50*time.Millisecond
			c.Start = time.Date(2025, 6, 30, 23, 59, 58, 123456789, time.UTC)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			s, pcap, truth := generate(t, cfg)
			tr := parseTruth(t, truth)
			c := readCapture(t, pcap)
			checkCapture(t, cfg, s, tr, c)
			if s.Bytes != int64(len(pcap)) {
				t.Errorf("Summary.Bytes = %d, file has %d", s.Bytes, len(pcap))
			}
			if cfg.LargeInvite {
				big := 0
				for _, m := range c.sip {
					if strings.HasPrefix(m.first, "INVITE ") && m.size > 1500 {
						big++
					}
				}
				if big != 2*cfg.Calls || c.fragments < 2*big {
					t.Errorf("%d INVITEs over 1500 bytes from %d fragments, want %d INVITEs", big, c.fragments, 2*cfg.Calls)
				}
			}
			if cfg.RTCP && c.rtcp == 0 {
				t.Error("RTCP enabled but no SR captured")
			}
			var states = map[string]int{}
			for _, call := range tr.Calls {
				states[call.State]++
			}
			t.Logf("%d records, states %v, %d RTP streams, %d fragments, %d RTCP", c.records, states, len(c.rtp), c.fragments, c.rtcp)
		})
	}
}

func TestProxyDoublesSIP(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Calls, cfg.TalkTime, cfg.Failed, cfg.Cancelled = 6, time.Second, 0.3, 0.3
	_, direct, _ := generate(t, cfg)
	cfg.Proxy = true
	_, proxied, _ := generate(t, cfg)
	count := func(pcap []byte) map[string]int {
		n := map[string]int{}
		for _, m := range readCapture(t, pcap).sip {
			n[m.header("Call-ID")]++
		}
		return n
	}
	d, p := count(direct), count(proxied)
	if len(d) != cfg.Calls || len(p) != cfg.Calls {
		t.Fatalf("Call-IDs: %d direct, %d proxied, want %d", len(d), len(p), cfg.Calls)
	}
	for id, n := range d {
		if p[id] != 2*n {
			t.Errorf("Call-ID %s: %d messages direct, %d proxied, want %d", id, n, p[id], 2*n)
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Calls, cfg.TalkTime = 8, 3*time.Second
	cfg.Loss, cfg.Duplicates, cfg.Reorder, cfg.Jitter = 0.05, 0.05, 0.05, 25*time.Millisecond
	cfg.Failed, cfg.Cancelled, cfg.Registrations, cfg.RTCP = 0.2, 0.2, 10, true
	_, p1, t1 := generate(t, cfg)
	_, p2, t2 := generate(t, cfg)
	if !bytes.Equal(p1, p2) || !bytes.Equal(t1, t2) {
		t.Error("same config produced different output")
	}
	cfg.Seed++
	_, p3, t3 := generate(t, cfg)
	if bytes.Equal(p1, p3) || bytes.Equal(t1, t3) {
		t.Error("a different seed produced the same output")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(c *Config) {}, true},
		{"codec", func(c *Config) { c.Codec = "G729" }, false},
		{"payload", func(c *Config) { c.Payload = "noise" }, false},
		{"ptime fraction", func(c *Config) { c.Ptime = 1500 * time.Microsecond }, false},
		{"loss > 1", func(c *Config) { c.Loss = 1.5 }, false},
		{"NaN reorder", func(c *Config) { c.Reorder = nanValue() }, false},
		{"failed+cancelled > 1", func(c *Config) { c.Failed, c.Cancelled = 0.6, 0.6 }, false},
		{"no rate", func(c *Config) { c.CPS, c.Concurrency = 0, 0 }, false},
		{"registrations only", func(c *Config) { c.Calls, c.CPS, c.Concurrency, c.Registrations = 0, 0, 0, 3 }, true},
		{"negative jitter", func(c *Config) { c.Jitter = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v does not wrap ErrConfig", err)
				}
				if _, gerr := Generate(cfg, io.Discard, io.Discard); !errors.Is(gerr, ErrConfig) {
					t.Errorf("Generate error = %v, want ErrConfig", gerr)
				}
			}
		})
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestQuoteDisplayName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Bob", "Bob"},
		{"Alice Novak", `"Alice Novak"`},
		{`Jan "Honza" Dvořák`, `"Jan \"Honza\" Dvořák"`},
		{`back\slash`, `"back\\slash"`},
		{"Žofie", `"Žofie"`}, // non-ASCII is not a token character
	}
	for _, tt := range tests {
		if got := quoteDisplayName(tt.in); got != tt.want {
			t.Errorf("quoteDisplayName(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestMemoryBounded generates about a million packets into a sink that
// samples the live heap, which must stay far below the size of the output.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1 M packets; skipped with -short")
	}
	cfg := millionConfig()
	h := &heapSampler{}
	start := time.Now()
	s, err := Generate(cfg, h, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if s.Packets < 1_000_000 {
		t.Fatalf("only %d packets", s.Packets)
	}
	const limit = 64 << 20
	if h.peak == 0 || h.peak > limit {
		t.Errorf("peak heap %d MiB, want (0, %d MiB]; output was %d MiB", h.peak>>20, limit>>20, s.Bytes>>20)
	}
	t.Logf("%d packets, %d MiB in %v (%.0f packets/s), peak heap %.1f MiB", s.Packets, s.Bytes>>20, el, float64(s.Packets)/el.Seconds(), float64(h.peak)/(1<<20))
}

// TestConcurrency checks the derived arrival rate: with CPS 0 the average
// number of calls in progress (from the truth's start/end, over the middle
// half of the run, away from ramp-up and ramp-down) is close to Concurrency.
func TestConcurrency(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 400, 20, 20*time.Second
	cfg.Ptime = 120 * time.Millisecond // fewer packets; the schedule is the same
	var truth bytes.Buffer
	if _, err := Generate(cfg, io.Discard, &truth); err != nil {
		t.Fatal(err)
	}
	tr := parseTruth(t, truth.Bytes())
	first := mustTime(t, tr.Calls[0].Start)
	last := mustTime(t, tr.Calls[len(tr.Calls)-1].Start)
	from, to := first.Add(last.Sub(first)/4), first.Add(last.Sub(first)*3/4)
	var busy time.Duration // call-time inside [from, to)
	for _, c := range tr.Calls {
		s, e := mustTime(t, c.Start), mustTime(t, c.End)
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		if e.After(s) {
			busy += e.Sub(s)
		}
	}
	avg := float64(busy) / float64(to.Sub(from))
	if avg < 0.75*float64(cfg.Concurrency) || avg > 1.25*float64(cfg.Concurrency) {
		t.Errorf("average concurrency %.1f, want about %d", avg, cfg.Concurrency)
	}
	t.Logf("average concurrency %.1f over %v", avg, to.Sub(from))
}

func TestRegistrationsOnlyAndEmpty(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.Registrations, cfg.RegisterFailed = 0, 0, 30, 0.3
	s, pcap, truth := generate(t, cfg)
	tr := parseTruth(t, truth)
	checkCapture(t, cfg, s, tr, readCapture(t, pcap))
	states := map[string]int{}
	for _, r := range tr.Registrations {
		states[r.State]++
	}
	if states["OK"] == 0 || states["Failed"] == 0 || states["Unregister"] == 0 {
		t.Errorf("registration states %v, want all three kinds among 30", states)
	}

	cfg.Registrations = 0
	s, pcap, truth = generate(t, cfg)
	tr = parseTruth(t, truth)
	if s.Packets != 0 || len(pcap) != 24 || len(tr.Calls) != 0 || tr.Packets != 0 {
		t.Errorf("empty config: %+v, %d pcap bytes, truth %+v", s, len(pcap), tr)
	}
}
