package demo_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/capture"
	"github.com/voipsensor/voipsensor/internal/demo"
	"github.com/voipsensor/voipsensor/internal/g711"
	"github.com/voipsensor/voipsensor/internal/offline"
)

// What scripts/make-demo.sh asks the generator for (see its header).
const (
	wantCalls         = 8
	wantAnswered      = 6
	wantPCMU          = 3 // answered, the English calls
	wantPCMA          = 3 // answered, two German and the Czech one
	wantRegistrations = 4
	maxGzipBytes      = 4 << 20
)

type collect struct {
	mu    sync.Mutex
	calls []*calltable.CallInfo
	regs  []*calltable.RegistrationInfo
}

func (c *collect) CallEnded(ci *calltable.CallInfo) {
	c.mu.Lock()
	c.calls = append(c.calls, ci)
	c.mu.Unlock()
}

func (c *collect) RegistrationChanged(r *calltable.RegistrationInfo) {
	c.mu.Lock()
	c.regs = append(c.regs, r)
	c.mu.Unlock()
}

func TestAnalyze(t *testing.T) {
	if n := len(demo.Capture()); n > maxGzipBytes {
		t.Errorf("demo.pcap.gz is %d bytes, want at most %d", n, maxGzipBytes)
	}
	path := filepath.Join(t.TempDir(), "demo.pcap.gz")
	if err := os.WriteFile(path, demo.Capture(), 0o600); err != nil {
		t.Fatal(err)
	}
	var sink collect
	res, err := offline.Analyze(context.Background(), []string{path}, offline.AnalyzeOptions{}, &sink)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if res.Decode.Malformed != 0 || res.Table.SIPMalformed != 0 {
		t.Errorf("malformed: decode %d, SIP %d; want none", res.Decode.Malformed, res.Table.SIPMalformed)
	}
	if len(sink.calls) != wantCalls {
		t.Fatalf("%d calls, want %d", len(sink.calls), wantCalls)
	}
	states := map[calltable.State]int{}
	codecs := map[string]int{}
	lossy := 0
	for _, c := range sink.calls {
		states[c.State]++
		if c.State != calltable.StateEnded {
			if len(c.Streams) != 0 {
				t.Errorf("call %s (%v) has %d streams, want none", c.CallID, c.State, len(c.Streams))
			}
			continue
		}
		if len(c.Streams) != 2 {
			t.Errorf("call %s has %d streams, want 2", c.CallID, len(c.Streams))
			continue
		}
		codecs[c.Streams[0].Stats.Codec]++
		if d := c.ConnectDuration(); d < 20*time.Second || d > 46*time.Second {
			t.Errorf("call %s talks for %v, want 20-45 s (±20%% of the requested talk time)", c.CallID, d)
		}
		lost := 0
		for _, s := range c.Streams {
			st := s.Stats
			if f := float64(st.Lost) / float64(st.Expected); f > 0.01 {
				lost++
				if f > 0.06 || st.JitterMaxMS < 10 {
					t.Errorf("call %s stream %v: loss %.1f%%, max jitter %.1f ms; want about 3%% and tens of ms", c.CallID, s.Src, 100*f, st.JitterMaxMS)
				}
			}
		}
		if lost > 0 {
			lossy++
		}
	}
	want := map[calltable.State]int{calltable.StateEnded: wantAnswered, calltable.StateFailed: 1, calltable.StateCancelled: 1}
	if !mapsEqual(states, want) {
		t.Errorf("call states %v, want %v", states, want)
	}
	if wc := map[string]int{"PCMU": wantPCMU, "PCMA": wantPCMA}; !mapsEqual(codecs, wc) {
		t.Errorf("codecs %v, want %v", codecs, wc)
	}
	if lossy != 1 {
		t.Errorf("%d calls with loss, want 1", lossy)
	}
	users := map[string]bool{}
	for _, r := range sink.regs {
		users[r.User] = true
	}
	if len(users) != wantRegistrations {
		t.Errorf("registrations of %d users, want %d", len(users), wantRegistrations)
	}
	if got := maxConcurrent(sink.calls); got < 3 || got > 4 {
		t.Errorf("at most %d calls at once, want 3-4", got)
	}
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// maxConcurrent is the largest number of calls between INVITE and end at
// any moment.
func maxConcurrent(calls []*calltable.CallInfo) int {
	type edge struct {
		t time.Time
		d int
	}
	var es []edge
	for _, c := range calls {
		es = append(es, edge{c.InviteTime, 1}, edge{c.EndTime, -1})
	}
	slices.SortFunc(es, func(a, b edge) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.d - b.d // ends first
	})
	n, most := 0, 0
	for _, e := range es {
		n += e.d
		most = max(most, n)
	}
	return most
}

// window is the length of the time windows in which speech is measured.
const window = 500 * time.Millisecond

// TestSpeechTakesTurns decodes every RTP payload with internal/g711 and
// measures the signal level per direction in 500 ms windows: in every
// answered call both directions must speak, and mostly not at once.
func TestSpeechTakesTurns(t *testing.T) {
	src, err := demo.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	type flow struct{ src, dst netip.AddrPort }
	energy := map[flow]map[int64][2]float64{} // window → sum of squares, samples
	var first time.Time
	var fr capture.Frame
	pcm := make([]int16, 1024)
	for {
		err := src.ReadFrame(&fr)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first.IsZero() {
			first = fr.Time
		}
		p := gopacket.NewPacket(fr.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || udp == nil || udp.SrcPort == 5060 || udp.DstPort == 5060 || udp.SrcPort%2 == 1 {
			continue // SIP, RTCP, IP fragments
		}
		pl := udp.Payload
		if len(pl) < 12 || pl[0]>>6 != 2 {
			t.Fatalf("not RTP: % x", pl[:min(len(pl), 12)])
		}
		voice := pl[12:]
		switch pt := pl[1] & 0x7f; pt {
		case 0:
			g711.DecodeUlawTo(pcm, voice)
		case 8:
			g711.DecodeAlawTo(pcm, voice)
		default:
			t.Fatalf("payload type %d", pt)
		}
		var e float64
		for _, v := range pcm[:len(voice)] {
			e += float64(v) * float64(v)
		}
		s, _ := netip.AddrFromSlice(ip.SrcIP)
		d, _ := netip.AddrFromSlice(ip.DstIP)
		f := flow{netip.AddrPortFrom(s, uint16(udp.SrcPort)), netip.AddrPortFrom(d, uint16(udp.DstPort))}
		if energy[f] == nil {
			energy[f] = map[int64][2]float64{}
		}
		w := int64(fr.Time.Sub(first) / window)
		acc := energy[f][w]
		energy[f][w] = [2]float64{acc[0] + e, acc[1] + float64(len(voice))}
	}
	const speech = 300.0 // RMS; silence decodes to 0 (µ-law) or ±8 (A-law)
	pairs := 0
	for f, fwd := range energy {
		if f.src.String() > f.dst.String() {
			continue
		}
		rev := energy[flow{f.dst, f.src}]
		if rev == nil {
			t.Errorf("%v → %v has no reverse stream", f.src, f.dst)
			continue
		}
		pairs++
		var talk [2]int
		both, n := 0, 0
		for w, a := range fwd {
			b, ok := rev[w]
			if !ok || a[1] < 3000 || b[1] < 3000 {
				continue // a window the call does not fill in both directions
			}
			n++
			la, lb := math.Sqrt(a[0]/a[1]) > speech, math.Sqrt(b[0]/b[1]) > speech
			if la {
				talk[0]++
			}
			if lb {
				talk[1]++
			}
			if la && lb {
				both++
			}
		}
		// Turn boundaries put both voices into one window now and then;
		// a window with both speaking throughout would be a misalignment.
		if talk[0] < n/5 || talk[1] < n/5 || both > n/4 {
			t.Errorf("%v ↔ %v: %d windows of %v, speech forward %d, backward %d, both %d; want both sides speaking, mostly in turn",
				f.src, f.dst, n, window, talk[0], talk[1], both)
		}
	}
	if pairs != wantAnswered {
		t.Errorf("%d RTP stream pairs, want %d", pairs, wantAnswered)
	}
}

func TestOpenTwice(t *testing.T) {
	var counts [2]int
	for i := range counts {
		src, err := demo.Open()
		if err != nil {
			t.Fatal(err)
		}
		var fr capture.Frame
		for src.ReadFrame(&fr) == nil {
			counts[i]++
		}
		src.Close()
	}
	if counts[0] == 0 || counts[0] != counts[1] {
		t.Errorf("two Opens read %d and %d frames, want the same, non-zero", counts[0], counts[1])
	}
}
