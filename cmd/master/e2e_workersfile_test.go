package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/master"
	pb "github.com/videoshard/videoshard/proto"
)

// lockedBuffer is an io.Writer a test may read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// until polls cond until it holds; it fails the test if the process
// behind exited first (a nil exited never does). The test's -timeout
// bounds it, not a clock of its own.
func until(t *testing.T, what string, exited <-chan struct{}, log func() string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-exited:
			if cond() {
				return
			}
			t.Fatalf("the master exited before %s\n%s", what, log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A worker appended to --workers-file while the job runs joins it: the
// job starts on one slow worker, which is then paused (SIGSTOP) with a
// chunk in flight, so the job can end only once the appended worker has
// stored chunks. A line that is no address, appended first, is logged and
// does not stop the job.
func TestE2EWorkersFileGrows(t *testing.T) {
	const slow = "encoder: simulated\nsimulated: {delay: 1s}\nlimits: {max_concurrent_tasks: 1}\n"
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", slow)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", slow)
	w1.WaitHealthy()
	w2.WaitHealthy()
	paused := false
	t.Cleanup(func() { // before the workers' own cleanup stops them
		if paused {
			w1.Cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	dir := t.TempDir()
	farm := filepath.Join(dir, "farm.txt")
	writeFarm := func(body string) {
		t.Helper()
		// Written whole under another name and renamed: the master never
		// reads half a file.
		if err := os.WriteFile(farm+".tmp", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(farm+".tmp", farm); err != nil {
			t.Fatal(err)
		}
	}
	writeFarm("# the farm\n" + w1.Addr + "\n")
	stateDir := filepath.Join(dir, "state")
	cmd := exec.Command(bins["master"], "encode", "--workers-file", farm, "--output", filepath.Join(dir, "out.mkv"),
		"--segment-seconds", "1", "--state-dir", stateDir, "--video-id", "grow", testdata("h264_aac_640x360_30fps_4s.mp4"))
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})

	health := func(w *e2etest.Worker) *pb.HealthCheckResponse {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, _ := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: "e2etest"})
		return h
	}
	until(t, "the first worker took a chunk", exited, stderr.String, func() bool { return health(w1).GetActiveTasks() > 0 })
	if err := w1.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused = true

	writeFarm("# the farm\n" + w1.Addr + "\nnot an address\n")
	until(t, "the bad line was logged", exited, stderr.String, func() bool {
		return strings.Contains(stderr.String(), "cannot read the workers file again")
	})
	if !strings.Contains(stderr.String(), "line 3") {
		t.Fatalf("the warning does not name the line:\n%s", stderr.String())
	}
	writeFarm("# the farm\n" + w1.Addr + "\n" + w2.Addr + " # added\n")
	stored := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := w2.Client.ListShards(ctx, &pb.ListShardsRequest{VideoId: "grow"})
		if err != nil {
			return 0
		}
		n := 0
		for _, v := range list.GetVideos() {
			n += len(v.GetChunks())
		}
		return n
	}
	until(t, "the appended worker stored a chunk", exited, stderr.String, func() bool { return stored() > 0 })
	if err := w1.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	paused = false
	<-exited
	if waitErr != nil {
		t.Fatalf("master encode: %v\n%s\n%s", waitErr, stdout.String(), stderr.String())
	}
	s, err := master.LoadState(stateDir, "grow")
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]int{}
	for _, c := range s.Chunks {
		if !c.Done {
			t.Fatalf("chunk %d not done: %+v", c.Index, c)
		}
		on[c.Worker]++
	}
	if on[w2.Addr] == 0 || on[w2.Addr] != stored() || on[w1.Addr]+on[w2.Addr] != len(s.Chunks) {
		t.Fatalf("chunks per worker %v (the appended worker lists %d), want some on %s", on, stored(), w2.Addr)
	}
}
