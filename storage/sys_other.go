//go:build !(linux || darwin)

package storage

import (
	"errors"
	"os"
	"syscall"
)

const oNoFollow = 0

func freeBytes(path string) (int64, error) { return 0, errors.ErrUnsupported }

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func isSymlinkLoop(err error) bool { return false }

// flock is not implemented here: Options.Lock has no effect.
func flock(f *os.File) error { return nil }
