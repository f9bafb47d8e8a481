package storage

import "golang.org/x/sys/unix"

// openat2 opens rel beneath dfd, refusing to leave it and to follow any
// symlink (or /proc magic link) on the way: the error is ELOOP for a
// symlink. Kernels before 5.6 answer ENOSYS.
func openat2(dfd int, rel string, flags int, perm uint32) (int, error) {
	return unix.Openat2(dfd, rel, &unix.OpenHow{
		Flags:   uint64(flags),
		Mode:    uint64(perm),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
}
