package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors of [Dir].
var (
	// ErrOutside is returned for a name that would leave the spool: a
	// ".." element, an absolute path elsewhere, or a symbolic link that
	// points out of it.
	ErrOutside = errors.New("spool: path outside the spool")
	// ErrTooLarge is returned by [Dir.ReadFile] for a file over its bound.
	ErrTooLarge = errors.New("spool: file too large")
)

// Dir reads files of the spool for the retrieval commands. Every name is
// resolved inside the spool through an [os.Root]: "..", absolute paths
// elsewhere and symbolic links leading out are refused with [ErrOutside],
// links within the spool are followed. Safe for concurrent use.
type Dir struct {
	path string
}

// NewDir returns a Dir over the spool directory path (which need not exist
// yet).
func NewDir(path string) *Dir { return &Dir{path: path} }

// Path returns the spool directory.
func (d *Dir) Path() string { return d.path }

// Rel turns name into a path relative to the spool: an absolute name must
// lie inside it; a relative one must not climb out of it (no ".."
// element). The result uses the OS separator.
func (d *Dir) Rel(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", fs.ErrInvalid)
	}
	if strings.ContainsRune(name, 0) {
		return "", ErrOutside
	}
	if filepath.IsAbs(name) {
		root, err := filepath.Abs(d.path)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(root, filepath.Clean(name))
		if err != nil {
			return "", ErrOutside
		}
		name = rel
	}
	for _, el := range strings.Split(filepath.ToSlash(name), "/") {
		if el == ".." {
			return "", ErrOutside
		}
	}
	name = filepath.Clean(name)
	if !filepath.IsLocal(name) {
		return "", ErrOutside
	}
	return name, nil
}

// open opens name inside the spool.
func (d *Dir) open(name string) (*os.File, error) {
	rel, err := d.Rel(name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(d.path)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes") {
			return nil, ErrOutside
		}
		return nil, err
	}
	return f, nil
}

// Stat returns the size of the regular file name. A directory is
// reported as [fs.ErrNotExist] (it is not a file one can get).
func (d *Dir) Stat(name string) (int64, error) {
	f, err := d.open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fs.ErrNotExist
	}
	return fi.Size(), nil
}

// ReadFile returns the content of the regular file name, refusing files
// over max bytes with [ErrTooLarge]. A file being written (a call in
// progress) is read as far as it is.
func (d *Dir) ReadFile(name string, max int64) ([]byte, error) {
	f, err := d.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if fi.Size() > max {
		return nil, ErrTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}
