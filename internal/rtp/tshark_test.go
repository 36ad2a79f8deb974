package rtp

import (
	"bufio"
	"compress/gzip"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixturePacket is one line of a testdata/*.rtp.tsv.gz fixture (tshark
// -T fields output, see testdata/gen.sh).
type fixturePacket struct {
	key     string // "src sport dst dport ssrc", ssrc as 0x%08X
	arrival time.Time
	h       Header
}

func parseEpoch(t *testing.T, s string) time.Time {
	t.Helper()
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		t.Fatalf("bad epoch %q", s)
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		t.Fatalf("bad epoch %q", s)
	}
	return time.Unix(secs, ns)
}

func readRTPFixture(t *testing.T, name string) []fixturePacket {
	t.Helper()
	f, err := os.Open("testdata/" + name + ".rtp.tsv.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []fixturePacket
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 10 {
			t.Fatalf("%s: bad line %q", name, sc.Text())
		}
		ssrc, _ := strconv.ParseUint(strings.TrimPrefix(c[5], "0x"), 16, 32)
		seq, _ := strconv.ParseUint(c[6], 10, 16)
		ts, _ := strconv.ParseUint(c[7], 10, 32)
		pt, _ := strconv.ParseUint(c[8], 10, 8)
		p := fixturePacket{
			key:     strings.Join([]string{c[1], c[2], c[3], c[4], "0x" + strings.ToUpper(strings.TrimPrefix(c[5], "0x"))}, " "),
			arrival: parseEpoch(t, c[0]),
			h: Header{Version: 2, Marker: c[9] == "1", PayloadType: uint8(pt),
				Seq: uint16(seq), Timestamp: uint32(ts), SSRC: uint32(ssrc)},
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tsharkRow is one row of tshark -q -z rtp,streams (testdata/*.streams.tsv).
type tsharkRow struct {
	key                          string
	payload                      string
	pkts, lost                   int64
	maxDelta, meanJitter, maxJit float64
}

func readStreamsFixture(t *testing.T, name string) []tsharkRow {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".streams.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var rows []tsharkRow
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 {
			continue // header
		}
		c := strings.Split(line, "\t")
		num := func(j int) float64 {
			v, err := strconv.ParseFloat(c[j], 64)
			if err != nil {
				t.Fatalf("%s: column %d of %q: %v", name, j, line, err)
			}
			return v
		}
		rows = append(rows, tsharkRow{
			key:     strings.Join([]string{c[2], c[3], c[4], c[5], c[6]}, " "),
			payload: c[7],
			pkts:    int64(num(8)), lost: int64(num(9)),
			maxDelta: num(13), meanJitter: num(15), maxJit: num(16),
		})
	}
	return rows
}

// runFixture feeds a capture's packets into one Stream per (flow, SSRC).
func runFixture(t *testing.T, name string, cfg StreamConfig) map[string]*Stream {
	t.Helper()
	streams := map[string]*Stream{}
	for _, p := range readRTPFixture(t, name) {
		s := streams[p.key]
		if s == nil {
			s = new(Stream)
			s.Init(cfg)
			streams[p.key] = s
		}
		s.Add(&p.h, p.arrival)
	}
	for _, s := range streams {
		s.Finish()
	}
	return streams
}

// TestStreamsMatchTshark compares every stream of every lab capture with
// tshark 4.0.17's "-z rtp,streams": packets and lost exactly, mean and max
// jitter and max delta within 0.01 ms (tshark prints 3 decimals).
func TestStreamsMatchTshark(t *testing.T) {
	noEvents := StreamConfig{EventPT: -1, CNPT: -1}
	// sipp's uac_pcap plays RFC 2833 DTMF with PT 101 (from its SDP).
	dtmf := StreamConfig{EventPT: 101, CNPT: -1}
	tests := []struct {
		name string
		cfg  StreamConfig
	}{
		{"baresip_rtcp", noEvents},
		{"sipp_kamailio", noEvents},
		{"sipp_rtpstream", noEvents},
		{"sipp_rtpstream_loss5", noEvents},
		{"sipp_uacpcap_echo", dtmf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams := runFixture(t, tt.name, tt.cfg)
			rows := readStreamsFixture(t, tt.name)
			if len(rows) != len(streams) {
				t.Errorf("got %d streams, tshark has %d", len(streams), len(rows))
			}
			for _, r := range rows {
				s := streams[r.key]
				if s == nil {
					t.Errorf("%s: stream missing", r.key)
					continue
				}
				st := s.Stats()
				if st.Received != r.pkts || st.LostRFC != r.lost {
					t.Errorf("%s: Received, LostRFC = %d, %d; tshark Pkts, Lost = %d, %d",
						r.key, st.Received, st.LostRFC, r.pkts, r.lost)
				}
				if math.Abs(st.JitterMeanMS-r.meanJitter) > 0.01 || math.Abs(st.JitterMaxMS-r.maxJit) > 0.01 {
					t.Errorf("%s: jitter mean, max = %.4f, %.4f; tshark %.3f, %.3f",
						r.key, st.JitterMeanMS, st.JitterMaxMS, r.meanJitter, r.maxJit)
				}
				event := r.payload == "telephone-event" || strings.HasPrefix(r.payload, "RTPType-")
				if event {
					if int64(st.Events) != r.pkts {
						t.Errorf("%s: Events = %d, want %d", r.key, st.Events, r.pkts)
					}
					continue // tshark's delta of event packets is not a voice statistic here
				}
				if math.Abs(st.MaxDeltaMS-r.maxDelta) > 0.01 {
					t.Errorf("%s: MaxDeltaMS = %.4f, tshark %.3f", r.key, st.MaxDeltaMS, r.maxDelta)
				}
			}
		})
	}
}
