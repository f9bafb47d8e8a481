package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/e2etest"
	pb "github.com/videoshard/videoshard/proto"
)

// chunksOn is how many chunks of video a worker lists.
func chunksOn(t *testing.T, w *e2etest.Worker, video string) int {
	t.Helper()
	resp, err := w.Client.ListShards(context.Background(), &pb.ListShardsRequest{VideoId: video})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range resp.GetVideos() {
		n += len(v.GetChunks())
	}
	return n
}

// encode --cleanup deletes the job's shards once the output is verified
// and leaves no pin; master delete removes a video's shards, or one chunk,
// from each worker named, and deleting again deletes nothing, exit 0.
func TestE2ECleanupAndDelete(t *testing.T) {
	sim := "encoder: simulated\nlimits: {max_concurrent_tasks: 2}\n"
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", sim)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", sim)
	dir := t.TempDir()
	encode := func(video string, extra ...string) string {
		t.Helper()
		args := append([]string{"encode", "--workers", addrs(w1, w2), "--output", filepath.Join(dir, video+".mkv"), "--segment-seconds", "1",
			"--state-dir", filepath.Join(dir, "state"), "--video-id", video}, extra...)
		code, stdout, stderr := runMaster(t, append(args, testdata("h264_aac_640x360_30fps_4s.mp4"))...)
		if code != 0 {
			t.Fatalf("encode %s exited %d\n%s\n%s", video, code, stdout, stderr)
		}
		return stdout
	}

	out := encode("cleaned", "--cleanup")
	if !strings.Contains(out, "cleanup:") || !strings.Contains(out, "shards deleted") || strings.Contains(out, "left on") {
		t.Errorf("the summary should say what --cleanup deleted:\n%s", out)
	}
	for _, w := range []*e2etest.Worker{w1, w2} {
		if n := chunksOn(t, w, "cleaned"); n != 0 {
			t.Errorf("worker %s still holds %d chunks after --cleanup", w.Addr, n)
		}
		if _, err := os.Stat(filepath.Join(w.Root, ".pins", "cleaned")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("worker %s: still pinned after the job (%v)", w.Addr, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cleaned.mkv")); err != nil {
		t.Fatalf("the output of a cleaned-up job: %v", err)
	}

	encode("kept")
	before := chunksOn(t, w1, "kept") + chunksOn(t, w2, "kept")
	if before != 4 {
		t.Fatalf("the job left %d chunks on its workers, want 4", before)
	}
	holder := w1
	if chunksOn(t, w1, "kept") == 0 {
		holder = w2
	}
	resp, err := holder.Client.ListShards(context.Background(), &pb.ListShardsRequest{VideoId: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	one := resp.GetVideos()[0].GetChunks()[0].GetChunkIndex()
	code, stdout, stderr := runMaster(t, "delete", "--worker", holder.Addr, "--video-id", "kept", "--chunk-index", strconv.Itoa(int(one)))
	if code != 0 || !strings.Contains(stdout, "1 chunks deleted") {
		t.Fatalf("delete one chunk: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if after := chunksOn(t, w1, "kept") + chunksOn(t, w2, "kept"); after != 3 {
		t.Fatalf("%d chunks after deleting one of 4", after)
	}
	code, stdout, stderr = runMaster(t, "delete", "--workers", addrs(w1, w2), "--video-id", "kept", "--json")
	if code != 0 || !strings.Contains(stdout, `"deleted_chunks"`) {
		t.Fatalf("delete the video: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if after := chunksOn(t, w1, "kept") + chunksOn(t, w2, "kept"); after != 0 {
		t.Fatalf("%d chunks left after master delete", after)
	}
	code, stdout, stderr = runMaster(t, "delete", "--workers", addrs(w1, w2), "--video-id", "kept")
	if code != 0 || strings.Count(stdout, "0 chunks deleted") != 2 {
		t.Fatalf("a repeated delete: exit %d, want 0 deleting nothing\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = runMaster(t, "delete", "--worker", w1.Addr, "--video-id", "../etc")
	if code != 2 || !strings.Contains(stderr, "video") {
		t.Fatalf("delete of a bad id: exit %d, want 2 naming the id\n%s", code, stderr)
	}
}

// A worker at storage.max_bytes with eviction lru makes room for a job by
// evicting the least recently read chunks of others, never the job's own
// (pinned while it runs), and says so in its health.
func TestE2EEvictionSparesTheJob(t *testing.T) {
	w := e2etest.StartWorker(t, bins["worker"], "", "",
		"storage: {max_bytes: 100000, eviction: lru, evict_to_ratio: 0.8}\nencoder: simulated\nlimits: {max_concurrent_tasks: 2}\n")
	dir := t.TempDir()
	for _, video := range []string{"old", "new"} {
		code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", filepath.Join(dir, video+".mkv"), "--segment-seconds", "1",
			"--state-dir", filepath.Join(dir, "state"), "--video-id", video, testdata("h264_aac_640x360_30fps_4s.mp4"))
		if code != 0 {
			t.Fatalf("encode %s exited %d\n%s\n%s", video, code, stdout, stderr)
		}
	}
	if n := chunksOn(t, w, "new"); n != 4 {
		t.Errorf("the last job keeps %d of its 4 chunks", n)
	}
	if n := chunksOn(t, w, "old"); n >= 4 {
		t.Errorf("nothing of the earlier job was evicted (%d chunks)", n)
	}
	h, err := w.Client.CheckHealth(context.Background(), &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.GetEvictedChunks() < 1 || h.GetStoreBytes() > 100000 || h.GetStoreMaxBytes() != 100000 {
		t.Errorf("health after eviction: evicted %d, store %d bytes of %d", h.GetEvictedChunks(), h.GetStoreBytes(), h.GetStoreMaxBytes())
	}
	if !strings.Contains(w.Logs.String(), "chunk evicted") {
		t.Errorf("no eviction logged:\n%s", w.Logs.String())
	}
}
