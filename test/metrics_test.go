package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestPrometheusScrape runs a real Prometheus server (Debian's) scraping
// the daemon's metrics endpoint every second while a capture replays, and
// checks through Prometheus' own query API that the target is up, that
// counters, gauges and histograms arrived with the sensor's names and
// labels, and that the frames counter Prometheus stored is the one the
// sensor reports on its MI statistics at the same moment (within one
// scrape).
func TestPrometheusScrape(t *testing.T) {
	prom := sharedtest.Tool(t, "prometheus")
	metricsPort := freeTCPPort(t)
	mi := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	d := startDaemon(t, "-set", fmt.Sprintf("metrics_bind=127.0.0.1:%d", metricsPort), "-set", "mi_http="+mi,
		"-r", sharedtest.Pcap(t, "sipp_kamailio.pcap"), "--realtime", "--loop")
	if !d.waitLog("metrics listening", 10*time.Second) {
		t.Fatalf("no metrics listener:\n%s", d.log)
	}
	// The endpoint as Prometheus reads it: text exposition format.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"# TYPE voipsensor_frames_total counter", "# TYPE voipsensor_stream_mos histogram",
		`voipsensor_dropped_total{reason="kernel"} 0`, "voipsensor_calls_in_progress ", `voipsensor_sessions{listener="http",transport="metrics"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	dir := t.TempDir()
	webPort := freeTCPPort(t)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: voipsensor\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n", metricsPort)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := exec.Command(prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", webPort))
	var plog syncBuffer
	p.Stdout, p.Stderr = &plog, &plog
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { p.Process.Kill(); p.Wait() }()
	query := func(q string) []promResult {
		r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", webPort, url.QueryEscape(q)))
		if err != nil {
			return nil
		}
		defer r.Body.Close()
		var out struct {
			Data struct{ Result []promResult } `json:"data"`
		}
		json.NewDecoder(r.Body).Decode(&out)
		return out.Data.Result
	}
	// Wait for a few scrapes with calls ended (the capture has two calls
	// of about 2.5 s, replayed in a loop).
	deadline := time.Now().Add(60 * time.Second)
	for {
		up := query(`up{job="voipsensor"}`)
		ended := query(`sum(voipsensor_calls_ended_total)`)
		if len(up) == 1 && up[0].value() == 1 && len(ended) == 1 && ended[0].value() >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never scraped the sensor with ended calls (up %v, ended %v); prometheus log:\n%s", up, ended, plog.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Loss is observed for every stream with media; MOS only for streams
	// that scored a MOS interval (these calls are shorter than the 10 s
	// the sniffer's MOS needs, so the histogram exists and stays empty).
	if r := query(`voipsensor_stream_loss_ratio_count`); len(r) != 1 || r[0].value() < 2 {
		t.Errorf("loss histogram count: %v", r)
	}
	if r := query(`voipsensor_stream_mos_bucket{le="+Inf"}`); len(r) != 1 {
		t.Errorf("MOS histogram: %v", r)
	}
	if r := query(`voipsensor_calls_ended_total{class="2xx"}`); len(r) != 1 || r[0].value() < 2 {
		t.Errorf("calls ended 2xx: %v", r)
	}
	if r := query(`voipsensor_registrations{state="OK"}`); len(r) != 1 {
		t.Errorf("registrations by state: %v", r)
	}
	// Prometheus' last value of the frames counter against the sensor's
	// own, read right after: equal, or at most one scrape interval of
	// frames behind (the capture plays ~100 frames a second).
	got := query(`voipsensor_frames_total`)
	_, rep := postMI(t, mi, `{"jsonrpc":"2.0","method":"get_statistics","params":[["capture:frames"]],"id":1}`)
	var st map[string]float64
	json.Unmarshal(rep.Result, &st)
	now := st["capture:frames"]
	if len(got) != 1 || got[0].value() > now || now-got[0].value() > 1000 {
		t.Errorf("frames in Prometheus %v, the sensor says %v", got, now)
	}
	t.Logf("Prometheus 2.x scraped %d metric families; frames %v (sensor %v)", strings.Count(string(body), "# TYPE "), got[0].value(), now)
}

type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func (r promResult) value() float64 {
	if len(r.Value) != 2 {
		return -1
	}
	s, _ := r.Value[1].(string)
	v, _ := strconv.ParseFloat(s, 64)
	return v
}
