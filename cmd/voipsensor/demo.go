package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/demo"
	"github.com/voipsensor/voipsensor/internal/sensor"
)

// Preferred demo ports; a busy one is replaced by a free one.
const (
	demoAMIPort    = 5038 // Asterisk's default
	demoMIHTTPPort = 8888 // OpenSIPS httpd's default
)

// runDemo replays the bundled capture in real time and in a loop, with
// SQLite in a temporary directory, and prints what it serves.
func runDemo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	speed := fs.Float64("speed", 1, "play the capture F times faster than recorded (jitter and MOS then measure the faster arrival times; loss and counts are unchanged)")
	jsonLogs := fs.Bool("json-logs", false, "log as JSON instead of text")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: voipsensor demo [-duration D] [-speed F]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 || *speed <= 0 || *duration < 0 {
		fs.Usage()
		return 2
	}

	dir, err := os.MkdirTemp("", "voipsensor-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	cfg, amiSecret, err := demoConfig(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "voipsensor demo:", err)
		return 1
	}
	log := demoLogger(cfg.LogLevel, *jsonLogs)
	s, err := sensor.New(cfg, sensor.Options{
		Open: demo.Open, Realtime: true, Speed: *speed, Loop: true, ShiftToNow: true,
		StatusEvery: 30 * time.Second, Logger: log, Args: os.Args,
	})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	printDemoBanner(os.Stdout, dir, s.Endpoints(), amiSecret, selfCommand())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := s.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// demoConfig is the default configuration with everything in dir: SQLite,
// the manager API on 127.0.0.1:5029, AMI with one user "demo" and a random
// secret (returned), MI over HTTP and the web UI, each on its usual port or,
// when that is busy, a free one.
func demoConfig(dir string) (*config.Config, string, error) {
	cfg := config.Default()
	cfg.Interface = "demo" // unused: the source is the embedded capture
	cfg.SpoolDir = dir
	cfg.SQLDriver = "sqlite"
	cfg.SQLitePath = ""
	const host = "127.0.0.1"
	var err error
	if cfg.ManagerPort, err = freePort(host, config.DefaultManagerPort); err != nil {
		return nil, "", err
	}
	cfg.ManagerIP = host
	cfg.WebBind = host
	if cfg.WebPort, err = freePort(host, cfg.WebPort); err != nil {
		return nil, "", err
	}
	mi, err := freePort(host, demoMIHTTPPort)
	if err != nil {
		return nil, "", err
	}
	cfg.MIHTTP = net.JoinHostPort(host, strconv.Itoa(mi))
	mp, err := freePort(host, 9102)
	if err != nil {
		return nil, "", err
	}
	cfg.MetricsBind = net.JoinHostPort(host, strconv.Itoa(mp))

	ami, err := freePort(host, demoAMIPort)
	if err != nil {
		return nil, "", err
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	secret := hex.EncodeToString(b[:])
	conf := fmt.Sprintf("; written by voipsensor demo, removed at exit\n[general]\nenabled = yes\nbindaddr = %s\nport = %d\n\n[demo]\nsecret = %s\nread = all\nwrite = all\n",
		host, ami, secret)
	cfg.AMIConfig = filepath.Join(dir, "manager.conf")
	if err := os.WriteFile(cfg.AMIConfig, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	return cfg, secret, nil
}

// demoLogger logs to stderr, so that stdout carries only the banner.
func demoLogger(level slog.Level, asJSON bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if asJSON {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l
}

// freePort returns port if it can be bound on host now, or else a port the
// kernel picks. Another process may take it before the sensor binds it; the
// sensor then fails to start with the bind error.
func freePort(host string, port int) (int, error) {
	if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
		l.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// selfCommand is how to run this program again from a shell: "voipsensor"
// for an installed or built binary, "go run ./cmd/voipsensor" when it was
// started with go run (whose binary lives in a temporary go-build
// directory that is gone at exit).
func selfCommand() string {
	exe, err := os.Executable()
	if err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/voipsensor"
	}
	return "voipsensor"
}

// printDemoBanner tells a person what the demo serves and how to try it;
// self is how to run voipsensor from the user's shell.
func printDemoBanner(w io.Writer, dir string, eps []sensor.Endpoint, amiSecret, self string) {
	var b strings.Builder
	fmt.Fprintln(&b, "voipsensor demo: replaying 8 bundled calls (English, German and Czech speech, G.711) in real time, in a loop.")
	fmt.Fprintf(&b, "CDRs go to SQLite in %s (removed at exit). Stop with Ctrl-C.\n\n", dir)
	for _, ep := range eps {
		fmt.Fprintf(&b, "%-12s %-8s %s\n", ep.Name, ep.Network, ep.Addr)
		host, port, _ := net.SplitHostPort(ep.Addr)
		switch {
		case ep.Name == "manager" && ep.Network == "tcp":
			fmt.Fprintf(&b, "    echo 'listcalls' | nc %s %s\n", host, port)
			fmt.Fprintf(&b, "    %s ctl -H %s -p %s --table listcalls\n", self, host, port)
		case ep.Name == "manager" && ep.Network == "unix":
			fmt.Fprintf(&b, "    echo 'listcalls' | nc -U %s\n", ep.Addr)
		case ep.Name == "ami":
			fmt.Fprintf(&b, "    user demo, secret %s\n", amiSecret)
			fmt.Fprintf(&b, "    printf 'Action: Login\\r\\nUsername: demo\\r\\nSecret: %s\\r\\n\\r\\nAction: CoreShowChannels\\r\\n\\r\\nAction: Logoff\\r\\n\\r\\n' | nc -N %s %s\n",
				amiSecret, host, port)
		case ep.Name == "mi-http":
			fmt.Fprintf(&b, "    curl -s -H 'Content-Type: application/json' -d '{\"jsonrpc\":\"2.0\",\"method\":\"listcalls\",\"id\":1}' http://%s/mi\n", ep.Addr)
		case ep.Name == "metrics":
			fmt.Fprintf(&b, "    curl -s http://%s/metrics | grep voipsensor_calls_in_progress\n", ep.Addr)
		case ep.Name == "web":
			fmt.Fprintf(&b, "    open http://%s/ in a browser\n", ep.Addr)
		}
	}
	fmt.Fprintln(&b)
	io.WriteString(w, b.String())
}
