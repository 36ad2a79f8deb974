package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/sensor"
)

// runFlags are the daemon's command-line flags; they override the file.
type runFlags struct {
	conf     string
	iface    string
	read     string
	realtime bool
	speed    float64
	loop     bool
	set      setFlags
	jsonLogs bool
}

// setFlags collects repeated -set key=value overrides.
type setFlags []string

func (s *setFlags) String() string     { return fmt.Sprint(*s) }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func runRun(args []string) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.conf, "c", "", "configuration file (voipmonitor.conf style); defaults work without one")
	fs.StringVar(&f.iface, "i", "", "capture interface (overrides 'interface'; lo and any work)")
	fs.StringVar(&f.read, "r", "", "read a pcap/pcapng file instead of an interface")
	fs.BoolVar(&f.realtime, "realtime", false, "with -r: play the file at its own timing")
	fs.Float64Var(&f.speed, "speed", 0, "with -r: play F times faster than recorded (implies --realtime)")
	fs.BoolVar(&f.loop, "loop", false, "with -r: start over at the end, shifting timestamps forward")
	fs.Var(&f.set, "set", "override one option: -set key=value (repeatable)")
	fs.BoolVar(&f.jsonLogs, "json-logs", false, "log as JSON instead of text (the same as log_format = json)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor run [-c FILE] [-i IFACE | -r FILE [--realtime] [--speed F] [--loop]] [-set key=value]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if f.read != "" && f.iface != "" {
		fmt.Fprintln(os.Stderr, "voipsensor run: -r FILE and -i IFACE exclude each other: read a file or capture an interface")
		return 2
	}
	cfg, overrides, warnings, err := loadConfig(f.conf, f.set, map[string]string{"interface": f.iface})
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor run:", err)
		return 2
	}
	level := new(slog.LevelVar) // MI log_level changes it at run time
	level.Set(cfg.LogLevel)
	log := newLogger(level, f.jsonLogs || cfg.LogFormat == "json")
	for _, w := range warnings {
		log.Warn("configuration key ignored", "file", w.File, "line", w.Line, "key", w.Key, "reason", w.Msg)
	}
	opts := sensor.Options{
		ReadFile: f.read, Realtime: f.realtime, Speed: f.speed, Loop: f.loop,
		Logger: log, ConfigPath: f.conf, Overrides: overrides, LogLevel: level, Args: os.Args,
	}
	if v := os.Getenv("VOIPSENSOR_TEST_STALL"); v != "" {
		// A test hook, "N:DURATION": the analysis stalls once for
		// DURATION after its N-th frame.
		n, d, _ := strings.Cut(v, ":")
		opts.StallAfter, _ = strconv.ParseUint(n, 10, 64)
		opts.StallFor, _ = time.ParseDuration(d)
	}
	if (f.realtime || f.speed != 0 || f.loop) && f.read == "" {
		fmt.Fprintln(os.Stderr, "voipsensor run: --realtime, --speed and --loop need -r FILE")
		return 2
	}
	return runSensor(cfg, opts)
}

// loadConfig reads the file (if any), applies -set overrides and the
// dedicated flags, and validates. Unknown keys are warnings, in the file
// and in -set alike (the caller logs them): a voipmonitor.conf carries
// many sniffer options voipsensor does not have.
func loadConfig(path string, sets []string, flags map[string]string) (*config.Config, map[string]string, []config.Warning, error) {
	cfg, warnings, err := config.Load(path)
	if err != nil {
		return nil, nil, nil, err
	}
	overrides := map[string]string{}
	for _, kv := range sets {
		k, v, ok := cutEq(kv)
		if !ok {
			return nil, nil, nil, fmt.Errorf("-set %q: want key=value", kv)
		}
		if _, known := cfg.Get(k); !known {
			warnings = append(warnings, config.UnknownKey("-set", 0, "", strings.ToLower(strings.TrimSpace(k))))
			continue
		}
		overrides[k] = v
	}
	for k, v := range flags {
		if v != "" {
			overrides[k] = v
		}
	}
	for k, v := range overrides {
		if err := cfg.Set(k, v); err != nil {
			return nil, nil, nil, fmt.Errorf("command line: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, err
	}
	return cfg, overrides, warnings, nil
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func newLogger(level slog.Leveler, asJSON bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if asJSON {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l
}

// runSensor builds and runs the daemon until SIGINT/SIGTERM or the end of
// a non-looping file.
func runSensor(cfg *config.Config, opts sensor.Options) int {
	s, err := sensor.New(cfg, opts)
	if err != nil {
		opts.Logger.Error("start failed", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// systemd (Type=notify): ready once the listeners are bound and the
	// capture is open, a watchdog while the packet loop makes progress,
	// stopping at the signal.
	sd := newSystemd()
	sd.notify("READY=1\nSTATUS=capturing")
	done := make(chan struct{})
	go sd.watchdog(s.Alive, done)
	go func() {
		<-ctx.Done()
		sd.notify("STOPPING=1")
	}()
	err = s.Run(ctx)
	close(done)
	if err != nil {
		opts.Logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}
