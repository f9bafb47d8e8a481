package storage

import "syscall"

// startWriteback asks the kernel to begin writing [off, off+n) of f to disk
// without waiting, so that the fsync at commit finds little left to do. It
// is only a hint: errors are ignored here and reported by that fsync.
func startWriteback(f File, off, n int64) {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		_ = syscall.SyncFileRange(int(fd), off, n, 2 /* SYNC_FILE_RANGE_WRITE */)
	})
}
