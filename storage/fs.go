package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// FS is the set of filesystem operations the write path uses. It exists so
// tests can inject failures (a failed write, fsync or rename, a full disk);
// OSFS is the real thing. Paths are absolute. The read path (Lookup,
// OpenShard, ResolveLocation) and Open's directory scan use the os package
// directly.
type FS interface {
	// CreateTemp creates a new file in dir, opened for reading and writing,
	// named by replacing the last "*" in pattern with a random string, as
	// os.CreateTemp does. It never reuses an existing name.
	CreateTemp(dir, pattern string) (File, error)
	// Lstat describes the named file without following a final symlink.
	Lstat(name string) (fs.FileInfo, error)
	// Link creates newname as a hard link to oldname; it fails if newname
	// exists.
	Link(oldname, newname string) error
	// Rename atomically replaces newpath with oldpath (same directory, or
	// another directory of the store when quarantining).
	Rename(oldpath, newpath string) error
	// Remove removes a file.
	Remove(name string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(path string, perm fs.FileMode) error
	// SyncDir fsyncs a directory, making renames and creations in it durable.
	SyncDir(dir string) error
}

// File is an open file created by FS.CreateTemp. *os.File implements it.
type File interface {
	io.Reader
	io.Writer
	// Name is the path the file was created at (dir joined with its name).
	Name() string
	Stat() (fs.FileInfo, error)
	Sync() error
	Close() error
}

// OSFS is the FS of the operating system. Embed it in a test double to
// override single methods.
type OSFS struct{}

var _ FS = OSFS{}

// CreateTemp implements FS. Unlike os.CreateTemp the file gets mode 0644
// (less the umask), like any file the worker writes, not 0600.
func (OSFS) CreateTemp(dir, pattern string) (File, error) {
	prefix, suffix := pattern, ""
	if i := strings.LastIndexByte(pattern, '*'); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		name := filepath.Join(dir, prefix+randomString()+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, pattern), Err: fs.ErrExist}
}

// Lstat implements FS.
func (OSFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

// Link implements FS.
func (OSFS) Link(oldname, newname string) error { return os.Link(oldname, newname) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// randomString is 16 hex digits; the names built from it stay within
// NAME_MAX for every valid video id (see MaxVideoIDLen).
func randomString() string { return fmt.Sprintf("%016x", rand.Uint64()) }
