//go:build unix && !linux

package proc

// waitExited reports false: without waitid(WNOWAIT) the caller falls back to
// watching ctx while exec.Cmd.Wait reaps the child.
func waitExited(int) bool { return false }
