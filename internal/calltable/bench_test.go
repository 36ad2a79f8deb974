package calltable

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/decode"
)

// BenchmarkHandleRTP measures the table's per-packet cost on the media
// path: 300 answered calls (loadCalls), their 600 streams interleaved as in
// a capture, 20 ms apart per stream with a little jitter. One op is one RTP
// packet through HandleDatagram.
func BenchmarkHandleRTP(b *testing.B) {
	const calls = 300
	tab := New(Config{}, nil)
	loadCalls(tab, calls)
	type flow struct {
		dg  decode.Datagram
		pkt []byte
	}
	flows := make([]flow, 0, 2*calls)
	for i := 0; i < calls; i++ {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		c := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		ma, mb := netip.AddrPortFrom(a, uint16(10000+i%20000*2)), netip.AddrPortFrom(c, uint16(40000+i%10000*2))
		for _, f := range []decode.Flow{{Src: ma, Dst: mb, Proto: decode.ProtoUDP}, {Src: mb, Dst: ma, Proto: decode.ProtoUDP}} {
			p := rtpPacket(0, 0, uint32(i)+uint32(len(flows)%2), 0)
			flows = append(flows, flow{dg: decode.Datagram{Flow: f, Payload: p}, pkt: p})
		}
	}
	start := t0.Add(time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		round, k := n/len(flows), n%len(flows)
		f := &flows[k]
		binary.BigEndian.PutUint16(f.pkt[2:], uint16(2+round))
		binary.BigEndian.PutUint32(f.pkt[4:], uint32(160*(2+round)))
		f.dg.Time = start.Add(time.Duration(round)*20*time.Millisecond + time.Duration(k)*10*time.Microsecond +
			time.Duration(n*7919%3000)*time.Microsecond)
		tab.HandleDatagram(&f.dg)
	}
	b.StopTimer()
	if st := tab.Stats(); st.RTPPackets < uint64(b.N) || st.Calls != calls {
		b.Fatalf("rtp packets %d, calls %d; want >= %d, %d", st.RTPPackets, st.Calls, b.N, calls)
	}
}
