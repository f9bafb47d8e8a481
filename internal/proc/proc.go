//go:build unix

// Package proc runs external programs (ffmpeg, ffprobe) so that nothing they
// start outlives the caller's context.
//
// Run starts the program in a new process group and waits for it. When the
// context ends first, the whole group is killed with SIGKILL and reaped, and
// the error wraps ctx.Err(); any process left in the group when the leader
// exits is killed as well. The tail of the program's stderr is kept and
// returned whatever the outcome, for error messages.
//
// exec.CommandContext is not used: its default cancel kills only the leader,
// and ffmpeg's helpers (or a wrapper script's children) would survive.
package proc

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// StderrTailSize is how much of a program's stderr Run keeps.
	StderrTailSize = 4 << 10
	// pipeWaitDelay bounds how long Wait waits for stdout/stderr to close
	// after the program exited (a stray grandchild could hold them open).
	pipeWaitDelay = 2 * time.Second
)

// Cmd is one program for Run.
type Cmd struct {
	// Name is the program: a name looked up in PATH, or a path.
	Name string
	// Args are the arguments, without the program name.
	Args []string
	// Env is added to the inherited environment; nil adds nothing.
	Env []string
	// Stdout receives the program's standard output; nil discards it.
	// Use a LimitedBuffer to collect a bounded amount.
	Stdout io.Writer
	// StderrLine, when set, sees each line of stderr as it comes (without
	// its line end; a line longer than StderrTailSize in pieces of that
	// size) and returns what of it to keep in the tail Run returns: nil
	// keeps nothing. It is called from one goroutine at a time, and never
	// after Run has returned.
	StderrLine func(line []byte) []byte
}

// StartError reports that a program could not be started at all: missing,
// not executable, or the like. Test for it with errors.As; it unwraps to the
// underlying error (e.g. exec.ErrNotFound, fs.ErrPermission).
type StartError struct {
	Name string
	Err  error
}

func (e *StartError) Error() string { return fmt.Sprintf("start %s: %v", e.Name, e.Err) }
func (e *StartError) Unwrap() error { return e.Err }

// Run runs c in a new process group and waits for it to finish. The returned
// string is the tail of the program's stderr (the last StderrTailSize bytes,
// trimmed, starting at a line boundary when earlier output was dropped).
//
// Errors: ctx.Err() itself when ctx has ended before the start; a
// *StartError when the program could not be started; "NAME killed: ctx.Err()"
// (wrapping it) when ctx ended while it ran; "NAME: *exec.ExitError" when it
// exited unsuccessfully. NAME is the base name of c.Name.
func Run(ctx context.Context, c Cmd) (stderrTail string, err error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tail := newTailBuffer(StderrTailSize)
	cmd := exec.Command(c.Name, c.Args...)
	cmd.Stdout = c.Stdout
	cmd.Stderr = tail
	var lines *lineFilter
	if c.StderrLine != nil {
		lines = &lineFilter{keep: c.StderrLine, to: tail}
		cmd.Stderr = lines
	}
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = pipeWaitDelay
	if err := cmd.Start(); err != nil {
		return "", &StartError{Name: c.Name, Err: err}
	}
	pid := cmd.Process.Pid // also the process group id

	// waitExited blocks until the leader has exited without reaping it, so
	// while it is a zombie its pid, and therefore the group id, cannot be
	// reused: killing the group is safe until cmd.Wait below.
	exited := make(chan bool, 1)
	go func() { exited <- waitExited(pid) }()

	killed := false
	var waited bool // the leader exited and is not yet reaped
	select {
	case waited = <-exited:
	case <-ctx.Done():
		killGroup(pid)
		killed = true
		waited = <-exited
	}

	var werr error
	if waited {
		killGroup(pid) // stray children of a leader that has already exited
		werr = cmd.Wait()
	} else {
		// No waitid(WNOWAIT) on this platform: watch ctx while Wait reaps.
		// A kill that races the reap could, in theory, hit a reused group id.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case werr = <-done:
		case <-ctx.Done():
			if !killed {
				killGroup(pid)
				killed = true
			}
			werr = <-done
		}
	}

	if lines != nil {
		lines.flush() // a last line without its line end
	}
	name := filepath.Base(c.Name)
	if killed {
		return tail.String(), fmt.Errorf("%s killed: %w", name, ctx.Err())
	}
	if werr != nil {
		return tail.String(), fmt.Errorf("%s: %w", name, werr)
	}
	return tail.String(), nil
}

// killGroup sends SIGKILL to every process in the group pgid.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // ESRCH: already gone
}
