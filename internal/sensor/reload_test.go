package sensor

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/sharedtest"
)

// TestReloadSerialisedAndCopied: reloads from many goroutines at once
// (several transports may ask) neither race nor touch the configuration
// the caller passed to New; each publishes the file's values whole.
func TestReloadSerialisedAndCopied(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voipsensor.conf")
	write := func(rtp string) {
		body := "spooldir = " + dir + "\nmanagerport = 0\nweb_port = 0\nmetrics_bind =\nrtptimeout = " + rtp + "\n"
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("30")
	cfg, _, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{ReadFile: sharedtest.Pcap(t, "sipp_rtpstream.pcap"), ConfigPath: conf,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.abort()
	write("45")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Reload() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !strings.Contains(err.Error(), "need a restart") {
			t.Errorf("Reload: %v", err)
		}
	}
	if got := s.Config().RTPTimeout; got != 45*time.Second {
		t.Errorf("after reload rtptimeout = %v, want 45s", got)
	}
	if cfg.RTPTimeout != 30*time.Second {
		t.Errorf("the caller's configuration changed: rtptimeout %v", cfg.RTPTimeout)
	}
	if s.cfg.RTPTimeout != 30*time.Second {
		t.Errorf("the start configuration changed: rtptimeout %v", s.cfg.RTPTimeout)
	}
}
