package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/fsutil"
	pb "github.com/videoshard/videoshard/proto"
)

// fakeWorker answers the calls the commands make. Its fields are set
// before it starts serving and only read afterwards.
type fakeWorker struct {
	pb.UnimplementedVideoProcessingServiceServer
	healthy bool
	shard   []byte
	sum     string // checksum to claim for shard; empty: the right one
}

func (f *fakeWorker) CheckHealth(context.Context, *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	msg := "ok"
	if !f.healthy {
		msg = "draining"
	}
	return &pb.HealthCheckResponse{
		IsHealthy: f.healthy, WorkerId: "fake-1", Message: msg, Encoder: "simulated",
		CpuUtilization: 12.5, MemoryUsageBytes: 3 << 20, ActiveTasks: 1, MaxConcurrentTasks: 4,
		MaxUnaryChunkBytes: 1 << 20,
	}, nil
}

func (f *fakeWorker) ProcessChunk(_ context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	return &pb.ProcessChunkResponse{
		Success: true, WorkerId: "fake-1", OriginalSize: int64(len(req.GetChunkData())),
		ShardLocation: req.GetVideoId() + "/chunk_0.shard",
	}, nil
}

func (f *fakeWorker) ListShards(context.Context, *pb.ListShardsRequest) (*pb.ListShardsResponse, error) {
	return &pb.ListShardsResponse{Success: true, WorkerId: "fake-1", Videos: []*pb.VideoInfo{{
		VideoId: "demo.mp4",
		Chunks: []*pb.ChunkInfo{
			{ChunkIndex: 0, ShardLocation: "demo.mp4/chunk_0.shard", SizeBytes: 2048},
			{ChunkIndex: 1, ShardLocation: "demo.mp4/chunk_1.shard", SizeBytes: 10},
		},
	}}}, nil
}

func (f *fakeWorker) GetVideoMetadata(_ context.Context, req *pb.GetVideoMetadataRequest) (*pb.GetVideoMetadataResponse, error) {
	return nil, status.Errorf(codes.NotFound, "video %q has no chunks", req.GetVideoId())
}

func (f *fakeWorker) DownloadShard(_ *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	sum := f.sum
	if sum == "" {
		s := sha256.Sum256(f.shard)
		sum = hex.EncodeToString(s[:])
	}
	meta := &pb.ChunkMetadata{VideoId: "demo.mp4", EncodedSize: int64(len(f.shard)), ChecksumSha256: sum}
	if err := stream.Send(&pb.DownloadShardResponse{Metadata: meta}); err != nil {
		return err
	}
	return stream.Send(&pb.DownloadShardResponse{Data: f.shard})
}

// serve runs f on a local port and returns its address.
func serve(t *testing.T, f *fakeWorker) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterVideoProcessingServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// run executes the command line and returns its exit status and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = execute(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "chunk.mp4")
	for _, args := range [][]string{
		{"get-shard", "--video-id", "v", "--chunk-index", "0"},
		{"get-shard", "--output", "x"},
		{"get-shard", "--location", "v/chunk_0.shard", "--video-id", "v", "--chunk-index", "0", "--output", "x"},
		{"get-shard", "--video-id", "v", "--output", "x"},
		{"get-shard", "--video-id", "v", "--chunk-index", "-1", "--output", "x"},
		{"process-chunk", "--video-id", "v", "--chunk-index", "0"},
		{"process-chunk", "--chunk-index", "0", file},
		{"process-chunk", "--video-id", "v", "--chunk-index", "-2", file},
		{"process-chunk", "--video-id", "v", "--chunk-index", "zero", file},
		{"metadata"},
		{"list", "extra"},
		{"bogus"},
		{"health", "--bogus"},
		{"health", "--timeout", "soon"},
		{"health", "--timeout", "-1s"},
		{"health", "--worker", ""},
	} {
		code, _, stderr := run(t, args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr)
		}
		if !strings.HasPrefix(stderr, "master: ") || !strings.Contains(stderr, "--help") {
			t.Errorf("%q: stderr %q, want a master: message and a --help hint", args, stderr)
		}
	}
}

func TestHealth(t *testing.T) {
	addr := serve(t, &fakeWorker{healthy: true})
	code, stdout, stderr := run(t, "--worker", addr, "health")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"fake-1", "healthy:", "yes", "12.5%", "3.0 MiB", "1 of 4"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestHealth_JSON(t *testing.T) {
	addr := serve(t, &fakeWorker{healthy: true})
	code, stdout, stderr := run(t, "--worker", addr, "--json", "health")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got struct {
		IsHealthy bool   `json:"is_healthy"`
		WorkerID  string `json:"worker_id"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if !got.IsHealthy || got.WorkerID != "fake-1" {
		t.Fatalf("got %+v", got)
	}
}

func TestHealth_Unhealthy(t *testing.T) {
	addr := serve(t, &fakeWorker{healthy: false})
	code, stdout, stderr := run(t, "--worker", addr, "health")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(stdout, "draining") || !strings.Contains(stderr, "unhealthy: draining") {
		t.Fatalf("stdout %q, stderr %q", stdout, stderr)
	}
}

func TestConfigSources(t *testing.T) {
	addr := serve(t, &fakeWorker{healthy: true})
	const bad = "127.0.0.1:1" // nothing listens there

	t.Setenv("VIDEOSHARD_MASTER_WORKER", addr)
	if code, _, stderr := run(t, "health"); code != exitOK {
		t.Fatalf("worker from env: exit %d, stderr %q", code, stderr)
	}

	t.Setenv("VIDEOSHARD_MASTER_WORKER", bad)
	if code, _, stderr := run(t, "--worker", addr, "health"); code != exitOK {
		t.Fatalf("flag over env: exit %d, stderr %q", code, stderr)
	}

	os.Unsetenv("VIDEOSHARD_MASTER_WORKER")
	config := filepath.Join(t.TempDir(), "master.yaml")
	if err := os.WriteFile(config, []byte("worker: "+addr+"\njson: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "--config", config, "health")
	if code != exitOK {
		t.Fatalf("worker from file: exit %d, stderr %q", code, stderr)
	}
	if !json.Valid([]byte(stdout)) {
		t.Fatalf("json: true in the file did not give JSON:\n%s", stdout)
	}
}

func TestConfig_ErrUnknownKey(t *testing.T) {
	config := filepath.Join(t.TempDir(), "master.yaml")
	if err := os.WriteFile(config, []byte("wroker: 127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "--config", config, "health")
	if code != exitUsage || !strings.Contains(stderr, "unknown key wroker") {
		t.Fatalf("exit %d, stderr %q; want %d and the unknown key named", code, stderr, exitUsage)
	}
}

func TestConfig_ErrBadEnv(t *testing.T) {
	t.Setenv("VIDEOSHARD_MASTER_TIMEOUT", "soon")
	code, _, stderr := run(t, "health")
	if code != exitUsage || !strings.Contains(stderr, "timeout") {
		t.Fatalf("exit %d, stderr %q; want %d naming timeout", code, stderr, exitUsage)
	}
}

func TestUnavailable(t *testing.T) {
	code, _, stderr := run(t, "--worker", "127.0.0.1:1", "health")
	if code != exitFailure || !strings.Contains(stderr, "(Unavailable)") {
		t.Fatalf("exit %d, stderr %q; want %d and the code", code, stderr, exitFailure)
	}
}

func TestNotFound(t *testing.T) {
	addr := serve(t, &fakeWorker{})
	code, _, stderr := run(t, "--worker", addr, "metadata", "--video-id", "nope.mp4")
	if got, want := stderr, "master: video metadata \"nope.mp4\": video \"nope.mp4\" has no chunks (NotFound)\n"; got != want {
		t.Fatalf("stderr = %q, want %q", got, want)
	}
	if code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
}

func TestList(t *testing.T) {
	addr := serve(t, &fakeWorker{})
	code, stdout, stderr := run(t, "--worker", addr, "list")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "VIDEO") || !strings.Contains(lines[1], "2.0 KiB") {
		t.Fatalf("stdout:\n%s", stdout)
	}
	// Aligned: every row starts its second column at the same place.
	col := strings.Index(lines[0], "CHUNK")
	for _, l := range lines[1:] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Fatalf("misaligned row %q under header %q", l, lines[0])
		}
	}
}

func TestProcessChunk(t *testing.T) {
	addr := serve(t, &fakeWorker{})
	file := filepath.Join(t.TempDir(), "chunk.mp4")
	if err := os.WriteFile(file, []byte("not really a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "--worker", addr, "process-chunk", "--video-id", "demo.mp4", "--chunk-index", "0", "--crf", "28", file)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "demo.mp4/chunk_0.shard") || !strings.Contains(stdout, "18 B") {
		t.Fatalf("stdout:\n%s", stdout)
	}
}

func TestGetShard(t *testing.T) {
	shard := bytes.Repeat([]byte("shard"), 1000)
	addr := serve(t, &fakeWorker{shard: shard})
	dir := t.TempDir()
	out := filepath.Join(dir, "chunk0.mkv")
	code, stdout, stderr := run(t, "--worker", addr, "--json", "get-shard", "--video-id", "demo.mp4", "--chunk-index", "0", "--output", out)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, shard) {
		t.Fatal("output differs from the shard")
	}
	var res shardResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if res.Output != out || res.Bytes != int64(len(shard)) {
		t.Fatalf("result %+v", res)
	}
	assertOnly(t, dir, "chunk0.mkv")

	// Again: the file is there now, and replaced only with --force.
	code, _, stderr = run(t, "--worker", addr, "get-shard", "--video-id", "demo.mp4", "--chunk-index", "0", "--output", out)
	if code == exitOK || !strings.Contains(stderr, "exists: add --force") {
		t.Fatalf("get-shard over an existing file: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr = run(t, "--worker", addr, "get-shard", "--video-id", "demo.mp4", "--chunk-index", "0", "--output", out, "--force"); code != exitOK {
		t.Fatalf("get-shard --force: exit %d, stderr %q", code, stderr)
	}
}

func TestGetShard_ErrChecksumMismatch(t *testing.T) {
	addr := serve(t, &fakeWorker{shard: []byte("shard bytes"), sum: strings.Repeat("0", 64)})
	dir := t.TempDir()
	out := filepath.Join(dir, "chunk0.mkv")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "--worker", addr, "get-shard", "--location", "demo.mp4/chunk_0.shard", "--output", out, "--force")
	if code != exitFailure || !strings.Contains(stderr, "checksum mismatch") || !strings.Contains(stderr, "(DataLoss)") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if got, _ := os.ReadFile(out); string(got) != "old" {
		t.Fatalf("output changed to %q", got)
	}
	assertOnly(t, dir, "chunk0.mkv")
}

func TestWriteFileAtomic_ErrWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	boom := errors.New("boom")
	err := fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	assertOnly(t, dir)
}

// assertOnly fails unless dir holds exactly names.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}
