package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/voipsensor/voipsensor/internal/command"
)

// fakeSpool holds files by name; "../" never reaches it (the group refuses
// it first), other escapes are its own to refuse.
type fakeSpool map[string]string

func (f fakeSpool) lookup(name string) (string, error) {
	switch {
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, "link"):
		return "", ErrOutside
	case name == "locked":
		return "", fs.ErrPermission
	}
	b, ok := f[name]
	if !ok {
		return "", fs.ErrNotExist
	}
	return b, nil
}

func (f fakeSpool) Stat(name string) (int64, error) {
	b, err := f.lookup(name)
	return int64(len(b)), err
}

func (f fakeSpool) ReadFile(name string, max int64) ([]byte, error) {
	b, err := f.lookup(name)
	return []byte(b), err
}

func run(t *testing.T, reg *command.Registry, line string) string {
	t.Helper()
	name, args := command.ParseLine(line)
	res, err := reg.Run(context.Background(), &command.Request{Name: name, Args: args, Perm: command.PermAll})
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	txt, ok := res.(command.Text)
	if !ok {
		t.Fatalf("%s: %T, want Text", line, res)
	}
	return string(txt)
}

func TestCommands(t *testing.T) {
	reg := command.NewRegistry()
	sp := fakeSpool{"2026-01-01/00/00/SIP/a.pcap": "\xd4\xc3\xb2\xa1pcap", "b.pcap": "bb", "empty.pcap": ""}
	Register(reg, Deps{Spool: sp})
	for _, tt := range []struct{ line, want string }{
		{"getfile 2026-01-01/00/00/SIP/a.pcap", "\xd4\xc3\xb2\xa1pcap"},
		{"getfile 2026-01-01/00/00/SIP/a.pcap 0 1", "\xd4\xc3\xb2\xa1pcap"},
		{"getfile empty.pcap", ""},
		{"getfile missing.pcap", "error: cannot open file missing.pcap"},
		{"getfile ../../etc/passwd", "access denied"},
		{"getfile 2026-01-01/../../x", "access denied"},
		{"getfile /etc/passwd", "access denied"},
		{"getfile link-out", "access denied"},
		{"getfile_is_zip_support", "OK"},
		{"file_exists b.pcap", "2"},
		{"file_exists empty.pcap 0 2", "0"},
		{"file_exists missing.pcap", "not_exists"},
		{"file_exists locked", "permission_denied"},
		{"file_exists ../x", "access denied"},
		{"file_exists /etc/passwd", "access denied"},
		{"file_exists b.pcap|missing|2026-01-01/00/00/SIP/a.pcap", "ok\nb.pcap:2\n2026-01-01/00/00/SIP/a.pcap:8"},
		{"file_exists missing|locked", "permission_denied"},
		{"file_exists missing|../b.pcap", "not_exists"},
		{"fileexists b.pcap", "2"},
		{"fileexists missing.pcap", "0"},
		{"fileexists ../b.pcap", "access denied"},
		{"getfile_in_tar 2026-01-01/00/00/SIP/sip.tar a.pcap", "error: missing file [2026-01-01/00/00/SIP/sip.tar]"},
		{"getfile_in_tar ../x.tar a.pcap", "access denied"},
	} {
		if got := run(t, reg, tt.line); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.line, got, tt.want)
		}
	}
	// getfile_zip gzips what getfile sends.
	zr, err := gzip.NewReader(strings.NewReader(run(t, reg, "getfile_zip b.pcap")))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != "bb" {
		t.Errorf("getfile_zip b.pcap unzips to %q", b)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("x"))
	zw.Close()
	sp["c.pcap.gz"] = gz.String()
	if got := run(t, reg, "getfile_zip c.pcap.gz"); got != gz.String() {
		t.Errorf("getfile_zip of a gzip file recompressed it")
	}
	// No spool at all: every file is missing.
	reg2 := command.NewRegistry()
	Register(reg2, Deps{})
	if got := run(t, reg2, "file_exists a.pcap"); got != "not_exists" {
		t.Errorf("without a spool: %q", got)
	}
	if _, err := reg2.Run(context.Background(), &command.Request{Name: "spool_stat", Perm: command.PermAll}); !errors.Is(err, command.ErrUnavailable) {
		t.Errorf("spool_stat without recording: %v", err)
	}
}
