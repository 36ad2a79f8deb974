package rtp

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// streamPair feeds the same packets to the optimised Stream and to the
// reference implementation (stream_ref_test.go).
type streamPair struct {
	s Stream
	r refStream
}

func (p *streamPair) init(cfg StreamConfig) {
	p.s.Init(cfg)
	p.r.Init(cfg)
}

func (p *streamPair) add(h *Header, at time.Time) {
	p.s.Add(h, at)
	p.r.Add(h, at)
}

func (p *streamPair) check(t *testing.T, what string) {
	t.Helper()
	got, want := p.s.Stats(), p.r.Stats()
	// MOS is no longer the reference's (it is the sniffer's, checked
	// against the sniffer's own rows in vm_test.go): compare the rest.
	for _, st := range []*StreamStats{&got, &want} {
		st.MOSF1, st.MOSF2, st.MOSAdapt, st.MOSF1Min, st.MOSF2Min, st.MOSAdaptMin = 0, 0, 0, 0, 0, 0
		st.VM = VMStats{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
	if p.s.ClockRate() != p.r.ClockRate() {
		t.Fatalf("%s: ClockRate %d, want %d", what, p.s.ClockRate(), p.r.ClockRate())
	}
}

// TestStreamMatchesReferenceFixtures: every stream of the lab captures gives
// exactly the statistics of the reference implementation.
func TestStreamMatchesReferenceFixtures(t *testing.T) {
	for _, name := range []string{"baresip_rtcp", "sipp_kamailio", "sipp_rtpstream", "sipp_rtpstream_loss5", "sipp_uacpcap_echo"} {
		for _, cfg := range []StreamConfig{{EventPT: -1, CNPT: -1}, {EventPT: 101, CNPT: 13}, {ClockRate: 16000, Codec: "X", EventPT: 0, CNPT: -1}} {
			pairs := map[string]*streamPair{}
			for _, pk := range readRTPFixture(t, name) {
				p := pairs[pk.key]
				if p == nil {
					p = new(streamPair)
					p.init(cfg)
					pairs[pk.key] = p
				}
				p.add(&pk.h, pk.arrival)
			}
			for k, p := range pairs {
				p.s.Finish()
				p.r.Finish()
				p.check(t, name+" "+k)
			}
		}
	}
}

// randomStream writes a random but plausible RTP stream to p: mostly
// consecutive packets with loss gaps, duplicates, reordering, jitter and
// stalls, marker bits, DTMF events, comfort noise, silence gaps, seq and
// timestamp jumps, and (rarely) absurd packetization times, with RTCP in
// between. It checks the pair at random points.
func randomStream(t *testing.T, rng *rand.Rand, p *streamPair, trial int) {
	ptimes := []uint32{160, 160, 160, 80, 240, 320, 40, 8, 1, 3, 960}
	ptime := ptimes[rng.IntN(len(ptimes))]
	cfgs := []StreamConfig{
		{EventPT: -1, CNPT: -1},
		{EventPT: 101, CNPT: -1},
		{EventPT: 101, CNPT: 118},
		{ClockRate: 16000, Codec: "opus", EventPT: 100, CNPT: 13},
		{EventPT: 300, CNPT: -5}, // out of range: never matches
	}
	cfg := cfgs[rng.IntN(len(cfgs))]
	p.init(cfg)
	seq := uint16(rng.Uint32())
	ts := rng.Uint32()
	at := time.Unix(1_800_000_000, int64(rng.IntN(1e9)))
	step := time.Duration(ptime) * time.Second / 8000
	n := 200 + rng.IntN(3000)
	var held []Header // reordered packets waiting
	for i := 0; i < n; i++ {
		h := Header{Version: 2, PayloadType: PTPCMU, Seq: seq, Timestamp: ts, SSRC: 9}
		switch r := rng.IntN(1000); {
		case r < 8:
			h.PayloadType = 101 // event
		case r < 12:
			h.PayloadType = PTCN
		case r < 14:
			h.PayloadType = 118
		case r < 16:
			h.PayloadType = PTPCMA
		}
		if rng.IntN(100) == 0 {
			h.Marker = true
		}
		// arrival: jitter, stalls, occasional backwards step
		d := step + time.Duration(rng.NormFloat64()*float64(3*time.Millisecond))
		switch r := rng.IntN(1000); {
		case r < 5:
			d += time.Duration(rng.IntN(600)) * time.Millisecond
		case r < 7:
			d = -time.Duration(rng.IntN(5)) * time.Millisecond
		case r < 8:
			d += 20 * time.Second
		}
		at = at.Add(d)
		switch r := rng.IntN(1000); {
		case r < 30:
			held = append(held, h) // deliver later
		case r < 45:
			p.add(&h, at)
			p.add(&h, at.Add(time.Millisecond)) // duplicate
		default:
			p.add(&h, at)
		}
		if len(held) > 0 && rng.IntN(4) == 0 {
			k := rng.IntN(len(held))
			p.add(&held[k], at)
			held = append(held[:k], held[k+1:]...)
		}
		// next packet
		seq++
		ts += ptime
		switch r := rng.IntN(1000); {
		case r < 20:
			seq += uint16(1 + rng.IntN(4)) // loss
			ts += ptime * uint32(seq%5)
		case r < 23:
			seq += uint16(10 + rng.IntN(300))
		case r < 25:
			seq += uint16(3000 + rng.IntN(60000)) // jump (restart after two)
		case r < 35:
			ts += ptime * uint32(5+rng.IntN(50)) // silence gap
		case r < 37:
			ts += uint32(rng.Uint32()) // timestamp jump
		case r < 38:
			ts -= ptime * 10
		}
		switch r := rng.IntN(1000); {
		case r < 3:
			p.s.AddSR(uint32(i), at)
			p.r.AddSR(uint32(i), at)
		case r < 6:
			rb := ReportBlock{SSRC: 9, FractionLost: uint8(rng.IntN(256)), CumulativeLost: int32(rng.IntN(100) - 5),
				Jitter: uint32(rng.IntN(400)), LSR: uint32(i - rng.IntN(5)), DLSR: uint32(rng.IntN(70000))}
			p.s.AddReport(rb, at)
			p.r.AddReport(rb, at)
		case r < 7:
			xr := XRVoIPMetrics{SSRC: 9, MOSLQ: uint8(rng.IntN(130))}
			p.s.AddXR(xr)
			p.r.AddXR(xr)
		}
		if rng.IntN(500) == 0 {
			p.check(t, "trial "+strconv.Itoa(trial)+" packet "+strconv.Itoa(i))
		}
	}
	p.s.Finish()
	p.r.Finish()
	p.check(t, "trial "+strconv.Itoa(trial)+" finished")
}

// TestStreamMatchesReferenceRandom compares the optimised Stream with the
// reference implementation on random streams.
func TestStreamMatchesReferenceRandom(t *testing.T) {
	trials := 400
	if testing.Short() {
		trials = 50
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < trials; i++ {
		var p streamPair
		randomStream(t, rng, &p, i)
	}
}
