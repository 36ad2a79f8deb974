package sensor

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/voipsensor/voipsensor/"

// allowedImports is STYLE.md section 2 as data: for each internal package
// (a trailing "/..." covers its subpackages), the internal packages its
// non-test files may import. A package missing here fails the test, so a
// new package has to state its place in the layering.
var allowedImports = map[string][]string{
	"internal/capture":     {},
	"internal/decode":      {"internal/capture"},
	"internal/sip":         {},
	"internal/sdp":         {},
	"internal/rtp":         {},
	"internal/g711":        {},
	"internal/event":       {},
	"internal/config":      {},
	"internal/cdr":         {},
	"internal/cdr/...":     {"internal/cdr"},
	"internal/command":     {},
	"internal/command/...": {"internal/command", "internal/event", "internal/g711"},
	"internal/calltable":   {"internal/decode", "internal/sip", "internal/sdp", "internal/rtp", "internal/event", "internal/cdr"},
	"internal/report":      {"internal/calltable", "internal/rtp"},
	"internal/gen":         {"internal/g711"},
	"internal/demo":        {"internal/capture"},
	// The recorder: told by the call table which call a datagram is of,
	// it saves the frame the packet source delivered.
	"internal/spool":      {"internal/calltable", "internal/decode", "internal/capture", "internal/g711", "internal/rtp", "internal/sip", "internal/sdp"},
	"internal/sharedtest": {},
	"internal/hep":        {},
	"internal/hepfeed":    {"internal/calltable", "internal/decode", "internal/hep", "internal/rtp", "internal/sip", "internal/command/metrics"},
	"internal/pipeline":   {"internal/capture", "internal/decode"},
	"internal/offline":    {"internal/calltable", "internal/capture", "internal/decode", "internal/spool"},
	// Transports speak one wire protocol over the registry and the bus.
	// (and their own subpackages: internal/transport/mi/fifo may import
	// internal/transport/mi), never another transport.
	"internal/transport/...": {"internal/command", "internal/event", "internal/transport/httpauth", "internal/transport/conn"},
	// Shared HTTP plumbing of the HTTP transports, over the session kit.
	"internal/transport/httpauth": {"internal/transport/conn"},
	// The session kit every transport is built on: a leaf.
	"internal/transport/conn": {},
	// The call table presented to the command groups and the CDR writer:
	// listcalls rows, registrations, MI dialogs and statistics, sniffer
	// statistics, CDR records.
	"internal/tableview": {"internal/calltable", "internal/capture", "internal/decode", "internal/rtp", "internal/cdr",
		"internal/command", "internal/command/calls", "internal/command/registers", "internal/command/mi", "internal/command/system", "internal/command/metrics", "internal/command/history", "internal/spool", "internal/event", "internal/cdr/sqlstore"},
	// The daemon's wiring may import everything.
	"internal/sensor": {"*"},
	// The process: run and demo go through sensor; read prints calltable
	// results (report); gen and demo are their libraries; ctl is a client
	// of the manager protocol; key writes the AES key into the store.
	"cmd/voipsensor": {"internal/config", "internal/sensor", "internal/calltable", "internal/decode", "internal/report",
		"internal/gen", "internal/demo", "internal/offline", "internal/transport/manager", "internal/cdr/sqlstore", "internal/command"},
}

func TestImportLayering(t *testing.T) {
	root := filepath.Join("..", "..")
	walk := func(dir string, fn fs.WalkDirFunc) error { return filepath.WalkDir(filepath.Join(root, dir), fn) }
	err := walkAll(walk, []string{"internal", "cmd"}, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		if strings.Contains(path, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		allowed, ok := rulesFor(pkg)
		if !ok {
			t.Errorf("%s: package %s has no layering rule in allowedImports", path, pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			if strings.HasPrefix(dep, pkg+"/") || sameTransport(pkg, dep) {
				continue // a package may use its own subpackages
			}
			if !permitted(dep, allowed) {
				t.Errorf("%s imports %s: not allowed for %s (STYLE.md §2)", path, dep, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// walkAll runs walk over each top directory in turn.
func walkAll(walk func(string, fs.WalkDirFunc) error, dirs []string, fn fs.WalkDirFunc) error {
	for _, d := range dirs {
		if err := walk(d, fn); err != nil {
			return err
		}
	}
	return nil
}

// rulesFor finds the rule for pkg: an exact entry, else the nearest
// "parent/..." entry.
func rulesFor(pkg string) ([]string, bool) {
	if r, ok := allowedImports[pkg]; ok {
		return r, true
	}
	for p := pkg; strings.Contains(p, "/"); {
		p = p[:strings.LastIndex(p, "/")]
		if r, ok := allowedImports[p+"/..."]; ok {
			return r, true
		}
	}
	return nil, false
}

func permitted(dep string, allowed []string) bool {
	for _, a := range allowed {
		if a == "*" || dep == a {
			return true
		}
	}
	return false
}

// sameTransport reports whether pkg and dep belong to one transport,
// internal/transport/<name>[/...].
func sameTransport(pkg, dep string) bool {
	const tr = "internal/transport/"
	if !strings.HasPrefix(pkg, tr) || !strings.HasPrefix(dep, tr) {
		return false
	}
	name := func(p string) string { n, _, _ := strings.Cut(strings.TrimPrefix(p, tr), "/"); return n }
	return name(pkg) == name(dep)
}
