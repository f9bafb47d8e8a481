package master_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

const replClip = "../testdata/h264_noaudio_320x240_30000-1001_3s.mkv"

// labelled starts a worker whose health names its zone.
func labelled(t *testing.T, zone string, h *hooks) *testWorker {
	t.Helper()
	if h == nil {
		h = &hooks{}
	}
	h.Health = func(resp *pb.HealthCheckResponse) *pb.HealthCheckResponse {
		resp.Labels = map[string]string{"zone": zone, "host": "host-" + zone}
		return resp
	}
	return startWorker(t, workerOpts{MaxTasks: 2, Hooks: h})
}

func replJob(t *testing.T, dir string, replicas int, ws ...*testWorker) master.JobConfig {
	var addrs []string
	for _, w := range ws {
		addrs = append(addrs, w.Addr)
	}
	return master.JobConfig{
		Input: replClip, Output: filepath.Join(dir, "out.mkv"), VideoID: "repl", SegmentSeconds: 1,
		StateDir: filepath.Join(dir, "state"), Tools: media.Tools{FFmpeg: "ffmpeg", FFprobe: "ffprobe"},
		Dispatch: fastConfig(t, addrs...), Replicas: replicas, Logger: testLogger(t),
	}
}

// holds reports whether w stores chunk idx of video with checksum sum.
func holds(w *testWorker, video string, idx int, sum string) bool {
	m, err := w.Store.Lookup(video, idx)
	return err == nil && m.ChecksumSHA256 == sum
}

// Each chunk ends on two workers in different zones, every copy recorded
// and verified; reconstruct reads around a corrupt copy and a dead worker.
func TestEncodeReplicas(t *testing.T) {
	a1, a2, b := labelled(t, "a", nil), labelled(t, "a", nil), labelled(t, "b", nil)
	byAddr := map[string]*testWorker{a1.Addr: a1, a2.Addr: a2, b.Addr: b}
	dir := t.TempDir()
	cfg := replJob(t, dir, 2, a1, a2, b)
	sum, err := master.Encode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Replication; r == nil || r.Wanted != 2 || len(r.Short) != 0 || len(r.Copies) != sum.Chunks {
		t.Fatalf("replication report %+v", sum.Replication)
	}
	state, err := master.LoadState(cfg.StateDir, "repl")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range state.Chunks {
		copies := c.Copies()
		if len(copies) != 2 {
			t.Fatalf("chunk %d has copies %+v, want 2", c.Index, copies)
		}
		inB := 0
		for _, r := range copies {
			if !holds(byAddr[r.Worker], "repl", c.Index, c.Checksum) {
				t.Fatalf("chunk %d: %s does not hold the copy the map records", c.Index, r.Worker)
			}
			if r.Worker == b.Addr {
				inB++
			}
		}
		if inB != 1 {
			t.Fatalf("chunk %d copies %+v: want one in zone b", c.Index, copies)
		}
	}

	// A corrupt copy on a zone-a worker: the read fails over to zone b.
	c0 := state.Chunks[0]
	var aCopy *testWorker
	for _, r := range c0.Copies() {
		if r.Worker != b.Addr {
			aCopy = byAddr[r.Worker]
		}
	}
	m, err := aCopy.Store.Lookup("repl", 0)
	if err != nil {
		t.Fatal(err)
	}
	corrupt(t, m.ShardLocation)
	rcfg := cfg
	rcfg.Output = filepath.Join(dir, "again.mkv")
	got, err := master.Reconstruct(context.Background(), rcfg)
	if err != nil || got.Reencoded != 0 {
		t.Fatalf("reconstruct around a corrupt copy: %d encoded again, %v", got.Reencoded, err)
	}
	same(t, cfg.Output, rcfg.Output)

	// Zone b gone too: chunk 0 has no good copy left and is encoded
	// again; every other chunk is read from zone a.
	b.Kill()
	rcfg.Output = filepath.Join(dir, "third.mkv")
	got, err = master.Reconstruct(context.Background(), rcfg)
	if err != nil || got.Reencoded != 1 {
		t.Fatalf("reconstruct without zone b: %d encoded again, want 1 (chunk 0); %v", got.Reencoded, err)
	}
}

func corrupt(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func same(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(x) != string(y) {
		t.Fatalf("%s and %s differ", a, b)
	}
}

// With fewer healthy workers than copies wanted, the job reaches what it
// can and says so, without failing; with enough workers whose copies
// fail, it fails with ErrUnderReplicated after building the output.
func TestEncodeReplicasShort(t *testing.T) {
	t.Run("too few workers", func(t *testing.T) {
		w := startWorker(t, workerOpts{MaxTasks: 2})
		dir := t.TempDir()
		sum, err := master.Encode(context.Background(), replJob(t, dir, 2, w))
		if err != nil {
			t.Fatal(err)
		}
		if r := sum.Replication; r.Workers != 1 || len(r.Short) != sum.Chunks || r.Copies[0] != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("copies fail", func(t *testing.T) {
		refuse := &hooks{Replicate: func(*pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error) {
			return nil, status.Error(codes.Unavailable, "disk on fire")
		}}
		w1, w2 := startWorker(t, workerOpts{MaxTasks: 2, Hooks: refuse}), startWorker(t, workerOpts{MaxTasks: 2})
		dir := t.TempDir()
		sum, err := master.Encode(context.Background(), replJob(t, dir, 2, w1, w2))
		if !errors.Is(err, master.ErrUnderReplicated) {
			t.Fatalf("err %v, want ErrUnderReplicated", err)
		}
		if _, serr := os.Stat(filepath.Join(dir, "out.mkv")); serr != nil || sum.Replication == nil || len(sum.Replication.Short) == 0 {
			t.Fatalf("output %v, report %+v", serr, sum.Replication)
		}
	})
	t.Run("copies never answered", func(t *testing.T) {
		// A target that takes the copy and never answers holds it for
		// its transfer's time, not the chunk timeout, and is given no
		// more copies once one has run out of that time.
		release := make(chan struct{})
		var calls atomic.Int32
		hang := &hooks{Replicate: func(*pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error) {
			calls.Add(1)
			<-release
			return nil, status.Error(codes.Unavailable, "too late")
		}}
		w1, w2 := startWorker(t, workerOpts{MaxTasks: 2, Hooks: hang}), startWorker(t, workerOpts{MaxTasks: 2, Hooks: hang})
		t.Cleanup(func() { close(release) }) // before the workers stop
		dir := t.TempDir()
		cfg := replJob(t, dir, 2, w1, w2)
		cfg.Dispatch.Dial.DownloadIdleTimeout = 300 * time.Millisecond
		cfg.Dispatch.ChunkTimeout = 2 * time.Minute
		cfg.SegmentSeconds = 0.25 // chunks enough to see the targets given no more
		start := time.Now()
		sum, err := master.Encode(context.Background(), cfg)
		if !errors.Is(err, master.ErrUnderReplicated) {
			t.Fatalf("err %v, want ErrUnderReplicated", err)
		}
		if took := time.Since(start); took >= cfg.Dispatch.ChunkTimeout/2 {
			t.Errorf("the job took %v with copies that never answer: held for the chunk timeout (%v), not the copy's", took, cfg.Dispatch.ChunkTimeout)
		}
		// At most the copies each target takes at once (2) were sent
		// before the first ran out.
		if n := calls.Load(); n > 4 || sum.Chunks < 8 {
			t.Errorf("%d copies of %d chunks sent to two targets that never answer, want at most 4", n, sum.Chunks)
		}
	})
	t.Run("a copy of other bytes", func(t *testing.T) {
		// A target that answers with another checksum holds no copy.
		liar := &hooks{Replicate: func(req *pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error) {
			return &pb.ReplicateShardResponse{Success: true, Metadata: &pb.ChunkMetadata{VideoId: req.GetVideoId(),
				ChunkIndex: req.GetChunkIndex(), ChecksumSha256: "00", ShardLocation: "x"}}, nil
		}}
		w1, w2 := startWorker(t, workerOpts{MaxTasks: 2}), startWorker(t, workerOpts{MaxTasks: 2, Hooks: liar})
		dir := t.TempDir()
		cfg := replJob(t, dir, 2, w1, w2)
		if _, err := master.Encode(context.Background(), cfg); !errors.Is(err, master.ErrUnderReplicated) {
			t.Fatalf("err %v, want ErrUnderReplicated", err)
		}
		state, err := master.LoadState(cfg.StateDir, "repl")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range state.Chunks {
			for _, r := range c.Copies() {
				if r.Worker == w2.Addr && !holds(w2, "repl", c.Index, c.Checksum) {
					t.Fatalf("chunk %d: the liar's copy is recorded", c.Index)
				}
			}
		}
	})
}

// TestEncodePinsWhatItChecked: a worker that names no checksum for its
// shards (as the original's answers do not) and serves other bytes of the
// same size once a shard has been fetched: the output is made of the bytes
// the chunk checker fetched and pinned, not of what the worker serves at
// the join.
func TestEncodePinsWhatItChecked(t *testing.T) {
	h := &hooks{
		Process: func(ctx context.Context, _ int, _ *pb.ProcessChunkRequest, next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
			resp, err := next()
			if resp != nil {
				resp.ChecksumSha256 = ""
			}
			return resp, err
		},
	}
	w := labelled(t, "a", h)
	// Served again, a shard is other bytes, under their own checksum.
	h.Serve = func(again bool, msg *pb.DownloadShardResponse) {
		if !again {
			return
		}
		if m := msg.GetMetadata(); m != nil {
			data, err := os.ReadFile(shardFile(w, m.GetShardLocation()))
			if err != nil {
				t.Error(err)
				return
			}
			sum := sha256.Sum256(inverted(data))
			m.ChecksumSha256 = hex.EncodeToString(sum[:])
		}
		msg.Data = inverted(msg.Data)
	}
	dir := t.TempDir()
	sum, err := master.Encode(context.Background(), replJob(t, dir, 1, w))
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range sum.Chunks {
		m, err := w.Store.Lookup("repl", i)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(shardFile(w, m.ShardLocation))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, data...)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the output (%d bytes) is not the shards the worker first served (%d bytes)", len(got), len(want))
	}
}

func inverted(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = c ^ 0xff
	}
	return out
}

// shardFile is the file of a shard location w's store gave.
func shardFile(w *testWorker, location string) string {
	if filepath.IsAbs(location) {
		return location
	}
	return filepath.Join(w.Store.Root(), location)
}

// TestEncodeStallingWorkerWaitedOnce: a worker whose downloads stall is
// waited on for one idle timeout by the chunk checker and one by the join,
// not one for each of its chunks; its chunks are encoded again elsewhere.
func TestEncodeStallingWorkerWaitedOnce(t *testing.T) {
	var stalled atomic.Int32
	h := &hooks{Serve: func(_ bool, msg *pb.DownloadShardResponse) {
		if len(msg.GetData()) > 0 {
			stalled.Add(1)
			time.Sleep(time.Second) // the client gives up after 200 ms
		}
	}}
	// Most chunks go to the stalling worker: four slots against one, and
	// the other worker slower at each.
	slow := startWorker(t, workerOpts{MaxTasks: 4, Hooks: h})
	good := startWorker(t, workerOpts{MaxTasks: 1, Delay: 200 * time.Millisecond})
	dir := t.TempDir()
	cfg := replJob(t, dir, 1, slow, good)
	cfg.SegmentSeconds = 0.5
	cfg.Dispatch.Dial.DownloadIdleTimeout = 200 * time.Millisecond
	sum, err := master.Encode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for i := range sum.Chunks {
		if _, err := slow.Store.Lookup("repl", i); err == nil {
			held++
		}
	}
	if held < 3 {
		t.Fatalf("the stalling worker holds %d chunks; the test needs 3 or more", held)
	}
	// One by the checker; the join fetches 4 at a time (fetchParallel), so
	// up to that many may stall at once before the first has failed.
	if n, most := int(stalled.Load()), 1+min(held, 4); n > most {
		t.Errorf("%d downloads stalled on a worker holding %d chunks, want at most %d", n, held, most)
	}
	if sum.Reencoded < held {
		t.Errorf("%d chunks encoded again, want the stalling worker's %d", sum.Reencoded, held)
	}
}
