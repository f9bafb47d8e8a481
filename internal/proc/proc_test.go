package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/proc"
)

func TestRun_StdoutIsBounded(t *testing.T) {
	out := proc.NewLimitedBuffer(10)
	_, err := proc.Run(context.Background(), proc.Cmd{Name: "/bin/sh", Args: []string{"-c", "yes | head -c 1000000"}, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Overflowed() || out.Len() != 10 {
		t.Fatalf("overflowed %v len %d, want true and 10", out.Overflowed(), out.Len())
	}
}

func TestRun_StderrTailOnFailure(t *testing.T) {
	stderr, err := proc.Run(context.Background(), proc.Cmd{Name: "/bin/sh", Args: []string{"-c", "echo first >&2; echo last >&2; exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want an *exec.ExitError with code 3", err)
	}
	if stderr != "first\nlast" {
		t.Fatalf("stderr = %q", stderr)
	}
}

// StderrLine sees every line, carriage-return ended ones and a last one
// without an end included, and a line too long in pieces; the tail keeps
// what it returns.
func TestRun_StderrLine(t *testing.T) {
	long := strings.Repeat("x", proc.StderrTailSize+10)
	var seen []string
	script := `printf 'keep one\nprogress\rdrop two\n` + long + `\nkeep last' >&2`
	stderr, err := proc.Run(context.Background(), proc.Cmd{Name: "/bin/sh", Args: []string{"-c", script},
		StderrLine: func(line []byte) []byte {
			seen = append(seen, string(line))
			if bytes.HasPrefix(line, []byte("keep ")) {
				return bytes.ToUpper(line)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"keep one", "progress", "drop two", long[:proc.StderrTailSize], "xxxxxxxxxx", "keep last"}
	if len(seen) != len(want) {
		t.Fatalf("%d lines seen, want %d", len(seen), len(want))
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("line %d: %d bytes %.20q, want %d bytes %.20q", i, len(seen[i]), seen[i], len(want[i]), want[i])
		}
	}
	if stderr != "KEEP ONE\nKEEP LAST" {
		t.Errorf("stderr tail %q, want the kept lines", stderr)
	}
}

func TestRun_EnvAndStdout(t *testing.T) {
	var out bytes.Buffer
	_, err := proc.Run(context.Background(), proc.Cmd{Name: "/bin/sh", Args: []string{"-c", `printf %s "$PROC_TEST_VALUE"`}, Env: []string{"PROC_TEST_VALUE=hello"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "hello"; got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}
}

func TestRun_StartError(t *testing.T) {
	_, err := proc.Run(context.Background(), proc.Cmd{Name: filepath.Join(t.TempDir(), "missing")})
	var se *proc.StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *proc.StartError", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestRun_AlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := proc.Run(ctx, proc.Cmd{Name: "/bin/sh", Args: []string{"-c", "touch '" + marker + "'"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the program ran although ctx was already cancelled")
	}
}

// TestRun_CancelKillsProcessGroup starts a shell that starts a child, cancels,
// and checks that both are gone when Run returns.
func TestRun_CancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := fmt.Sprintf(`sleep 300 &
echo "$$ $!" > '%[1]s.tmp'
mv '%[1]s.tmp' '%[1]s'
sleep 300
`, pidFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := proc.Run(ctx, proc.Cmd{Name: "/bin/sh", Args: []string{"-c", script}})
		errc <- err
	}()
	pids := waitPIDs(t, pidFile)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("err = %v, want sh killed: context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	assertGone(t, pids)
}

// TestRun_StrayChildKilled: a leader that exits normally while its child
// still runs in the group takes the child with it.
func TestRun_StrayChildKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := fmt.Sprintf(`sleep 300 >/dev/null 2>&1 &
echo "$!" > '%s'
`, pidFile)
	if _, err := proc.Run(context.Background(), proc.Cmd{Name: "/bin/sh", Args: []string{"-c", script}}); err != nil {
		t.Fatal(err)
	}
	assertGone(t, waitPIDs(t, pidFile))
}

// assertGone fails unless every pid is gone within a few seconds (SIGKILL
// is delivered asynchronously); survivors are killed.
func assertGone(t testing.TB, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d still running", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitPIDs waits for a script to record its pids in pidFile.
func waitPIDs(t testing.TB, pidFile string) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			var pids []int
			for _, f := range strings.Fields(string(b)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pid file %q: %v", b, err)
				}
				pids = append(pids, pid)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("script did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs (absent, or a zombie
// waiting for a reaper that is not us).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}
