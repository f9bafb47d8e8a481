package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
)

// FS is the set of filesystem operations the write path uses. It exists so
// tests can inject failures (a failed write, fsync or rename, a full disk);
// OSFS is the real thing. Every operation is relative to a Dir that the
// store opened, on a name that is a single path element, and none follows a
// symlink: an implementation must keep that. Reads (OpenShard, Open's scan)
// and the opening of directories are not part of it.
type FS interface {
	// CreateTemp creates a new file in dir, opened for reading and writing,
	// named by replacing the last "*" in pattern with a random string, as
	// os.CreateTemp does. It never reuses an existing name.
	CreateTemp(dir *Dir, pattern string) (File, error)
	// Lstat describes name in dir without following a symlink.
	Lstat(dir *Dir, name string) (fs.FileInfo, error)
	// Link creates newname in newdir as a hard link to oldname in olddir;
	// it fails if newname exists.
	Link(olddir *Dir, oldname string, newdir *Dir, newname string) error
	// Rename atomically replaces newname in newdir with oldname in olddir
	// (the same directory, or another directory of the store).
	Rename(olddir *Dir, oldname string, newdir *Dir, newname string) error
	// Remove removes a file or an empty directory.
	Remove(dir *Dir, name string) error
	// Mkdir creates the directory name in dir.
	Mkdir(dir *Dir, name string, perm fs.FileMode) error
	// SyncDir fsyncs a directory, making renames and creations in it durable.
	SyncDir(dir *Dir) error
}

// File is an open file created by FS.CreateTemp. *os.File implements it.
type File interface {
	io.Reader
	io.Writer
	io.Seeker
	// Name is the path the file was created at (the Dir's path joined with
	// its name).
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
func (OSFS) CreateTemp(dir *Dir, pattern string) (File, error) {
	prefix, suffix := pattern, ""
	if i := strings.LastIndexByte(pattern, '*'); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		f, err := dir.create(prefix+randomString()+suffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return nil, &fs.PathError{Op: "createtemp", Path: dir.join(pattern), Err: fs.ErrExist}
}

// Lstat implements FS.
func (OSFS) Lstat(dir *Dir, name string) (fs.FileInfo, error) { return dir.lstat(name) }

// Link implements FS.
func (OSFS) Link(olddir *Dir, oldname string, newdir *Dir, newname string) error {
	return olddir.link(oldname, newdir, newname)
}

// Rename implements FS.
func (OSFS) Rename(olddir *Dir, oldname string, newdir *Dir, newname string) error {
	return olddir.rename(oldname, newdir, newname)
}

// Remove implements FS.
func (OSFS) Remove(dir *Dir, name string) error { return dir.remove(name) }

// Mkdir implements FS.
func (OSFS) Mkdir(dir *Dir, name string, perm fs.FileMode) error { return dir.mkdir(name, perm) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir *Dir) error { return dir.sync() }

// randomString is 16 hex digits; the names built from it stay within
// NAME_MAX for every valid video id (see MaxVideoIDLen).
func randomString() string { return fmt.Sprintf("%016x", rand.Uint64()) }
