//go:build !(linux || darwin)

package storage

import (
	"errors"
	"os"
	"syscall"
)

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// flock is not implemented here: Options.Lock has no effect.
func flock(f *os.File) error { return nil }
