package metrics

import (
	"context"
	"fmt"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Metric family types, as Prometheus names them.
const (
	Counter   = "counter"
	Gauge     = "gauge"
	Histogram = "histogram"
)

// Family is one metric with its samples. Names follow Prometheus'
// conventions (voipsensor_ prefix, _total for counters, base units).
type Family struct {
	Name    string   `json:"name"`
	Help    string   `json:"help"`
	Type    string   `json:"type"`
	Samples []Sample `json:"samples"`
}

// Sample is one labelled value of a Family; a histogram sample has
// cumulative Buckets, Count and Sum instead of Value.
type Sample struct {
	Labels  map[string]string `json:"labels,omitempty"`
	Value   float64           `json:"value"`
	Buckets []Bucket          `json:"buckets,omitempty"`
	Count   uint64            `json:"count,omitempty"`
	Sum     float64           `json:"sum,omitempty"`
}

// Bucket is a histogram bucket: the observations ≤ UpperBound.
type Bucket struct {
	UpperBound float64 `json:"le"`
	Count      uint64  `json:"count"`
}

// Minute is one minute of the rolling hour the console charts.
type Minute struct {
	Start      int64   `json:"start"`       // Unix seconds
	InProgress int     `json:"in_progress"` // calls in progress at the end of the minute
	Attempts   int     `json:"attempts"`    // INVITEs that started a call
	Answered   int     `json:"answered"`    // calls answered (2xx)
	Ended      int     `json:"ended"`       // calls that left the table
	NetworkOK  int     `json:"network_ok"`  // ended with an answer or a user's final response (NER numerator)
	MOS        [9]int  `json:"mos"`         // ended calls by worst-direction MOS (F1, voice streams with a closed 10 s interval): < 2, 2–2.5, 2.5–3, 3–3.3, 3.3–3.6, 3.6–3.8, 3.8–4, 4–4.3, ≥ 4.3
	LossPct    float64 `json:"loss_pct"`    // mean worst-direction loss of the calls ended in the minute
}

// Source supplies the figures; the sensor implements it.
type Source interface {
	// Families returns every metric family, in a stable order.
	Families() []Family
	// History returns the last hour, oldest minute first.
	History() []Minute
}

// Deps wires the group.
type Deps struct{ Source Source }

// Register adds metrics and quality_history to reg.
func Register(reg *command.Registry, d Deps) {
	reg.Register(command.Command{Name: "metrics", Perm: command.PermReporting,
		Doc: "every counter, gauge and histogram of the sensor (the Prometheus endpoint renders it)",
		Run: func(context.Context, *command.Request) (command.Result, error) {
			if d.Source == nil {
				return nil, fmt.Errorf("%w: no metrics source", command.ErrUnavailable)
			}
			return command.Value{V: d.Source.Families()}, nil
		}})
	reg.Register(command.Command{Name: "quality_history", Perm: command.PermReporting,
		Doc: "the last hour minute by minute: calls in progress, attempts, answered, ASR/NER counts, MOS distribution",
		Run: func(context.Context, *command.Request) (command.Result, error) {
			if d.Source == nil {
				return nil, fmt.Errorf("%w: no metrics source", command.ErrUnavailable)
			}
			return command.Value{V: d.Source.History()}, nil
		}})
}
