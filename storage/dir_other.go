//go:build !unix

package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// dirHandle is, where there is no openat, an os.Root over the store's root
// and the directory's path beneath it. os.Root refuses paths that leave the
// root; a symlink inside the root is refused by an Lstat before each open,
// which a concurrent swap can race (there is no O_NOFOLLOW walk here).
type dirHandle struct {
	root *os.Root
	rel  string // "." for the root
}

type resolver struct{}

func openRootDir(p string, _ *resolver) (*Dir, error) {
	r, err := os.OpenRoot(p)
	if err != nil {
		return nil, err
	}
	return &Dir{dirHandle{r, "."}, p}, nil
}

func (d *Dir) relPath(rel string) string { return path.Join(d.rel, rel) }

// noSymlink fails with ErrSymlink if an element of rel is a symlink.
func (d *Dir) noSymlink(rel string) error {
	if !validRel(rel) {
		return &fs.PathError{Op: "open", Path: d.join(rel), Err: fs.ErrInvalid}
	}
	p := d.rel
	for e := range strings.SplitSeq(rel, "/") {
		p = path.Join(p, e)
		fi, err := d.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return &fs.PathError{Op: "open", Path: d.join(rel), Err: ErrSymlink}
		}
	}
	return nil
}

func (d *Dir) openDir(rel string) (*Dir, error) {
	if err := d.noSymlink(rel); err != nil {
		return nil, err
	}
	fi, err := d.root.Lstat(d.relPath(rel))
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: d.join(rel), Err: errNotDir}
	}
	return &Dir{dirHandle{d.root, d.relPath(rel)}, d.join(rel)}, nil
}

var errNotDir = errors.New("not a directory")

func (d *Dir) openFile(rel string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	if err := d.noSymlink(rel); err != nil {
		return nil, nil, err
	}
	f, err := d.root.OpenFile(d.relPath(rel), flag, perm)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// readFile reads the regular file rel beneath d, as the Unix version does.
func (d *Dir) readFile(rel string, max int, buf []byte) ([]byte, fs.FileMode, error) {
	f, fi, err := d.openFile(rel, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if !fi.Mode().IsRegular() {
		return nil, fi.Mode(), nil
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > max {
		return nil, 0, fmt.Errorf("larger than %d bytes", max)
	}
	return data, fi.Mode(), nil
}

func (d *Dir) create(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if !validName(name) {
		return nil, invalidName("open", d, name)
	}
	return d.root.OpenFile(d.relPath(name), flag, perm)
}

func (d *Dir) list() ([]string, error) {
	f, err := d.root.Open(d.rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d *Dir) stat() (fs.FileInfo, error) { return d.root.Lstat(d.rel) }

func (d *Dir) lstat(name string) (fs.FileInfo, error) {
	if !validName(name) {
		return nil, invalidName("lstat", d, name)
	}
	return d.root.Lstat(d.relPath(name))
}

func (d *Dir) link(oldname string, nd *Dir, newname string) error {
	if !validName(oldname) || !validName(newname) {
		return &os.LinkError{Op: "link", Old: d.join(oldname), New: nd.join(newname), Err: fs.ErrInvalid}
	}
	return d.root.Link(d.relPath(oldname), nd.relPath(newname))
}

func (d *Dir) rename(oldname string, nd *Dir, newname string) error {
	if !validName(oldname) || !validName(newname) {
		return &os.LinkError{Op: "rename", Old: d.join(oldname), New: nd.join(newname), Err: fs.ErrInvalid}
	}
	return d.root.Rename(d.relPath(oldname), nd.relPath(newname))
}

func (d *Dir) remove(name string) error {
	if !validName(name) {
		return invalidName("remove", d, name)
	}
	return d.root.Remove(d.relPath(name))
}

func (d *Dir) mkdir(name string, perm fs.FileMode) error {
	if !validName(name) {
		return invalidName("mkdir", d, name)
	}
	return d.root.Mkdir(d.relPath(name), perm)
}

func (d *Dir) sync() error {
	f, err := d.root.Open(d.rel)
	if err != nil {
		return err
	}
	serr := f.Sync()
	if err := f.Close(); serr == nil {
		serr = err
	}
	return serr
}

// close does nothing: the os.Root is the Store's, shared by its Dirs.
func (d *Dir) close() error { return nil }

type devIno struct{}

func fileID(fs.FileInfo) (devIno, bool) { return devIno{}, false }

func isNotDir(err error) bool { return errors.Is(err, errNotDir) }

func (r *resolver) forceWalk() {}

func changeTime(fs.FileInfo) int64 { return 0 }
