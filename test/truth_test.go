package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/calltable"
	"github.com/voipsensor/voipsensor/internal/gen"
	"github.com/voipsensor/voipsensor/internal/offline"
)

// truth mirrors the generator's ground-truth JSON (internal/gen/doc.go).
type truth struct {
	Calls []struct {
		CallID     string     `json:"callid"`
		Caller     string     `json:"caller"`
		Called     string     `json:"called"`
		CallerName string     `json:"caller_name"`
		Start      time.Time  `json:"start"`
		Answer     *time.Time `json:"answer"`
		LastCode   int        `json:"last_sip_code"`
		HangupBy   string     `json:"hangup_by"`
		State      string     `json:"state"`
		Codec      string     `json:"codec"`
		Streams    []struct {
			Direction  string `json:"direction"`
			Src        string `json:"src"`
			Dst        string `json:"dst"`
			SSRC       uint32 `json:"ssrc"`
			Written    int64  `json:"written"`
			Sent       int64  `json:"sent"`
			Lost       int64  `json:"lost"`
			Duplicates int64  `json:"duplicates"`
			Reordered  int64  `json:"reordered"`
		} `json:"streams"`
	} `json:"calls"`
	Registrations []struct {
		User     string `json:"user"`
		Contact  string `json:"contact"`
		State    string `json:"state"`
		Expires  int    `json:"expires"`
		Attempts int    `json:"attempts"`
	} `json:"registrations"`
	Packets int `json:"packets"`
}

// generate writes a capture and its truth into a temporary directory.
func generate(t testing.TB, cfg gen.Config) (string, *truth) {
	t.Helper()
	dir := t.TempDir()
	name := filepath.Join(dir, "gen.pcap")
	var pcap, js bytes.Buffer
	if _, err := gen.Generate(cfg, &pcap, &js); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if err := os.WriteFile(name, pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr truth
	if err := json.Unmarshal(js.Bytes(), &tr); err != nil {
		t.Fatalf("truth: %v", err)
	}
	return name, &tr
}

var wantState = map[string]calltable.State{
	"answered":  calltable.StateEnded,
	"failed":    calltable.StateFailed,
	"cancelled": calltable.StateCancelled,
}

// TestGeneratorTruth analyses generated captures and compares every call,
// number, code and per-direction packet count with the generator's ground
// truth, exactly.
func TestGeneratorTruth(t *testing.T) {
	base := gen.DefaultConfig()
	base.TalkTime = 4 * time.Second
	cases := []struct {
		name string
		mod  func(*gen.Config)
	}{
		{"clean", func(c *gen.Config) {}},
		{"impaired", func(c *gen.Config) {
			c.Calls, c.Concurrency = 30, 10
			c.Loss, c.Duplicates, c.Reorder, c.Jitter = 0.03, 0.01, 0.01, 15*time.Millisecond
			c.Failed, c.Cancelled = 0.15, 0.15
			c.Registrations, c.RegisterFailed = 12, 0.25
			c.Seed = 42
		}},
		{"proxy, fragmented INVITEs, RTCP, PCMA speech, ns pcap", func(c *gen.Config) {
			c.Calls, c.Concurrency = 12, 6
			c.Proxy, c.LargeInvite, c.RTCP, c.Nanosecond = true, true, true, true
			c.Codec, c.Payload = "PCMA", "speech"
			c.Loss = 0.02
			c.TalkTime = 12 * time.Second
			c.Seed = 7
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			file, tr := generate(t, cfg)
			got := analyze(t, file)
			byID := map[string]*calltable.CallInfo{}
			for _, c := range got.calls {
				byID[c.CallID] = c
			}
			if len(got.calls) != len(tr.Calls) {
				t.Errorf("calls = %d, want %d", len(got.calls), len(tr.Calls))
			}
			for _, w := range tr.Calls {
				c := byID[w.CallID]
				if c == nil {
					t.Errorf("call %s missing", w.CallID)
					continue
				}
				if c.Caller != w.Caller || c.Called != w.Called || c.CallerName != w.CallerName {
					t.Errorf("call %s: caller %q %q called %q, want %q %q %q", w.CallID, c.Caller, c.CallerName, c.Called, w.Caller, w.CallerName, w.Called)
				}
				if c.LastCode != w.LastCode || c.State != wantState[w.State] || c.HangupBy.String() != w.HangupBy {
					t.Errorf("call %s: code %d state %v hangup %v, want %d %s %s", w.CallID, c.LastCode, c.State, c.HangupBy, w.LastCode, w.State, w.HangupBy)
				}
				if !c.InviteTime.Equal(w.Start) {
					t.Errorf("call %s: start %v, want %v", w.CallID, c.InviteTime, w.Start)
				}
				if w.Answer != nil && !c.AnswerTime.Equal(*w.Answer) {
					t.Errorf("call %s: answer %v, want %v", w.CallID, c.AnswerTime, *w.Answer)
				}
				if len(c.Streams) != len(w.Streams) {
					t.Errorf("call %s: %d streams, want %d", w.CallID, len(c.Streams), len(w.Streams))
				}
				for _, ws := range w.Streams {
					s := findStream(c, ws.Src, ws.Dst, ws.SSRC)
					if s == nil {
						t.Errorf("call %s: stream %s>%s/%#x missing", w.CallID, ws.Src, ws.Dst, ws.SSRC)
						continue
					}
					st := s.Stats
					if st.Received != ws.Written || st.Lost != ws.Lost || st.Duplicates != ws.Duplicates ||
						st.Reordered != ws.Reordered || st.Expected != ws.Sent {
						t.Errorf("call %s %s: received %d expected %d lost %d dup %d reordered %d; want %d %d %d %d %d",
							w.CallID, ws.Direction, st.Received, st.Expected, st.Lost, st.Duplicates, st.Reordered,
							ws.Written, ws.Sent, ws.Lost, ws.Duplicates, ws.Reordered)
					}
					if dir := sideName(s.Side); dir != ws.Direction {
						t.Errorf("call %s stream %s>%s: direction %s, want %s", w.CallID, ws.Src, ws.Dst, dir, ws.Direction)
					}
					if st.Codec != w.Codec {
						t.Errorf("call %s: codec %q, want %q", w.CallID, st.Codec, w.Codec)
					}
				}
			}
			checkRegistrations(t, got.regs, tr)
		})
	}
}

func checkRegistrations(t *testing.T, changes []*calltable.RegistrationInfo, tr *truth) {
	t.Helper()
	// The last change per binding is its final state.
	final := map[string]*calltable.RegistrationInfo{}
	for _, r := range changes {
		final[r.User+" "+r.Contact] = r
	}
	if len(final) != len(tr.Registrations) {
		t.Errorf("registration bindings = %d, want %d", len(final), len(tr.Registrations))
	}
	for _, w := range tr.Registrations {
		r := final[w.User+" "+w.Contact]
		if r == nil {
			t.Errorf("registration %s %s missing", w.User, w.Contact)
			continue
		}
		if r.State.String() != w.State || r.Attempts != w.Attempts || (w.State == "OK" && r.Expires != w.Expires) {
			t.Errorf("registration %s: state %v attempts %d expires %d, want %s %d %d",
				w.User, r.State, r.Attempts, r.Expires, w.State, w.Attempts, w.Expires)
		}
	}
}

func findStream(c *calltable.CallInfo, src, dst string, ssrc uint32) *calltable.StreamInfo {
	for i := range c.Streams {
		s := &c.Streams[i]
		if s.Src.String() == src && s.Dst.String() == dst && s.SSRC == ssrc {
			return s
		}
	}
	return nil
}

func sideName(s calltable.Side) string {
	switch s {
	case calltable.SideCaller:
		return "caller_to_callee"
	case calltable.SideCallee:
		return "callee_to_caller"
	}
	return "unknown"
}

// BenchmarkAnalyze measures the whole offline pipeline on a generated
// capture: packets per second through read, decode and the call table.
func BenchmarkAnalyze(b *testing.B) {
	cfg := gen.DefaultConfig()
	cfg.Calls, cfg.Concurrency, cfg.TalkTime = 100, 50, 20*time.Second
	cfg.Loss, cfg.Jitter = 0.01, 5*time.Millisecond
	file, tr := generate(b, cfg)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var c collect
		if _, err := offline.Analyze(context.Background(), []string{file}, offline.AnalyzeOptions{}, &c); err != nil {
			b.Fatal(err)
		}
		if len(c.calls) != cfg.Calls {
			b.Fatalf("calls %d", len(c.calls))
		}
	}
	b.ReportMetric(float64(tr.Packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
