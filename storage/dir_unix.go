//go:build unix

package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dirHandle is a Dir's descriptor. The *os.File owns it (and closes it
// when unreachable); every use goes through control, so that it cannot be
// closed during a system call.
type dirHandle struct {
	f   *os.File
	res *resolver
}

// resolver opens paths beneath a Dir. A Store's Dirs share one.
type resolver struct {
	// walk is set once openat2 turned out to be unavailable (ENOSYS, or
	// refused by a seccomp filter): paths are then walked one element at a
	// time.
	walk atomic.Bool
}

// openRootDir opens the directory at path (absolute, symlinks resolved) as
// the root of a store.
func openRootDir(path string, res *resolver) (*Dir, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{dirHandle{os.NewFile(uintptr(fd), path), res}, path}, nil
}

// control runs fn with d's descriptor, which stays open meanwhile.
func (d *Dir) control(fn func(fd int)) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// control2 runs fn with the descriptors of a and b.
func control2(a, b *Dir, fn func(afd, bfd int)) error {
	var berr error
	if err := a.control(func(afd int) { berr = b.control(func(bfd int) { fn(afd, bfd) }) }); err != nil {
		return err
	}
	return berr
}

// open opens rel beneath d without following any symlink. The error is
// ELOOP if some element of rel is a symlink.
func (d *Dir) open(rel string, flags int, perm uint32) (int, error) {
	if !validRel(rel) {
		return -1, unix.EINVAL
	}
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	fd := -1
	var err error
	if cerr := d.control(func(dfd int) { fd, err = d.res.openBeneath(dfd, rel, flags, perm) }); cerr != nil {
		return -1, cerr
	}
	return fd, err
}

func (r *resolver) openBeneath(dfd int, rel string, flags int, perm uint32) (int, error) {
	if !r.walk.Load() {
		// Without O_NOFOLLOW, which would make a final symlink ENOTDIR with
		// O_DIRECTORY: RESOLVE_NO_SYMLINKS refuses it with ELOOP.
		fd, err := retryEINTR(func() (int, error) { return openat2(dfd, rel, flags&^unix.O_NOFOLLOW, perm) })
		switch err {
		case unix.ENOSYS:
			r.walk.Store(true)
		case unix.EPERM:
			// A seccomp filter may refuse openat2 with EPERM, and so may
			// the file itself: the walk tells which.
			fd, err := walkOpen(dfd, rel, flags, perm)
			if err == nil {
				r.walk.Store(true)
			}
			return fd, err
		default:
			return fd, err
		}
	}
	return walkOpen(dfd, rel, flags, perm)
}

// walkOpen is openat2's fallback: each directory of rel is opened with
// O_DIRECTORY|O_NOFOLLOW relative to the previous one, and the last element
// with flags (which hold O_NOFOLLOW). rel has been checked to hold only
// plain elements (no "..", no "."), so the walk cannot leave dfd, and a
// symlink anywhere fails it with ELOOP.
func walkOpen(dfd int, rel string, flags int, perm uint32) (int, error) {
	elems := strings.Split(rel, "/")
	cur := dfd
	release := func() {
		if cur != dfd {
			unix.Close(cur)
		}
	}
	for _, e := range elems[:len(elems)-1] {
		next, err := retryEINTR(func() (int, error) {
			return unix.Openat(cur, e, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		})
		if err != nil {
			err = symlinkErrno(cur, e, err)
			release()
			return -1, err
		}
		release()
		cur = next
	}
	last := elems[len(elems)-1]
	fd, err := retryEINTR(func() (int, error) { return unix.Openat(cur, last, flags, perm) })
	if err != nil {
		err = symlinkErrno(cur, last, err)
	}
	release()
	return fd, err
}

// symlinkErrno makes the error of an O_NOFOLLOW open of name in dfd ELOOP
// if name is a symlink: systems say so differently (ELOOP, ENOTDIR with
// O_DIRECTORY, EMLINK on FreeBSD, EFTYPE on NetBSD).
func symlinkErrno(dfd int, name string, err error) error {
	if err == unix.ENOENT || err == unix.EEXIST {
		return err
	}
	var st unix.Stat_t
	if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return err
}

func retryEINTR(fn func() (int, error)) (int, error) {
	for {
		fd, err := fn()
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// pathError wraps errno for rel beneath d; ELOOP becomes ErrSymlink.
func (d *Dir) pathError(op, rel string, err error) error {
	if err == unix.ELOOP {
		err = ErrSymlink
	}
	return &fs.PathError{Op: op, Path: d.join(rel), Err: err}
}

// openDir opens the directory rel beneath d.
func (d *Dir) openDir(rel string) (*Dir, error) {
	fd, err := d.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, d.pathError("open", rel, err)
	}
	p := d.join(rel)
	return &Dir{dirHandle{os.NewFile(uintptr(fd), p), d.res}, p}, nil
}

// openFile opens rel beneath d with flag (os.O_RDONLY, or os.O_RDWR and
// os.O_CREATE) and returns it with what fstat says of it. A FIFO or device
// planted there cannot block the open (O_NONBLOCK, cleared again for a
// regular file); the caller checks the type.
func (d *Dir) openFile(rel string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	fd, err := d.open(rel, flag|unix.O_NONBLOCK, uint32(perm.Perm()))
	if err != nil {
		return nil, nil, d.pathError("open", rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, d.pathError("stat", rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, nil, d.pathError("open", rel, err)
		}
	}
	return os.NewFile(uintptr(fd), d.join(rel)), newFileInfo(path.Base(rel), &st), nil
}

// readFile reads the file rel beneath d into buf (reused when large
// enough) and returns the bytes with the file's mode. A file that is not
// regular is not read (nil data, no error), so a FIFO or device planted
// there cannot block; one larger than max is an error. It is openFile and a
// read without the *os.File: Open reads every metadata file this way, and
// at 100,000 of them the three fcntl calls and the finalizer of an
// *os.File are a good part of start-up. The open is d.open's, refusing
// symlinks like every other.
func (d *Dir) readFile(rel string, max int, buf []byte) ([]byte, fs.FileMode, error) {
	fd, err := d.open(rel, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, d.pathError("open", rel, err)
	}
	defer unix.Close(fd)
	fi := &fileInfo{name: path.Base(rel)}
	if err := unix.Fstat(fd, &fi.st); err != nil {
		return nil, 0, d.pathError("stat", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fi.Mode(), nil
	}
	if fi.st.Size > int64(max) {
		return nil, 0, fmt.Errorf("larger than %d bytes", max)
	}
	// O_NONBLOCK does not apply to a regular file: reads block as usual.
	// Room for one byte more than fstat said, so that a single read
	// usually gets all: a read that returns less than asked, having
	// reached the size fstat reported, is at the end (the store replaces
	// metadata by rename; it never grows a file in place).
	buf = slices.Grow(buf[:0], int(fi.st.Size)+1)
	for {
		if len(buf) > max {
			return nil, 0, fmt.Errorf("larger than %d bytes", max)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 512)
		}
		want := cap(buf) - len(buf)
		n, err := retryEINTR(func() (int, error) { return unix.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, 0, d.pathError("read", rel, err)
		}
		buf = buf[:len(buf)+n]
		if n == 0 || n < want && int64(len(buf)) >= fi.st.Size {
			if len(buf) > max {
				return nil, 0, fmt.Errorf("larger than %d bytes", max)
			}
			return buf, fi.Mode(), nil
		}
	}
}

// create creates the new file name in d (flag holds os.O_CREATE|os.O_EXCL,
// which never follows a symlink either).
func (d *Dir) create(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if !validName(name) {
		return nil, invalidName("open", d, name)
	}
	fd, err := d.open(name, flag, uint32(perm.Perm()))
	if err != nil {
		return nil, d.pathError("open", name, err)
	}
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// list returns the names in d, read through a descriptor of its own (a
// directory's read offset is shared by duplicates).
func (d *Dir) list() ([]string, error) {
	fd := -1
	var err error
	if cerr := d.control(func(dfd int) {
		fd, err = retryEINTR(func() (int, error) {
			return unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		})
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.Readdirnames(-1)
}

// stat describes d itself.
func (d *Dir) stat() (fs.FileInfo, error) {
	var st unix.Stat_t
	var err error
	if cerr := d.control(func(fd int) { err = unix.Fstat(fd, &st) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.path, Err: err}
	}
	return newFileInfo(path.Base(d.path), &st), nil
}

func (d *Dir) lstat(name string) (fs.FileInfo, error) {
	if !validName(name) {
		return nil, invalidName("lstat", d, name)
	}
	var st unix.Stat_t
	var err error
	if cerr := d.control(func(fd int) { err = unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	return newFileInfo(name, &st), nil
}

// link makes newname in nd a hard link to oldname in d (flags 0: a
// symlink oldname is linked itself, not followed).
func (d *Dir) link(oldname string, nd *Dir, newname string) error {
	if !validName(oldname) || !validName(newname) {
		return &os.LinkError{Op: "link", Old: d.join(oldname), New: nd.join(newname), Err: fs.ErrInvalid}
	}
	var err error
	if cerr := control2(d, nd, func(ofd, nfd int) { err = unix.Linkat(ofd, oldname, nfd, newname, 0) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: d.join(oldname), New: nd.join(newname), Err: err}
	}
	return nil
}

// rename renames oldname in d to newname in nd; symlinks on either side
// are renamed or replaced themselves, never followed.
func (d *Dir) rename(oldname string, nd *Dir, newname string) error {
	if !validName(oldname) || !validName(newname) {
		return &os.LinkError{Op: "rename", Old: d.join(oldname), New: nd.join(newname), Err: fs.ErrInvalid}
	}
	var err error
	if cerr := control2(d, nd, func(ofd, nfd int) { err = unix.Renameat(ofd, oldname, nfd, newname) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(oldname), New: nd.join(newname), Err: err}
	}
	return nil
}

// remove removes the file or empty directory name in d, as os.Remove does.
func (d *Dir) remove(name string) error {
	if !validName(name) {
		return invalidName("remove", d, name)
	}
	var err error
	if cerr := d.control(func(fd int) {
		err = unix.Unlinkat(fd, name, 0)
		if err == nil {
			return
		}
		rerr := unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
		switch {
		case rerr == nil:
			err = nil
		case rerr != unix.ENOTDIR:
			err = rerr
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

func (d *Dir) mkdir(name string, perm fs.FileMode) error {
	if !validName(name) {
		return invalidName("mkdir", d, name)
	}
	var err error
	if cerr := d.control(func(fd int) { err = unix.Mkdirat(fd, name, uint32(perm.Perm())) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: d.join(name), Err: err}
	}
	return nil
}

func (d *Dir) sync() error { return d.f.Sync() }

func (d *Dir) close() error { return d.f.Close() }

// fileInfo is an fs.FileInfo from fstat or fstatat.
type fileInfo struct {
	name string
	st   unix.Stat_t
}

func newFileInfo(name string, st *unix.Stat_t) *fileInfo { return &fileInfo{name, *st} }

func (fi *fileInfo) Name() string { return fi.name }
func (fi *fileInfo) Size() int64  { return fi.st.Size }
func (fi *fileInfo) IsDir() bool  { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any     { return &fi.st }

func (fi *fileInfo) ModTime() time.Time {
	sec, nsec := fi.st.Mtim.Unix()
	return time.Unix(sec, nsec)
}

// Mode converts st_mode as package os does.
func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch uint32(fi.st.Mode) & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

type devIno struct{ dev, ino uint64 }

// fileID is the device and inode of a FileInfo from this package or os.
func fileID(fi fs.FileInfo) (devIno, bool) {
	switch st := fi.Sys().(type) {
	case *unix.Stat_t:
		return devIno{uint64(st.Dev), uint64(st.Ino)}, true
	case *syscall.Stat_t:
		return devIno{uint64(st.Dev), uint64(st.Ino)}, true
	}
	return devIno{}, false
}

// isNotDir reports whether err says a path element is not a directory.
func isNotDir(err error) bool { return errors.Is(err, unix.ENOTDIR) }

// forceWalk makes r walk paths as without openat2.
func (r *resolver) forceWalk() { r.walk.Store(true) }

// changeTime is fi's status change time (ctime) in Unix nanoseconds, which
// every change to a directory's entries moves forward; 0 if unknown.
func changeTime(fi fs.FileInfo) int64 {
	switch st := fi.Sys().(type) {
	case *unix.Stat_t: // the store's own lstat
		return st.Ctim.Nano()
	case *syscall.Stat_t: // os.File.Stat
		return syscallCtime(st)
	}
	return 0
}
