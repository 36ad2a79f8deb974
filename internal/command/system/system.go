package system

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// SensorStats is a snapshot of the counters sniffer_stat and its
// pbStatString need. Rates are per second over the last stats period.
type SensorStats struct {
	Initializing bool
	Start        time.Time // process start, for uptime

	ActiveCalls     int // calls in the call table (INVITE dialogs)
	RegisterDialogs int // active REGISTER dialogs
	CallsInMemory   int // all Call objects, incl. ones waiting to be stored
	Registrations   int // registration objects

	NewCallsPerSec, ClosedCallsPerSec float64
	SIPPerSec, RegisterPerSec         float64
	RTPPerSec, PacketsPerSec          float64

	CDRQueue     int       // records waiting to be stored
	CDRLastWrite time.Time // last successful CDR store

	BufferUsedPct float64 // packet buffer use
	MemoryFull    bool

	Packets, Drops uint64 // captured / dropped by the kernel, since start
	BufferDrops    uint64 // dropped because the packet buffer was full, since start
	InterfaceDrops []InterfaceDrops
	MbitPerSec     float64 // capture throughput

	CaptureCPU float64   // capture (t0) thread CPU %
	RTPCPU     []float64 // per RTP worker CPU %

	LiveSniffers     int
	TerminatingError string
}

// InterfaceDrops is the kernel drop count of one capture interface.
type InterfaceDrops struct {
	Name  string
	Drops uint64
}

// Stats provides [SensorStats]. Snapshot must not block on packet paths.
type Stats interface {
	Snapshot() SensorStats
}

// Thread names one OS thread of the sensor.
type Thread struct {
	Name string
	TID  int
	// Packets is how many packets the thread has handled, for
	// sniffer_threads only_traffic; 0 for threads that keep no count.
	Packets uint64
}

// Threads lists named sensor threads (e.g. capture goroutines locked to
// their OS thread). Threads of the process it does not name are listed
// with their kernel comm name.
type Threads interface {
	Threads() []Thread
}

// Lifecycle is implemented by the sensor: Reload re-reads capture rules
// (legacy reload), Terminate starts a graceful stop and returns at once.
type Lifecycle interface {
	Reload(ctx context.Context) error
	Terminate()
}

// AES reports the manager key state (implemented by the manager transport).
type AES interface {
	SupportAES() bool
	ExistsAESKey(ctx context.Context) bool
}

// Sockets starts and stops the extra manager_file unix socket
// (implemented by the manager transport). StartSocket returns the path
// used; an empty path asks for a temporary one.
type Sockets interface {
	StartSocket(path string) (string, error)
	StopSocket() error
}

// Deps are the data sources and controllers of the system group. Nil
// members make their commands answer [command.ErrUnavailable].
type Deps struct {
	Version, Build string
	Stats          Stats
	Threads        Threads
	Lifecycle      Lifecycle
	AES            AES
	Sockets        Sockets
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Proc is the proc filesystem root; "" means /proc.
	Proc string
	// Heap reads the Go heap figures for pbStatString; nil reads the
	// runtime's.
	Heap func() HeapMem
}

// Register adds the system commands to reg; help lists reg itself.
func Register(reg *command.Registry, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Proc == "" {
		d.Proc = "/proc"
	}
	g := &group{d: d, reg: reg, mon: newMonitor(d.Proc, d.Now)}
	rep := command.PermReporting
	for _, c := range []command.Command{
		{Name: "help", Perm: rep, Doc: "list commands, or describe one: help [command]",
			Params: []command.Param{{Name: "command", Doc: "command to describe"}}, Run: g.help},
		{Name: "getversion", Perm: rep, Doc: "sensor version", Run: g.text(func() string { return d.Version })},
		{Name: "sniffer_version", Perm: rep, Doc: "sensor version (same as getversion)", Run: g.text(func() string { return d.Version })},
		{Name: "getbuild", Perm: rep, Doc: "sensor build", Run: g.text(func() string { return d.Build })},
		{Name: "getverbuild", Perm: rep, Doc: "sensor version and build: VER (BUILD)",
			Run: g.text(func() string { return d.Version + " (" + d.Build + ")" })},
		{Name: "sniffer_stat", Perm: rep, Doc: "sensor status object with the pbStatString status line; 'plain' gives key=value lines",
			Params: []command.Param{{Name: "format", Doc: "plain: key=value lines"}}, Run: g.snifferStat},
		{Name: "sniffer_threads", Perm: rep,
			Doc:    "thread CPU usage since the previous call in the same slot; options no_sort only_traffic all line json uid=N",
			Params: []command.Param{{Name: "options", Doc: "any of no_sort, only_traffic, all, line, json, uid=N"}},
			Run:    g.snifferThreads},
		{Name: "reload", Perm: command.PermSystem, Doc: "reload capture rules from the configuration", Run: g.reload},
		{Name: "terminating", Perm: command.PermSystem, Doc: "stop the sensor gracefully (no reply)", Run: g.terminating},
		{Name: "support_aes", Perm: rep, Doc: "yes when manager AES is possible (a key is configured or can be stored)", Run: g.supportAES},
		{Name: "exists_aes_key", Perm: rep, Doc: "yes when a manager AES key exists (reloads it)", Run: g.existsAESKey},
		{Name: "manager_file", Perm: command.PermSystem, Doc: "start [path] or stop an extra manager unix socket",
			Params: []command.Param{
				{Name: "action", Required: true, Doc: "start or stop"},
				{Name: "path", Doc: "socket path for start; a temporary path when absent"},
			}, Run: g.managerFile},
	} {
		reg.Register(c)
	}
}

type group struct {
	d   Deps
	reg *command.Registry
	mon *monitor
}

func unavailable(what string) error { return fmt.Errorf("%w: no %s", command.ErrUnavailable, what) }

func (g *group) text(f func() string) func(context.Context, *command.Request) (command.Result, error) {
	return func(context.Context, *command.Request) (command.Result, error) { return command.Text(f()), nil }
}

// help writes the sniffer's help text: "List of commands:", a blank line,
// then "name ... doc." and a blank line per command; with a name, that
// command's entry followed by its parameters, or "Command X not found.".
func (g *group) help(_ context.Context, req *command.Request) (command.Result, error) {
	var b strings.Builder
	if name, ok := req.Param("command"); ok && name != "" {
		c, found := g.reg.Lookup(name)
		if !found {
			return command.Text("Command " + name + " not found.\n\n"), nil
		}
		fmt.Fprintf(&b, "%s ... %s.\n", c.Name, strings.TrimSuffix(c.Doc, "."))
		for _, p := range c.Params {
			req := ""
			if p.Required {
				req = ", required"
			}
			fmt.Fprintf(&b, "  %s (%v%s): %s\n", p.Name, p.Type, req, p.Doc)
		}
		b.WriteByte('\n')
		return command.Text(b.String()), nil
	}
	b.WriteString("List of commands:\n\n")
	for _, c := range g.reg.All() {
		fmt.Fprintf(&b, "%s ... %s.\n\n", c.Name, strings.TrimSuffix(c.Doc, "."))
	}
	return command.Text(b.String()), nil
}

func (g *group) reload(ctx context.Context, _ *command.Request) (command.Result, error) {
	if g.d.Lifecycle == nil {
		return nil, unavailable("lifecycle")
	}
	if err := g.d.Lifecycle.Reload(ctx); err != nil {
		return nil, fmt.Errorf("system: reload: %w", err)
	}
	return command.Text("reload ok"), nil
}

func (g *group) terminating(context.Context, *command.Request) (command.Result, error) {
	if g.d.Lifecycle == nil {
		return nil, unavailable("lifecycle")
	}
	g.d.Lifecycle.Terminate()
	return command.Empty{}, nil
}

func yesNo(b bool) command.Result {
	if b {
		return command.Text("yes")
	}
	return command.Text("no")
}

func (g *group) supportAES(context.Context, *command.Request) (command.Result, error) {
	return yesNo(g.d.AES != nil && g.d.AES.SupportAES()), nil
}

func (g *group) existsAESKey(ctx context.Context, _ *command.Request) (command.Result, error) {
	return yesNo(g.d.AES != nil && g.d.AES.ExistsAESKey(ctx)), nil
}

func (g *group) managerFile(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.Sockets == nil {
		return nil, unavailable("socket controller")
	}
	action, _ := req.Param("action")
	switch action {
	case "start":
		path, _ := req.Param("path")
		p, err := g.d.Sockets.StartSocket(path)
		if err != nil {
			return nil, fmt.Errorf("system: manager_file start: %w", err)
		}
		return command.Text("OK (" + p + ")\n"), nil
	case "stop":
		if err := g.d.Sockets.StopSocket(); err != nil {
			return nil, fmt.Errorf("system: manager_file stop: %w", err)
		}
		return command.Text("OK\n"), nil
	}
	return nil, command.BadParam("action", fmt.Errorf("want start or stop, got %q", action))
}
