package proc

import (
	"syscall"
	"unsafe"
)

// pPID is P_PID from <sys/wait.h>: waitid selects one process by pid.
const pPID = 1

// waitExited blocks until the child pid has exited, without reaping it, and
// reports whether it could; false means the caller must fall back to plain
// waiting (waitid unavailable, or the child was already reaped).
func waitExited(pid int) bool {
	var info [128]byte // siginfo_t; only the wait matters
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return true
		case syscall.EINTR:
			continue
		default:
			return false
		}
	}
}

// sysProcAttr puts the child in its own process group (so the whole group
// can be killed) and has the kernel kill it if this process dies first, as
// under kill -9, so no encode outlives a crashed worker.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
