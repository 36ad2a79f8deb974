package calls

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

// qualitySource is a Source with one call's quality.
type qualitySource struct {
	fakeSource
	q CallQuality
}

func (s qualitySource) CallQuality(ref string) (CallQuality, bool) {
	return s.q, normRef(ref) == normRef(s.q.CallRef)
}

func TestCallQuality(t *testing.T) {
	src := qualitySource{testCalls(), CallQuality{CallRef: "0xa1", CallID: "one@x", State: "ringing", Start: t0,
		Streams: []StreamQuality{{Side: "caller", Kind: "dtmf", PayloadType: 101}}}}
	reg := newReg(src)
	for _, arg := range []string{"0xa1", "A1", `{"callreference":"0x00a1"}`} {
		res, err := run(t, reg, "call_quality", arg)
		if err != nil {
			t.Fatalf("call_quality %s: %v", arg, err)
		}
		b, _ := json.Marshal(res)
		// No MOS without voice, and empty lists rather than null.
		for _, want := range []string{`"callreference":"0xa1"`, `"answered":null`, `"kind":"dtmf"`, `"mos":null`, `"intervals":[]`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("call_quality %s = %s, want it to contain %s", arg, b, want)
			}
		}
	}
	for _, arg := range []string{"0xdead", "", "{"} {
		_, err := run(t, reg, "call_quality", arg)
		var pe *command.ParamError
		if !errors.Is(err, command.ErrNoEntry) && !errors.As(err, &pe) {
			t.Errorf("call_quality %q: %v, want no such entry or a parameter error", arg, err)
		}
	}
	if _, err := run(t, newReg(testCalls()), "call_quality", "0xa1"); !errors.Is(err, command.ErrUnavailable) {
		t.Errorf("call_quality without a quality source: %v, want unavailable", err)
	}
}
