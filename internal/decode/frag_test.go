package decode

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/voipsensor/voipsensor/internal/capture"
)

// pattern returns n bytes that differ at every offset mod 251, so a
// misplaced fragment shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// frag4 is one IPv4 fragment: bytes [off, off+len) of the L4 datagram.
type frag4 struct {
	off, end int
	more     bool
}

// fragFrames cuts l4 into IPv4 fragments over Ethernet.
func fragFrames(id uint16, proto byte, l4 []byte, frags []frag4) [][]byte {
	var out [][]byte
	for _, f := range frags {
		ff := uint16(f.off / 8)
		if f.more {
			ff |= 0x2000
		}
		out = append(out, cat(ether(0x0800), ipv4Opts(addrA, addrB, proto, id, ff, nil, l4[f.off:f.end])))
	}
	return out
}

// writeFragFixture writes testdata/frag_udp.pcap: a 3000-byte UDP payload
// (3008-byte datagram) in three fragments sent out of order, the middle one
// twice: 2960-3008, 1480-2960, 1480-2960 again, 0-1480.
func writeFragFixture(t *testing.T, path string) []byte {
	payload := pattern(3000)
	l4 := udpHdr(5060, 5060, payload)
	fr := fragFrames(0x4242, 17, l4, []frag4{{2960, 3008, false}, {1480, 2960, true}, {1480, 2960, true}, {0, 1480, true}})
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, data := range fr {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return payload
}

func TestFragmentFixture(t *testing.T) {
	path := filepath.Join("testdata", "frag_udp.pcap")
	payload := writeFragFixture(t, path)
	c, st := decodeFile(t, path, Config{})
	if len(c.got) != 1 || !bytes.Equal(c.got[0].Payload, payload) {
		t.Fatalf("got %d datagrams, want one with the 3000-byte payload", len(c.got))
	}
	if want := t0.Add(3 * time.Millisecond); !c.got[0].Time.Equal(want) {
		t.Errorf("Time = %v, want the completing fragment's %v", c.got[0].Time, want)
	}
	if st.Fragments != 4 || st.Reassembled != 1 || st.FragmentsDropped != 0 || st.FragmentQueues != 0 {
		t.Errorf("Stats() = %+v, want 4 fragments, 1 reassembled, 0 dropped, 0 queues", st)
	}
	// Wireshark reassembles the same fixture into one 3008-byte UDP datagram.
	if _, err := exec.LookPath("tshark"); err == nil {
		out, err := exec.Command("tshark", "-r", path, "-Y", "udp", "-T", "fields", "-e", "udp.length").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != "3008" {
			t.Errorf("tshark udp.length = %q, want 3008", got)
		}
	}
}

func TestFragmentCases(t *testing.T) {
	l4 := udpHdr(1000, 2000, pattern(2400)) // 2408 bytes
	std := []frag4{{0, 800, true}, {800, 1600, true}, {1600, 2408, false}}
	tests := []struct {
		name       string
		frags      []frag4
		want       bool // one datagram equal to l4's payload
		dropped    uint64
		malformed  uint64
		openQueues int
	}{
		{"in order", std, true, 0, 0, 0},
		{"reverse", []frag4{std[2], std[1], std[0]}, true, 0, 0, 0},
		{"duplicates", []frag4{std[0], std[0], std[2], std[2], std[1]}, true, 0, 0, 0},
		{"overlapping", []frag4{{0, 1200, true}, {800, 2000, true}, {1600, 2408, false}}, true, 0, 0, 0},
		{"covered by a later big fragment", []frag4{{800, 1600, true}, {1600, 2408, false}, {0, 2400, true}}, true, 0, 0, 0},
		{"missing middle", []frag4{std[0], std[2]}, false, 0, 0, 1},
		{"two different ends", []frag4{std[0], std[2], {1600, 2400, false}}, false, 3, 0, 0},
		{"fragment beyond end", []frag4{std[2], {2400, 2416, true}}, false, 2, 0, 0},
		{"middle not multiple of 8", []frag4{{0, 804, true}}, false, 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var c collector
			padded := append(bytes.Clone(l4), make([]byte, 16)...) // room for a fragment past the end
			for _, data := range fragFrames(7, 17, padded, tt.frags) {
				d.Decode(frame(capture.LinkTypeEthernet, data), &c)
			}
			st := d.Stats()
			ok := len(c.got) == 1 && bytes.Equal(c.got[0].Payload, l4[8:])
			if ok != tt.want || (!tt.want && len(c.got) != 0) {
				t.Errorf("reassembled = %v (%d datagrams), want %v", ok, len(c.got), tt.want)
			}
			if st.FragmentsDropped != tt.dropped || st.Malformed != tt.malformed || st.FragmentQueues != tt.openQueues {
				t.Errorf("dropped, malformed, queues = %d, %d, %d; want %d, %d, %d",
					st.FragmentsDropped, st.Malformed, st.FragmentQueues, tt.dropped, tt.malformed, tt.openQueues)
			}
		})
	}
}

func TestFragmentOverlapKeepsFirst(t *testing.T) {
	l4 := udpHdr(1000, 2000, pattern(1592)) // 1600 bytes
	evil := bytes.Clone(l4)
	for i := 800; i < 1600; i++ {
		evil[i] = 0xee
	}
	d := NewDecoder(Config{})
	var c collector
	frames := fragFrames(9, 17, l4, []frag4{{800, 1600, false}})
	frames = append(frames, fragFrames(9, 17, evil, []frag4{{400, 1200, true}})...)
	frames = append(frames, fragFrames(9, 17, l4, []frag4{{0, 800, true}})...)
	for _, data := range frames {
		d.Decode(frame(capture.LinkTypeEthernet, data), &c)
	}
	if len(c.got) != 1 {
		t.Fatalf("got %d datagrams, want 1", len(c.got))
	}
	if !bytes.Equal(c.got[0].Payload, l4[8:]) {
		t.Errorf("overlapping fragment rewrote bytes that arrived first")
	}
}

func TestFragmentLimits(t *testing.T) {
	l4 := udpHdr(1000, 2000, pattern(1592))
	first := func(id uint16) []byte { return fragFrames(id, 17, l4, []frag4{{0, 800, true}})[0] }
	last := func(id uint16) []byte { return fragFrames(id, 17, l4, []frag4{{800, 1600, false}})[0] }

	t.Run("queue limit drops oldest", func(t *testing.T) {
		d := NewDecoder(Config{MaxFragmentQueues: 2})
		var c collector
		for i, id := range []uint16{1, 2, 3} {
			f := frame(capture.LinkTypeEthernet, first(id))
			f.Time = t0.Add(time.Duration(i) * time.Millisecond)
			d.Decode(f, &c)
		}
		for i, id := range []uint16{3, 2, 1} {
			f := frame(capture.LinkTypeEthernet, last(id))
			f.Time = t0.Add(time.Duration(10+i) * time.Millisecond)
			d.Decode(f, &c)
		}
		st := d.Stats()
		// id 1 was evicted; its last fragment opens a queue that stays open.
		if len(c.got) != 2 || st.FragmentsDropped != 1 || st.FragmentQueues != 1 {
			t.Errorf("datagrams %d, dropped %d, queues %d; want 2, 1, 1", len(c.got), st.FragmentsDropped, st.FragmentQueues)
		}
	})
	t.Run("byte limit", func(t *testing.T) {
		d := NewDecoder(Config{MaxFragmentBytes: 2000})
		var c collector
		d.Decode(frame(capture.LinkTypeEthernet, first(1)), &c)
		d.Decode(frame(capture.LinkTypeEthernet, first(2)), &c) // needs room: evicts id 1
		d.Decode(frame(capture.LinkTypeEthernet, last(2)), &c)
		if st := d.Stats(); len(c.got) != 1 || st.FragmentsDropped != 1 {
			t.Errorf("datagrams %d, dropped %d; want 1, 1", len(c.got), st.FragmentsDropped)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		d := NewDecoder(Config{FragmentTimeout: 5 * time.Second})
		var c collector
		d.Decode(frame(capture.LinkTypeEthernet, first(1)), &c)
		d.Expire(t0.Add(4 * time.Second))
		if st := d.Stats(); st.FragmentQueues != 1 {
			t.Fatalf("queue expired early: %+v", st)
		}
		d.Expire(t0.Add(6 * time.Second))
		if st := d.Stats(); st.FragmentQueues != 0 || st.FragmentsDropped != 1 {
			t.Errorf("after timeout queues %d dropped %d, want 0, 1", st.FragmentQueues, st.FragmentsDropped)
		}
		// The late last fragment alone cannot complete anything.
		d.Decode(frame(capture.LinkTypeEthernet, last(1)), &c)
		if len(c.got) != 0 {
			t.Errorf("got %d datagrams after timeout, want 0", len(c.got))
		}
	})
	t.Run("expired by later traffic", func(t *testing.T) {
		d := NewDecoder(Config{FragmentTimeout: time.Second})
		var c collector
		d.Decode(frame(capture.LinkTypeEthernet, first(1)), &c)
		f := frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(17, udpHdr(1, 2, nil))))
		f.Time = t0.Add(2 * time.Second)
		d.Decode(f, &c)
		if st := d.Stats(); st.FragmentQueues != 0 {
			t.Errorf("queues = %d, want 0 once capture time passed the timeout", st.FragmentQueues)
		}
	})
}

func TestFragmentIPv6(t *testing.T) {
	l4 := udpHdr(5060, 5060, pattern(2000)) // 2008 bytes
	mk := func(off, end int, more bool) []byte {
		return cat(ether(0x86dd), ipv6(0, cat(ext6(44, 0), frag6(17, off, more, 0xabcdef), l4[off:end])))
	}
	d := NewDecoder(Config{})
	var c collector
	for _, data := range [][]byte{mk(1232, 2008, false), mk(0, 1232, true)} {
		d.Decode(frame(capture.LinkTypeEthernet, data), &c)
	}
	if len(c.got) != 1 || !bytes.Equal(c.got[0].Payload, l4[8:]) {
		t.Fatalf("got %d datagrams, want the 2000-byte payload", len(c.got))
	}
	if got := c.got[0].Flow.Src.Addr(); got != addr6A {
		t.Errorf("Src = %v, want %v", got, addr6A)
	}
	if st := d.Stats(); st.Fragments != 2 || st.Reassembled != 1 {
		t.Errorf("Stats() = %+v, want 2 fragments, 1 reassembled", st)
	}
}

func TestAddSpan(t *testing.T) {
	tests := []struct {
		have []span
		add  span
		want []span
	}{
		{nil, span{0, 8}, []span{{0, 8}}},
		{[]span{{16, 24}}, span{0, 8}, []span{{0, 8}, {16, 24}}},
		{[]span{{0, 8}}, span{16, 24}, []span{{0, 8}, {16, 24}}},
		{[]span{{0, 8}, {16, 24}}, span{8, 16}, []span{{0, 24}}},
		{[]span{{0, 8}, {16, 24}, {32, 40}}, span{4, 36}, []span{{0, 40}}},
		{[]span{{0, 8}, {16, 24}, {32, 40}}, span{10, 12}, []span{{0, 8}, {10, 12}, {16, 24}, {32, 40}}},
		{[]span{{0, 8}, {16, 24}, {32, 40}}, span{18, 20}, []span{{0, 8}, {16, 24}, {32, 40}}},
	}
	for _, tt := range tests {
		got := addSpan(append([]span(nil), tt.have...), tt.add)
		if !slicesEqual(got, tt.want) {
			t.Errorf("addSpan(%v, %v) = %v, want %v", tt.have, tt.add, got, tt.want)
		}
	}
}

func slicesEqual(a, b []span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkDecodeFragmented(b *testing.B) {
	l4 := udpHdr(5060, 5060, pattern(3000))
	var frames []*capture.Frame
	for _, data := range fragFrames(1, 17, l4, []frag4{{0, 1480, true}, {1480, 2960, true}, {2960, 3008, false}}) {
		frames = append(frames, frame(capture.LinkTypeEthernet, data))
	}
	d := NewDecoder(Config{})
	var h nopHandler
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range frames {
			d.Decode(f, &h)
		}
	}
}
