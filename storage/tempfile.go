package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A TempFile is a scratch file in TempDir (CreateTemp), made through the
// store's handle on the directory: a .tmp replaced by a symlink cannot send
// it, or what other processes write to it, out of the store.
type TempFile struct {
	File
	s    *Store
	name string // its name in TempDir
}

// CreateTemp makes a new scratch file in TempDir, opened for reading and
// writing; pattern is os.CreateTemp's. The caller removes it (Remove).
func (s *Store) CreateTemp(pattern string) (*TempFile, error) {
	f, err := s.fs.CreateTemp(s.tmpDir, pattern)
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", noSpace(err))
	}
	return &TempFile{File: f, s: s, name: filepath.Base(f.Name())}, nil
}

// Path is the path another process (ffmpeg) opens the file by: one that
// names this open file (childPath), not one resolved through TempDir.
func (t *TempFile) Path() string { return childPath(t.File) }

// Remove closes the file and removes it from TempDir (through the store's
// handle); one already gone is no error.
func (t *TempFile) Remove() error {
	cerr := t.File.Close()
	if err := t.s.fs.Remove(t.s.tmpDir, t.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(cerr, os.ErrClosed) {
		return nil
	}
	return cerr
}
