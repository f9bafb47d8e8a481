package grpcapi_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// replicateBenchSize is the shard BenchmarkReplicateShard256MiB copies.
const replicateBenchSize = 256 << 20

// BenchmarkReplicateShard256MiB measures a worker-to-worker ReplicateShard
// of a 256 MiB shard on loopback (the target pulls it with DownloadShard,
// hashes it and commits it: write, fsync, rename) against a plain streamed
// download of the same shard from the same source (master/client's
// DownloadShard, which hashes as it receives, into a file, then fsync),
// written to the same filesystem. Each round runs both twice, in either
// order; the target's copy is deleted after each replication, untimed.
// Metrics: median MB/s of each and the median per-round ratio of their
// times (target >= 0.8). VIDEOSHARD_BENCH_REPLICATE_ROUNDS sets the rounds
// (default 5).
func BenchmarkReplicateShard256MiB(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_REPLICATE_ROUNDS", 5)
	data := make([]byte, replicateBenchSize)
	rand.NewChaCha8([32]byte{'r', 'e', 'p'}).Read(data)
	enc, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	srcStore := benchStore(b)
	meta := commitShard(b, srcStore, "bench-repl", 0, data)
	srcAddr := serveWorker(b, grpcapi.NewServer(srcStore, enc, grpcapi.Config{WorkerID: "source", MaxMessageBytes: benchMaxMessage}))
	dstStore := benchStore(b)
	dst := serveBench(b, grpcapi.NewServer(dstStore, enc, grpcapi.Config{WorkerID: "target", MaxMessageBytes: benchMaxMessage}).Register)
	ctx := benchCtx(b)
	c, err := client.Dial(ctx, srcAddr, client.DialOptions{Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	// Each run returns its time: the replication's is its call's, the
	// delete of the copy after it untimed.
	req := &pb.ReplicateShardRequest{SourceWorker: srcAddr, VideoId: "bench-repl"}
	replicate := func() (time.Duration, error) {
		start := time.Now()
		resp, err := dst.ReplicateShard(ctx, req)
		d := time.Since(start)
		if err == nil && (resp.GetAlreadyStored() || resp.GetMetadata().GetChecksumSha256() != meta.ChecksumSHA256) {
			err = fmt.Errorf("unexpected answer %v", resp)
		}
		if err != nil {
			return 0, err
		}
		_, err = dst.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: "bench-repl"})
		return d, err
	}
	reference := func() (time.Duration, error) {
		path := filepath.Join(dstStore.TempDir(), "reference")
		defer os.Remove(path)
		start := time.Now()
		f, err := os.Create(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		want := client.ShardWant{Size: meta.EncodedSize, Checksum: meta.ChecksumSHA256}
		if _, _, err := c.DownloadShard(ctx, &pb.GetShardRequest{VideoId: "bench-repl", ChunkIndex: proto.Int32(0)}, f, want); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		return time.Since(start), f.Close()
	}
	names := [2]string{"download", "replicate"}
	runs := [2]func() (time.Duration, error){reference, replicate}
	timeRun := func(i int) time.Duration {
		d, err := runs[i]()
		if err != nil {
			b.Fatalf("%s: %v", names[i], err)
		}
		return d
	}
	timeRun(0) // warm-up: the source's page cache, both connections
	timeRun(1)

	// A round runs both in each order: whichever runs second is faster on
	// this machine, so a round's ratio is of the two orders' sums.
	var mb [2][]float64
	var ratio []float64
	for b.Loop() {
		for range rounds {
			var sum [2]time.Duration
			for _, order := range [2][2]int{{0, 1}, {1, 0}} {
				for _, i := range order {
					d := timeRun(i)
					sum[i] += d
					mb[i] = append(mb[i], float64(replicateBenchSize)/d.Seconds()/1e6)
				}
			}
			ratio = append(ratio, sum[0].Seconds()/sum[1].Seconds())
		}
	}
	logSeries(b, "download MB/s", "%.0f", mb[0])
	logSeries(b, "replicate MB/s", "%.0f", mb[1])
	logSeries(b, "replicate/download", "%.2f", ratio)
	b.ReportMetric(median(mb[0]), "download-MB/s")
	b.ReportMetric(median(mb[1]), "replicate-MB/s")
	b.ReportMetric(median(ratio), "replicate/download")
	b.ReportMetric(float64(rounds), "rounds")
}

// serveWorker serves srv as cmd/worker does on 127.0.0.1:0 and returns its
// address.
func serveWorker(b *testing.B, srv *grpcapi.Server) string {
	b.Helper()
	gs := grpc.NewServer(srv.GRPCOptions()...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	return lis.Addr().String()
}
