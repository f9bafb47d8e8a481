package grpcapi_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// indexClient serves a store with an index of kind over bufconn.
func indexClient(b *testing.B, kind storage.IndexKind) pb.VideoProcessingServiceClient {
	store, err := storage.Open(storage.Options{Root: b.TempDir(), Index: kind})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	enc, err := encode.NewSimulated(encode.DefaultSimulatedConfig())
	if err != nil {
		b.Fatal(err)
	}
	srv := grpcapi.NewServer(store, enc, grpcapi.Config{MaxConcurrentTasks: 2})
	lis := bufconn.Listen(4 << 20)
	gs := grpc.NewServer(srv.GRPCOptions()...)
	srv.Register(gs)
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return pb.NewVideoProcessingServiceClient(conn)
}

// BenchmarkProcessChunkIndex compares ProcessChunk throughput (simulated
// encoder, 1 MiB chunks, two clients) over a store with the SQLite index
// and one with the memory index, side by side in alternating rounds
// (VIDEOSHARD_BENCH_INDEX_ROUNDS, default 7) of 32 chunks each; the
// figure is the median of the rounds' sqlite/memory ratios (target >= 0.9).
func BenchmarkProcessChunkIndex(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_INDEX_ROUNDS", 7)
	clients := map[storage.IndexKind]pb.VideoProcessingServiceClient{
		storage.IndexSQLite: indexClient(b, storage.IndexSQLite),
		storage.IndexMemory: indexClient(b, storage.IndexMemory),
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	const perRound = 32
	next := 0
	run := func(kind storage.IndexKind) float64 {
		c := clients[kind]
		start := time.Now()
		done := make(chan error, 2)
		for w := range 2 {
			go func() {
				for i := w; i < perRound; i += 2 {
					_, err := c.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{
						VideoId: "bench", ChunkIndex: int32(next + i), ChunkData: data})
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		return float64(perRound*len(data)) / 1e6 / time.Since(start).Seconds()
	}
	var ratios, sqliteMBs, memMBs []float64
	for b.Loop() {
		for r := range rounds {
			var sq, mem float64
			if r%2 == 0 {
				sq, mem = run(storage.IndexSQLite), run(storage.IndexMemory)
			} else {
				mem, sq = run(storage.IndexMemory), run(storage.IndexSQLite)
			}
			next += perRound
			sqliteMBs, memMBs = append(sqliteMBs, sq), append(memMBs, mem)
			ratios = append(ratios, sq/mem)
		}
	}
	b.Logf("sqlite MB/s %.1f, memory MB/s %.1f (medians), ratios %.3f", median(sqliteMBs), median(memMBs), ratios)
	b.ReportMetric(median(sqliteMBs), "sqlite-MB/s")
	b.ReportMetric(median(memMBs), "memory-MB/s")
	b.ReportMetric(median(ratios), "sqlite/memory")
}
