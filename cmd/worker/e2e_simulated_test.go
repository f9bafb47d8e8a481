package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestE2ESimulatedEveryRPC(t *testing.T) {
	w := startWorker(t, "", "encoder: simulated\nworker_id: sim-1\n")
	ctx := ctxT(t)

	if got := healthStatus(t, ctx, w); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc.health.v1 status = %v, want SERVING", got)
	}
	h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !h.GetIsHealthy() || h.GetWorkerId() != "sim-1" || h.GetEncoder() != "simulated" || h.GetMemoryUsageBytes() <= 0 {
		t.Fatalf("CheckHealth = %v", h)
	}

	// Chunks and videos deliberately out of order: listings must sort them.
	inputs := map[string]map[int32][]byte{
		"b_video.mp4": {2: randomBytes(300_000, 1), 0: randomBytes(1000, 2), 10: randomBytes(70_001, 3)},
		"a":           {1: randomBytes(65536, 4)},
		"a_chunk_1":   {0: randomBytes(12345, 5)},
	}
	order := []struct {
		video string
		chunk int32
	}{{"b_video.mp4", 2}, {"a_chunk_1", 0}, {"b_video.mp4", 0}, {"a", 1}, {"b_video.mp4", 10}}
	for _, o := range order {
		data := inputs[o.video][o.chunk]
		resp, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: o.video, ChunkIndex: o.chunk, ChunkData: data})
		if err != nil {
			t.Fatalf("ProcessChunk(%s, %d): %v", o.video, o.chunk, err)
		}
		wantLoc := filepath.Join(w.Root, o.video, "chunk_"+itoa(o.chunk)+".shard")
		if !resp.GetSuccess() || resp.GetShardLocation() != wantLoc || resp.GetWorkerId() != "sim-1" {
			t.Fatalf("ProcessChunk response = %v, want success at %s", resp, wantLoc)
		}
		if got, want := resp.GetEncodedSize(), int64(len(data))/2; got < want-1 || got > want+1 {
			t.Errorf("encoded size %d, want about half of %d", got, len(data))
		}
		shard := readFile(t, wantLoc)
		if int64(len(shard)) != resp.GetEncodedSize() || sha(shard) != resp.GetChecksumSha256() {
			t.Errorf("%s on disk: %d bytes sha %s; response says %d bytes sha %s",
				wantLoc, len(shard), sha(shard), resp.GetEncodedSize(), resp.GetChecksumSha256())
		}
		checkMetadataFile(t, w.Root, o.video, o.chunk, len(data), shard)

		// GetShard by each accepted form of address returns the same bytes.
		idx := o.chunk
		for _, req := range []*pb.GetShardRequest{
			{ShardLocation: wantLoc},
			{ShardLocation: o.video + "/chunk_" + itoa(o.chunk) + ".shard"},
			{VideoId: o.video, ChunkIndex: &idx},
		} {
			got, err := w.Client.GetShard(ctx, req)
			if err != nil {
				t.Fatalf("GetShard(%v): %v", req, err)
			}
			if !got.GetSuccess() || !bytes.Equal(got.GetShardData(), shard) {
				t.Fatalf("GetShard(%v) returned %d bytes, want the %d on disk", req, len(got.GetShardData()), len(shard))
			}
		}
		meta, streamed, err := download(ctx, w.Client, &pb.GetShardRequest{ShardLocation: wantLoc})
		if err != nil || !bytes.Equal(streamed, shard) || meta.GetChecksumSha256() != sha(shard) {
			t.Fatalf("DownloadShard: err %v, %d bytes (want %d), meta %v", err, len(streamed), len(shard), meta)
		}
	}

	// Determinism: the same input gives the same shard.
	again, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "again", ChunkIndex: 0, ChunkData: inputs["a"][1]})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := w.Client.GetShard(ctx, &pb.GetShardRequest{ShardLocation: filepath.Join(w.Root, "a", "chunk_1.shard")})
	if again.GetChecksumSha256() != sha(first.GetShardData()) {
		t.Error("simulated encoder is not deterministic")
	}

	list, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range list.GetVideos() {
		for _, c := range v.GetChunks() {
			got = append(got, v.GetVideoId()+"#"+itoa(c.GetChunkIndex()))
			if c.GetSizeBytes() <= 0 || !strings.HasPrefix(c.GetShardLocation(), w.Root+"/") {
				t.Errorf("chunk info %v", c)
			}
		}
	}
	want := []string{"a#1", "a_chunk_1#0", "again#0", "b_video.mp4#0", "b_video.mp4#2", "b_video.mp4#10"}
	if !slices.Equal(got, want) {
		t.Fatalf("ListShards order = %v, want %v", got, want)
	}
	one, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{VideoId: "a"})
	if err != nil || len(one.GetVideos()) != 1 || len(one.GetVideos()[0].GetChunks()) != 1 {
		t.Fatalf("ListShards(a) = %v, %v; want only video a's one chunk", one, err)
	}
	none, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{VideoId: "unknown"})
	if err != nil || len(none.GetVideos()) != 0 {
		t.Fatalf("ListShards(unknown) = %v, %v; want an empty list", none, err)
	}

	md, err := w.Client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.GetChunksMetadata()) != 1 || md.GetChunksMetadata()[0].GetChunkIndex() != 1 {
		t.Fatalf("GetVideoMetadata(a) mixes in other videos: %v", md)
	}
	md, err = w.Client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "b_video.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	var idxs []int32
	for _, m := range md.GetChunksMetadata() {
		idxs = append(idxs, m.GetChunkIndex())
		if m.GetEncoder() != "simulated" || m.GetCompressionRatio() < 0.49 || m.GetCompressionRatio() > 0.51 || m.GetTimestamp() == "" {
			t.Errorf("metadata %v", m)
		}
	}
	if !slices.Equal(idxs, []int32{0, 2, 10}) {
		t.Fatalf("GetVideoMetadata chunk order = %v", idxs)
	}

	// A restart rebuilds the same index from disk.
	before := treeDigest(t, w.Root)
	w.Stop()
	w2 := startWorker(t, w.Root, "encoder: simulated\nworker_id: sim-1\n")
	list2, err := w2.Client.ListShards(ctxT(t), &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !protoEqualList(list, list2) {
		t.Fatalf("after restart ListShards = %v, want %v", list2, list)
	}
	if d := diffTrees(before, treeDigest(t, w.Root)); len(d) > 0 {
		t.Fatalf("restart changed the store: %v", d)
	}
}

func protoEqualList(a, b *pb.ListShardsResponse) bool {
	if len(a.GetVideos()) != len(b.GetVideos()) {
		return false
	}
	for i, v := range a.GetVideos() {
		u := b.GetVideos()[i]
		if v.GetVideoId() != u.GetVideoId() || len(v.GetChunks()) != len(u.GetChunks()) {
			return false
		}
		for j, c := range v.GetChunks() {
			d := u.GetChunks()[j]
			if c.GetChunkIndex() != d.GetChunkIndex() || c.GetShardLocation() != d.GetShardLocation() ||
				c.GetSizeBytes() != d.GetSizeBytes() || c.GetChecksumSha256() != d.GetChecksumSha256() {
				return false
			}
		}
	}
	return true
}

func itoa[T ~int32 | ~int](n T) string {
	return strconv.Itoa(int(n))
}

// checkMetadataFile checks the JSON file the seed specifies: its fields,
// names and types.
func checkMetadataFile(t *testing.T, root, video string, chunk int32, originalSize int, shard []byte) {
	t.Helper()
	path := filepath.Join(root, "metadata", video+"_chunk_"+itoa(chunk)+"_metadata.json")
	var m map[string]any
	if err := json.Unmarshal(readFile(t, path), &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	num := func(k string) float64 {
		v, ok := m[k].(float64)
		if !ok {
			t.Errorf("%s: %s is %T, want a number", path, k, m[k])
		}
		return v
	}
	str := func(k string) string {
		v, ok := m[k].(string)
		if !ok {
			t.Errorf("%s: %s is %T, want a string", path, k, m[k])
		}
		return v
	}
	if str("video_id") != video || int32(num("chunk_index")) != chunk {
		t.Errorf("%s: identity %v/%v", path, m["video_id"], m["chunk_index"])
	}
	if int(num("original_size")) != originalSize || int(num("encoded_size")) != len(shard) {
		t.Errorf("%s: sizes %v/%v, want %d/%d", path, m["original_size"], m["encoded_size"], originalSize, len(shard))
	}
	if r := num("compression_ratio"); r < float64(len(shard))/float64(originalSize)-1e-9 || r > float64(len(shard))/float64(originalSize)+1e-9 {
		t.Errorf("%s: compression_ratio %v", path, r)
	}
	if loc := str("shard_location"); !filepath.IsAbs(loc) || loc != filepath.Join(root, video, "chunk_"+itoa(chunk)+".shard") {
		t.Errorf("%s: shard_location %q", path, loc)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.999999Z07:00", str("timestamp")); err != nil {
		t.Errorf("%s: timestamp: %v", path, err)
	}
	if str("worker_id") == "" || str("checksum_sha256") != sha(shard) || str("encoder") == "" {
		t.Errorf("%s: worker_id/checksum/encoder = %v/%v/%v", path, m["worker_id"], m["checksum_sha256"], m["encoder"])
	}
	for _, k := range []string{"duration_seconds", "frame_count", "width", "height", "encode_time_seconds"} {
		num(k)
	}
}

func TestE2ELargeChunks(t *testing.T) {
	w := startWorker(t, "", "encoder: simulated\nlimits: {max_chunk_bytes: 80MiB}\n")
	ctx := ctxT(t)

	// An old client sends a 48 MiB chunk in one unary message.
	big := randomBytes(48<<20, 7)
	resp, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "big", ChunkIndex: 0, ChunkData: big})
	if err != nil {
		t.Fatalf("unary 48 MiB ProcessChunk: %v", err)
	}
	if resp.GetOriginalSize() != int64(len(big)) {
		t.Fatalf("original size %d", resp.GetOriginalSize())
	}

	// The same bytes streamed in uneven frames make the same shard.
	up, err := upload(ctx, w.Client, &pb.UploadHeader{VideoId: "big", ChunkIndex: 1, TotalSize: int64(len(big))}, big, 1<<20+17)
	if err != nil {
		t.Fatalf("UploadChunk: %v", err)
	}
	if up.GetChecksumSha256() != resp.GetChecksumSha256() || up.GetOriginalSize() != int64(len(big)) {
		t.Fatalf("streamed upload gave %v, unary gave %v", up.GetChecksumSha256(), resp.GetChecksumSha256())
	}
	_, data, err := download(ctx, w.Client, &pb.GetShardRequest{ShardLocation: up.GetShardLocation()})
	if err != nil || sha(data) != up.GetChecksumSha256() {
		t.Fatalf("DownloadShard: %v, sha %s want %s", err, sha(data), up.GetChecksumSha256())
	}

	// Over the configured chunk limit: ResourceExhausted, before any data is read.
	_, err = upload(ctx, w.Client, &pb.UploadHeader{VideoId: "big", ChunkIndex: 2, TotalSize: 81 << 20}, big[:1<<20], 1<<20)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized upload: %v, want ResourceExhausted", err)
	}
}

func TestE2ESimulatedBadInput(t *testing.T) {
	w := startWorker(t, "", "encoder: simulated\nlimits: {max_chunk_bytes: 1MiB}\n")
	ctx := ctxT(t)
	good := randomBytes(4096, 9)
	stored, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "kept", ChunkIndex: 0, ChunkData: good})
	if err != nil {
		t.Fatal(err)
	}
	// Places a hostile location might reach: a sibling folder sharing the
	// store's name as a prefix, and a symlink inside the store pointing out.
	sibling := w.Root + "2"
	if err := os.MkdirAll(filepath.Join(sibling, "kept"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sibling, "kept", "chunk_0.shard"), []byte("secret"), 0o644)
	outside := filepath.Join(t.TempDir(), "outside.shard")
	os.WriteFile(outside, []byte("secret"), 0o644)
	if err := os.Symlink(outside, filepath.Join(w.Root, "kept", "chunk_7.shard")); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, w.Root)
	neg := int32(-1)
	zero := int32(0)

	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"traversal video id", process(w, "../x", 0, good), codes.InvalidArgument},
		{"absolute video id", process(w, "/tmp/x", 0, good), codes.InvalidArgument},
		{"separator in id", process(w, "a/b", 0, good), codes.InvalidArgument},
		{"dot id", process(w, ".", 0, good), codes.InvalidArgument},
		{"dotdot id", process(w, "..", 0, good), codes.InvalidArgument},
		{"hidden id", process(w, ".hidden", 0, good), codes.InvalidArgument},
		{"empty id", process(w, "", 0, good), codes.InvalidArgument},
		{"reserved id", process(w, "metadata", 0, good), codes.InvalidArgument},
		{"NUL in id", process(w, "a\x00b", 0, good), codes.InvalidArgument},
		{"over-long id", process(w, strings.Repeat("v", 256), 0, good), codes.InvalidArgument},
		{"negative index", process(w, "kept", -1, good), codes.InvalidArgument},
		{"empty chunk", process(w, "kept", 3, nil), codes.InvalidArgument},
		{"chunk over the limit", process(w, "kept", 3, randomBytes(1<<20+1, 1)), codes.ResourceExhausted},
		{"override: codec outside the allowlist", func() error {
			_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "kept", ChunkIndex: 4, ChunkData: good,
				Encoding: &pb.EncodingOptions{VideoCodec: "rm -rf /"}})
			return err
		}, codes.InvalidArgument},
		{"override: crf out of range", func() error {
			crf := int32(99)
			_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "kept", ChunkIndex: 4, ChunkData: good,
				Encoding: &pb.EncodingOptions{Crf: &crf}})
			return err
		}, codes.InvalidArgument},
		{"override: preset that is a flag", func() error {
			_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "kept", ChunkIndex: 4, ChunkData: good,
				Encoding: &pb.EncodingOptions{Preset: "-i /etc/passwd"}})
			return err
		}, codes.InvalidArgument},
		{"get: huge index", getShard(w, &pb.GetShardRequest{ShardLocation: "kept/chunk_99999999999999.shard"}), codes.InvalidArgument},
		{"get: index with a sign", getShard(w, &pb.GetShardRequest{ShardLocation: "kept/chunk_+1.shard"}), codes.InvalidArgument},
		{"get: leading zero", getShard(w, &pb.GetShardRequest{ShardLocation: "kept/chunk_00.shard"}), codes.InvalidArgument},
		{"get: temp file", getShard(w, &pb.GetShardRequest{ShardLocation: ".tmp/x.shard"}), codes.InvalidArgument},
		{"get: outside path", getShard(w, &pb.GetShardRequest{ShardLocation: "/etc/passwd"}), codes.InvalidArgument},
		{"get: metadata json", getShard(w, &pb.GetShardRequest{ShardLocation: filepath.Join(w.Root, "metadata", "kept_chunk_0_metadata.json")}), codes.InvalidArgument},
		{"get: sibling prefix folder", getShard(w, &pb.GetShardRequest{ShardLocation: filepath.Join(sibling, "kept", "chunk_0.shard")}), codes.InvalidArgument},
		{"get: dotdot", getShard(w, &pb.GetShardRequest{ShardLocation: filepath.Join(w.Root, "kept", "..", "..", "store2", "kept", "chunk_0.shard")}), codes.InvalidArgument},
		{"get: relative dotdot", getShard(w, &pb.GetShardRequest{ShardLocation: "../store2/kept/chunk_0.shard"}), codes.InvalidArgument},
		{"get: symlink out of the store", getShard(w, &pb.GetShardRequest{ShardLocation: filepath.Join(w.Root, "kept", "chunk_7.shard")}), codes.InvalidArgument},
		{"get: NUL", getShard(w, &pb.GetShardRequest{ShardLocation: w.Root + "/kept/chunk_0.shard\x00"}), codes.InvalidArgument},
		{"get: nothing named", getShard(w, &pb.GetShardRequest{}), codes.InvalidArgument},
		{"get: negative index", getShard(w, &pb.GetShardRequest{VideoId: "kept", ChunkIndex: &neg}), codes.InvalidArgument},
		{"get: bad id", getShard(w, &pb.GetShardRequest{VideoId: "../kept", ChunkIndex: &zero}), codes.InvalidArgument},
		{"get: not stored", getShard(w, &pb.GetShardRequest{ShardLocation: filepath.Join(w.Root, "kept", "chunk_5.shard")}), codes.NotFound},
		{"get: unknown video", getShard(w, &pb.GetShardRequest{VideoId: "nope", ChunkIndex: &zero}), codes.NotFound},
		{"download: outside path", func() error {
			_, _, err := download(ctx, w.Client, &pb.GetShardRequest{ShardLocation: "/etc/passwd"})
			return err
		}, codes.InvalidArgument},
		{"list: traversal", func() error {
			_, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{VideoId: "../.."})
			return err
		}, codes.InvalidArgument},
		{"metadata: traversal", func() error {
			_, err := w.Client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "../kept"})
			return err
		}, codes.InvalidArgument},
		{"metadata: unknown video", func() error {
			_, err := w.Client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "nope"})
			return err
		}, codes.NotFound},
		{"upload: data before header", func() error {
			stream, err := w.Client.UploadChunk(ctx)
			if err != nil {
				return err
			}
			stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: good}})
			_, err = stream.CloseAndRecv()
			return err
		}, codes.InvalidArgument},
		{"upload: no messages", func() error {
			stream, err := w.Client.UploadChunk(ctx)
			if err != nil {
				return err
			}
			_, err = stream.CloseAndRecv()
			return err
		}, codes.InvalidArgument},
		{"upload: stops halfway", func() error {
			_, err := upload(ctx, w.Client, &pb.UploadHeader{VideoId: "kept", ChunkIndex: 0, TotalSize: 8192}, good, 1000)
			return err
		}, codes.InvalidArgument},
		{"upload: more than announced", func() error {
			_, err := upload(ctx, w.Client, &pb.UploadHeader{VideoId: "kept", ChunkIndex: 0, TotalSize: 100}, good, 64)
			return err
		}, codes.InvalidArgument},
		{"upload: second header", func() error {
			stream, err := w.Client.UploadChunk(ctx)
			if err != nil {
				return err
			}
			h := &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: &pb.UploadHeader{VideoId: "kept", ChunkIndex: 0, TotalSize: 10}}}
			stream.Send(h)
			stream.Send(h)
			_, err = stream.CloseAndRecv()
			return err
		}, codes.InvalidArgument},
		{"upload: zero size", func() error {
			_, err := upload(ctx, w.Client, &pb.UploadHeader{VideoId: "kept", ChunkIndex: 0, TotalSize: 0}, nil, 1)
			return err
		}, codes.InvalidArgument},
		{"upload: traversal id", func() error {
			_, err := upload(ctx, w.Client, &pb.UploadHeader{VideoId: "../../etc", ChunkIndex: 0, TotalSize: int64(len(good))}, good, 1024)
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := status.Code(err); got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if msg := status.Convert(err).Message(); len(msg) < 10 {
				t.Errorf("message %q does not say what was wrong", msg)
			}
		})
	}
	if d := diffTrees(before, treeDigest(t, w.Root)); len(d) > 0 {
		t.Fatalf("bad input changed the store: %v", d)
	}
	got, err := w.Client.GetShard(ctx, &pb.GetShardRequest{ShardLocation: stored.GetShardLocation()})
	if err != nil || sha(got.GetShardData()) != stored.GetChecksumSha256() {
		t.Fatalf("the stored chunk is no longer intact: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(w.Root), "x")); !os.IsNotExist(err) {
		t.Fatalf("a traversal id wrote outside the store: %v", err)
	}
}

func process(w *worker, video string, chunk int32, data []byte) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: video, ChunkIndex: chunk, ChunkData: data})
		return err
	}
}

func getShard(w *worker, req *pb.GetShardRequest) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := w.Client.GetShard(ctx, req)
		return err
	}
}

// SIGTERM lets a chunk in flight finish, then the worker exits cleanly and
// the chunk is there after a restart.
func TestE2EGracefulShutdown(t *testing.T) {
	w := startWorker(t, "", "encoder: simulated\nsimulated: {delay: 1500ms}\nshutdown_grace: 20s\n")
	ctx := ctxT(t)
	data := randomBytes(100_000, 11)
	done := make(chan error, 1)
	go func() {
		_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "inflight", ChunkIndex: 0, ChunkData: data})
		done <- err
	}()
	waitFor(t, func() bool {
		h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
		return err == nil && h.GetActiveTasks() == 1
	})
	if err := w.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("chunk in flight during SIGTERM: %v", err)
	}
	select {
	case <-w.Done:
		if w.Err != nil {
			t.Fatalf("worker exit: %v\n%s", w.Err, w.Logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not exit after SIGTERM")
	}
	if !strings.Contains(w.Logs.String(), "worker stopped") {
		t.Errorf("no clean-stop log line:\n%s", w.Logs)
	}
	w2 := startWorker(t, w.Root, "encoder: simulated\n")
	if _, err := w2.Client.GetVideoMetadata(ctxT(t), &pb.GetVideoMetadataRequest{VideoId: "inflight"}); err != nil {
		t.Fatalf("chunk finished during shutdown is missing after restart: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.Root, ".tmp")); len(entries) != 0 {
		t.Fatalf("temp files left: %v", entries)
	}
}
