package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/videoshard/videoshard/proto"
)

// runToExit runs the worker binary with args and waits for it to exit,
// returning its stderr and exit code. A worker that gets as far as
// listening is killed and fails the test: it should not have started.
func runToExit(t *testing.T, args ...string) (stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBinary, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if strings.Contains(line, "videoshard worker listening") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the worker started:\n%s", out.String())
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), code
}

// A worker, and `worker scrub`, on a store where someone planted a symlink
// (for .tmp, start-up deleted the files it led to; for metadata, moved
// them; for .lock, created one) refuse to start, name the entry and say
// why, and leave what the link leads to as it was.
func TestStart_RefusesPlantedSymlink(t *testing.T) {
	for _, entry := range []string{".tmp", "metadata", ".lock", "movie.mp4"} {
		t.Run(entry, func(t *testing.T) {
			w := startWorker(t, "", "encoder: simulated\n")
			if _, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{
				VideoId: "movie.mp4", ChunkIndex: 0, ChunkData: randomBytes(10_000, 1),
			}); err != nil {
				t.Fatal(err)
			}
			w.Stop()
			root, err := filepath.EvalSymlinks(w.Root)
			if err != nil {
				t.Fatal(err)
			}

			outside := filepath.Join(t.TempDir(), "outside")
			for name, data := range map[string]string{
				"precious.txt":                           "not the worker's",
				".movie.mp4_chunk_0_metadata.json.tmp-1": "looks like a leftover",
				"sub/file":                               "not the worker's either",
			} {
				p := filepath.Join(outside, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := treeDigest(t, outside)
			target := outside
			if entry == ".lock" {
				target = filepath.Join(outside, "created-by-the-worker")
			}
			link := filepath.Join(root, entry)
			if err := os.Rename(link, filepath.Join(t.TempDir(), "aside")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}

			for _, args := range [][]string{{"--config", w.Config}, {"scrub", "--config", w.Config}} {
				stderr, code := runToExit(t, args...)
				if code != 1 {
					t.Errorf("worker %v: exit %d, want 1\n%s", args, code, stderr)
				}
				for _, want := range []string{"refusing to follow a symlink in the store", link + " is a symlink", "remove it"} {
					if !strings.Contains(stderr, want) {
						t.Errorf("worker %v does not say %q:\n%s", args, want, stderr)
					}
				}
				if strings.Contains(stderr, outside) {
					t.Errorf("worker %v names where the symlink leads:\n%s", args, stderr)
				}
			}
			if diff := diffTrees(before, treeDigest(t, outside)); len(diff) > 0 {
				t.Errorf("outside the store changed: %v", diff)
			}
		})
	}
}
