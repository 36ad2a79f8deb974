package metrics

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voipsensor/voipsensor/internal/command"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
)

// DefaultAddr is metrics_bind's default.
const DefaultAddr = "127.0.0.1:9102"

// Config configures the endpoint.
type Config struct {
	Addr   string      // host:port
	Token  string      // metrics_token: required as "Authorization: Bearer" when set
	Hosts  []string    // Host names served besides loopback ones (web_hosts)
	Limits conn.Limits // connection caps; FirstRequest bounds the request header
	Logger *slog.Logger
}

// family and sample mirror the metrics command group's result (a
// transport may not import a command group; the result crosses as JSON).
type family struct {
	Name    string   `json:"name"`
	Help    string   `json:"help"`
	Type    string   `json:"type"`
	Samples []sample `json:"samples"`
}

type sample struct {
	Labels  map[string]string `json:"labels"`
	Value   float64           `json:"value"`
	Buckets []struct {
		UpperBound float64 `json:"le"`
		Count      uint64  `json:"count"`
	} `json:"buckets"`
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum"`
}

// Server is the Prometheus endpoint: [New], then the lifecycle of every
// HTTP transport ([httpauth.Server]: Listen, Run, Close, Addr, Stats).
// Safe for concurrent use.
type Server struct {
	*httpauth.Server
	reg   *command.Registry
	cfg   Config
	guard httpauth.Guard
}

// New returns the endpoint over reg. It binds nothing.
func New(reg *command.Registry, cfg Config) *Server {
	s := &Server{reg: reg, cfg: cfg, guard: httpauth.NewGuard(cfg.Addr, cfg.Hosts)}
	s.Server = httpauth.NewServer(httpauth.ServerConfig{Name: "metrics", Addr: cfg.Addr, Handler: s, Limits: cfg.Limits, Logger: cfg.Logger})
	return s
}

// ServeHTTP serves GET /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.guard.Check(w, r, true) {
		return
	}
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !httpauth.Authorized(r, s.cfg.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="voipsensor metrics"`)
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	res, err := s.reg.Run(httpauth.RequestContext(r), &command.Request{Name: "metrics", Transport: "metrics", Perm: command.PermReporting})
	if err != nil {
		http.Error(w, "500 "+err.Error(), http.StatusInternalServerError)
		return
	}
	raw, err := json.Marshal(res)
	if err != nil {
		http.Error(w, "500 "+err.Error(), http.StatusInternalServerError)
		return
	}
	var fams []family
	if err := json.Unmarshal(raw, &fams); err != nil {
		http.Error(w, "500 "+err.Error(), http.StatusInternalServerError)
		return
	}
	preg := prometheus.NewPedanticRegistry()
	if err := preg.Register(collector(fams)); err != nil {
		http.Error(w, "500 "+err.Error(), http.StatusInternalServerError)
		return
	}
	promhttp.HandlerFor(preg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
}

// collector turns one scrape's families into Prometheus metrics.
type collector []family

func (c collector) descs() map[string]*prometheus.Desc {
	out := make(map[string]*prometheus.Desc, len(c))
	for _, f := range c {
		out[f.Name] = prometheus.NewDesc(f.Name, f.Help, labelNames(f), nil)
	}
	return out
}

// labelNames are the label keys of a family's first sample, sorted (every
// sample of a family has the same keys).
func labelNames(f family) []string {
	if len(f.Samples) == 0 {
		return nil
	}
	var names []string
	for k := range f.Samples[0].Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	descs := c.descs()
	for _, f := range c {
		d := descs[f.Name]
		names := labelNames(f)
		for _, s := range f.Samples {
			vals := make([]string, len(names))
			for i, n := range names {
				vals[i] = s.Labels[n]
			}
			var m prometheus.Metric
			var err error
			switch f.Type {
			case "counter":
				m, err = prometheus.NewConstMetric(d, prometheus.CounterValue, s.Value, vals...)
			case "gauge":
				m, err = prometheus.NewConstMetric(d, prometheus.GaugeValue, s.Value, vals...)
			case "histogram":
				buckets := make(map[float64]uint64, len(s.Buckets))
				for _, b := range s.Buckets {
					buckets[b.UpperBound] = b.Count
				}
				m, err = prometheus.NewConstHistogram(d, s.Count, s.Sum, buckets, vals...)
			default:
				err = fmt.Errorf("metrics: %s: unknown type %q", f.Name, f.Type)
			}
			if err != nil {
				m = prometheus.NewInvalidMetric(d, err)
			}
			ch <- m
		}
	}
}

var _ prometheus.Collector = collector(nil)
