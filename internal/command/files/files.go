package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/voipsensor/voipsensor/internal/command"
)

// ErrOutside is what a [Spool] returns (wrapped or not) for a name that
// would leave the spool directory.
var ErrOutside = errors.New("files: path outside the spool")

// MaxFileBytes bounds the file getfile sends: the reply is built in
// memory.
const MaxFileBytes = 512 << 20

// Spool reads the spool's files. Names are relative to the spool (an
// absolute name must lie inside it); a name that leaves it is refused with
// [ErrOutside], a missing one with [fs.ErrNotExist], an unreadable one
// with [fs.ErrPermission].
type Spool interface {
	// Stat returns the size of the regular file name.
	Stat(name string) (int64, error)
	// ReadFile returns the content of name, at most max bytes (a larger
	// file is an error).
	ReadFile(name string, max int64) ([]byte, error)
}

// Deps wires the group. Spool may be nil (no spool directory): every file
// is then missing. Stats, when set, is spool_stat's answer.
type Deps struct {
	Spool Spool
	Stats func() any
}

// The sniffer's reply texts.
const (
	replyDenied     = "access denied"
	replyNotExists  = "not_exists"
	replyPermission = "permission_denied"
)

// Register adds the group's commands to reg.
func Register(reg *command.Registry, d Deps) {
	g := &group{d: d}
	name := command.Param{Name: "filename", Required: true, Doc: "path relative to the spool directory, e.g. 2026-01-01/10/05/SIP/callid.pcap"}
	index := command.Param{Name: "spool_index", Type: command.ParamInt, Doc: "the sniffer's spool number; this sensor has one spool (0), other values are accepted and ignored"}
	typ := command.Param{Name: "type_spool_file", Type: command.ParamInt, Doc: "the sniffer's file type number; ignored (the path says it)"}
	reg.Register(command.Command{Name: "getfile", Perm: command.PermCall,
		Doc:    "a spool file's bytes (a call's SIP or RTP pcap); 'access denied' for a path leaving the spool, 'error: cannot open file NAME' for a missing one",
		Params: []command.Param{name, index, typ}, Run: g.getFile(false)})
	reg.Register(command.Command{Name: "getfile_zip", Perm: command.PermCall,
		Doc:    "getfile, gzip-compressed (a file already gzipped is sent as it is)",
		Params: []command.Param{name, index, typ}, Run: g.getFile(true)})
	reg.Register(command.Command{Name: "getfile_is_zip_support", Perm: command.PermCall,
		Doc: "whether getfile_zip is supported: OK",
		Run: func(context.Context, *command.Request) (command.Result, error) { return command.Text("OK"), nil }})
	reg.Register(command.Command{Name: "file_exists", Perm: command.PermCall,
		Doc:    "a spool file's size in bytes, or not_exists / permission_denied; several names joined by '|' answer 'ok' and a 'name:size' line per file found",
		Params: []command.Param{{Name: "filename", Required: true, Doc: "path relative to the spool, or several joined by '|'"}, index, typ},
		Run:    g.fileExists})
	reg.Register(command.Command{Name: "fileexists", Perm: command.PermCall,
		Doc:    "a spool file's size in bytes, 0 when it does not exist",
		Params: []command.Param{name}, Run: g.fileExists2})
	reg.Register(command.Command{Name: "getfile_in_tar", Perm: command.PermCall,
		Doc: "a file inside a spool tar: this sensor writes per-call pcaps, no tar, so the answer is 'error: missing file [TAR]' (use getfile)",
		Params: []command.Param{
			{Name: "tar_filename", Required: true, Doc: "the tar's path relative to the spool"},
			{Name: "filename", Doc: "the file inside the tar"},
		},
		Run: g.getFileInTar})
	reg.Register(command.Command{Name: "spool_stat", Perm: command.PermReporting,
		Doc: "the recorder's and the spool cleaner's counters as JSON (frames written, drops, errors, files open, spool usage)",
		Run: g.spoolStat})
}

type group struct{ d Deps }

// param returns the named parameter ("" when absent).
func param(req *command.Request, name string) string {
	v, _ := req.Param(name)
	return v
}

// climbs reports whether name holds "../", the sniffer's own refusal,
// checked before the spool is asked.
func climbs(name string) bool { return strings.Contains(name, "../") || name == ".." }

func (g *group) stat(name string) (int64, error) {
	if g.d.Spool == nil {
		return 0, fs.ErrNotExist
	}
	return g.d.Spool.Stat(name)
}

func (g *group) getFile(zip bool) func(context.Context, *command.Request) (command.Result, error) {
	return func(_ context.Context, req *command.Request) (command.Result, error) {
		name := param(req, "filename")
		if climbs(name) {
			return command.Text(replyDenied), nil
		}
		var b []byte
		err := fs.ErrNotExist
		if g.d.Spool != nil {
			b, err = g.d.Spool.ReadFile(name, MaxFileBytes)
		}
		switch {
		case errors.Is(err, ErrOutside):
			return command.Text(replyDenied), nil
		case err != nil:
			// The sniffer names the full path; the name as asked is
			// enough and tells nothing of the server's directories.
			return command.Text("error: cannot open file " + name), nil
		}
		if zip && !(len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(b)
			if err := zw.Close(); err != nil {
				return nil, fmt.Errorf("files: %w", err)
			}
			b = buf.Bytes()
		}
		return command.Text(b), nil
	}
}

func (g *group) fileExists(_ context.Context, req *command.Request) (command.Result, error) {
	arg := param(req, "filename")
	if !strings.Contains(arg, "|") {
		if climbs(arg) {
			return command.Text(replyDenied), nil
		}
		size, err := g.stat(arg)
		if err != nil {
			return command.Text(existsError(err)), nil
		}
		return command.Text(strconv.FormatInt(size, 10)), nil
	}
	var found []string
	var lastErr error
	for _, name := range strings.Split(arg, "|") {
		if name == "" || climbs(name) {
			continue
		}
		size, err := g.stat(name)
		if err != nil {
			lastErr = err
			continue
		}
		found = append(found, name+":"+strconv.FormatInt(size, 10))
	}
	if len(found) == 0 {
		if lastErr == nil {
			lastErr = fs.ErrNotExist
		}
		return command.Text(existsError(lastErr)), nil
	}
	return command.Text("ok\n" + strings.Join(found, "\n")), nil
}

// existsError is file_exists' answer for a file it cannot stat.
func existsError(err error) string {
	switch {
	case errors.Is(err, ErrOutside):
		return replyDenied
	case errors.Is(err, fs.ErrPermission):
		return replyPermission
	}
	return replyNotExists
}

func (g *group) fileExists2(_ context.Context, req *command.Request) (command.Result, error) {
	name := param(req, "filename")
	if climbs(name) {
		return command.Text(replyDenied), nil
	}
	size, err := g.stat(name)
	switch {
	case errors.Is(err, ErrOutside):
		return command.Text(replyDenied), nil
	case err != nil:
		size = 0 // the sniffer's file_size of a missing file
	}
	return command.Text(strconv.FormatInt(size, 10)), nil
}

func (g *group) getFileInTar(_ context.Context, req *command.Request) (command.Result, error) {
	tar := param(req, "tar_filename")
	if climbs(tar) {
		return command.Text(replyDenied), nil
	}
	return command.Text("error: missing file [" + tar + "]"), nil
}

func (g *group) spoolStat(context.Context, *command.Request) (command.Result, error) {
	if g.d.Stats == nil {
		return nil, fmt.Errorf("%w: no recording", command.ErrUnavailable)
	}
	return command.Value{V: g.d.Stats()}, nil
}
