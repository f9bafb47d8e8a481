//go:build unix && !linux

package storage

import "golang.org/x/sys/unix"

// openat2 is Linux's; elsewhere paths are walked (see walkOpen).
func openat2(int, string, int, uint32) (int, error) { return -1, unix.ENOSYS }
