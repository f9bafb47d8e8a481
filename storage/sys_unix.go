//go:build linux || darwin

package storage

import (
	"errors"
	"syscall"
)

// oNoFollow makes opening a final symlink fail.
const oNoFollow = syscall.O_NOFOLLOW

// freeBytes is the space available to an unprivileged user on the
// filesystem holding path.
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
