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
	"github.com/voipsensor/voipsensor/internal/hep"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestHEPCollectorWithRecording: a sensor capturing (a capture file
// replayed in a loop) and recording calls to the spool while its HEP
// collector analyses packets of another call on another goroutine. The
// recorder saves the captured frame being decoded, so collected packets
// must not reach it: under -race this fails without the feeder's SkipRecorder, and
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
