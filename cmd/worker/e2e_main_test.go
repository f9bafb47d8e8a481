package main

// End-to-end tests: they build the real worker binary, start it on a
// loopback port with a temporary store, and drive it over gRPC.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/videoshard/videoshard/internal/e2etest"
	pb "github.com/videoshard/videoshard/proto"
)

var workerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "videoshard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err := e2etest.Build(dir, "github.com/videoshard/videoshard/cmd/worker")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBinary = bins["worker"]
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type worker = e2etest.Worker

// startWorker runs the worker with yaml appended to a config that listens
// on a free loopback port and stores in root (a new temp dir when empty).
func startWorker(t *testing.T, root, yaml string) *worker {
	t.Helper()
	return e2etest.StartWorker(t, workerBinary, root, "", yaml)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func healthStatus(t *testing.T, ctx context.Context, w *worker) healthpb.HealthCheckResponse_ServingStatus {
	resp, err := healthpb.NewHealthClient(w.Conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("grpc.health.v1 Check: %v", err)
	}
	return resp.GetStatus()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// treeDigest maps every file under root to its sha256, to prove a store was
// not touched. The index (.index/) is left out: SQLite rewrites its files
// as it is read, and it holds only what the other files say.
func treeDigest(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && rel == ".index" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(path)
			out[rel] = "link:" + target
			return nil
		}
		out[rel] = sha(readFile(t, path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(a, b map[string]string) []string {
	var diffs []string
	for k, v := range a {
		if b[k] != v {
			diffs = append(diffs, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, k)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// upload sends data through UploadChunk in frames of frameSize.
func upload(ctx context.Context, c pb.VideoProcessingServiceClient, h *pb.UploadHeader, data []byte, frameSize int) (*pb.ProcessChunkResponse, error) {
	stream, err := c.UploadChunk(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: h}}); err != nil {
		return nil, err
	}
	for off := 0; off < len(data); off += frameSize {
		end := min(off+frameSize, len(data))
		if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: data[off:end]}}); err != nil {
			if err == io.EOF {
				break // the server has answered; CloseAndRecv has its status
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// download reads a shard through DownloadShard.
func download(ctx context.Context, c pb.VideoProcessingServiceClient, req *pb.GetShardRequest) (*pb.ChunkMetadata, []byte, error) {
	stream, err := c.DownloadShard(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var meta *pb.ChunkMetadata
	var data []byte
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return meta, data, nil
		}
		if err != nil {
			return meta, data, err
		}
		if msg.GetMetadata() != nil {
			meta = msg.GetMetadata()
		}
		data = append(data, msg.GetData()...)
	}
}

func testdataPath(name string) string {
	return filepath.Join("..", "..", "testdata", name)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether pid still runs (a zombie counts as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}
