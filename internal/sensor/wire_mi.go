package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
	micmd "github.com/voipsensor/voipsensor/internal/command/mi"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/tableview"
	"github.com/voipsensor/voipsensor/internal/transport/conn"
	"github.com/voipsensor/voipsensor/internal/transport/httpauth"
	"github.com/voipsensor/voipsensor/internal/transport/mi"
	"github.com/voipsensor/voipsensor/internal/transport/xmlrpc"
)

// wireMI registers the OpenSIPS MI command group and binds the MI
// listeners: mi_http (POST /mi JSON-RPC and POST /RPC2 XML-RPC on one
// HTTP listener), mi_fifo and each mi_datagram.
func (s *Sensor) wireMI() error {
	deps := micmd.Deps{
		Version: Version, Revision: vcsRevision(), Start: s.start,
		Stats: tableview.MIStats{Table: s.table, Counters: s.Status}, Dialogs: tableview.MIDialogs{T: s.table}, Contacts: tableview.MIDialogs{T: s.table},
		Processes: s.miProcesses, Args: config.RedactArgs(s.opts.Args),
	}
	if s.opts.LogLevel != nil {
		deps.LogLevel = s.opts.LogLevel
	}
	micmd.Register(s.reg, deps)

	cfg := s.cfg
	if cfg.MIHTTP == "" && cfg.MIFIFO == "" && len(cfg.MIDatagram) == 0 {
		return nil
	}
	d := mi.NewDispatcher(s.reg, mi.Config{})
	ro := map[string]bool{}
	for _, n := range strings.Split(cfg.MIReadOnly, ",") {
		ro[strings.TrimSpace(n)] = true
	}
	log := s.log.With("transport", "mi")
	var aborts []func()
	fail := func(err error) error {
		for _, a := range aborts {
			a()
		}
		return err
	}
	var runs []func(ctx context.Context) error

	if cfg.MIHTTP != "" {
		l, err := net.Listen("tcp", cfg.MIHTTP)
		if err != nil {
			return fail(fmt.Errorf("sensor: mi_http: %w", err))
		}
		token := cfg.MIHTTPToken.Reveal()
		mux := http.NewServeMux()
		mux.Handle("/mi", &mi.Handler{D: d, ReadOnly: ro["http"], Token: token})
		mux.Handle("/RPC2", &xmlrpc.Handler{Backend: xmlBackend{d}, ReadOnly: ro["http"], Token: token})
		guard := httpauth.NewGuard(cfg.MIHTTP, cfg.HTTPHosts)
		h := guard.Wrap(mux, func(string) bool { return true })
		x := conn.New(l, s.httpLimits(), conn.Options{Name: "mi http", Logger: log})
		aborts = append(aborts, func() { x.Close() })
		s.addSessions("mi", "http", x.Stats)
		s.addrs = append(s.addrs, Endpoint{Name: "mi-http", Network: "tcp", Addr: l.Addr().String()})
		log.Info("MI HTTP listening", "addr", l.Addr().String(), "paths", "/mi /RPC2")
		runs = append(runs, func(ctx context.Context) error {
			return httpauth.Serve(ctx, x, h, httpauth.Timeouts{ReadHeader: cfg.FirstRequestTimeout, Drain: 5 * time.Second})
		})
	}
	if cfg.MIFIFO != "" {
		f, err := mi.ListenFIFO(d, mi.FIFOConfig{Path: cfg.MIFIFO, ReadOnly: ro["fifo"], Logger: log})
		if err != nil {
			return fail(fmt.Errorf("sensor: mi_fifo: %w", err))
		}
		aborts = append(aborts, func() { f.Close() })
		s.addrs = append(s.addrs, Endpoint{Name: "mi-fifo", Network: "fifo", Addr: f.Path()})
		log.Info("MI FIFO listening", "path", f.Path())
		runs = append(runs, f.Run)
	}
	allowRemote := cfg.MIDatagramAllowRemote
	for _, spec := range cfg.MIDatagram {
		x, err := mi.ListenDatagram(d, spec, mi.DatagramConfig{ReadOnly: ro["datagram"], AllowRemoteAmplification: allowRemote, Logger: log})
		if err != nil {
			return fail(fmt.Errorf("sensor: mi_datagram %s: %w", spec, err))
		}
		aborts = append(aborts, func() { x.Close() })
		s.addrs = append(s.addrs, Endpoint{Name: "mi-datagram", Network: x.Addr().Network(), Addr: x.Addr().String()})
		log.Info("MI datagram listening", "addr", x.Addr().String())
		runs = append(runs, x.Run)
	}
	s.services = append(s.services, service{"mi", func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, len(runs))
		for i, r := range runs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = r(ctx) }()
		}
		wg.Wait()
		return errors.Join(errs...)
	}, func() {
		for _, a := range aborts {
			a()
		}
	}})
	return nil
}

// xmlBackend adapts the MI dispatcher to xmlrpc.Backend.
type xmlBackend struct{ d *mi.Dispatcher }

func (b xmlBackend) Call(ctx context.Context, method string, params json.RawMessage, perm command.Perm) (json.RawMessage, error) {
	res, e := b.d.Call(ctx, method, params, perm, "mi-xmlrpc")
	if e != nil {
		return nil, xmlrpc.FaultFor(e.Code, e.Message)
	}
	return res, nil
}

func vcsRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// miProcesses lists the ps rows: the process, the capture thread, and one
// row per bound listener.
func (s *Sensor) miProcesses() []micmd.Process {
	pid := os.Getpid()
	rows := []micmd.Process{{ID: 0, PID: pid, Type: "voipsensor main"}}
	if tid := s.captureTID.Load(); tid != 0 {
		rows = append(rows, micmd.Process{ID: 1, PID: int(tid), Type: "capture " + s.sourceName()})
	}
	for _, e := range s.addrs {
		rows = append(rows, micmd.Process{ID: len(rows), PID: pid, Type: e.Name + " " + e.Network + ":" + e.Addr})
	}
	return rows
}
