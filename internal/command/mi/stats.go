package mi

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Statistic is one named counter or gauge. On the wire it is
// "Group:Name". Incremental counters can be reset; gauges cannot.
type Statistic struct {
	Group, Name string
	Value       int64
	Incremental bool
}

// FullName returns "group:name".
func (s Statistic) FullName() string { return s.Group + ":" + s.Name }

// StatSource returns the current statistics (raw, never reset). It must
// not block on packet paths.
type StatSource interface {
	Statistics() []Statistic
}

// statistics applies reset offsets over a StatSource. Safe for
// concurrent use.
type statistics struct {
	src  StatSource
	mu   sync.Mutex
	base map[string]int64 // full name → raw value at the last reset
}

func newStatistics(src StatSource) *statistics {
	return &statistics{src: src, base: map[string]int64{}}
}

// current returns the statistics with resets applied.
func (s *statistics) current() ([]Statistic, error) {
	if s.src == nil {
		return nil, unavailable("statistics source")
	}
	all := s.src.Statistics()
	s.mu.Lock()
	for i := range all {
		if b, ok := s.base[all[i].FullName()]; ok && all[i].Incremental {
			all[i].Value -= b
		}
	}
	s.mu.Unlock()
	return all, nil
}

// parseSelectors reads the statistics parameter: a JSON array of strings,
// or one string (kamctl and CLI users send a flat "all").
func parseSelectors(raw string) ([]string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	var one string
	if json.Unmarshal([]byte(raw), &one) == nil {
		return []string{one}, nil
	}
	var many []any
	if err := json.Unmarshal([]byte(raw), &many); err != nil {
		return nil, command.BadParam("statistics", wireReason("Bad type for parameter 'statistics'"))
	}
	if len(many) == 0 {
		return nil, command.BadParam("statistics", wireReason("Empty array in parameter 'statistics'"))
	}
	out := make([]string, 0, len(many))
	for _, v := range many {
		s, ok := v.(string)
		if !ok {
			return nil, command.BadParam("statistics", wireReason("Bad type for array item in parameter 'statistics'"))
		}
		out = append(out, s)
	}
	return out, nil
}

// Select returns the statistics matching the selectors, in source order,
// each at most once: "all", "group:" (a whole group), "group:name", or a
// bare name matched case-insensitively in any group. Unknown selectors are
// skipped.
func Select(all []Statistic, sel []string) []Statistic {
	keep := make([]bool, len(all))
	for _, s := range sel {
		s = strings.TrimSpace(s)
		grp, name, hasColon := strings.Cut(s, ":")
		for i, st := range all {
			switch {
			case s == "all":
			case hasColon && name == "":
				if !strings.EqualFold(st.Group, grp) {
					continue
				}
			case hasColon:
				if !strings.EqualFold(st.Group, grp) || !strings.EqualFold(st.Name, name) {
					continue
				}
			default:
				if !strings.EqualFold(st.Name, s) {
					continue
				}
			}
			keep[i] = true
		}
	}
	var out []Statistic
	for i, k := range keep {
		if k {
			out = append(out, all[i])
		}
	}
	return out
}

func (g *group) selected(req *command.Request, emptyMeansAll bool) ([]Statistic, error) {
	raw, _ := req.Param("statistics")
	sel, err := parseSelectors(raw)
	if err != nil {
		return nil, err
	}
	if len(sel) == 0 && emptyMeansAll {
		sel = []string{"all"}
	}
	all, err := g.stats.current()
	if err != nil {
		return nil, err
	}
	got := Select(all, sel)
	if len(got) == 0 {
		return nil, ErrStatsNotFound
	}
	return got, nil
}

func (g *group) getStatistics(_ context.Context, req *command.Request) (command.Result, error) {
	got, err := g.selected(req, false)
	if err != nil {
		return nil, err
	}
	m := make(orderedMap, len(got))
	for i, s := range got {
		m[i] = kv{s.FullName(), s.Value}
	}
	return value(m)
}

func (g *group) kamStatistics(_ context.Context, req *command.Request) (command.Result, error) {
	got, err := g.selected(req, true)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(got))
	for i, s := range got {
		out[i] = s.FullName() + " = " + strconv.FormatInt(s.Value, 10)
	}
	return value(out)
}

func (g *group) kamFetch(_ context.Context, req *command.Request) (command.Result, error) {
	got, err := g.selected(req, true)
	if err != nil {
		return nil, err
	}
	m := make(orderedMap, len(got))
	for i, s := range got {
		m[i] = kv{s.Group + "." + s.Name, strconv.FormatInt(s.Value, 10)}
	}
	return value(m)
}

func (g *group) listStatistics(_ context.Context, req *command.Request) (command.Result, error) {
	got, err := g.selected(req, true)
	if err != nil {
		return nil, err
	}
	m := make(orderedMap, len(got))
	for i, s := range got {
		t := "non-incremental"
		if s.Incremental {
			t = "incremental"
		}
		m[i] = kv{s.FullName(), t}
	}
	return value(m)
}

func (g *group) resetStatistics(_ context.Context, req *command.Request) (command.Result, error) {
	got, err := g.selected(req, false)
	if err != nil {
		return nil, err
	}
	g.reset(got)
	return command.Text("OK"), nil
}

func (g *group) resetAll(context.Context, *command.Request) (command.Result, error) {
	if g.stats.src == nil {
		return nil, unavailable("statistics source")
	}
	g.reset(g.stats.src.Statistics())
	return command.Text("OK"), nil
}

// reset records the raw values of the incremental statistics in sel as
// their new zero.
func (g *group) reset(sel []Statistic) {
	names := map[string]bool{}
	for _, s := range sel {
		if s.Incremental {
			names[s.FullName()] = true
		}
	}
	raw := g.stats.src.Statistics()
	g.stats.mu.Lock()
	for _, s := range raw {
		if names[s.FullName()] {
			g.stats.base[s.FullName()] = s.Value
		}
	}
	g.stats.mu.Unlock()
}

// Groups returns the distinct groups of all, sorted.
func Groups(all []Statistic) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range all {
		if !seen[s.Group] {
			seen[s.Group] = true
			out = append(out, s.Group)
		}
	}
	sort.Strings(out)
	return out
}
