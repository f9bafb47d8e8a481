//go:build !linux

package storage

// childPath is f's name: without Linux's /proc/<pid>/fd, other processes
// open f by it.
func childPath(f File) string { return f.Name() }
