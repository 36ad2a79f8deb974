package mi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/voipsensor/voipsensor/internal/command"
)

// Error is a module-style MI error: an OpenSIPS SIP-like code and text
// (404 "Statistics Not Found"). It implements the MI transport's
// MIError method, so the code reaches the wire unchanged.
type Error struct {
	Code int
	Text string
}

// Error returns "mi: CODE TEXT".
func (e *Error) Error() string { return "mi: " + strconv.Itoa(e.Code) + " " + e.Text }

// MIError returns the code and text for the JSON-RPC error object.
func (e *Error) MIError() (int, string) { return e.Code, e.Text }

// Errors the commands return.
var (
	ErrStatsNotFound = &Error{404, "Statistics Not Found"}
	ErrNoDialog      = &Error{404, "No such dialog"}
	ErrNoTable       = &Error{404, "Table not found"}
	ErrNoDomain      = &Error{400, "Domain missing in AOR"}
	ErrNoAOR         = &Error{404, "AOR not found"}
)

// Process is one row of ps.
type Process struct {
	ID   int    `json:"ID"`
	PID  int    `json:"PID"`
	Type string `json:"Type"`
}

// LogLevel is the sensor's adjustable log threshold; *slog.LevelVar
// implements it.
type LogLevel interface {
	Level() slog.Level
	Set(slog.Level)
}

// Deps are the data sources of the group. Nil members make their commands
// answer command.ErrUnavailable.
type Deps struct {
	Version  string // "0.1.0"
	Revision string // VCS revision for "version revision"; "" when unknown
	Start    time.Time
	Stats    StatSource
	Dialogs  DialogSource
	Contacts ContactSource
	LogLevel LogLevel
	// Processes lists the ps rows; nil gives one row for this process.
	Processes func() []Process
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Args is the command line "arg" shows, secrets already redacted
	// (config.RedactArgs); nil shows nothing, never os.Args unfiltered.
	Args []string
}

// wireReason is an error whose text is OpenSIPS's reply text, sent as it
// is (so capitalised, unlike Go error strings).
type wireReason string

func (r wireReason) Error() string { return string(r) }

type group struct {
	d     Deps
	reg   *command.Registry
	stats *statistics
}

// Register adds the MI commands to reg. It panics (as Register does) if a
// name is taken.
func Register(reg *command.Registry, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Start.IsZero() {
		d.Start = d.Now()
	}
	g := &group{d: d, reg: reg, stats: newStatistics(d.Stats)}
	rep, sys := command.PermReporting, command.PermSystem
	stat := []command.Param{{Name: "statistics", Type: command.ParamJSON, Required: true,
		Doc: `array of "all", "group:" or bare stat names (a single string is accepted too)`}}
	optStat := []command.Param{{Name: "statistics", Type: command.ParamJSON, Doc: "as get_statistics; absent lists every statistic"}}
	dlg := []command.Param{
		{Name: "callid", Doc: "Call-ID (or dialog ID) of one dialog"},
		{Name: "from_tag", Doc: "accepted for OpenSIPS compatibility; not used"},
		{Name: "index", Type: command.ParamInt, Doc: "first dialog of a page (named only)"},
		{Name: "counter", Type: command.ParamInt, Doc: "page size (named only)"},
	}
	brief := []command.Param{{Name: "brief", Doc: `"brief": AORs only`}}
	cmds := []command.Command{
		{Name: "uptime", Perm: rep, Doc: "Now, Up since and Up time of the sensor (OpenSIPS shape)", Run: g.uptime},
		{Name: "core:uptime", Perm: rep, Doc: "OpenSIPS 4.0 name of uptime", Run: g.uptime},
		{Name: "core.uptime", Perm: rep, Doc: "Kamailio core.uptime: now, up_since, uptime (seconds)", Run: g.kamUptime},
		{Name: "version", Perm: rep, Doc: "Server version; 'revision' adds the VCS revision",
			Params: []command.Param{{Name: "revision", Doc: "any value: add the revision"}}, Run: g.version},
		{Name: "core.version", Perm: rep, Doc: "Kamailio core.version: the version string", Run: g.kamVersion},
		{Name: "pwd", Perm: rep, Doc: "working directory of the sensor", Run: g.pwd},
		{Name: "arg", Perm: rep, Doc: "command-line arguments of the sensor", Run: g.arg},
		{Name: "which", Perm: rep, Doc: "every command name, or the parameter recipes of one",
			Params: []command.Param{{Name: "command", Doc: "command to describe"}}, Run: g.which},
		{Name: "system.listMethods", Perm: rep, Doc: "Kamailio system.listMethods: every command name", Run: g.which},
		{Name: "ps", Perm: rep, Doc: "sensor processes and threads", Run: g.ps},
		{Name: "log_level", Perm: rep, Doc: "get the log level, or set it (OpenSIPS levels -3 alert … 4 debug; setting needs a control listener)",
			Params: []command.Param{
				{Name: "level", Type: command.ParamInt, Doc: "new level: -3 alert, -2 crit, -1 error, 1 warn, 2 notice, 3 info, 4 debug"},
				{Name: "pid", Type: command.ParamInt, Doc: "only this process's PID (the sensor is one process)"},
			}, Run: g.logLevel},
		{Name: "get_statistics", Perm: rep, Doc: `statistics as {"group:name":value}; 404 when nothing matches`, Params: stat, Run: g.getStatistics},
		{Name: "statistics:get", Perm: rep, Doc: "OpenSIPS 4.0 name of get_statistics", Params: stat, Run: g.getStatistics},
		{Name: "stats.get_statistics", Perm: rep, Doc: `Kamailio stats.get_statistics: ["group:name = value",…]`, Params: optStat, Run: g.kamStatistics},
		{Name: "stats.fetch", Perm: rep, Doc: `Kamailio stats.fetch: {"group.name":"value"}`, Params: optStat, Run: g.kamFetch},
		{Name: "list_statistics", Perm: rep, Doc: `statistic names with "incremental" or "non-incremental"`, Params: optStat, Run: g.listStatistics},
		{Name: "statistics:list", Perm: rep, Doc: "OpenSIPS 4.0 name of list_statistics", Params: optStat, Run: g.listStatistics},
		{Name: "reset_statistics", Perm: sys, Doc: "reset incremental statistics to zero (array of names as get_statistics)", Params: stat, Run: g.resetStatistics},
		{Name: "reset_all_statistics", Perm: sys, Doc: "reset every incremental statistic", Run: g.resetAll},
		{Name: "dlg_list", Perm: command.PermCall, Doc: `calls in progress as {"Dialogs":[…]}, one as {"Dialog":…} by callid, a page by index,counter`, Params: dlg, Run: g.dlgList(false)},
		{Name: "dlg_list_ctx", Perm: command.PermCall, Doc: "dlg_list with each dialog's context (media streams)", Params: dlg, Run: g.dlgList(true)},
		{Name: "dialog:list", Perm: command.PermCall, Doc: "OpenSIPS 4.0 name of dlg_list", Params: dlg, Run: g.dlgList(false)},
		{Name: "dlg.list", Perm: command.PermCall, Doc: "Kamailio dlg.list: calls in progress as an array of dialogs", Run: g.kamDlgList},
		{Name: "ul_dump", Perm: command.PermCall, Doc: `registrations as {"Domains":[{"name":"location","AORs":[…]}]}`, Params: brief, Run: g.ulDump},
		{Name: "usrloc:dump", Perm: command.PermCall, Doc: "OpenSIPS 4.0 name of ul_dump", Params: brief, Run: g.ulDump},
		{Name: "ul.dump", Perm: command.PermCall, Doc: "Kamailio ul.dump (OpenSIPS ul_dump shape)", Params: brief, Run: g.ulDump},
		{Name: "ul_show_contact", Perm: command.PermCall, Doc: `one AOR's contacts: ul_show_contact location user@domain`,
			Params: []command.Param{
				{Name: "table_name", Required: true, Doc: `usrloc table: "location"`},
				{Name: "aor", Required: true, Doc: "user@domain"},
			}, Run: g.ulShowContact},
	}
	for _, c := range cmds {
		reg.Register(c)
	}
}

func unavailable(what string) error { return fmt.Errorf("%w: no %s", command.ErrUnavailable, what) }

func value(v any) (command.Result, error) { return command.Value{V: v}, nil }

// ctime formats like C's ctime without the newline: "Mon Nov 23 07:56:42 2026".
func ctime(t time.Time) string { return t.Format("Mon Jan _2 15:04:05 2006") }

func (g *group) uptime(context.Context, *command.Request) (command.Result, error) {
	now := g.d.Now()
	return value(orderedMap{
		{"Now", ctime(now)},
		{"Up since", ctime(g.d.Start)},
		{"Up time", strconv.Itoa(int(now.Sub(g.d.Start).Seconds())) + " [sec]"},
	})
}

func (g *group) kamUptime(context.Context, *command.Request) (command.Result, error) {
	now := g.d.Now()
	return value(orderedMap{
		{"now", ctime(now)},
		{"up_since", ctime(g.d.Start)},
		{"uptime", int64(now.Sub(g.d.Start).Seconds())},
	})
}

func (g *group) serverString() string {
	return "voipsensor (" + g.d.Version + " (" + runtime.GOARCH + "/" + runtime.GOOS + "))"
}

func (g *group) version(_ context.Context, req *command.Request) (command.Result, error) {
	m := orderedMap{{"Server", g.serverString()}}
	if _, ok := req.Param("revision"); ok {
		rev := g.d.Revision
		if rev == "" {
			rev = "unknown"
		}
		m = append(m, kv{"git", rev})
	}
	return value(m)
}

func (g *group) kamVersion(context.Context, *command.Request) (command.Result, error) {
	return command.Text(g.serverString()), nil
}

func (g *group) pwd(context.Context, *command.Request) (command.Result, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	return value(orderedMap{{"WD", wd}})
}

func (g *group) arg(context.Context, *command.Request) (command.Result, error) {
	return value(append([]string{}, g.d.Args...))
}

func (g *group) which(_ context.Context, req *command.Request) (command.Result, error) {
	if name, ok := req.Param("command"); ok && name != "" {
		c, found := g.reg.Lookup(name)
		if !found {
			return nil, &Error{404, "unknown MI command"}
		}
		return value(Recipes(c.Params))
	}
	all := g.reg.All()
	names := make([]string, len(all))
	for i, c := range all {
		names[i] = c.Name
	}
	return value(names)
}

// Recipes lists the parameter-name lists a command accepts, as OpenSIPS
// "which CMD" shows them: the required parameters plus each prefix of
// the optional ones ([[],["level"],["level","pid"]]).
func Recipes(ps []command.Param) [][]string {
	var req, opt []string
	for _, p := range ps {
		if p.Required {
			req = append(req, p.Name)
		} else {
			opt = append(opt, p.Name)
		}
	}
	out := [][]string{append([]string{}, req...)}
	for i := range opt {
		out = append(out, append(append([]string{}, req...), opt[:i+1]...))
	}
	return out
}

func (g *group) ps(context.Context, *command.Request) (command.Result, error) {
	var rows []Process
	if g.d.Processes != nil {
		rows = g.d.Processes()
	} else {
		rows = []Process{{ID: 0, PID: os.Getpid(), Type: "voipsensor"}}
	}
	return value(map[string]any{"Processes": rows})
}

// OpenSIPS log levels and their slog equivalents.
var opensipsLevels = []struct {
	n int
	l slog.Level
}{
	{-3, slog.LevelError + 8}, // alert
	{-2, slog.LevelError + 4}, // crit
	{-1, slog.LevelError},
	{1, slog.LevelWarn},
	{2, slog.LevelInfo + 2}, // notice
	{3, slog.LevelInfo},
	{4, slog.LevelDebug},
}

// SlogLevel maps an OpenSIPS log level (-3 … 4) to a slog level.
func SlogLevel(n int) (slog.Level, bool) {
	for _, x := range opensipsLevels {
		if x.n == n {
			return x.l, true
		}
	}
	return 0, false
}

// OpenSIPSLevel maps a slog level to the nearest OpenSIPS level that
// shows at least as much.
func OpenSIPSLevel(l slog.Level) int {
	for i := len(opensipsLevels) - 1; i >= 0; i-- {
		if l <= opensipsLevels[i].l {
			return opensipsLevels[i].n
		}
	}
	return -3
}

func (g *group) logLevel(_ context.Context, req *command.Request) (command.Result, error) {
	if g.d.LogLevel == nil {
		return nil, unavailable("adjustable log level")
	}
	lv, set := req.Param("level")
	if !set || lv == "" {
		return value(map[string]any{"Processes": []any{orderedMap{
			{"PID", os.Getpid()}, {"Log level", OpenSIPSLevel(g.d.LogLevel.Level())}, {"Type", "voipsensor"},
		}}})
	}
	if !req.Perm.Has(command.PermSystem) {
		return nil, fmt.Errorf("%w: setting log_level needs a control listener", command.ErrPermission)
	}
	n, _ := strconv.Atoi(lv)
	sl, ok := SlogLevel(n)
	if !ok {
		return nil, command.BadParam("level", fmt.Errorf("want -3..-1 or 1..4, got %d", n))
	}
	if pid, ok := req.Param("pid"); ok && pid != "" {
		if p, _ := strconv.Atoi(pid); p != os.Getpid() {
			return nil, command.BadParam("pid", wireReason("Bad PID"))
		}
		g.d.LogLevel.Set(sl)
		return value(orderedMap{{"Log level", n}})
	}
	g.d.LogLevel.Set(sl)
	return value(orderedMap{{"New global log level", n}})
}

// kv is one member of an orderedMap.
type kv struct {
	K string
	V any
}

// orderedMap marshals as a JSON object with members in slice order, so
// replies read like OpenSIPS's.
type orderedMap []kv

// MarshalJSON implements json.Marshaler.
func (m orderedMap) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, e := range m {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(e.K)
		v, err := json.Marshal(e.V)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}
