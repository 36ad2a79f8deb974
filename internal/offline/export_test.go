package offline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/spool"
)

// tcpSIPCapture writes a capture of two calls over one SIP-over-TCP
// connection, each INVITE split over two segments with a segment of the
// other call's messages between them, and returns its path and the
// frames in order.
func tcpSIPCapture(t *testing.T) (string, [][]byte) {
	t.Helper()
	msg := func(first, callID, cseq string) string {
		return first + "\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK" + callID + cseq[:1] +
			"\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: " + callID +
			"\r\nCSeq: " + cseq + "\r\nContent-Length: 0\r\n\r\n"
	}
	inviteA := msg("INVITE sip:bob@example.com SIP/2.0", "call-a", "1 INVITE")
	inviteB := msg("INVITE sip:bob@example.com SIP/2.0", "call-b", "1 INVITE")
	byeA := msg("BYE sip:bob@example.com SIP/2.0", "call-a", "2 BYE")
	// One direction of one connection: A's INVITE in two segments, B's
	// INVITE whole, then A's BYE.
	payloads := []string{inviteA[:40], inviteA[40:], inviteB, byeA}
	seq := uint32(1000)
	var frames [][]byte
	for _, p := range payloads {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 5060, Seq: seq, ACK: true, PSH: true, Window: 65535}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(p)); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(buf.Bytes()))
		seq += uint32(len(p))
	}
	name := filepath.Join(t.TempDir(), "tcp.pcap")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := spool.NewWriter(f)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, b := range frames {
		fr := capture.Frame{Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), Data: b, Length: len(b), LinkType: capture.LinkTypeEthernet}
		if err := w.WriteFrame(&fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return name, frames
}

// TestExportTCPSegments: exporting a call whose SIP came over TCP keeps
// every segment that carried its messages, the first part of a split
// INVITE included, and none of the other call's.
func TestExportTCPSegments(t *testing.T) {
	name, frames := tcpSIPCapture(t)
	for _, tt := range []struct {
		callID string
		want   []int // frames of the capture in the export, in order
	}{{"call-a", []int{0, 1, 3}}, {"call-b", []int{2}}} {
		var out bytes.Buffer
		res, err := Export(context.Background(), ExportOptions{Capture: name, CallID: tt.callID}, &out)
		if err != nil {
			t.Fatalf("%s: %v", tt.callID, err)
		}
		got := readFrames(t, out.Bytes())
		var idx []int
		for _, g := range got {
			i := slices.IndexFunc(frames, func(b []byte) bool { return bytes.Equal(b, g) })
			idx = append(idx, i)
		}
		if fmt.Sprint(idx) != fmt.Sprint(tt.want) || res.Frames != len(tt.want) || res.Calls != 1 {
			t.Errorf("%s: exported frames %v (result %+v), want %v of one call", tt.callID, idx, res, tt.want)
		}
	}
}

func readFrames(t *testing.T, pcap []byte) [][]byte {
	t.Helper()
	name := filepath.Join(t.TempDir(), "out.pcap")
	if err := os.WriteFile(name, pcap, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := capture.OpenFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	for {
		var fr capture.Frame
		if err := f.ReadFrame(&fr); err != nil {
			return out
		}
		out = append(out, bytes.Clone(fr.Data))
	}
}

// TestExportWAV: the call's WAV comes out of the spool byte for byte; a
// call without audio, or none, is ErrNoSuchCall.
func TestExportWAV(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 12, 30, 15, 0, time.UTC)
	wav := []byte("RIFF....WAVEfmt the call's audio")
	rel := spool.AudioPath("abc@x", start, time.UTC)
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, wav, 0o640); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	name, err := ExportWAV(context.Background(), dir, "abc@x", &out)
	if err != nil || name != rel || !bytes.Equal(out.Bytes(), wav) {
		t.Fatalf("ExportWAV = %q, %v, %d bytes; want %q and the file", name, err, out.Len(), rel)
	}
	for _, id := range []string{"other@x", ""} {
		if _, err := ExportWAV(context.Background(), dir, id, io.Discard); !errors.Is(err, ErrNoSuchCall) {
			t.Errorf("ExportWAV(%q) = %v, want ErrNoSuchCall", id, err)
		}
	}
}
