package sensor

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/decode"
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
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
			got, ok := hepType(&dg, port5060{}, tt.withRTP)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("hepType() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestHEPCollectorWithRecording: a sensor capturing (a capture file
// replayed in a loop) and recording calls to the spool while its HEP
// collector analyses packets of another call on another goroutine. The
// recorder saves the captured frame being decoded, so collected packets
// must not reach it: under -race this fails without hepSkipRecorder, and
// no file of the collected call is written.
func TestHEPCollectorWithRecording(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	for k, v := range map[string]string{"spooldir": dir, "managerport": "0", "web_port": "0", "metrics_bind": "",
		"hep_bind": "127.0.0.1:0", "savesip": "yes", "savertp": "yes"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(cfg, Options{ReadFile: sharedtest.Pcap(t, "sipp_rtpstream.pcap"), Loop: true, Speed: 20,
		StatusEvery: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	conn, err := net.Dial("udp", s.hep.collector.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a, b := netip.MustParseAddrPort("192.0.2.10:5060"), netip.MustParseAddrPort("192.0.2.20:5060")
	msgs := []string{
		"INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: hep-only-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>;tag=2\r\nCall-ID: hep-only-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	}
	sent := 0
	for i := range 200 {
		src, dst := a, b
		if i%2 == 1 {
			src, dst = b, a
		}
		p := hep.Packet{IPProto: 17, Type: hep.TypeSIP, Src: src, Dst: dst, Time: time.Now(), Payload: []byte(msgs[i%2])}
		buf, _ := p.AppendBinary(nil)
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
		sent++
		time.Sleep(time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); s.hep.collector.Stats().Delivered < uint64(sent); {
		if time.Now().After(deadline) {
			t.Fatalf("collector: %+v, want %d delivered", s.hep.collector.Stats(), sent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var recorded, hepFiles int
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".pcap") {
			recorded++
			if strings.Contains(path, "hep-only-call") {
				hepFiles++
			}
		}
		return nil
	})
	if recorded == 0 || hepFiles != 0 {
		t.Errorf("%d pcaps recorded, %d of the collected call; want some, none of it", recorded, hepFiles)
	}
}
