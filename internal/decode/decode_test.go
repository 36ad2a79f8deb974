package decode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

func TestPortSet(t *testing.T) {
	var p PortSet
	p.Add(5060, 5061)
	p.Add(10000, 10000)
	p.Add(65530, 65535)
	tests := []struct {
		port uint16
		want bool
	}{
		{5059, false}, {5060, true}, {5061, true}, {5062, false},
		{10000, true}, {9999, false}, {10001, false},
		{65529, false}, {65530, true}, {65535, true}, {0, false},
	}
	for _, tt := range tests {
		if got := p.Has(tt.port); got != tt.want {
			t.Errorf("Has(%d) = %v, want %v", tt.port, got, tt.want)
		}
	}
	var nilSet *PortSet
	if nilSet.Has(5060) {
		t.Errorf("nil PortSet Has(5060) = true, want false")
	}
}

func TestDecodeLayers(t *testing.T) {
	payload := []byte("hello SIP")
	u := udpHdr(5060, 5062, payload)
	v4flow := Flow{Src: netip.AddrPortFrom(addrA, 5060), Dst: netip.AddrPortFrom(addrB, 5062), Proto: ProtoUDP}
	v6flow := Flow{Src: netip.AddrPortFrom(addr6A, 5060), Dst: netip.AddrPortFrom(addr6B, 5062), Proto: ProtoUDP}
	sll := func(proto uint16) []byte { return cat(be16(0), be16(1), be16(6), make([]byte, 8), be16(proto)) }
	sll2 := func(proto uint16) []byte {
		return cat(be16(proto), be16(0), []byte{0, 0, 0, 2}, be16(1), []byte{0, 6}, make([]byte, 8))
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	bigEnd32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	tso := ipv4(17, u)
	tso[2], tso[3] = 0, 0

	tests := []struct {
		name     string
		lt       capture.LinkType
		data     []byte
		wantFlow Flow
		wantVLAN uint16
	}{
		{"ethernet/ipv4", capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(17, u)), v4flow, NoVLAN},
		{"ethernet zeroed loopback", capture.LinkTypeEthernet, cat(make([]byte, 12), be16(0x0800), ipv4(17, u)), v4flow, NoVLAN},
		{"ethernet padding", capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(17, u), make([]byte, 20)), v4flow, NoVLAN},
		{"ethernet/ipv6", capture.LinkTypeEthernet, cat(ether(0x86dd), ipv6(17, u)), v6flow, NoVLAN},
		{"802.1Q", capture.LinkTypeEthernet, cat(ether(0x0800, 0x8100, 100), ipv4(17, u)), v4flow, 100},
		{"QinQ 88a8", capture.LinkTypeEthernet, cat(ether(0x86dd, 0x88a8, 10, 0x8100, 20), ipv6(17, u)), v6flow, 20},
		{"QinQ 9100", capture.LinkTypeEthernet, cat(ether(0x0800, 0x9100, 4094, 0x8100, 7), ipv4(17, u)), v4flow, 7},
		{"ipv4 options", capture.LinkTypeEthernet, cat(ether(0x0800), ipv4Opts(addrA, addrB, 17, 1, 0, []byte{0x94, 4, 0, 0, 1, 1, 1, 0}, u)), v4flow, NoVLAN},
		{"ipv4 tso zero length", capture.LinkTypeEthernet, cat(ether(0x0800), tso), v4flow, NoVLAN},
		{"ipv6 ext headers", capture.LinkTypeEthernet, cat(ether(0x86dd), ipv6(0, cat(ext6(60, 1), ext6(43, 0), ext6(17, 2), u))), v6flow, NoVLAN},
		{"ipv6 atomic fragment", capture.LinkTypeEthernet, cat(ether(0x86dd), ipv6(44, cat(frag6(17, 0, false, 9), u))), v6flow, NoVLAN},
		{"null LE inet", capture.LinkTypeNull, cat(le32(2), ipv4(17, u)), v4flow, NoVLAN},
		{"null BE inet6 darwin", capture.LinkTypeNull, cat(bigEnd32(30), ipv6(17, u)), v6flow, NoVLAN},
		{"null LE inet6 linux", capture.LinkTypeNull, cat(le32(10), ipv6(17, u)), v6flow, NoVLAN},
		{"sll ipv4", capture.LinkTypeLinuxSLL, cat(sll(0x0800), ipv4(17, u)), v4flow, NoVLAN},
		{"sll vlan", capture.LinkTypeLinuxSLL, cat(sll(0x8100), be16(33), be16(0x0800), ipv4(17, u)), v4flow, 33},
		{"sll2 ipv6", capture.LinkTypeLinuxSLL2, cat(sll2(0x86dd), ipv6(17, u)), v6flow, NoVLAN},
		{"raw v4", capture.LinkTypeRaw, ipv4(17, u), v4flow, NoVLAN},
		{"raw v6", capture.LinkTypeRaw, ipv6(17, u), v6flow, NoVLAN},
		{"ipv4 linktype", capture.LinkTypeIPv4, ipv4(17, u), v4flow, NoVLAN},
		{"ipv6 linktype", capture.LinkTypeIPv6, ipv6(17, u), v6flow, NoVLAN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var c collector
			d.Decode(frame(tt.lt, tt.data), &c)
			want := []Datagram{{Flow: tt.wantFlow, Time: t0, Payload: payload, VLAN: tt.wantVLAN, TTL: 64, FrameLen: len(tt.data)}} // the builders send TTL 64
			if diff := cmp.Diff(want, c.got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("datagrams (-want +got):\n%s", diff)
			}
			if st := d.Stats(); st.Frames != 1 || st.Datagrams != 1 || st.Malformed+st.Unsupported+st.Truncated != 0 {
				t.Errorf("Stats() = %+v, want 1 frame, 1 datagram, no errors", st)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	u := udpHdr(5060, 5060, []byte("x"))
	good := ipv4(17, u)
	mod := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
	badUDPLen := bytes.Clone(good)
	binary.BigEndian.PutUint16(badUDPLen[20+4:], 200)
	shortUDPLen := bytes.Clone(good)
	binary.BigEndian.PutUint16(shortUDPLen[20+4:], 7)

	type counts struct{ Malformed, Unsupported, Truncated uint64 }
	tests := []struct {
		name    string
		lt      capture.LinkType
		data    []byte
		snapped bool // frame Length larger than the data
		want    counts
	}{
		{"arp", capture.LinkTypeEthernet, cat(ether(0x0806), make([]byte, 28)), false, counts{Unsupported: 1}},
		{"icmp", capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(1, make([]byte, 8))), false, counts{Unsupported: 1}},
		{"dccp over ipv6", capture.LinkTypeEthernet, cat(ether(0x86dd), ipv6(33, make([]byte, 12))), false, counts{Unsupported: 1}},
		{"ipv6 no next header", capture.LinkTypeRaw, ipv6(59, make([]byte, 8)), false, counts{Unsupported: 1}},
		{"unknown link type", capture.LinkType(147), good, false, counts{Unsupported: 1}},
		{"null unknown family", capture.LinkTypeNull, cat([]byte{7, 0, 0, 0}, good), false, counts{Unsupported: 1}},
		{"empty ethernet", capture.LinkTypeEthernet, nil, false, counts{Malformed: 1}},
		{"short ethernet", capture.LinkTypeEthernet, make([]byte, 13), false, counts{Malformed: 1}},
		{"short ethernet snapped", capture.LinkTypeEthernet, make([]byte, 13), true, counts{Truncated: 1}},
		{"short vlan", capture.LinkTypeEthernet, cat(ether(0x8100), []byte{0, 1}), false, counts{Malformed: 1}},
		{"short sll", capture.LinkTypeLinuxSLL, make([]byte, 15), false, counts{Malformed: 1}},
		{"short sll2", capture.LinkTypeLinuxSLL2, make([]byte, 19), false, counts{Malformed: 1}},
		{"raw version 5", capture.LinkTypeRaw, mod(good, 0, 0x55), false, counts{Malformed: 1}},
		{"ipv4 version 6", capture.LinkTypeIPv4, mod(good, 0, 0x65), false, counts{Malformed: 1}},
		{"ipv4 ihl 4", capture.LinkTypeIPv4, mod(good, 0, 0x44), false, counts{Malformed: 1}},
		{"ipv4 ihl beyond total", capture.LinkTypeIPv4, mod(good, 0, 0x4f), false, counts{Malformed: 1}},
		{"ipv4 total beyond data", capture.LinkTypeIPv4, good[:len(good)-1], false, counts{Malformed: 1}},
		{"ipv4 total beyond snaplen", capture.LinkTypeIPv4, good[:len(good)-1], true, counts{Truncated: 1}},
		{"ipv4 short", capture.LinkTypeIPv4, good[:19], false, counts{Malformed: 1}},
		{"udp length beyond ip", capture.LinkTypeIPv4, badUDPLen, false, counts{Malformed: 1}},
		{"udp length below 8", capture.LinkTypeIPv4, shortUDPLen, false, counts{Malformed: 1}},
		{"udp header cut", capture.LinkTypeIPv4, ipv4(17, make([]byte, 5)), false, counts{Malformed: 1}},
		{"ipv6 short", capture.LinkTypeIPv6, make([]byte, 39), false, counts{Malformed: 1}},
		{"ipv6 jumbo", capture.LinkTypeIPv6, func() []byte { b := ipv6(17, u); b[4], b[5] = 0, 0; return b }(), false, counts{Unsupported: 1}},
		{"ipv6 payload beyond data", capture.LinkTypeIPv6, ipv6(17, u)[:40+len(u)-1], false, counts{Malformed: 1}},
		{"ipv6 ext header overrun", capture.LinkTypeIPv6, ipv6(0, cat([]byte{17, 5}, make([]byte, 14))), false, counts{Malformed: 1}},
		{"ipv6 too many ext headers", capture.LinkTypeIPv6, ipv6(60, bytes.Repeat(ext6(60, 0), 9)), false, counts{Unsupported: 1}},
		{"tcp header cut", capture.LinkTypeIPv4, ipv4(6, make([]byte, 12)), false, counts{Malformed: 1}},
		{"tcp data offset 4", capture.LinkTypeIPv4, ipv4(6, func() []byte { b := tcpHdr(5060, 5060, 1, 0, nil); b[12] = 4 << 4; return b }()), false, counts{Malformed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var c collector
			f := frame(tt.lt, tt.data)
			if tt.snapped {
				f.Length += 100
			}
			d.Decode(f, &c)
			st := d.Stats()
			got := counts{st.Malformed, st.Unsupported, st.Truncated}
			if got != tt.want || len(c.got) != 0 {
				t.Errorf("counts = %+v, datagrams %d; want %+v, 0", got, len(c.got), tt.want)
			}
		})
	}
}

// tsharkUDP counts the UDP datagrams in path the way Wireshark sees them
// (fragments reassembled, ICMP-quoted UDP headers excluded) and sums their
// payload bytes.
func tsharkUDP(t *testing.T, path string) (n, payloadBytes int) {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-Y", "udp && !icmp && !icmpv6", "-T", "fields", "-e", "udp.length").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("tshark field %q: %v", sc.Text(), err)
		}
		n++
		payloadBytes += l - 8
	}
	return n, payloadBytes
}

// decodeFile decodes every frame of path and returns the handler that
// counted them and the final stats.
func decodeFile(t *testing.T, path string, cfg Config) (*collector, Stats) {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := NewDecoder(cfg)
	c := new(collector)
	var f capture.Frame
	for {
		err := src.ReadFrame(&f)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Decode(&f, c)
	}
	return c, d.Stats()
}

func TestDecodeSharedPcaps(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedtest.Pcaps(t), "*.pcap*"))
	if len(files) == 0 {
		sharedtest.Missing(t, "shared captures absent")
	}
	_, tsharkErr := exec.LookPath("tshark")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, st := decodeFile(t, path, Config{})
			if st.Malformed != 0 || st.Truncated != 0 {
				t.Errorf("Stats() = %+v, want no malformed or truncated frames", st)
			}
			if tsharkErr != nil {
				sharedtest.Missing(t, "tshark absent")
			}
			if testing.Short() {
				t.Skip("tshark comparison skipped in -short mode")
			}
			wantN, wantBytes := tsharkUDP(t, path)
			gotBytes := 0
			for _, g := range c.got {
				if g.Flow.Proto == ProtoUDP {
					gotBytes += len(g.Payload)
				}
			}
			if len(c.got) != wantN || gotBytes != wantBytes {
				t.Errorf("decoded %d datagrams, %d payload bytes; tshark: %d, %d", len(c.got), gotBytes, wantN, wantBytes)
			}
		})
	}
}

func TestDecodeUDPAllocs(t *testing.T) {
	u := udpHdr(40000, 20000, make([]byte, 172))
	frames := map[string]*capture.Frame{
		"eth/ipv4":      frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(17, u))),
		"eth/qinq/ipv4": frame(capture.LinkTypeEthernet, cat(ether(0x0800, 0x88a8, 5, 0x8100, 6), ipv4(17, u))),
		"eth/vlan/ipv6": frame(capture.LinkTypeEthernet, cat(ether(0x86dd, 0x8100, 6), ipv6(17, u))),
		"sll2/ipv4":     frame(capture.LinkTypeLinuxSLL2, cat(be16(0x0800), make([]byte, 18), ipv4(17, u))),
	}
	for name, f := range frames {
		d := NewDecoder(Config{})
		var h nopHandler
		allocs := testing.AllocsPerRun(1000, func() {
			f.Time = f.Time.Add(20e6) // capture time advances, so sweeps run too
			d.Decode(f, &h)
		})
		if allocs != 0 || h.n == 0 {
			t.Errorf("%s: Decode allocates %.1f times per frame (delivered %d bytes), want 0", name, allocs, h.n)
		}
	}
}

func BenchmarkDecodeUDP(b *testing.B) {
	f := frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(17, udpHdr(40000, 20000, make([]byte, 172)))))
	d := NewDecoder(Config{})
	var h nopHandler
	b.ReportAllocs()
	for b.Loop() {
		d.Decode(f, &h)
	}
}

func BenchmarkDecodeUDPVLANIPv6(b *testing.B) {
	f := frame(capture.LinkTypeEthernet, cat(ether(0x86dd, 0x8100, 6), ipv6(17, udpHdr(40000, 20000, make([]byte, 172)))))
	d := NewDecoder(Config{})
	var h nopHandler
	b.ReportAllocs()
	for b.Loop() {
		d.Decode(f, &h)
	}
}

// BenchmarkDLPDecodeUDP is the alternative the Decoder was measured
// against: gopacket's DecodingLayerParser over the same frame, extracting
// the same Flow and payload.
func BenchmarkDLPDecodeUDP(b *testing.B) {
	data := cat(ether(0x0800), ipv4(17, udpHdr(40000, 20000, make([]byte, 172))))
	var (
		eth  layers.Ethernet
		ip4  layers.IPv4
		udp  layers.UDP
		pl   gopacket.Payload
		dg   Datagram
		seen []gopacket.LayerType
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &udp, &pl)
	p.IgnoreUnsupported = true
	seen = make([]gopacket.LayerType, 0, 8)
	var h nopHandler
	b.ReportAllocs()
	for b.Loop() {
		if err := p.DecodeLayers(data, &seen); err != nil {
			b.Fatal(err)
		}
		src, _ := netip.AddrFromSlice(ip4.SrcIP)
		dst, _ := netip.AddrFromSlice(ip4.DstIP)
		dg.Flow = Flow{Src: netip.AddrPortFrom(src, uint16(udp.SrcPort)), Dst: netip.AddrPortFrom(dst, uint16(udp.DstPort)), Proto: ProtoUDP}
		dg.Payload = udp.Payload
		h.HandleDatagram(&dg)
	}
}

func BenchmarkDecodeSharedPcap(b *testing.B) {
	path := sharedtest.Pcap(b, "sipp_rtpstream.pcap")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Skip("shared captures absent")
	}
	src, err := capture.NewFileReader(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	var frames []capture.Frame
	var f capture.Frame
	for src.ReadFrame(&f) == nil {
		g := f
		g.Data = bytes.Clone(f.Data)
		frames = append(frames, g)
	}
	d := NewDecoder(Config{})
	var h nopHandler
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Decode(&frames[i], &h)
		i++
		if i == len(frames) {
			i = 0
		}
	}
}
