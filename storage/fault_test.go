//go:build linux || darwin

package storage_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// faultFS is the real filesystem with one injected failure: the first
// operation matching rule fails with err. In crash mode every operation
// after that fails too, as if the process had died there; reopening the
// root with the real FS then shows what a crash would have left.
type faultFS struct {
	storage.OSFS

	mu      sync.Mutex
	rule    func(op, path string) bool
	err     error
	crash   bool
	fired   bool
	crashed bool
}

var errCrashed = errors.New("process crashed")

func (f *faultFS) arm(rule func(op, path string) bool, err error, crash bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule, f.err, f.crash, f.fired, f.crashed = rule, err, crash, false, false
}

func (f *faultFS) check(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return &fs.PathError{Op: op, Path: path, Err: errCrashed}
	}
	if f.rule == nil || f.fired || !f.rule(op, path) {
		return nil
	}
	f.fired = true
	f.crashed = f.crash
	return &fs.PathError{Op: op, Path: path, Err: f.err}
}

func (f *faultFS) CreateTemp(dir *storage.Dir, pattern string) (storage.File, error) {
	if err := f.check("createtemp", filepath.Join(dir.Path(), pattern)); err != nil {
		return nil, err
	}
	file, err := f.OSFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Link(olddir *storage.Dir, oldname string, newdir *storage.Dir, newname string) error {
	if err := f.check("link", filepath.Join(newdir.Path(), newname)); err != nil {
		return err
	}
	return f.OSFS.Link(olddir, oldname, newdir, newname)
}

func (f *faultFS) Rename(olddir *storage.Dir, oldname string, newdir *storage.Dir, newname string) error {
	if err := f.check("rename", filepath.Join(newdir.Path(), newname)); err != nil {
		return err
	}
	return f.OSFS.Rename(olddir, oldname, newdir, newname)
}

func (f *faultFS) Remove(dir *storage.Dir, name string) error {
	if err := f.check("remove", filepath.Join(dir.Path(), name)); err != nil {
		return err
	}
	return f.OSFS.Remove(dir, name)
}

func (f *faultFS) Mkdir(dir *storage.Dir, name string, perm fs.FileMode) error {
	if err := f.check("mkdir", filepath.Join(dir.Path(), name)); err != nil {
		return err
	}
	return f.OSFS.Mkdir(dir, name, perm)
}

func (f *faultFS) SyncDir(dir *storage.Dir) error {
	if err := f.check("syncdir", dir.Path()); err != nil {
		return err
	}
	return f.OSFS.SyncDir(dir)
}

type faultFile struct {
	storage.File
	fs *faultFS
}

// Write writes half of b before failing, like a disk filling up.
func (f *faultFile) Write(b []byte) (int, error) {
	if err := f.fs.check("write", f.Name()); err != nil {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, err
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	if err := f.fs.check("sync", f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Close() error {
	if err := f.fs.check("close", f.Name()); err != nil {
		f.File.Close()
		return err
	}
	return f.File.Close()
}

// on matches an operation on a path ending in suffix. Temporary names end
// in random characters, so a suffix ending in "-" matches anywhere.
func on(op, suffix string) func(string, string) bool {
	return func(o, path string) bool {
		if o != op {
			return false
		}
		if strings.HasSuffix(suffix, "-") {
			return strings.Contains(path, suffix)
		}
		return strings.HasSuffix(path, suffix)
	}
}

// A failed step of Commit returns an error, leaves no temporary file, and
// leaves the previous version of the chunk (if any) committed and
// byte-identical, in memory and on disk.
func TestCommit_Faults(t *testing.T) {
	eio := syscall.EIO
	tests := []struct {
		name    string
		rule    func(op, path string) bool
		err     error
		noSpace bool // the error wraps ErrNoSpace
	}{
		{"write fails", on("write", ".shard.tmp-"), eio, false},
		{"write ENOSPC", on("write", ".shard.tmp-"), syscall.ENOSPC, true},
		{"write EDQUOT", on("write", ".shard.tmp-"), syscall.EDQUOT, true},
		{"fsync shard fails", on("sync", ".shard.tmp-"), eio, false},
		{"fsync shard ENOSPC", on("sync", ".shard.tmp-"), syscall.ENOSPC, true},
		{"close shard fails", on("close", ".shard.tmp-"), eio, false},
		{"create metadata ENOSPC", on("createtemp", "_metadata.json.tmp-"), syscall.ENOSPC, true},
		{"write metadata ENOSPC", on("write", "_metadata.json.tmp-"), syscall.ENOSPC, true},
		{"fsync metadata fails", on("sync", "_metadata.json.tmp-"), eio, false},
		{"rename shard fails", on("rename", ".shard"), eio, false},
		{"fsync video dir fails", on("syncdir", "/v"), eio, false},
		{"rename metadata fails", on("rename", "_metadata.json"), eio, false},
		{"rename metadata ENOSPC", on("rename", "_metadata.json"), syscall.ENOSPC, true},
		{"fsync metadata dir fails", on("syncdir", "/metadata"), eio, false},
	}
	for _, tt := range tests {
		for _, replace := range []bool{true, false} {
			name := tt.name + "/new chunk"
			if replace {
				name = tt.name + "/replace"
			}
			t.Run(name, func(t *testing.T) {
				root := filepath.Join(t.TempDir(), "store")
				ffs := &faultFS{}
				s, _ := openStore(t, root, ffs)
				old := payload(1, 4096)
				commit(t, s, "v", 0, old)
				chunk := 1
				if replace {
					chunk = 0
				}
				ffs.arm(tt.rule, tt.err, false)

				p, err := s.Create("v", chunk)
				if err != nil {
					t.Fatal(err)
				}
				_, werr := p.Write(payload(2, 4096))
				_, err = p.Commit(storage.Metadata{OriginalSize: 8192})
				if !ffs.fired {
					t.Fatal("the fault was not hit")
				}
				if err == nil {
					t.Fatal("Commit succeeded despite the fault")
				}
				if !errors.Is(err, tt.err) {
					t.Errorf("Commit error %v does not wrap %v", err, tt.err)
				}
				if got := errors.Is(err, storage.ErrNoSpace); got != tt.noSpace {
					t.Errorf("Commit error %v: errors.Is(ErrNoSpace) = %v, want %v", err, got, tt.noSpace)
				}
				if werr != nil && errors.Is(werr, storage.ErrNoSpace) != tt.noSpace {
					t.Errorf("Write error %v: errors.Is(ErrNoSpace) = %v, want %v", werr, !tt.noSpace, tt.noSpace)
				}
				if err := p.Abort(); err != nil {
					t.Errorf("Abort after failed Commit: %v", err)
				}

				check := func(s *storage.Store) {
					t.Helper()
					assertNoScratch(t, root)
					assertCommitted(t, s, "v", 0, old)
					if !replace {
						assertNotFound(t, s, "v", 1)
					}
				}
				check(s)
				s2, _ := openStore(t, root, nil)
				check(s2)

				// The store still works after the fault.
				ffs.arm(nil, nil, false)
				data := payload(3, 100)
				commit(t, s, "v", chunk, data)
				assertCommitted(t, s, "v", chunk, data)
			})
		}
	}
}

func TestCreate_Faults(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	ffs := &faultFS{}
	s, _ := openStore(t, root, ffs)
	ffs.arm(on("createtemp", ".shard.tmp-"), syscall.ENOSPC, false)
	_, err := s.Create("w", 0)
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("Create = %v, want ENOSPC wrapping ErrNoSpace", err)
	}
	assertNoScratch(t, root)
}

// The video directory is made at Commit; failing to make it fails the
// commit and leaves nothing behind.
func TestCommit_VideoDirFaults(t *testing.T) {
	tests := []struct {
		name    string
		rule    func(op, path string) bool
		err     error
		noSpace bool
	}{
		{"video dir ENOSPC", on("mkdir", "/w"), syscall.ENOSPC, true},
		{"root fsync fails", on("syncdir", "/store"), syscall.EIO, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			ffs := &faultFS{}
			s, _ := openStore(t, root, ffs)
			p, err := s.Create("w", 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(payload(1, 100)); err != nil {
				t.Fatal(err)
			}
			ffs.arm(tt.rule, tt.err, false)
			_, err = p.Commit(storage.Metadata{OriginalSize: 100})
			if err == nil || !errors.Is(err, tt.err) || errors.Is(err, storage.ErrNoSpace) != tt.noSpace {
				t.Fatalf("Commit = %v, want %v (ErrNoSpace %v)", err, tt.err, tt.noSpace)
			}
			assertNoScratch(t, root)
			if _, err := s.Lookup("w", 0); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Lookup after failed commit = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCheckWritable_NoSpace(t *testing.T) {
	ffs := &faultFS{}
	s, _ := openStore(t, filepath.Join(t.TempDir(), "store"), ffs)
	ffs.arm(on("write", "probe-"), syscall.ENOSPC, false)
	if err := s.CheckWritable(); !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("CheckWritable = %v, want ErrNoSpace", err)
	}
	assertNoScratch(t, s.Root())
	ffs.arm(nil, nil, false)
	if err := s.CheckWritable(); err != nil {
		t.Fatalf("CheckWritable = %v", err)
	}
}

// Without hard links a replace still succeeds; only the rollback ability is
// lost (and logged).
func TestCommit_LinkFails(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	ffs := &faultFS{}
	s, logs := openStore(t, root, ffs)
	commit(t, s, "v", 0, payload(1, 100))
	ffs.arm(on("link", ".bak-"), syscall.EPERM, false)
	data := payload(2, 100)
	commit(t, s, "v", 0, data)
	if !ffs.fired {
		t.Fatal("the fault was not hit")
	}
	assertCommitted(t, s, "v", 0, data)
	if !strings.Contains(logs.String(), "cannot keep the previous version") {
		t.Errorf("no warning logged:\n%s", logs)
	}
	assertNoScratch(t, root)
}

// If the rollback fails too, the chunk is not served in a state nobody can
// vouch for.
func TestCommit_RollbackFails(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	ffs := &faultFS{}
	s, _ := openStore(t, root, ffs)
	commit(t, s, "v", 0, payload(1, 100))
	// Crash mode: after the metadata rename fails, restoring the shard fails too.
	ffs.arm(on("rename", "_metadata.json"), syscall.EIO, true)
	p, _ := s.Create("v", 0)
	p.Write(payload(2, 100))
	if _, err := p.Commit(storage.Metadata{}); err == nil {
		t.Fatal("Commit succeeded")
	}
	assertNotFound(t, s, "v", 0)
}

// A crash (every operation failing from some point on) at each step of a
// commit, then a reopen: the chunk is either the old version or the new
// one, complete and consistent, and no scratch file survives.
func TestCommit_CrashRecovery(t *testing.T) {
	tests := []struct {
		name    string
		rule    func(op, path string) bool
		replace bool
		wantNew bool // the new version survives; otherwise the old one (or none)
	}{
		{"before shard fsync", on("sync", ".shard.tmp-"), true, false},
		{"before metadata written", on("write", "_metadata.json.tmp-"), true, false},
		{"before backup link", on("link", ".shard.bak-"), true, false},
		{"before shard rename", on("rename", ".shard"), true, false},
		{"after shard rename", on("syncdir", "/v"), true, false},
		{"between the renames", on("rename", "_metadata.json"), true, false},
		{"after metadata rename", on("syncdir", "/metadata"), true, true},
		{"before backup removal", on("remove", ".shard.bak-"), true, true},
		{"new chunk, after shard rename", on("syncdir", "/v"), false, false},
		{"new chunk, between the renames", on("rename", "_metadata.json"), false, false},
		{"new chunk, after metadata rename", on("syncdir", "/metadata"), false, true},
	}
	for _, tt := range tests {
		for _, sameSize := range []bool{true, false} {
			name := tt.name
			if sameSize {
				name += "/same size"
			}
			t.Run(name, func(t *testing.T) {
				root := filepath.Join(t.TempDir(), "store")
				ffs := &faultFS{}
				s, _ := openStore(t, root, ffs)
				old := payload(1, 4096)
				if tt.replace {
					commit(t, s, "v", 0, old)
				}
				newData := payload(2, 4096)
				if !sameSize {
					newData = payload(2, 3000)
				}
				ffs.arm(tt.rule, errCrashed, true)
				p, err := s.Create("v", 0)
				if err != nil {
					t.Fatal(err)
				}
				p.Write(newData)
				p.Commit(storage.Metadata{}) // may "succeed": the crash can come after the commit point
				if !ffs.fired {
					t.Fatal("the crash point was not reached")
				}

				s, _ = openStore(t, root, nil)
				assertNoScratch(t, root)
				switch {
				case tt.wantNew:
					assertCommitted(t, s, "v", 0, newData)
				case tt.replace:
					assertCommitted(t, s, "v", 0, old)
				default:
					assertNotFound(t, s, "v", 0)
				}
			})
		}
	}
}
