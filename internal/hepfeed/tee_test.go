package hepfeed

import (
	"net/netip"
	"testing"

	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/hep"
)

type port5060 struct{}

func (port5060) SIPPort(p uint16) bool { return p == 5060 }

func TestHEPType(t *testing.T) {
	rtpPkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff}
	rtcpPkt := []byte{0x81, 201, 0, 7, 0, 0, 0, 1}
	tests := []struct {
		name    string
		proto   decode.Proto
		sport   uint16
		payload []byte
		withRTP bool
		want    hep.ProtoType
		ok      bool
	}{
		{"sip on any port", decode.ProtoUDP, 7000, []byte("INVITE sip:a@b SIP/2.0\r\n\r\n"), false, hep.TypeSIP, true},
		{"sip over tcp", decode.ProtoTCP, 5060, []byte("SIP/2.0 200 OK\r\n\r\n"), false, hep.TypeSIP, true},
		{"keepalive on the sip port", decode.ProtoUDP, 5060, []byte("\r\n\r\n"), true, hep.TypeSIP, false},
		{"garbage on the sip port", decode.ProtoUDP, 5060, []byte("\x00\x01garbage that is not short enough to be a keepalive......................................."), false, hep.TypeSIP, true},
		{"rtp without hep_rtp", decode.ProtoUDP, 7000, rtpPkt, false, 0, false},
		{"rtp", decode.ProtoUDP, 7000, rtpPkt, true, hep.TypeRTP, true},
		{"rtcp", decode.ProtoUDP, 7001, rtcpPkt, true, hep.TypeRTCP, true},
		{"short rtp", decode.ProtoUDP, 7000, rtpPkt[:9], true, hep.TypeRTP, false},
		{"not version 2", decode.ProtoUDP, 7000, []byte{0x40, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, true, 0, false},
		{"rtp-like over tcp", decode.ProtoTCP, 7000, rtpPkt, true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dg := decode.Datagram{Flow: decode.Flow{Src: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), tt.sport),
				Dst: netip.MustParseAddrPort("10.0.0.2:9999"), Proto: tt.proto}, Payload: tt.payload}
			got, ok := Type(&dg, port5060{}, tt.withRTP)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("Type() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
