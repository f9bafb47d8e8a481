package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/videoshard/videoshard/proto"
)

// TestE2EReindex: `worker reindex` rebuilds a stopped worker's index from
// its metadata files (a chunk whose metadata was removed by hand leaves
// the listing), refuses a store a running worker holds, and the worker
// then starts on the index it left.
func TestE2EReindex(t *testing.T) {
	ctx := ctxT(t)
	root := filepath.Join(t.TempDir(), "store")
	w := startWorker(t, root, "encoder: simulated\n")
	for n := range 3 {
		if _, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: int32(n), ChunkData: []byte("chunk data")}); err != nil {
			t.Fatal(err)
		}
	}
	reindex := func() (string, error) {
		out, err := exec.Command(workerBinary, "reindex", "--config", w.Config).CombinedOutput()
		return string(out), err
	}
	if out, err := reindex(); err == nil || !strings.Contains(out, "in use by another process") {
		t.Fatalf("reindex of a running worker's store: %v\n%s", err, out)
	}
	w.Stop()
	if err := os.Remove(filepath.Join(root, "metadata", "v_chunk_1_metadata.json")); err != nil {
		t.Fatal(err)
	}
	out, err := reindex()
	if err != nil || !strings.Contains(out, "reindexed") || !strings.Contains(out, "2 chunks") {
		t.Fatalf("reindex: %v\n%s", err, out)
	}
	w = startWorker(t, root, "encoder: simulated\n")
	if strings.Contains(w.Logs.String(), "rebuilding") {
		t.Errorf("the worker rebuilt the index reindex left:\n%s", w.Logs)
	}
	resp, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chunkRefsOf(resp), " "); got != "v/0 v/2" {
		t.Fatalf("listing after reindex: %s, want v/0 v/2", got)
	}
}

func chunkRefsOf(resp *pb.ListShardsResponse) []string {
	var out []string
	for _, v := range resp.GetVideos() {
		for _, c := range v.GetChunks() {
			out = append(out, fmt.Sprintf("%s/%d", v.GetVideoId(), c.GetChunkIndex()))
		}
	}
	return out
}
