package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// runScrub runs `worker scrub --config config` and returns its output and
// exit code.
func runScrub(t *testing.T, config string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(workerBinary, "scrub", "--config", config)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func listedChunks(t *testing.T, w *worker) map[string]bool {
	t.Helper()
	list, err := w.Client.ListShards(ctxT(t), &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, v := range list.GetVideos() {
		for _, c := range v.GetChunks() {
			got[v.GetVideoId()+"#"+itoa(c.GetChunkIndex())] = true
		}
	}
	return got
}

func flipOneByte(t *testing.T, path string) {
	t.Helper()
	data := readFile(t, path)
	data[len(data)/3] ^= 0x08
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// `worker scrub` refuses a store a worker holds, and on a stopped worker's
// store names and quarantines the corrupt shard and exits 1; a clean store
// exits 0; the restarted worker no longer lists the shard.
func TestScrubCommand(t *testing.T) {
	w := startWorker(t, "", "encoder: simulated\n")
	ctx := ctxT(t)
	var locs []string
	for i := range 3 {
		resp, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "movie.mp4", ChunkIndex: int32(i), ChunkData: randomBytes(100_000, uint64(i+1))})
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, resp.GetShardLocation())
	}

	_, stderr, code := runScrub(t, w.Config)
	if code != 1 || !strings.Contains(stderr, "in use by another process") {
		t.Fatalf("scrub beside a running worker: exit %d, stderr %q; want a refusal", code, stderr)
	}
	// Nor does a second worker start on the same store.
	second := exec.Command(workerBinary, "--config", w.Config, "--listen", "127.0.0.1:0")
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second worker on the same store: %v\n%s", err, out)
	}
	w.Stop()

	stdout, stderr, code := runScrub(t, w.Config)
	if code != 0 || !strings.Contains(stdout, "3 chunks checked") || !strings.Contains(stdout, "0 corrupt") {
		t.Fatalf("scrub of a clean store: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	flipOneByte(t, locs[1])
	stdout, stderr, code = runScrub(t, w.Config)
	if code != 1 {
		t.Fatalf("scrub of a corrupted store: exit %d, want 1\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "CORRUPT movie.mp4 chunk 1: ") || !strings.Contains(stdout, "1 corrupt") ||
		strings.Contains(stdout, "chunk 0:") || strings.Contains(stdout, "chunk 2:") {
		t.Fatalf("report does not name exactly the corrupted shard:\n%s", stdout)
	}
	if !strings.Contains(stderr, "corrupt shards found") {
		t.Errorf("stderr %q does not say why it failed", stderr)
	}
	if _, err := os.Stat(locs[1]); !os.IsNotExist(err) {
		t.Fatalf("corrupted shard still in place: %v", err)
	}
	moved, _ := filepath.Glob(filepath.Join(w.Root, ".quarantine", "*-movie.mp4_chunk_1", "chunk_1.shard"))
	if len(moved) != 1 {
		t.Fatalf("quarantined shard not found: %v", moved)
	}
	if stdout, _, code := runScrub(t, w.Config); code != 0 || !strings.Contains(stdout, "2 chunks checked") {
		t.Fatalf("second scrub: exit %d\n%s", code, stdout)
	}

	w2 := startWorker(t, w.Root, "encoder: simulated\n")
	got := listedChunks(t, w2)
	if got["movie.mp4#1"] || !got["movie.mp4#0"] || !got["movie.mp4#2"] {
		t.Fatalf("after scrub and restart ListShards = %v, want chunks 0 and 2", got)
	}
	health, err := w2.Client.CheckHealth(ctxT(t), &pb.HealthCheckRequest{})
	if err != nil || health.GetQuarantinedShards() != 1 {
		t.Fatalf("CheckHealth quarantined_shards: %v, %v; want 1", health, err)
	}
}

// A worker with storage.scrub_interval finds a shard corrupted on disk by
// itself: it is quarantined (no longer listed), counted and logged.
func TestBackgroundScrub(t *testing.T) {
	t.Setenv("VIDEOSHARD_STORAGE_SCRUB_INTERVAL", "100ms")
	t.Setenv("VIDEOSHARD_STORAGE_SCRUB_BYTES_PER_SECOND", "64MiB")
	w := startWorker(t, "", "encoder: simulated\n")
	ctx := ctxT(t)
	var locs []string
	for i := range 3 {
		resp, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "bg", ChunkIndex: int32(i), ChunkData: randomBytes(50_000, uint64(10+i))})
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, resp.GetShardLocation())
	}
	flipOneByte(t, locs[2])
	waitFor(t, func() bool { return !listedChunks(t, w)["bg#2"] })
	got := listedChunks(t, w)
	if !got["bg#0"] || !got["bg#1"] {
		t.Fatalf("background scrub took intact chunks too: %v", got)
	}
	idx := int32(2)
	if _, err := w.Client.GetShard(ctx, &pb.GetShardRequest{VideoId: "bg", ChunkIndex: &idx}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetShard of the scrubbed chunk: %v, want NotFound", err)
	}
	health, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil || health.GetCorruptedShardsDetected() != 1 || health.GetQuarantinedShards() != 1 {
		t.Fatalf("CheckHealth: %v, %v; want 1 corrupted, 1 quarantined", health, err)
	}
	if logs := w.Logs.String(); !strings.Contains(logs, "scrub: corrupted shard quarantined") || !strings.Contains(logs, "background scrub on") {
		t.Errorf("worker log does not report the scrub:\n%s", logs)
	}
	// The chunk can be stored again.
	if _, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "bg", ChunkIndex: 2, ChunkData: randomBytes(50_000, 12)}); err != nil {
		t.Fatal(err)
	}
	if !listedChunks(t, w)["bg#2"] {
		t.Fatal("re-stored chunk not listed")
	}
}
