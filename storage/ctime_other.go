//go:build unix && !linux && !darwin

package storage

import "syscall"

// syscallCtime is 0 (unknown) where the field's name is not known here.
func syscallCtime(*syscall.Stat_t) int64 { return 0 }
