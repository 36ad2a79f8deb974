package calls

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// callQuality is the name of the command giving one call's streams with
// their quality over time.
const callQuality = "call_quality"

// QualitySource is optionally implemented by a [Source]: one call, in
// progress or ended and still in memory, with what each of its RTP streams
// carries and its quality so far, for call_quality. ok is false for an
// unknown reference. The reply is the caller's to keep.
type QualitySource interface {
	CallQuality(ref string) (q CallQuality, ok bool)
}

// CallQuality is the call_quality reply: a call's RTP streams, each with
// the voice quality the sniffer's computation gives it so far (the figures
// its CDR will hold) and the 10 s intervals it is made of.
type CallQuality struct {
	CallRef string          `json:"callreference"`
	CallID  string          `json:"callid"`
	State   string          `json:"state"`    // calling, ringing, answered, ended, failed, cancelled, timeout
	Start   time.Time       `json:"calldate"` // the INVITE
	Answer  *time.Time      `json:"answered"` // the 2xx, null before
	Streams []StreamQuality `json:"streams"`
}

// MOS is one figure per simulated jitter buffer of the sniffer: fixed
// 50 ms (F1), fixed 200 ms (F2), adaptive up to 500 ms.
type MOS struct {
	F1    float64 `json:"f1"`
	F2    float64 `json:"f2"`
	Adapt float64 `json:"adapt"`
}

// StreamQuality is one RTP stream (one SSRC on one flow) of a call.
//
// Side is who sends it, from the addresses and ports the SDP advertised
// ("caller", "callee", or "" when neither side advertised either end);
// Kind what it carries ("voice", "dtmf", "cn", "video"). Only voice
// streams have MOS figures: MOS is the time-weighted average of the closed
// intervals as the CDR stores it (F1 truncated, F2 and adaptive rounded),
// MOSMin the lowest interval, MOSLast the last one; all three are null
// until the first 10 s interval closes, and for other kinds.
type StreamQuality struct {
	Side        string         `json:"side"`
	Kind        string         `json:"kind"`
	Src         netip.AddrPort `json:"src"`
	Dst         netip.AddrPort `json:"dst"`
	SSRC        uint32         `json:"ssrc"`
	PayloadType int            `json:"payload_type"`
	Codec       string         `json:"codec"`
	First       time.Time      `json:"first"` // first packet
	Last        time.Time      `json:"last"`  // newest packet
	Received    uint64         `json:"received"`
	Lost        uint64         `json:"lost"`
	LossPct     float64        `json:"loss_pct"`     // since the start
	DTMFPackets uint32         `json:"dtmf_packets"` // telephone events among Received
	CNPackets   uint32         `json:"cn_packets"`   // comfort noise among Received
	// JitterMS is the sniffer's current jitter J, JitterAvgMS its running
	// mean and JitterMaxMS its maximum (listcalls src_jitter, _avg, _max).
	JitterMS    float64 `json:"jitter_ms"`
	JitterAvgMS float64 `json:"jitter_avg_ms"`
	JitterMaxMS float64 `json:"jitter_max_ms"`
	MOS         *MOS    `json:"mos"`
	MOSMin      *MOS    `json:"mos_min"`
	MOSLast     *MOS    `json:"mos_last"`
	// LossLastPct is the loss of the last closed interval, in percent.
	LossLastPct float64 `json:"loss_last_pct"`
	// IntervalsClosed counts the closed 10 s intervals; Intervals are the
	// newest of them (at most 32), oldest first.
	IntervalsClosed int        `json:"intervals_closed"`
	Intervals       []Interval `json:"intervals"`
}

// Interval is one closed 10 s MOS interval of a stream.
type Interval struct {
	End         time.Time `json:"end"` // when it closed, to the second
	MOS         MOS       `json:"mos"`
	LossPct     float64   `json:"loss_pct"`
	JitterAvgMS float64   `json:"jitter_avg_ms"` // mean of J over the interval
	JitterMaxMS float64   `json:"jitter_max_ms"`
}

// registerQuality adds call_quality to reg; [Register] calls it.
func registerQuality(reg *command.Registry, g *group) {
	reg.Register(command.Command{
		Name: callQuality, Perm: command.PermCall,
		Doc: "one call's RTP streams: who sends each (from the SDP's ports), what it carries (voice, dtmf, cn, video), " +
			"loss, jitter and MOS so far as its CDR will hold them, and the last 32 closed 10 s intervals",
		Params: []command.Param{{Name: "callreference", Type: command.ParamString, Required: true,
			Doc: `callreference from listcalls, e.g. 0x1f, or {"callreference":"0x1f"}`}},
		Run: g.callQuality,
	})
}

func (g *group) callQuality(_ context.Context, req *command.Request) (command.Result, error) {
	qs, ok := g.d.Source.(QualitySource)
	if !ok {
		return nil, fmt.Errorf("%w: no call quality source", command.ErrUnavailable)
	}
	ref, _ := req.Param("callreference")
	if strings.HasPrefix(strings.TrimSpace(ref), "{") {
		var o struct {
			Ref string `json:"callreference"`
		}
		if err := json.Unmarshal([]byte(ref), &o); err != nil {
			return nil, command.BadParam("callreference", err)
		}
		ref = o.Ref
	}
	if normRef(ref) == "" {
		return nil, fmt.Errorf("calls: no callreference: %w", command.ErrNoEntry)
	}
	q, ok := qs.CallQuality(ref)
	if !ok {
		return nil, fmt.Errorf("calls: call %s: %w", ref, command.ErrNoEntry)
	}
	if q.Streams == nil {
		q.Streams = []StreamQuality{}
	}
	for i := range q.Streams {
		if q.Streams[i].Intervals == nil {
			q.Streams[i].Intervals = []Interval{}
		}
	}
	return command.Value{V: q}, nil
}
