package storage

import "syscall"

// syscallCtime is st's status change time in Unix nanoseconds.
func syscallCtime(st *syscall.Stat_t) int64 { return st.Ctim.Nano() }
