package hep

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// chunk builds one HEPv3 chunk by hand, as the specification lays it out:
// vendor id, type id, length including the 6-byte chunk header, body.
func chunk(vendor, typ uint16, body ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, vendor)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(6+len(body)))
	return append(b, body...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// hep3 wraps chunks in the "HEP3" header with the total length.
func hep3(chunks ...[]byte) []byte {
	body := bytes.Join(chunks, nil)
	b := append([]byte("HEP3"), u16(uint16(6+len(body)))...)
	return append(b, body...)
}

const sipInvite = "INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: abc@host\r\nContent-Length: 0\r\n\r\n"

// v4Chunks are the chunks of a typical Kamailio siptrace packet (IPv4,
// UDP, SIP), in the order it sends them.
func v4Chunks() [][]byte {
	return [][]byte{
		chunk(0, 0x0001, 2),                  // family AF_INET
		chunk(0, 0x0002, 17),                 // UDP
		chunk(0, 0x0003, 10, 0, 0, 1),        // src 10.0.0.1
		chunk(0, 0x0004, 10, 0, 0, 2),        // dst 10.0.0.2
		chunk(0, 0x0007, u16(5060)...),       // src port
		chunk(0, 0x0008, u16(5080)...),       // dst port
		chunk(0, 0x0009, u32(1700000000)...), // seconds
		chunk(0, 0x000a, u32(123456)...),     // microseconds
		chunk(0, 0x000b, 1),                  // SIP
		chunk(0, 0x000c, u32(2001)...),       // capture id
		chunk(0, 0x000e, []byte("myHep")...), // auth key
		chunk(0, 0x000f, []byte(sipInvite)...),
	}
}

var v6Src = netip.MustParseAddr("2001:db8::1")
var v6Dst = netip.MustParseAddr("2001:db8::2")

func TestUnmarshal(t *testing.T) {
	base := Packet{
		Version: 3, IPProto: 17, Type: TypeSIP, CaptureID: 2001,
		Src:     netip.MustParseAddrPort("10.0.0.1:5060"),
		Dst:     netip.MustParseAddrPort("10.0.0.2:5080"),
		Time:    time.Unix(1700000000, 123456000),
		AuthKey: []byte("myHep"), Payload: []byte(sipInvite),
	}
	with := func(f func(p *Packet)) Packet { p := base; f(&p); return p }
	replace := func(i int, c []byte) [][]byte {
		cs := v4Chunks()
		cs[i] = c
		return cs
	}
	without := func(i int) [][]byte {
		cs := v4Chunks()
		return append(cs[:i], cs[i+1:]...)
	}
	v6 := [][]byte{
		chunk(0, 0x0001, 10), chunk(0, 0x0002, 6),
		chunk(0, 0x0005, v6Src.AsSlice()...), chunk(0, 0x0006, v6Dst.AsSlice()...),
		chunk(0, 0x0007, u16(5061)...), chunk(0, 0x0008, u16(5062)...),
		chunk(0, 0x000f, []byte(sipInvite)...),
	}
	tests := []struct {
		name    string
		in      []byte
		want    Packet
		wantErr error
	}{
		{name: "kamailio ipv4", in: hep3(v4Chunks()...), want: base},
		{name: "ipv6 tcp, no time", in: hep3(v6...), want: Packet{Version: 3, IPProto: 6,
			Src: netip.AddrPortFrom(v6Src, 5061), Dst: netip.AddrPortFrom(v6Dst, 5062), Payload: []byte(sipInvite)}},
		{name: "trailing bytes after total length ignored", in: append(hep3(v4Chunks()...), "junk"...), want: base},
		{name: "rtcp type, correlation id, vlan, node, keepalive",
			in: hep3(append(replace(8, chunk(0, 0x000b, 5)),
				chunk(0, 0x0011, []byte("abc@host")...), chunk(0, 0x0012, u16(0x2064)...),
				chunk(0, 0x0013, []byte("node1")...), chunk(0, 0x000d, u16(30)...))...),
			want: with(func(p *Packet) {
				p.Type, p.CorrelationID, p.VLAN, p.HasVLAN, p.NodeName = TypeRTCP, []byte("abc@host"), 100, true, []byte("node1")
			})},
		{name: "vendor and unknown chunks skipped silently",
			in:   hep3(append(v4Chunks(), chunk(0x0002, 0x0001, 1, 2, 3), chunk(0, 0x0fff, 9))...),
			want: base},
		{name: "short ipv4 chunk skipped and counted",
			in:   hep3(append(v4Chunks(), chunk(0, 0x0003, 1, 2, 3))...),
			want: with(func(p *Packet) { p.BadChunks = 1 })},
		{name: "wrong-size port, capture id, family, time skipped",
			in: hep3(append(v4Chunks(), chunk(0, 0x0007, 1), chunk(0, 0x000c, 0, 1),
				chunk(0, 0x0001, 2, 2), chunk(0, 0x0009, 1), chunk(0, 0x000a, u32(1000000)...))...),
			want: with(func(p *Packet) { p.BadChunks = 5 })},
		{name: "compressed payload", in: hep3(replace(11, chunk(0, 0x0010, 0x1f, 0x8b))...),
			want: with(func(p *Packet) { p.Payload, p.Compressed = []byte{0x1f, 0x8b}, true })},
		{name: "plain payload wins over compressed",
			in:   hep3(append(v4Chunks(), chunk(0, 0x0010, 0x1f, 0x8b))...),
			want: base},
		{name: "no payload", in: hep3(without(11)...), wantErr: ErrIncomplete},
		{name: "no source address", in: hep3(without(2)...), wantErr: ErrIncomplete},
		{name: "chunk past the end", in: hep3(append(v4Chunks(), []byte{0, 0, 0, 0xf, 0, 50, 1})...), wantErr: ErrTruncated},
		{name: "chunk length below 6", in: hep3(append(v4Chunks(), []byte{0, 0, 0, 0xf, 0, 5})...), wantErr: ErrBadLength},
		{name: "partial chunk header", in: hep3(append(v4Chunks(), []byte{0, 0, 0})...), wantErr: ErrTruncated},
		{name: "total length beyond the buffer", in: hep3(v4Chunks()...)[:40], wantErr: ErrTruncated},
		{name: "total length below 6", in: []byte("HEP3\x00\x05"), wantErr: ErrBadLength},
		{name: "header only", in: []byte("HEP3"), wantErr: ErrTruncated},
		{name: "not hep", in: []byte(sipInvite), wantErr: ErrNotHEP},
		{name: "empty", in: nil, wantErr: ErrNotHEP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Packet
			err := got.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Unmarshal() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
				t.Errorf("Unmarshal() (-want +got):\n%s", d)
			}
		})
	}
}

// hep2 builds a HEPv1/v2 packet by hand, as Kamailio's siptrace lays it
// out (struct hep_hdr, hep_iphdr or hep_ip6hdr, hep_timehdr in host order).
func hep2(version, family, proto byte, sport, dport uint16, src, dst []byte, sec, usec uint32, captid uint16, payload string) []byte {
	b := []byte{version, 0, family, proto}
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, src...)
	b = append(b, dst...)
	b[1] = byte(len(b))
	if version == 2 {
		b = binary.LittleEndian.AppendUint32(b, sec)
		b = binary.LittleEndian.AppendUint32(b, usec)
		b = binary.LittleEndian.AppendUint16(b, captid)
		b = append(b, 0, 0)
	}
	return append(b, payload...)
}

func TestUnmarshalV2(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Packet
		wantErr error
	}{
		{name: "v2 ipv4", in: hep2(2, 2, 17, 5060, 5070, []byte{192, 168, 1, 1}, []byte{192, 168, 1, 2}, 1700000001, 999999, 7, sipInvite),
			want: Packet{Version: 2, IPProto: 17, Type: TypeSIP, CaptureID: 7,
				Src: netip.MustParseAddrPort("192.168.1.1:5060"), Dst: netip.MustParseAddrPort("192.168.1.2:5070"),
				Time: time.Unix(1700000001, 999999000), Payload: []byte(sipInvite)}},
		{name: "v2 ipv6", in: hep2(2, 10, 6, 1, 2, v6Src.AsSlice(), v6Dst.AsSlice(), 5, 6, 65535, "x"),
			want: Packet{Version: 2, IPProto: 6, Type: TypeSIP, CaptureID: 65535,
				Src: netip.AddrPortFrom(v6Src, 1), Dst: netip.AddrPortFrom(v6Dst, 2),
				Time: time.Unix(5, 6000), Payload: []byte("x")}},
		{name: "v1 has no time", in: hep2(1, 2, 17, 5060, 5060, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 0, 0, 0, sipInvite),
			want: Packet{Version: 1, IPProto: 17, Type: TypeSIP,
				Src: netip.MustParseAddrPort("1.2.3.4:5060"), Dst: netip.MustParseAddrPort("5.6.7.8:5060"), Payload: []byte(sipInvite)}},
		{name: "v2 microseconds out of range", in: hep2(2, 2, 17, 1, 2, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 5, 1e6, 1, "x"),
			want: Packet{Version: 2, IPProto: 17, Type: TypeSIP, CaptureID: 1, BadChunks: 1,
				Src: netip.MustParseAddrPort("1.2.3.4:1"), Dst: netip.MustParseAddrPort("5.6.7.8:2"), Payload: []byte("x")}},
		{name: "v2 without payload", in: hep2(2, 2, 17, 1, 2, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 5, 6, 1, ""), wantErr: ErrIncomplete},
		{name: "v2 cut in the time header", in: hep2(2, 2, 17, 1, 2, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 5, 6, 1, "")[:20], wantErr: ErrTruncated},
		{name: "v2 cut in the addresses", in: hep2(2, 10, 17, 1, 2, v6Src.AsSlice(), v6Dst.AsSlice(), 5, 6, 1, "")[:30], wantErr: ErrTruncated},
		{name: "unknown family", in: hep2(2, 7, 17, 1, 2, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 5, 6, 1, "x"), wantErr: ErrNotHEP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Packet
			err := got.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Unmarshal() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
				t.Errorf("Unmarshal() (-want +got):\n%s", d)
			}
		})
	}
}

// TestMarshalLayout checks MarshalTo's bytes against the hand-built
// layout: the chunks in the specification's order.
func TestMarshalLayout(t *testing.T) {
	p := Packet{
		IPProto: 17, Type: TypeSIP, CaptureID: 2001,
		Src:     netip.MustParseAddrPort("10.0.0.1:5060"),
		Dst:     netip.MustParseAddrPort("10.0.0.2:5080"),
		Time:    time.Unix(1700000000, 123456789), // sub-microsecond part dropped
		AuthKey: []byte("myHep"), Payload: []byte(sipInvite),
	}
	want := hep3(v4Chunks()...)
	got, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendBinary:\n got % x\nwant % x", got, want)
	}
	if n := p.MarshalSize(); n != len(want) {
		t.Errorf("MarshalSize = %d, want %d", n, len(want))
	}

	p6 := Packet{IPProto: 6, Type: TypeRTCP, Src: netip.AddrPortFrom(v6Src, 1), Dst: netip.AddrPortFrom(v6Dst, 2),
		CorrelationID: []byte("cid"), HasVLAN: true, VLAN: 42, NodeName: []byte("n"), Payload: []byte{0x80, 200}, Compressed: true}
	want6 := hep3(chunk(0, 1, 10), chunk(0, 2, 6), chunk(0, 5, v6Src.AsSlice()...), chunk(0, 6, v6Dst.AsSlice()...),
		chunk(0, 7, 0, 1), chunk(0, 8, 0, 2), chunk(0, 11, 5), // no time chunks for a zero Time
		chunk(0, 12, 0, 0, 0, 0), chunk(0, 0x11, 'c', 'i', 'd'), chunk(0, 0x12, 0, 42), chunk(0, 0x13, 'n'),
		chunk(0, 0x10, 0x80, 200))
	got6, err := p6.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got6, append([]byte("prefix"), want6...)) {
		t.Errorf("AppendBinary v6:\n got % x\nwant prefix % x", got6, want6)
	}

	big := Packet{Src: p.Src, Dst: p.Dst, Payload: make([]byte, MaxPacketSize)}
	if _, err := big.AppendBinary(nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized packet: err = %v, want ErrTooLarge", err)
	}
	if _, err := p.MarshalTo(make([]byte, 10)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: err = %v, want ErrShortBuffer", err)
	}
}

// TestRoundTrip: what MarshalTo writes, Unmarshal reads back.
func TestRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{IPProto: 17, Type: TypeRTP, CaptureID: 1, Src: netip.MustParseAddrPort("1.2.3.4:10000"), Dst: netip.MustParseAddrPort("5.6.7.8:20000"),
			Time: time.Unix(1, 1000), Payload: []byte{0x80, 0, 0, 1}},
		{IPProto: 132, Type: TypeSIP, Src: netip.AddrPortFrom(v6Src, 5060), Dst: netip.AddrPortFrom(v6Dst, 5060),
			Time: time.Unix(1700000000, 999999000), AuthKey: []byte{}, Payload: []byte(sipInvite), HasVLAN: true, VLAN: 7},
	} {
		b, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Packet
		if err := got.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		p.Version = 3
		if d := cmp.Diff(p, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
}

func TestSplitStream(t *testing.T) {
	a := hep3(v4Chunks()...)
	b := hep3(chunk(0, 0x000f, 'x'))
	stream := append(append([]byte{}, a...), b...)
	// Every split of the stream into two reads yields the same packets.
	for cut := 0; cut <= len(stream); cut++ {
		sc := bufio.NewScanner(&twoReads{stream[:cut], stream[cut:]})
		sc.Split(SplitStream)
		var got [][]byte
		for sc.Scan() {
			got = append(got, bytes.Clone(sc.Bytes()))
		}
		if sc.Err() != nil || len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
			t.Fatalf("cut %d: %d packets, err %v", cut, len(got), sc.Err())
		}
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want error
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n"), ErrNotHEP},
		{"ends inside a packet", a[:len(a)-1], ErrTruncated},
		{"ends inside a header", a[:3], ErrTruncated},
		{"length below header", []byte("HEP3\x00\x01"), ErrBadLength},
	} {
		sc := bufio.NewScanner(bytes.NewReader(tt.in))
		sc.Split(SplitStream)
		for sc.Scan() {
		}
		if !errors.Is(sc.Err(), tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, sc.Err(), tt.want)
		}
	}
}

// twoReads returns its halves in two Read calls.
type twoReads struct{ a, b []byte }

func (r *twoReads) Read(p []byte) (int, error) {
	src := &r.a
	if len(r.a) == 0 {
		src = &r.b
	}
	if len(*src) == 0 {
		return 0, io.EOF
	}
	n := copy(p, *src)
	*src = (*src)[n:]
	return n, nil
}

// TestAllocations: the decode and encode paths allocate nothing (STYLE
// rule 5).
func TestAllocations(t *testing.T) {
	in := hep3(v4Chunks()...)
	var p Packet
	if n := testing.AllocsPerRun(100, func() {
		if err := p.Unmarshal(in); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Unmarshal: %v allocs per packet, want 0", n)
	}
	out := make([]byte, MaxPacketSize)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := p.MarshalTo(out); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("MarshalTo: %v allocs per packet, want 0", n)
	}
}

// BenchmarkUnmarshal is the collector's per-packet parse: a Kamailio-style
// HEPv3 SIP packet of about 800 bytes.
func BenchmarkUnmarshal(b *testing.B) {
	cs := v4Chunks()
	cs[11] = chunk(0, 0x000f, bytes.Repeat([]byte("v"), 700)...)
	in := hep3(cs...)
	var p Packet
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Unmarshal(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
}

// BenchmarkMarshal is the sender's per-packet encode.
func BenchmarkMarshal(b *testing.B) {
	var p Packet
	cs := v4Chunks()
	cs[11] = chunk(0, 0x000f, bytes.Repeat([]byte("v"), 700)...)
	if err := p.Unmarshal(hep3(cs...)); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, MaxPacketSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.MarshalTo(out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
}
