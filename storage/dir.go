package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A Dir is an open directory of the store: the root, opened once by Open,
// or a directory opened beneath another Dir. Every file the store touches
// is reached through one, by a single name (or, to open, a relative path
// whose every element is checked), and no symlink is ever followed on the
// way: whoever can write the root can plant a symlink or swap a directory
// for one, and a path re-resolved from the root for each operation would
// then lead outside the store. A Dir keeps referring to the directory it
// opened even if that is renamed meanwhile.
//
// On Linux a path is resolved with openat2(2) and RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS; where the kernel lacks openat2, and on other Unix
// systems, one element at a time with O_NOFOLLOW (see the _unix files).
// Elsewhere an os.Root keeps paths inside the root.
//
// Dirs are made by the store; FS implementations receive them. A Dir's
// handle is released when it is closed or, for the Store's own, when the
// Store is no longer referenced.
type Dir struct {
	dirHandle
	path string
}

// Path returns the directory's absolute path, for messages and for test
// doubles matching operations. The store never opens it by this path.
func (d *Dir) Path() string { return d.path }

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

// validName reports whether name is a single plain path element.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") &&
		!strings.ContainsRune(name, filepath.Separator)
}

// validRel reports whether rel is a relative path of plain elements joined
// by "/", with nothing to clean: no "..", ".", empty or absolute part.
func validRel(rel string) bool {
	for e := range strings.SplitSeq(rel, "/") {
		if !validName(e) {
			return false
		}
	}
	return true
}

// invalidName is the error for a name that is not one plain element.
func invalidName(op string, d *Dir, name string) error {
	return &fs.PathError{Op: op, Path: d.join(name), Err: fs.ErrInvalid}
}

// isSymlinkErr reports whether err says a path element was a symlink.
func isSymlinkErr(err error) bool { return errors.Is(err, ErrSymlink) }

// closeDir closes d, ignoring the error: d was only read from or synced.
func closeDir(d *Dir) {
	if d != nil {
		d.close()
	}
}

// sameFile reports whether a and b describe the same file.
func sameFile(a, b fs.FileInfo) bool {
	if ida, ok := fileID(a); ok {
		idb, ok := fileID(b)
		return ok && ida == idb
	}
	return os.SameFile(a, b)
}
