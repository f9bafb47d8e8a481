package metrics_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/internal/metrics"
	"github.com/videoshard/videoshard/internal/reqid"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// BenchmarkProcessChunkObserved is a unary ProcessChunk to a simulated
// worker over loopback TCP, its store in BENCH_STORE_DIR when set (a
// tmpfs such as /dev/shm takes the fsyncs' noise out of the comparison):
// "bare" without the worker's interceptors, "observed" with the access
// log (at info, where a success writes no line), the request id, the
// chunk observer and the gRPC server metrics, "observed+debug" writing
// every access line as text to io.Discard. Compare ns/op side by side.
func BenchmarkProcessChunkObserved(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		for _, mode := range []string{"bare", "observed", "observed+debug"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				c := benchWorker(b, mode)
				data := make([]byte, size)
				ctx := context.Background()
				b.SetBytes(int64(size))
				i := 0
				for b.Loop() {
					binary.LittleEndian.PutUint64(data, uint64(i)) // new bytes: no retry answered from the store
					if _, err := c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "bench.mp4", ChunkIndex: int32(i % 64), ChunkData: data}); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func benchWorker(b *testing.B, mode string) pb.VideoProcessingServiceClient {
	b.Helper()
	root := b.TempDir()
	if dir := os.Getenv("BENCH_STORE_DIR"); dir != "" {
		var err error
		if root, err = os.MkdirTemp(dir, "bench-store-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(root) })
	}
	store, err := storage.Open(storage.Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	level := slog.LevelInfo
	if mode == "observed+debug" {
		level = slog.LevelDebug
	}
	log := slog.New(reqid.Handler(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level})))
	srv := grpcapi.NewServer(store, enc, grpcapi.Config{WorkerID: "bench", Logger: log})
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(64 << 20)}
	m := metrics.NewWorker(metrics.WorkerConfig{Encoder: enc.Name(), Codec: "simulated"})
	if mode != "bare" {
		opts = srv.GRPCOptions(m.ServerOptions()...)
	}
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	m.InitializeGRPC(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return pb.NewVideoProcessingServiceClient(conn)
}
