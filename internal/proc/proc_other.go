//go:build unix && !linux

package proc

import "syscall"

// waitExited reports false: without waitid(WNOWAIT) the caller falls back to
// watching ctx while exec.Cmd.Wait reaps the child.
func waitExited(int) bool { return false }

// sysProcAttr puts the child in its own process group, so the whole group
// can be killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
