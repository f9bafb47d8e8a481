//go:build unix

package encode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

const (
	// stderrTailSize is how much of a program's stderr is kept for errors.
	stderrTailSize = 4 << 10
	// pipeWaitDelay bounds how long Wait waits for stdout/stderr to close
	// after the program exited (a stray grandchild could hold them open).
	pipeWaitDelay = 2 * time.Second
)

// command is one program run by run.
type command struct {
	name   string
	args   []string
	env    []string  // added to the inherited environment
	stdout io.Writer // nil discards
}

// startError reports that a program could not be started at all: missing,
// not executable, or the like.
type startError struct {
	name string
	err  error
}

func (e *startError) Error() string { return fmt.Sprintf("start %s: %v", e.name, e.err) }
func (e *startError) Unwrap() error { return e.err }

// run runs c in a new process group and waits for it to finish. When ctx
// ends first, the whole group is killed with SIGKILL, reaped, and the error
// wraps ctx.Err(). Any process still in the group when the leader exits is
// killed as well, so nothing outlives run. The returned string is the tail of
// the program's stderr (last stderrTailSize bytes), whatever the outcome.
//
// exec.CommandContext is not used: its default cancel kills only the leader.
func run(ctx context.Context, c command) (stderr string, err error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tail := newTailBuffer(stderrTailSize)
	cmd := exec.Command(c.name, c.args...)
	cmd.Stdout = c.stdout
	cmd.Stderr = tail
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = pipeWaitDelay
	if err := cmd.Start(); err != nil {
		return "", &startError{name: c.name, err: err}
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

	name := filepath.Base(c.name)
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

// tailBuffer is an io.Writer that keeps only the last max bytes written.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func newTailBuffer(max int) *tailBuffer {
	return &tailBuffer{buf: make([]byte, 0, max), max: max}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.truncated = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
		t.truncated = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept bytes, trimmed, starting at a line boundary when
// earlier output was dropped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if t.truncated {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(bytes.TrimSpace(b))
}

// limitedBuffer collects up to max bytes and silently drops the rest, so a
// chatty program never blocks on a full pipe; overflowed reports the drop.
// It deliberately has no ReadFrom (an embedded bytes.Buffer would promote
// one, and io.Copy would use it to bypass the limit).
type limitedBuffer struct {
	buf        bytes.Buffer
	max        int
	overflowed bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	room := l.max - l.buf.Len()
	if len(p) > room {
		l.overflowed = true
		l.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *limitedBuffer) Bytes() []byte  { return l.buf.Bytes() }
func (l *limitedBuffer) String() string { return l.buf.String() }
func (l *limitedBuffer) Len() int       { return l.buf.Len() }
