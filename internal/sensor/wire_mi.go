package sensor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/voipsensor/voipsensor/internal/command"
	micmd "github.com/voipsensor/voipsensor/internal/command/mi"
	"github.com/voipsensor/voipsensor/internal/config"
	"github.com/voipsensor/voipsensor/internal/tableview"
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
	// Each listener is a service once bound: New's failure path (abort)
	// closes the ones bound before a later one failed.
	listen := func(setting, name string, x miListener) error {
		if err := x.Listen(); err != nil {
			return fmt.Errorf("sensor: %s: %w", setting, err)
		}
		s.services = append(s.services, service{name, x.Run, func() { x.Close() }})
		return nil
	}

	if cfg.MIHTTP != "" {
		srv := mi.NewHTTPServer(d, mi.HTTPConfig{
			Addr: cfg.MIHTTP, Token: cfg.MIHTTPToken.Reveal(), ReadOnly: ro["http"], Hosts: cfg.HTTPHosts,
			Limits: s.httpLimits(), Logger: log, XMLRPC: xmlrpc.Responder{Backend: xmlBackend{d}},
		})
		if err := listen("mi_http", "mi http", srv); err != nil {
			return err
		}
		s.addSessions("mi", "http", srv.Stats)
		s.addrs = append(s.addrs, Endpoint{Name: "mi-http", Network: "tcp", Addr: srv.Addr().String()})
		log.Info("MI HTTP listening", "addr", srv.Addr().String(), "paths", "/mi /RPC2")
	}
	if cfg.MIFIFO != "" {
		f := mi.NewFIFO(d, mi.FIFOConfig{Path: cfg.MIFIFO, ReadOnly: ro["fifo"], Logger: log})
		if err := listen("mi_fifo", "mi fifo", f); err != nil {
			return err
		}
		s.addrs = append(s.addrs, Endpoint{Name: "mi-fifo", Network: "fifo", Addr: f.Path()})
		log.Info("MI FIFO listening", "path", f.Path())
	}
	for _, spec := range cfg.MIDatagram {
		x := mi.NewDatagram(d, spec, mi.DatagramConfig{ReadOnly: ro["datagram"], AllowRemoteAmplification: cfg.MIDatagramAllowRemote, Logger: log})
		if err := listen("mi_datagram "+spec, "mi datagram", x); err != nil {
			return err
		}
		s.addrs = append(s.addrs, Endpoint{Name: "mi-datagram", Network: x.Addr().Network(), Addr: x.Addr().String()})
		log.Info("MI datagram listening", "addr", x.Addr().String())
	}
	return nil
}

// miListener is the surface of every MI listener.
type miListener interface {
	Listen() error
	Run(ctx context.Context) error
	Close() error
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
	if tid := s.loop.ThreadID(); tid != 0 {
		rows = append(rows, micmd.Process{ID: 1, PID: int(tid), Type: "capture " + s.sourceName()})
	}
	for _, e := range s.addrs {
		rows = append(rows, micmd.Process{ID: len(rows), PID: pid, Type: e.Name + " " + e.Network + ":" + e.Addr})
	}
	return rows
}
