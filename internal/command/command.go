package command

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ParamType is the type a [Param] value must parse as.
type ParamType uint8

// Parameter types. ParamJSON takes the rest of a command line (see
// [ParseLine]) and must be valid JSON when present.
const (
	ParamString ParamType = iota
	ParamInt
	ParamBool
	ParamJSON
)

// String returns the lower-case type name.
func (t ParamType) String() string {
	switch t {
	case ParamString:
		return "string"
	case ParamInt:
		return "int"
	case ParamBool:
		return "bool"
	case ParamJSON:
		return "json"
	}
	return "ParamType(" + strconv.Itoa(int(t)) + ")"
}

// Param documents one parameter of a [Command]. The order of
// Command.Params is the positional order: Args[i] fills Params[i].
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	Doc      string
}

// Command is a named, documented, permission-tagged operation.
type Command struct {
	// Name is the exact, case-sensitive name clients use ("listcalls").
	Name string
	// Doc is a one-line description shown by help; it must not be empty.
	Doc string
	// Perm lists the classes a request must be granted to run it.
	Perm Perm
	// Params documents the parameters, in positional order.
	Params []Param
	// Run executes the command. It must not retain req after returning.
	Run func(ctx context.Context, req *Request) (Result, error)
}

// Request is the transport-neutral input of a [Command].
type Request struct {
	// Name is the command name as looked up.
	Name string
	// Args are positional arguments in wire order (see [ParseLine]).
	Args []string
	// Params are named arguments (JSON-RPC params, AMI headers).
	Params map[string]string
	// Transport names the transport that built the request ("manager").
	Transport string
	// Perm is what the session or listener was granted.
	Perm Perm

	cmd *Command
}

// Param returns the value of the named parameter: Params[name] if set,
// otherwise the positional argument at the parameter's index in the
// command's Params. ok is false when neither is present.
func (r *Request) Param(name string) (v string, ok bool) {
	if v, ok := r.Params[name]; ok {
		return v, true
	}
	if r.cmd != nil {
		for i, p := range r.cmd.Params {
			if p.Name == name && i < len(r.Args) {
				return r.Args[i], true
			}
		}
	}
	return "", false
}

// HasArg reports whether any positional argument equals word exactly.
func (r *Request) HasArg(word string) bool {
	for _, a := range r.Args {
		if a == word {
			return true
		}
	}
	return false
}

// Registry holds the registered commands. Register is meant for startup;
// Lookup, All and Run are safe for concurrent use with each other and with
// Register.
type Registry struct {
	mu     sync.RWMutex
	cmds   map[string]*Command
	sorted []Command // All's answer, rebuilt after a Register

	log         atomic.Pointer[slog.Logger]
	panics      atomic.Uint64
	stackLogged atomic.Bool
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{cmds: make(map[string]*Command)} }

// SetLogger sets where a command's panic is logged (nil: slog.Default()).
func (r *Registry) SetLogger(l *slog.Logger) { r.log.Store(l) }

// Panics counts the commands that panicked (recovered by Run).
func (r *Registry) Panics() uint64 { return r.panics.Load() }

// Register adds c. It panics on an empty or duplicate name, a name holding
// white space, an empty Doc, a nil Run, an invalid Perm, or a Param without
// a name or doc: wiring mistakes fail at startup, never at request time.
func (r *Registry) Register(c Command) {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, " \t\r\n"):
		panic(fmt.Sprintf("command: bad command name %q", c.Name))
	case strings.TrimSpace(c.Doc) == "":
		panic("command: " + c.Name + ": missing doc")
	case c.Run == nil:
		panic("command: " + c.Name + ": nil Run")
	case !c.Perm.Valid():
		panic(fmt.Sprintf("command: %s: unknown perm %#x", c.Name, uint32(c.Perm)))
	}
	for _, p := range c.Params {
		if p.Name == "" || strings.TrimSpace(p.Doc) == "" || p.Type > ParamJSON {
			panic(fmt.Sprintf("command: %s: bad param %+v", c.Name, p))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.cmds[c.Name]; dup {
		panic("command: " + c.Name + ": already registered")
	}
	cc := c
	cc.Params = append([]Param(nil), c.Params...)
	r.cmds[c.Name] = &cc
	r.sorted = nil
}

// Lookup returns the command with exactly this name.
func (r *Registry) Lookup(name string) (Command, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.cmds[name]
	if !ok {
		return Command{}, false
	}
	return *c, true
}

// All returns every command sorted by name. The slice is shared: callers
// must not modify it.
func (r *Registry) All() []Command {
	r.mu.RLock()
	out := r.sorted
	r.mu.RUnlock()
	if out != nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sorted == nil {
		r.sorted = make([]Command, 0, len(r.cmds))
		for _, c := range r.cmds {
			r.sorted = append(r.sorted, *c)
		}
		sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].Name < r.sorted[j].Name })
	}
	return r.sorted
}

// Run looks up req.Name, checks req.Perm and the parameters, and runs the
// command. Errors are [ErrNotFound], [ErrPermission], a [*ParamError], or
// whatever the command returns. This is the one permission check of the
// sensor: every transport maps its session's grants to req.Perm and lets
// Run decide.
//
// A command that panics does not take the process (and capture) with it:
// Run recovers, logs the stack of the first panic, counts it (see
// [Registry.Panics]) and returns an error wrapping [ErrInternal].
func (r *Registry) Run(ctx context.Context, req *Request) (res Result, err error) {
	r.mu.RLock()
	c, ok := r.cmds[req.Name]
	r.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	if !req.Perm.Has(c.Perm) {
		return nil, fmt.Errorf("%w: %s needs %v", ErrPermission, c.Name, c.Perm)
	}
	req.cmd = c
	for _, p := range c.Params {
		v, ok := req.Param(p.Name)
		if !ok || v == "" {
			if p.Required {
				return nil, &ParamError{Param: p.Name, Err: ErrMissingParam}
			}
			continue
		}
		if err := checkType(p.Type, v); err != nil {
			return nil, BadParam(p.Name, err)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			n := r.panics.Add(1)
			log := r.log.Load()
			if log == nil {
				log = slog.Default()
			}
			if !r.stackLogged.Swap(true) {
				log.Error("command panicked", "command", c.Name, "transport", req.Transport, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			} else {
				log.Error("command panicked", "command", c.Name, "transport", req.Transport, "panic", fmt.Sprint(v), "panics", n)
			}
			res, err = nil, fmt.Errorf("%w: %s", ErrInternal, c.Name)
		}
	}()
	return c.Run(ctx, req)
}

func checkType(t ParamType, v string) error {
	switch t {
	case ParamInt:
		_, err := strconv.ParseInt(v, 10, 64)
		return err
	case ParamBool:
		_, err := strconv.ParseBool(v)
		return err
	case ParamJSON:
		return jsonCheck(v)
	}
	return nil
}

// ParseLine splits a manager-style command line into the command name and
// its positional arguments. Fields are separated by spaces and tabs; a
// field starting with '{' or '[' takes the rest of the line verbatim
// (trailing white space trimmed) so that a JSON argument stays whole.
func ParseLine(line string) (name string, args []string) {
	line = strings.TrimLeft(line, " \t")
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, nil
	}
	name, rest := line[:i], line[i:]
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			return name, args
		}
		if rest[0] == '{' || rest[0] == '[' {
			return name, append(args, strings.TrimRight(rest, " \t"))
		}
		j := strings.IndexAny(rest, " \t")
		if j < 0 {
			return name, append(args, rest)
		}
		args = append(args, rest[:j])
		rest = rest[j:]
	}
}
