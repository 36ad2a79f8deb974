package rtp

import (
	"encoding/hex"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

type rtcpRow struct {
	arrival time.Time
	payload []byte
	c       []string // tshark columns, see testdata/gen.sh
}

func readRTCPFixture(t *testing.T) []rtcpRow {
	t.Helper()
	b, err := os.ReadFile("testdata/baresip_rtcp.rtcp.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var rows []rtcpRow
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		c := strings.Split(line, "\t")
		if len(c) != 15 {
			t.Fatalf("bad line %q", line)
		}
		pl, err := hex.DecodeString(c[3])
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, rtcpRow{arrival: parseEpoch(t, c[0]), payload: pl, c: c})
	}
	return rows
}

func splitNums(t *testing.T, s string) []uint64 {
	t.Helper()
	if s == "" {
		return nil
	}
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), map[bool]int{true: 16, false: 10}[strings.HasPrefix(f, "0x")], 64)
		if err != nil {
			t.Fatalf("bad number %q", f)
		}
		out = append(out, v)
	}
	return out
}

// TestParseRTCPMatchesTshark decodes every RTCP datagram of the baresip
// capture and compares packet types, SR sender info and report blocks with
// tshark's decode of the same bytes.
func TestParseRTCPMatchesTshark(t *testing.T) {
	rows := readRTCPFixture(t)
	if len(rows) != 11 {
		t.Fatalf("got %d RTCP rows, want 11", len(rows))
	}
	for i, r := range rows {
		var types []uint64
		var blocks []ReportBlock
		var sr RTCPPacket
		err := ParseRTCP(r.payload, func(p *RTCPPacket) {
			types = append(types, uint64(p.Type))
			blocks = append(blocks, p.Reports...)
			if p.Type == TypeSR {
				sr = *p
			}
		})
		if err != nil {
			t.Fatalf("row %d: ParseRTCP: %v", i, err)
		}
		if got, want := types, splitNums(t, r.c[4]); !equalU64(got, want) {
			t.Errorf("row %d: types %v, tshark %v", i, got, want)
		}
		if r.c[5] != "" {
			want := splitNums(t, r.c[5])[0]
			ntp := splitNums(t, r.c[6])[0]<<32 | splitNums(t, r.c[7])[0]
			if uint64(sr.SSRC) != want || sr.NTP != ntp {
				t.Errorf("row %d: SR ssrc %x ntp %d, tshark %x %d", i, sr.SSRC, sr.NTP, want, ntp)
			}
		}
		frac := splitNums(t, r.c[9])
		if len(blocks) != len(frac) {
			t.Fatalf("row %d: %d report blocks, tshark %d", i, len(blocks), len(frac))
		}
		ids, cum, jit, lsr, dlsr := splitNums(t, r.c[8]), splitNums(t, r.c[10]), splitNums(t, r.c[11]), splitNums(t, r.c[12]), splitNums(t, r.c[13])
		for j, b := range blocks {
			got := [6]uint64{uint64(b.SSRC), uint64(b.FractionLost), uint64(b.CumulativeLost), uint64(b.Jitter), uint64(b.LSR), uint64(b.DLSR)}
			want := [6]uint64{ids[j], frac[j], cum[j], jit[j], lsr[j], dlsr[j]}
			if got != want {
				t.Errorf("row %d block %d: %v, tshark %v", i, j, got, want)
			}
		}
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRTCPStats feeds the baresip RTCP into the two streams. Expected values
// are worked by hand from tshark's decode (testdata/baresip_rtcp.rtcp.tsv):
//
// About 0xFAD4B7AF (reported by 0x84A5D3A2 at t=…559.426205, …564.426627,
// …569.426341): jitter 10, 8, 9 → max 10/8 = 1.25 ms, avg 27/3/8 = 1.125 ms.
// RTT: SR of 0xFAD4B7AF at …559.424982 has NTP mid32 1945595080 = LSR of the
// first RR, DLSR 65: 1.223 − 65/65.536 = 0.2312 ms; then 564.424225 →
// 2.402 − 131/65.536 = 0.4031 ms; then 569.425075 → 1.266 − 0.9918 =
// 0.2742 ms. Avg 0.3028, max 0.4031.
//
// About 0x84A5D3A2 (reported by 0xFAD4B7AF at …559.424982, …564.424225,
// …569.425075, …574.425401): jitter 8, 10, 11, 10 → max 1.375 ms, avg
// 1.21875 ms. RTT: LSR 0 (no SR yet); then SRs of 0x84A5D3A2 at …559.426205,
// …564.426627, …569.426341: 4.998020 s − 327548/65536 s (4.997986) =
// +0.034 ms; 4.998448 − 327614/65536 (4.998993) = −0.545 ms (reporter's DLSR
// longer than the loop: dropped); 4.999060 − 4.998993 = +0.067 ms.
// Avg 0.0506, max 0.0671.
func TestRTCPStats(t *testing.T) {
	streams := map[uint32]*Stream{}
	for _, ssrc := range []uint32{0xFAD4B7AF, 0x84A5D3A2} {
		s := new(Stream)
		s.Init(StreamConfig{ClockRate: 8000, Codec: "PCMU", EventPT: -1, CNPT: -1})
		streams[ssrc] = s
	}
	for _, r := range readRTCPFixture(t) {
		err := ParseRTCP(r.payload, func(p *RTCPPacket) {
			if p.Type == TypeSR {
				if s := streams[p.SSRC]; s != nil {
					s.AddSR(NTPMid32(p.NTP), r.arrival)
				}
			}
			for _, rb := range p.Reports {
				if s := streams[rb.SSRC]; s != nil {
					s.AddReport(rb, r.arrival)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ssrc uint32
		want RTCPStats
	}{
		{0xFAD4B7AF, RTCPStats{Reports: 3, JitterMaxMS: 1.25, JitterAvgMS: 1.125, RTTAvgMS: 0.3028, RTTMaxMS: 0.4031, RTTCount: 3}},
		{0x84A5D3A2, RTCPStats{Reports: 4, JitterMaxMS: 1.375, JitterAvgMS: 1.21875, RTTAvgMS: 0.0506, RTTMaxMS: 0.0671, RTTCount: 2}},
	}
	for _, tt := range tests {
		got := streams[tt.ssrc].Stats().RTCP
		near := func(a, b float64) bool { return math.Abs(a-b) < 0.002 }
		if got.Reports != tt.want.Reports || got.RTTCount != tt.want.RTTCount || got.CumulativeLost != 0 ||
			got.FractionLostMax != 0 || !near(got.JitterMaxMS, tt.want.JitterMaxMS) ||
			!near(got.JitterAvgMS, tt.want.JitterAvgMS) || !near(got.RTTAvgMS, tt.want.RTTAvgMS) ||
			!near(got.RTTMaxMS, tt.want.RTTMaxMS) {
			t.Errorf("%08X: RTCP = %+v, want %+v", tt.ssrc, got, tt.want)
		}
	}
}

// rtcpXR is a hand-built RR (one block, cumulative lost −3) + XR with a
// VoIP Metrics block (MOS-LQ 41, MOS-CQ 127) per RFC 3550 §6.4.2 and RFC
// 3611 §4.7.
var rtcpXR = []byte{
	0x81, 201, 0, 7, 0, 0, 0, 1, // RR, RC=1, length 7, reporter 1
	0, 0, 0, 2, 0x40, 0xff, 0xff, 0xfd, 0, 1, 0, 9, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0,
	0x80, 207, 0, 10, 0, 0, 0, 1, // XR, length 10
	7, 0, 0, 8, // BT=7, block length 8
	0, 0, 0, 2, 5, 0, 10, 20, 0, 100, 0, 200, 0, 30, 0, 40,
	0xec, 0xb5, 127, 16, 88, 127, 41, 127, 0, 0, 0, 60, 0, 120, 0, 240,
}

func TestParseRTCPXR(t *testing.T) {
	var rbs []ReportBlock
	var xr []XRVoIPMetrics
	err := ParseRTCP(rtcpXR, func(p *RTCPPacket) {
		rbs = append(rbs, p.Reports...)
		xr = append(xr, p.VoIP...)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRB := ReportBlock{SSRC: 2, FractionLost: 0x40, CumulativeLost: -3, ExtHighestSeq: 0x10009, Jitter: 80}
	if len(rbs) != 1 || rbs[0] != wantRB {
		t.Errorf("report blocks = %+v, want [%+v]", rbs, wantRB)
	}
	wantXR := XRVoIPMetrics{SSRC: 2, LossRate: 5, BurstDensity: 10, GapDensity: 20, BurstDuration: 100,
		GapDuration: 200, RoundTripDelay: 30, EndSystemDelay: 40, SignalLevel: -20, NoiseLevel: -75,
		RERL: 127, Gmin: 16, RFactor: 88, ExtRFactor: 127, MOSLQ: 41, MOSCQ: 127, JBNominal: 60, JBMaximum: 120, JBAbsMax: 240}
	if len(xr) != 1 || xr[0] != wantXR {
		t.Errorf("XR = %+v, want [%+v]", xr, wantXR)
	}
	var s Stream
	s.Init(StreamConfig{EventPT: -1, CNPT: -1, ClockRate: 8000})
	s.AddReport(rbs[0], t0)
	s.AddXR(xr[0])
	st := s.Stats().RTCP
	if st.CumulativeLost != -3 || st.FractionLostMax != 0x40 || st.XRMOSLQ != 4.1 || st.JitterMaxMS != 10 {
		t.Errorf("RTCPStats = %+v, want CumulativeLost -3, FractionLostMax 64, XRMOSLQ 4.1, JitterMaxMS 10", st)
	}
}

func TestParseRTCPErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrRTCPShort},
		{"version", []byte{0x40, 201, 0, 1, 0, 0, 0, 1}, ErrVersion},
		{"length past end", []byte{0x80, 201, 0, 9, 0, 0, 0, 1}, ErrRTCPLength},
		{"blocks past length", []byte{0x81, 201, 0, 1, 0, 0, 0, 1}, ErrRTCPShort},
		{"trailing bytes", []byte{0x80, 201, 0, 1, 0, 0, 0, 1, 0x80}, ErrRTCPShort},
		{"bad padding", []byte{0xa0, 201, 0, 1, 0, 0, 0, 9}, ErrPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParseRTCP(tt.in, func(*RTCPPacket) {})
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseRTCP error = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzRTCP(f *testing.F) {
	f.Add(rtcpXR)
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := ParseRTCP(b, func(p *RTCPPacket) {
			n++
			if len(p.Reports) != int(p.Count) && (p.Type == TypeSR || p.Type == TypeRR) {
				t.Fatalf("%d reports, RC %d", len(p.Reports), p.Count)
			}
		})
		if err == nil && n == 0 {
			t.Fatalf("ParseRTCP(%x) = nil without packets", b)
		}
	})
}

func BenchmarkParseRTCP(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseRTCP(rtcpXR, func(*RTCPPacket) {})
	}
}
