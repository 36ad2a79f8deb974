package capture

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// go test ./internal/capture -run TestWriteFilterFixtures -update-filter-fixtures
// rewrites testdata/filter/*.pcap from the frame lists below.
var updateFilterFixtures = flag.Bool("update-filter-fixtures", false, "rewrite testdata/filter fixtures")

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ip6(src, dst string, nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func udp(ip interface{ gopacket.NetworkLayer }, sp, dp int) *layers.UDP {
	u := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	return u
}

func tcp(ip interface{ gopacket.NetworkLayer }, sp, dp int) *layers.TCP {
	t := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), SYN: true, Window: 1024, Seq: 1}
	if err := t.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	return t
}

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}

func dot1q(vid uint16, et layers.EthernetType) *layers.Dot1Q {
	return &layers.Dot1Q{VLANIdentifier: vid, Type: et}
}

var sipPayload = gopacket.Payload("OPTIONS sip:x@example.com SIP/2.0\r\n\r\n")

// ipPackets returns IP packets (no link header) used for the Ethernet,
// SLL and raw fixtures.
func ipPackets(t testing.TB) [][]byte {
	var out [][]byte
	add := func(ls ...gopacket.SerializableLayer) { out = append(out, serialize(t, ls...)) }

	a := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	add(a, udp(a, 5060, 5060), sipPayload)
	b := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP)
	add(b, tcp(b, 40000, 80))
	c := ip4("10.0.0.2", "10.0.0.3", layers.IPProtocolTCP)
	add(c, tcp(c, 5060, 5061))
	// IPv4 with 4 bytes of options: ports sit at offset 24, not 20.
	d := ip4("10.0.0.4", "10.0.0.1", layers.IPProtocolUDP)
	d.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 1}}
	add(d, udp(d, 6000, 6001), gopacket.Payload("rtp"))
	e := ip6("2001:db8::1", "2001:db8:1::5", layers.IPProtocolUDP)
	add(e, udp(e, 5060, 6000), sipPayload)
	f := ip6("fe80::1", "2001:db8::1", layers.IPProtocolTCP)
	add(f, tcp(f, 443, 5061))
	// IPv6 UDP behind a hop-by-hop header: tcpdump's "udp" does not follow it.
	g := ip6("2001:db8::2", "2001:db8::1", layers.IPProtocolIPv6HopByHop)
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolUDP
	hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	add(g, hbh, udp(g, 5060, 5060), sipPayload)
	h := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolSCTP)
	add(h, &layers.SCTP{SrcPort: 2905, DstPort: 2905, VerificationTag: 1})
	i := ip4("10.0.0.1", "192.0.2.2", layers.IPProtocolICMPv4)
	add(i, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1})
	j := ip4("192.0.2.2", "127.0.0.1", layers.IPProtocolUDP)
	add(j, udp(j, 5060, 5080), sipPayload)
	k := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	add(k, udp(k, 6000, 6010), gopacket.Payload("rtp"))
	l := ip6("2001:db8:1::5", "2001:db8::1", layers.IPProtocolUDP)
	add(l, udp(l, 6004, 5060), sipPayload)
	return out
}

// ethernetFrames is the mixed Ethernet fixture: the IP packets untagged,
// then tagged, double-tagged, ARP and a truncated frame.
func ethernetFrames(t testing.TB) (frames [][]byte, caplens []int) {
	for _, p := range ipPackets(t) {
		et := layers.EthernetTypeIPv4
		if p[0]>>4 == 6 {
			et = layers.EthernetTypeIPv6
		}
		frames = append(frames, serialize(t, eth(et), gopacket.Payload(p)))
	}
	a := ip4("10.0.0.1", "10.0.0.9", layers.IPProtocolUDP)
	frames = append(frames, serialize(t, eth(layers.EthernetTypeDot1Q), dot1q(100, layers.EthernetTypeIPv4), a, udp(a, 5060, 5060), sipPayload))
	b := ip4("10.1.0.1", "10.0.0.1", layers.IPProtocolTCP)
	frames = append(frames, serialize(t, eth(layers.EthernetTypeDot1Q), dot1q(200, layers.EthernetTypeIPv4), b, tcp(b, 80, 5070)))
	c := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
	frames = append(frames, serialize(t, eth(layers.EthernetTypeQinQ), dot1q(300, layers.EthernetTypeDot1Q), dot1q(200, layers.EthernetTypeIPv4), c, udp(c, 5060, 5060), sipPayload))
	d := ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP)
	frames = append(frames, serialize(t, eth(layers.EthernetTypeDot1Q), dot1q(100, layers.EthernetTypeIPv6), d, udp(d, 5060, 5060), sipPayload))
	frames = append(frames, serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: macA, SourceProtAddress: net.IP{10, 0, 0, 5},
		DstHwAddress: make([]byte, 6), DstProtAddress: net.IP{10, 0, 0, 1},
	}))
	for range frames {
		caplens = append(caplens, 0)
	}
	// A frame truncated to 30 bytes: loads past the end reject it.
	frames = append(frames, frames[0])
	caplens = append(caplens, 30)
	return frames, caplens
}

// fragmentFrames: a 3000-byte UDP datagram 10.0.0.1:5060 → 10.0.0.2:5060 in
// three fragments, then one to port 7000 in three fragments, then one
// unfragmented TCP segment to port 5060.
func fragmentFrames(t testing.TB) [][]byte {
	var frames [][]byte
	for _, port := range []int{5060, 7000} {
		a := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
		whole := serialize(t, a, udp(a, port, port), gopacket.Payload(bytes.Repeat([]byte("x"), 3000)))
		l4 := whole[20:]
		for off := 0; off < len(l4); off += 1480 {
			end := min(off+1480, len(l4))
			h := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP)
			h.Id = uint16(port)
			h.FragOffset = uint16(off / 8)
			if end < len(l4) {
				h.Flags = layers.IPv4MoreFragments
			}
			frames = append(frames, serialize(t, eth(layers.EthernetTypeIPv4), h, gopacket.Payload(l4[off:end])))
		}
	}
	b := ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP)
	frames = append(frames, serialize(t, eth(layers.EthernetTypeIPv4), b, tcp(b, 40000, 5060)))
	// [7..9] a 3000-byte IPv6 UDP datagram 2001:db8::1:5060 → 2001:db8::2:5062
	// in three fragments (fragment header right after the fixed header);
	// [10..11] an IPv6 UDP datagram 6000 → 6002 in two fragments.
	for _, ports := range [][2]int{{5060, 5062}, {6000, 6002}} {
		size := 3000
		if ports[0] == 6000 {
			size = 2000
		}
		a := ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP)
		whole := serialize(t, a, udp(a, ports[0], ports[1]), gopacket.Payload(bytes.Repeat([]byte("y"), size)))
		l4 := whole[40:]
		for off := 0; off < len(l4); off += 1448 {
			end := min(off+1448, len(l4))
			fh := []byte{byte(layers.IPProtocolUDP), 0, 0, 0, 0, 0, 0x12, 0x34}
			fo := uint16(off/8) << 3
			if end < len(l4) {
				fo |= 1
			}
			fh[2], fh[3] = byte(fo>>8), byte(fo)
			h := ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Fragment)
			frames = append(frames, serialize(t, eth(layers.EthernetTypeIPv6), h, gopacket.Payload(append(fh, l4[off:end]...))))
		}
	}
	return frames
}

func sllHeader(proto uint16) []byte {
	h := make([]byte, 16)
	h[3] = 1 // ARPHRD_ETHER
	h[5] = 6
	copy(h[6:], macA)
	h[14], h[15] = byte(proto>>8), byte(proto)
	return h
}

func writePcap(t testing.TB, path string, lt layers.LinkType, frames [][]byte, caplens []int) {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, f := range frames {
		data := f
		if caplens != nil && caplens[i] > 0 {
			data = f[:caplens[i]]
		}
		ci := gopacket.CaptureInfo{Timestamp: base.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(f)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFilterFixtures(t *testing.T) {
	if !*updateFilterFixtures {
		t.Skip("run with -update-filter-fixtures to rewrite testdata/filter")
	}
	dir := filepath.Join("testdata", "filter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	frames, caplens := ethernetFrames(t)
	writePcap(t, filepath.Join(dir, "mixed_ethernet.pcap"), layers.LinkTypeEthernet, frames, caplens)
	writePcap(t, filepath.Join(dir, "fragments.pcap"), layers.LinkTypeEthernet, fragmentFrames(t), nil)
	var sll, raw [][]byte
	for _, p := range ipPackets(t) {
		proto := uint16(0x0800)
		if p[0]>>4 == 6 {
			proto = 0x86dd
		}
		sll = append(sll, append(sllHeader(proto), p...))
		raw = append(raw, p)
	}
	writePcap(t, filepath.Join(dir, "mixed_sll.pcap"), layers.LinkTypeLinuxSLL, sll, nil)
	writePcap(t, filepath.Join(dir, "mixed_raw.pcap"), layers.LinkTypeRaw, raw, nil)
}
