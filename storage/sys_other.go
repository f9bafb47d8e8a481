//go:build !(linux || darwin)

package storage

import (
	"errors"
	"syscall"
)

const oNoFollow = 0

func freeBytes(path string) (int64, error) { return 0, errors.ErrUnsupported }

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
