//go:build !(linux || darwin)

package sysinfo

import "errors"

// FreeBytes is not known here.
func FreeBytes(path string) (int64, error) { return 0, errors.ErrUnsupported }

// DiskBytes is not known here.
func DiskBytes(path string) (total, free int64, err error) { return 0, 0, errors.ErrUnsupported }
