package decode

import (
	"bytes"
	"testing"

	"github.com/voipsensor/voipsensor/internal/capture"
)

// FuzzDecode feeds arbitrary bytes as a frame of each supported link type
// (plus an unknown one), several frames per input so fragment and stream
// state carry over. Decode must not panic and delivered payloads must stay
// inside the frame or a bounded buffer.
func FuzzDecode(f *testing.F) {
	u := udpHdr(5060, 5060, []byte("INVITE"))
	f.Add(uint8(0), cat(ether(0x0800), ipv4(17, u)))
	f.Add(uint8(0), cat(ether(0x86dd, 0x88a8, 1, 0x8100, 2), ipv6(0, cat(ext6(44, 0), frag6(17, 8, true, 1), u))))
	f.Add(uint8(1), cat([]byte{2, 0, 0, 0}, ipv4Opts(addrA, addrB, 17, 5, 0x2000, nil, u[:8])))
	f.Add(uint8(2), ipv4(6, tcpHdr(1, 5060, 7, 0, []byte(sipInvite))))
	f.Add(uint8(3), cat(be16(0), be16(1), be16(6), make([]byte, 8), be16(0x0800), ipv4(17, u)))
	f.Add(uint8(4), cat(be16(0x86dd), make([]byte, 18), ipv6(17, u)))
	for _, name := range []string{"gre-teb", "erspan2", "erspan3", "vxlan", "ip6ip", "pppoe", "mpls", "tzsp", "l2tp", "nested-vxlan"} {
		f.Add(uint8(0), tunnelFrames()[name])
	}
	linkTypes := []capture.LinkType{
		capture.LinkTypeEthernet, capture.LinkTypeNull, capture.LinkTypeRaw, capture.LinkTypeLinuxSLL,
		capture.LinkTypeLinuxSLL2, capture.LinkTypeIPv4, capture.LinkTypeIPv6, capture.LinkType(9999),
	}
	f.Fuzz(func(t *testing.T, lt uint8, data []byte) {
		d := NewDecoder(Config{MaxTCPBuffer: 4096, MaxFragmentBytes: 1 << 16, MaxFragmentQueues: 4, MaxTCPStreams: 4})
		h := HandlerFunc(func(dg *Datagram) {
			if len(dg.Payload) > 65535 {
				t.Fatalf("payload of %d bytes", len(dg.Payload))
			}
		})
		fr := frame(linkTypes[int(lt)%len(linkTypes)], data)
		d.Decode(fr, h)
		// Same bytes again, and cut short, to exercise state and truncation.
		d.Decode(fr, h)
		fr.Data = data[:len(data)/2]
		d.Decode(fr, h)
		st := d.Stats()
		if st.Frames != 3 {
			t.Fatalf("Frames = %d, want 3", st.Frames)
		}
		n := 0
		for _, s := range d.streams {
			if s.anyPort {
				n++
			}
		}
		if n != d.nAnyPort {
			t.Fatalf("nAnyPort = %d, %d streams on no SIP port", d.nAnyPort, n)
		}
	})
}

// FuzzTCPFraming splits a byte stream into TCP segments at fuzzed points.
// Framing must not panic, every delivered message must frame as exactly
// itself, and for streams that start with a message, the messages must not
// depend on where the stream was cut.
func FuzzTCPFraming(f *testing.F) {
	f.Add([]byte(sipOptions+sipInvite), uint16(10), uint16(100))
	f.Add([]byte("\r\n\r\n"+sipCompact+sipNoLen), uint16(3), uint16(70))
	f.Add([]byte(sipInvite[:50]), uint16(0), uint16(0))
	f.Add([]byte("SIP/2.0 200 OK\r\nl: 99999\r\n\r\n"+sipOptions), uint16(5), uint16(9))
	f.Add([]byte("\x00\x01garbage\r\n\r\n"+sipOptions), uint16(1), uint16(2))
	f.Fuzz(func(t *testing.T, stream []byte, cut1, cut2 uint16) {
		if len(stream) > 2048 {
			return
		}
		const limit = 2048
		whole := feedSplit(stream, nil, limit)
		a, b := int(cut1)%(len(stream)+1), int(cut2)%(len(stream)+1)
		split := feedSplit(stream, sortInts([]int{a, b}), limit)
		for _, m := range split {
			if n, err := frameSIP([]byte(m), limit); err != nil || n != len(m) {
				t.Fatalf("delivered %q, which frames as %d, %v", m, n, err)
			}
		}
		// Garbage resyncs at segment boundaries, so only clean streams
		// (every prefix frames without error) must be split-invariant.
		if clean(stream, limit) && len(split) != len(whole) {
			t.Fatalf("whole stream gave %d messages, split at %d,%d gave %d", len(whole), a, b, len(split))
		}
		if clean(stream, limit) {
			for i := range whole {
				if !bytes.Equal([]byte(whole[i]), []byte(split[i])) {
					t.Fatalf("message %d differs: %q vs %q", i, whole[i], split[i])
				}
			}
		}
	})
}

// clean reports whether stream is a sequence of keepalives and complete or
// incomplete SIP messages without framing errors.
func clean(stream []byte, limit int) bool {
	b := stream
	for {
		b = skipKeepalive(b)
		if len(b) == 0 {
			return true
		}
		n, err := frameSIP(b, limit)
		if err != nil {
			return false
		}
		if n == 0 {
			// An incomplete message: every prefix of it must also frame
			// cleanly, or a cut could turn it into garbage.
			for i := 1; i <= len(b); i++ {
				if _, err := frameSIP(b[:i], limit); err != nil {
					return false
				}
			}
			return true
		}
		for i := 1; i < n; i++ {
			if _, err := frameSIP(b[:i], limit); err != nil {
				return false
			}
		}
		b = b[n:]
	}
}
