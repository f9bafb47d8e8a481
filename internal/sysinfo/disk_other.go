//go:build !(linux || darwin)

package sysinfo

import "errors"

// FreeBytes is not known here.
func FreeBytes(path string) (int64, error) { return 0, errors.ErrUnsupported }
