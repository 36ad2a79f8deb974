package spool

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDirConfined(t *testing.T) {
	base := t.TempDir()
	spool := filepath.Join(base, "spool")
	os.MkdirAll(filepath.Join(spool, "2026-01-01/00/00/SIP"), 0o755)
	os.WriteFile(filepath.Join(spool, "2026-01-01/00/00/SIP/a.pcap"), []byte("pcap"), 0o644)
	os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o644)
	os.Symlink(filepath.Join(base, "secret"), filepath.Join(spool, "out"))      // leads out: refused
	os.Symlink("2026-01-01/00/00/SIP/a.pcap", filepath.Join(spool, "in.pcap"))  // stays in: followed
	os.Symlink("../../../../../secret", filepath.Join(spool, "2026-01-01/rel")) // relative, leads out
	d := NewDir(spool)
	for _, tt := range []struct {
		name string
		want string // content
		err  error
	}{
		{"2026-01-01/00/00/SIP/a.pcap", "pcap", nil},
		{filepath.Join(spool, "2026-01-01/00/00/SIP/a.pcap"), "pcap", nil}, // absolute, inside
		{"./2026-01-01//00/00/SIP/a.pcap", "pcap", nil},
		{"in.pcap", "pcap", nil},
		{"../secret", "", ErrOutside},
		{"2026-01-01/../../secret", "", ErrOutside},
		{"2026-01-01/00/../00/SIP/a.pcap", "", ErrOutside}, // any ".." is refused, as the sniffer refuses "../"
		{filepath.Join(base, "secret"), "", ErrOutside},
		{"/etc/passwd", "", ErrOutside},
		{"out", "", ErrOutside},
		{"2026-01-01/rel", "", ErrOutside},
		{"a\x00b", "", ErrOutside},
		{"missing.pcap", "", fs.ErrNotExist},
		{"2026-01-01", "", fs.ErrNotExist}, // a directory is not a file
	} {
		b, err := d.ReadFile(tt.name, 1<<20)
		if !errors.Is(err, tt.err) || string(b) != tt.want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q, %v", tt.name, b, err, tt.want, tt.err)
		}
		size, err := d.Stat(tt.name)
		if !errors.Is(err, tt.err) || (err == nil && size != int64(len(tt.want))) {
			t.Errorf("Stat(%q) = %d, %v; want %d, %v", tt.name, size, err, len(tt.want), tt.err)
		}
	}
	if _, err := d.ReadFile("2026-01-01/00/00/SIP/a.pcap", 3); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile over the bound: %v, want ErrTooLarge", err)
	}
}
