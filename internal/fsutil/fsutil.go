// Package fsutil holds the file helpers of programs that write by path (the
// master): atomic replacement, fsync of a file or directory, a file's
// SHA-256, and the room left on a filesystem. The worker's store has its
// own, directory-handle based versions in package storage.
package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/videoshard/videoshard/internal/sysinfo"
)

// WriteFileAtomic creates or replaces the file at path with what write
// writes, so that path holds either its old content or the whole new one,
// even across a crash: write goes to a temporary file beside path
// (TempPrefix), which is synced, closed and renamed over path, and the
// directory is synced. If anything fails the temporary file is removed and
// path is untouched.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, TempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	return SyncDir(dir)
}

// TempPrefix is the name prefix of WriteFileAtomic's temporary files for a
// file called name: ".<name>.tmp-".
func TempPrefix(name string) string { return "." + name + ".tmp-" }

// SyncFile flushes the file at path to stable storage.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// SyncDir makes a rename in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// FileSHA256 returns the hex SHA-256 of the file at path, as shard
// metadata records checksums.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RoomFor is how many bytes a file written at path may take: the free
// space of its filesystem less a reserve of 64 MiB, or 0 (no bound) when
// that cannot be told.
func RoomFor(path string) int64 {
	const reserve = 64 << 20
	free, err := sysinfo.FreeBytes(filepath.Dir(path))
	if err != nil {
		return 0
	}
	return max(free-reserve, 1)
}
