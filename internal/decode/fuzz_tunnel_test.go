package decode

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// The tunnel fuzz targets each do two things with their input: feed the raw
// bytes to the decoder (it must not panic, and what it delivers must be a
// bounded slice), and build a well-formed packet from the same bytes with
// the test builders, which must decode back to exactly the inner payload
// (a round trip against an independent encoder).

// fuzzFlow is the inner flow of the round-trip packets.
var fuzzFlow = Flow{Src: netip.AddrPortFrom(addrA, 5060), Dst: netip.AddrPortFrom(addrB, 5062), Proto: ProtoUDP}

// decodeOne decodes data as one Ethernet frame and returns the datagrams.
func decodeOne(t *testing.T, cfg Config, data []byte) []Datagram {
	t.Helper()
	d := NewDecoder(cfg)
	var c collector
	d.Decode(frame(capture.LinkTypeEthernet, data), &c)
	for _, g := range c.got {
		if len(g.Payload) > len(data) && len(g.Payload) > cfg.MaxTCPBuffer {
			t.Fatalf("payload of %d bytes from a %d-byte frame", len(g.Payload), len(data))
		}
	}
	return c.got
}

// roundTrip checks that data decodes to exactly one datagram of fuzzFlow
// carrying payload.
func roundTrip(t *testing.T, data, payload []byte) {
	t.Helper()
	got := decodeOne(t, Config{}, data)
	if len(got) != 1 || got[0].Flow != fuzzFlow || !bytes.Equal(got[0].Payload, payload) {
		t.Fatalf("decoded %+v, want one datagram %v with %q", got, fuzzFlow, payload)
	}
}

func FuzzGRE(f *testing.F) {
	f.Add([]byte("INVITE"), uint8(0))
	f.Add([]byte{0x80, 0, 8, 0, 0, 0, 0, 0}, uint8(7))
	f.Add(cat(greHdr(0x6558, false, true, false), ether(0x0800), ipv4(17, udpHdr(1, 2, nil))), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, opts uint8) {
		outer := func(p []byte) []byte { return cat(ether(0x0800), ipv4From(outerA, outerB, 47, p)) }
		decodeOne(t, Config{MaxTCPBuffer: 4096}, outer(b))
		inner := ipv4(17, udpHdr(5060, 5062, b))
		if len(inner) > 65535 {
			return
		}
		csum, key, seq := opts&1 != 0, opts&2 != 0, opts&4 != 0
		if opts&8 != 0 {
			roundTrip(t, outer(cat(greHdr(etherTypeTEB, csum, key, seq), ether(0x0800), inner)), b)
		} else {
			roundTrip(t, outer(cat(greHdr(etherTypeIPv4, csum, key, seq), inner)), b)
		}
	})
}

func FuzzERSPAN(f *testing.F) {
	f.Add([]byte("INVITE"), uint8(0), uint16(100))
	f.Add([]byte{0x10, 0x37, 0x20, 0x64, 0, 0, 0, 7}, uint8(1), uint16(0))
	f.Add([]byte{0x20, 0x37, 0, 0x64, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(2), uint16(4095))
	f.Fuzz(func(t *testing.T, b []byte, kind uint8, vlan uint16) {
		outer := func(p []byte) []byte { return cat(ether(0x0800), ipv4From(outerA, outerB, 47, p)) }
		decodeOne(t, Config{MaxTCPBuffer: 4096}, outer(cat(greHdr(etherTypeERSPAN, false, false, true), b)))
		decodeOne(t, Config{MaxTCPBuffer: 4096}, outer(cat(greHdr(etherTypeERSPN3, false, false, true), b)))
		inner := ipv4(17, udpHdr(5060, 5062, b))
		if len(inner) > 65535 {
			return
		}
		mirrored := cat(ether(0x0800, 0x8100, vlan&0x0fff), inner)
		var pkt []byte
		switch kind % 4 {
		case 0:
			pkt = outer(cat(greHdr(etherTypeERSPAN, false, false, false), mirrored))
		case 1:
			pkt = outer(cat(greHdr(etherTypeERSPAN, false, false, true), erspan2Hdr(), mirrored))
		case 2:
			pkt = outer(cat(greHdr(etherTypeERSPN3, false, false, true), erspan3Hdr(0, false), mirrored))
		default:
			pkt = outer(cat(greHdr(etherTypeERSPN3, false, true, true), erspan3Hdr(0, true), mirrored))
		}
		roundTrip(t, pkt, b)
		if got := decodeOne(t, Config{}, pkt); got[0].VLAN != vlan&0x0fff {
			t.Fatalf("VLAN %d, want %d", got[0].VLAN, vlan&0x0fff)
		}
	})
}

func FuzzVXLAN(f *testing.F) {
	f.Add([]byte("INVITE"), uint32(5000))
	f.Add([]byte{0x08, 0, 0, 0, 0, 0x13, 0x88, 0}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, vni uint32) {
		viaUDP := func(p []byte) []byte {
			return cat(ether(0x0800), ipv4From(outerA, outerB, 17, udpHdr(40000, 4789, p)))
		}
		decodeOne(t, Config{MaxTCPBuffer: 4096}, viaUDP(b))
		inner := ipv4(17, udpHdr(5060, 5062, b))
		if len(inner) > 65000 {
			return
		}
		roundTrip(t, viaUDP(cat(vxlanHdr(vni&0xffffff), ether(0x0800), inner)), b)
	})
}

// wsFrameBytes builds one WebSocket frame (RFC 6455 section 5.2) with the
// given FIN bit, opcode and payload, masked with key when masked.
func wsFrameBytes(fin bool, op byte, payload []byte, masked bool, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

const wsUpgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n"

// FuzzWebSocket frames two SIP messages as WebSocket messages (masked or
// not, fragmented at a fuzzed point, with a ping between the fragments)
// after an upgrade request, cuts the byte stream into TCP segments at
// fuzzed points after the request, and checks the two messages come out whole; the raw bytes
// after the upgrade must not panic the framer.
func FuzzWebSocket(f *testing.F) {
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, uint16(10), uint16(3), true)
	f.Add([]byte{0x01, 0x83, 1, 2, 3, 4, 5, 6, 7, 0x80, 0x01, 'x'}, uint16(0), uint16(200), false)
	f.Add([]byte{0x82, 0x7e, 0xff, 0xff}, uint16(5), uint16(1), true)
	f.Fuzz(func(t *testing.T, raw []byte, cut, split uint16, masked bool) {
		seg := func(seq uint32, p []byte) *capture.Frame {
			return frame(capture.LinkTypeEthernet, cat(ether(0x0800), ipv4(6, tcpHdr(40000, 8080, seq, 0, p))))
		}
		feed := func(stream []byte, cuts ...int) []string {
			d := NewDecoder(Config{MaxTCPBuffer: 8192})
			var c collector
			prev := 0
			for _, at := range append(cuts, len(stream)) {
				if at < prev || at > len(stream) {
					continue
				}
				if at > prev {
					d.Decode(seg(1+uint32(prev), stream[prev:at]), &c)
				}
				prev = at
			}
			return c.payloads()
		}
		feed(append([]byte(wsUpgrade), raw...), len(wsUpgrade)+int(cut)%(len(raw)+1))

		msgs := []string{sipOptions, sipInvite}
		key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
		stream := []byte(wsUpgrade)
		at := int(split) % len(sipOptions)
		stream = append(stream, wsFrameBytes(false, wsText, []byte(msgs[0][:at]), masked, key)...)
		stream = append(stream, wsFrameBytes(true, wsPing, raw[:min(len(raw), 125)], masked, key)...)
		stream = append(stream, wsFrameBytes(true, wsContinuation, []byte(msgs[0][at:]), masked, key)...)
		stream = append(stream, wsFrameBytes(true, wsBinary, []byte(msgs[1]), masked, key)...)
		// The first segment holds the whole upgrade request: that is how
		// a stream on a port that is not a SIP port is recognised.
		c1 := len(wsUpgrade) + int(cut)%(len(stream)-len(wsUpgrade)+1)
		got := feed(stream, c1, c1+int(split)%64)
		if len(got) != 2 || got[0] != msgs[0] || got[1] != msgs[1] {
			t.Fatalf("messages %q, want %q", got, msgs)
		}
	})
}

// sctpChunk builds one DATA chunk (RFC 9260 section 3.3.1), padded.
func sctpChunk(flags byte, tsn uint32, sid uint16, ppid uint32, data []byte) []byte {
	b := cat([]byte{0, flags}, be16(uint16(16+len(data))), be32(tsn), be16(sid), be16(0), be32(ppid), data)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// sctpPkt wraps chunks in an SCTP common header and IPv4/Ethernet.
func sctpPkt(chunks ...[]byte) []byte {
	return cat(ether(0x0800), ipv4(132, cat(be16(5060), be16(5062), be32(0x1234), be32(0), cat(chunks...))))
}

// FuzzSCTP feeds raw chunk bytes, then sends a message split into fuzzed
// fragments (interleaved with a second stream's message) and checks both
// come out whole.
func FuzzSCTP(f *testing.F) {
	f.Add([]byte{0, 3, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'd'}, uint8(3))
	f.Add([]byte{1, 0, 0, 4}, uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, parts uint8) {
		decodeOne(t, Config{MaxTCPBuffer: 4096}, cat(ether(0x0800), ipv4(132, cat(make([]byte, 12), raw))))
		msg := []byte(sipInvite)
		n := int(parts)%8 + 1
		var chunks [][]byte
		step := (len(msg) + n - 1) / n
		for i := 0; i*step < len(msg); i++ {
			var flags byte
			if i == 0 {
				flags |= sctpFlagBegin
			}
			if (i+1)*step >= len(msg) {
				flags |= sctpFlagEnd
			}
			chunks = append(chunks, sctpChunk(flags, 100+uint32(i), 1, 0, msg[i*step:min(len(msg), (i+1)*step)]))
			if i == 0 {
				chunks = append(chunks, sctpChunk(sctpFlagBegin|sctpFlagEnd, 900, 2, 0, []byte(sipOptions)))
			}
		}
		d := NewDecoder(Config{})
		var c collector
		for _, ch := range chunks {
			d.Decode(frame(capture.LinkTypeEthernet, sctpPkt(ch)), &c)
		}
		got := c.payloads()
		want := []string{sipOptions, sipInvite}
		if step >= len(msg) { // one unfragmented chunk, before the OPTIONS
			want = []string{sipInvite, sipOptions}
		}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("messages %q, want %q", got, want)
		}
		for _, g := range c.got {
			if g.Flow.Proto != ProtoSCTP {
				t.Fatalf("flow %v, want sctp", g.Flow)
			}
		}
	})
}
