package storage

import (
	"fmt"
	"os"
)

// childPath is a path by which another process opens f itself:
// /proc/<pid>/fd/<n>, a link the kernel resolves to the open file, not
// through the directories of the name it was made with (which another
// process writing the store could have swapped for a symlink since). It
// is f's name when f has no descriptor or /proc does not show it.
func childPath(f File) string {
	osf, ok := f.(interface {
		Fd() uintptr
		Stat() (os.FileInfo, error)
	})
	if !ok {
		return f.Name()
	}
	p := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), osf.Fd())
	want, err1 := osf.Stat()
	got, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(want, got) {
		return f.Name()
	}
	return p
}
