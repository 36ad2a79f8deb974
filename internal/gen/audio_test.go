package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/voipsensor/voipsensor/internal/g711"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestParseAudioSox checks the WAV reader against sox: the same signal
// written by sox as WAV and as raw little-endian samples must parse to the
// same samples, and sox's own formats that are not 8 kHz mono 16-bit must be
// refused.
func TestParseAudioSox(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		sharedtest.Missing(t, "sox not installed (scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	sox := func(args ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, fmt.Sprint(len(args), args[len(args)-1]))
		cmd := exec.Command("sox", append(append([]string{"-D", "-n"}, args[:len(args)-1]...), out, "synth", "0.25", "sine", args[len(args)-1])...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sox %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wav := sox("-r", "8000", "-c", "1", "-b", "16", "-t", "wav", "440")
	raw := sox("-r", "8000", "-c", "1", "-b", "16", "-e", "signed", "-L", "-t", "raw", "440")
	got, err := ParseAudio(wav)
	if err != nil {
		t.Fatalf("ParseAudio(sox WAV): %v", err)
	}
	want, err := ParseAudio(raw)
	if err != nil {
		t.Fatalf("ParseAudio(sox raw): %v", err)
	}
	if len(want) != 2000 || !slices.Equal(got, want) {
		t.Errorf("WAV gives %d samples, raw %d (want 2000 each); equal = %v", len(got), len(want), slices.Equal(got, want))
	}
	for _, bad := range [][]string{
		{"-r", "8000", "-c", "2", "-b", "16", "-t", "wav", "440"},
		{"-r", "16000", "-c", "1", "-b", "16", "-t", "wav", "440"},
		{"-r", "8000", "-c", "1", "-b", "8", "-t", "wav", "440"},
		{"-r", "8000", "-c", "1", "-e", "u-law", "-t", "wav", "440"},
	} {
		if _, err := ParseAudio(sox(bad...)); !errors.Is(err, ErrAudio) {
			t.Errorf("ParseAudio(sox %v) = %v, want ErrAudio", bad, err)
		}
	}
}

func TestParseAudio(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []int16 // nil: ErrAudio
	}{
		{"raw", []byte{0x01, 0x00, 0xff, 0xff, 0x00, 0x80}, []int16{1, -1, -32768}},
		{"odd raw", []byte{1, 2, 3}, nil},
		{"empty", nil, nil},
		{"RIFF not WAVE", []byte("RIFF\x04\x00\x00\x00AVI "), nil},
		{"WAVE without data", []byte("RIFF\x04\x00\x00\x00WAVE"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAudio(tt.in)
			if tt.want == nil {
				if !errors.Is(err, ErrAudio) {
					t.Errorf("ParseAudio(% x) = %v, %v; want ErrAudio", tt.in, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseAudio(% x) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func writeRaw(t *testing.T, path string, pcm []int16) {
	t.Helper()
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAddFlagsAudio(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")
	writeRaw(t, a, []int16{1, 2, 3})
	writeRaw(t, b, []int16{-4})
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	if err := fs.Parse([]string{"-audio-caller", a, "-audio-callee", b, "-addr-offset", "20"}); err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Audio, [2][]int16{{1, 2, 3}, {-4}}; !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Errorf("Audio = %v, want %v", got, want)
	}
	if cfg.AddrOffset != 20 {
		t.Errorf("AddrOffset = %d, want 20", cfg.AddrOffset)
	}
	if err := fs.Parse([]string{"-audio-caller", filepath.Join(dir, "missing.raw")}); err == nil {
		t.Error("missing audio file accepted")
	}
}

// tonePCM is n samples of a freq Hz sine at amplitude 8000.
func tonePCM(n int, freq float64) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/sampleRate))
	}
	return pcm
}

type rtpPacket struct {
	t    time.Time
	loud int // 1 loud, 0 quiet, -1 in between (a turn boundary inside the packet)
}

// TestAudioTurnTaking plays a two-sided "conversation" (the caller talks
// for 1 s, then the callee for 1.5 s; the caller's loop is shorter by
// 50 ms of its trailing silence and must be padded) and checks in every call that while
// one side is loud the other is quiet, as it would not be with independent
// random offsets per direction.
func TestAudioTurnTaking(t *testing.T) {
	caller := append(tonePCM(8000, 400), make([]int16, 11600)...) // 50 ms short: padded by the generator
	callee := append(make([]int16, 8000), tonePCM(12000, 1000)...)
	cfg := DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime, cfg.Codec, cfg.Seed = 4, 2, 6*time.Second, "PCMA", 7
	cfg.Audio = [2][]int16{caller, callee}
	cfg.AddrOffset = 100
	_, pcap, _ := generate(t, cfg)

	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string][]rtpPacket{} // "src>dst" → packets
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || udp == nil || udp.SrcPort == 5060 || udp.DstPort == 5060 || udp.SrcPort%2 == 1 {
			continue
		}
		if ip.SrcIP[0] != 10 || int(ip.SrcIP[2])<<8|int(ip.SrcIP[3]) <= 100 {
			t.Fatalf("source %v: AddrOffset 100 not applied", ip.SrcIP)
		}
		pl := udp.Payload[12:]
		pcm := make([]int16, len(pl))
		g711.DecodeAlawTo(pcm, pl)
		var e float64
		for _, v := range pcm {
			e += float64(v) * float64(v)
		}
		rms := math.Sqrt(e / float64(len(pcm)))
		st := -1
		switch {
		case rms > 5000: // the tone's RMS is 8000/√2 = 5657: at least 78% of the packet is tone
			st = 1
		case rms < 20:
			st = 0
		}
		k := fmt.Sprintf("%v:%d>%v:%d", ip.SrcIP, udp.SrcPort, ip.DstIP, udp.DstPort)
		streams[k] = append(streams[k], rtpPacket{ci.Timestamp, st})
	}
	pairs := 0
	for k, fwd := range streams {
		i := bytes.IndexByte([]byte(k), '>')
		src, dst := k[:i], k[i+1:]
		rev, ok := streams[dst+">"+src]
		if !ok {
			t.Fatalf("stream %s has no reverse", k)
		}
		if src > dst {
			continue // each pair once
		}
		pairs++
		var loud, compared, clash [2]int
		for _, p := range fwd {
			// The reverse packet nearest in time: their 20 ms windows
			// overlap by at least 10 ms, so they cannot both be 78% loud
			// (see below) unless both sides talk at once.
			j, _ := slices.BinarySearchFunc(rev, p.t, func(q rtpPacket, t time.Time) int { return q.t.Compare(t) })
			if j == len(rev) || j > 0 && p.t.Sub(rev[j-1].t) < rev[j].t.Sub(p.t) {
				j--
			}
			if p.loud < 0 || rev[j].loud < 0 {
				continue
			}
			compared[p.loud]++
			loud[rev[j].loud]++
			if p.loud == rev[j].loud {
				clash[p.loud]++
			}
		}
		n := compared[0] + compared[1]
		if clash[0]+clash[1] != 0 || compared[0] < n/4 || compared[1] < n/4 {
			t.Errorf("%s: %d packet pairs, forward quiet/loud %v, reverse quiet/loud %v, both quiet %d, both loud %d; want alternating turns",
				k, n, compared, loud, clash[0], clash[1])
		}
	}
	if pairs != cfg.Calls {
		t.Errorf("%d stream pairs, want %d", pairs, cfg.Calls)
	}
}
