package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/internal/storetest"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// benchQuantile is the q-quantile of xs (nearest rank).
func benchQuantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, max(0, int(math.Ceil(q*float64(len(s))))-1))]
}

// benchEnvInt is the positive integer in env, or def.
func benchEnvInt(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", env, v)
	}
	return n
}

// waitServing waits on a grpc.health.v1 Watch stream (no polling) until
// the worker's service is SERVING.
func waitServing(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx,
		&healthpb.HealthCheckRequest{Service: "replication.VideoProcessingService"})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
	}
}

// startServing starts the worker binary on root and returns it with the
// time from the start of its process to its service reporting SERVING.
func startServing(b *testing.B, ctx context.Context, root string) (*e2etest.Worker, time.Duration) {
	b.Helper()
	start := time.Now()
	w := e2etest.StartWorker(b, workerBinary, root, "", "encoder: simulated\nworker_id: bench\n")
	if err := waitServing(ctx, w.Conn); err != nil {
		b.Fatalf("waiting for SERVING: %v\n%s", err, w.Logs)
	}
	return w, time.Since(start)
}

// BenchmarkStore100k measures issue 8's figures for a store of 100,000
// chunks (1,000 videos of 100; VIDEOSHARD_BENCH_STORE_VIDEOS changes the
// videos) against the real worker binary (simulated encoder):
//
//   - start-up: from starting the process to grpc.health.v1 reporting
//     replication.VideoProcessingService SERVING (target <= 3 s), with the
//     same binary on an empty store as the reference, side by side in
//     alternating order;
//   - ListShards pages of 1,000 (page_size 1000): each call's latency, the
//     whole listing paged through in every round (target p99 <= 20 ms), and
//     as the reference one unpaged ListShards of everything (what a client
//     that does not page gets: its size in MB too).
//
// The store is written once, straight in the on-disk layout, and is in the
// page cache for every round. VIDEOSHARD_BENCH_STORE_ROUNDS sets the
// rounds (default 3), each with a fresh worker process.
func BenchmarkStore100k(b *testing.B) {
	rounds := benchEnvInt(b, "VIDEOSHARD_BENCH_STORE_ROUNDS", 3)
	videos := benchEnvInt(b, "VIDEOSHARD_BENCH_STORE_VIDEOS", 1000)
	root := filepath.Join(b.TempDir(), "store")
	written := time.Now()
	chunks, err := storetest.Write(root, storetest.Layout{Videos: videos, ChunksPerVideo: 100})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d chunks in %.1f s", chunks, time.Since(written).Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	const pageSize = 1000
	var startS, emptyS, pageMS, fullMS, fullMB []float64
	var roundP99 []float64
	for b.Loop() {
		for r := range rounds {
			empty := func() {
				w, d := startServing(b, ctx, filepath.Join(b.TempDir(), "empty"))
				w.Stop()
				emptyS = append(emptyS, d.Seconds())
			}
			if r%2 == 0 {
				empty()
			}
			w, d := startServing(b, ctx, root)
			startS = append(startS, d.Seconds())

			req := &pb.ListShardsRequest{PageSize: pageSize}
			listed := 0
			var round []float64
			for {
				t0 := time.Now()
				resp, err := w.Client.ListShards(ctx, req)
				if err != nil {
					b.Fatalf("ListShards page %d: %v", len(round), err)
				}
				round = append(round, float64(time.Since(t0).Microseconds())/1e3)
				for _, v := range resp.GetVideos() {
					listed += len(v.GetChunks())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			if listed != chunks {
				b.Fatalf("pages listed %d chunks, want %d", listed, chunks)
			}
			pageMS = append(pageMS, round...)
			roundP99 = append(roundP99, benchQuantile(round, 0.99))

			t0 := time.Now()
			full, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
			if err != nil {
				b.Fatalf("unpaged ListShards: %v", err)
			}
			fullMS = append(fullMS, float64(time.Since(t0).Microseconds())/1e3)
			fullMB = append(fullMB, float64(proto.Size(full))/1e6)
			w.Stop()
			if r%2 == 1 {
				empty()
			}
		}
	}
	line := func(label, format string, xs []float64) {
		var sb strings.Builder
		for _, x := range xs {
			fmt.Fprintf(&sb, " "+format, x)
		}
		b.Logf("%-28s%s | median "+format, label+":", sb.String(), benchQuantile(xs, 0.5))
	}
	line("start-up to SERVING s", "%.3f", startS)
	line("  empty store s", "%.3f", emptyS)
	line("page of 1000: p99 ms/round", "%.2f", roundP99)
	b.Logf("%-28s p50 %.2f p90 %.2f p99 %.2f max %.2f (%d calls)", "page of 1000, all rounds ms:",
		benchQuantile(pageMS, 0.5), benchQuantile(pageMS, 0.9), benchQuantile(pageMS, 0.99), slices.Max(pageMS), len(pageMS))
	line("unpaged listing ms", "%.1f", fullMS)
	line("unpaged listing MB", "%.2f", fullMB)
	b.ReportMetric(float64(len(startS)), "rounds")
	b.ReportMetric(float64(chunks), "chunks")
	b.ReportMetric(benchQuantile(startS, 0.5), "startup-s")
	b.ReportMetric(slices.Max(startS), "startup-max-s")
	b.ReportMetric(benchQuantile(emptyS, 0.5), "startup-empty-s")
	b.ReportMetric(benchQuantile(pageMS, 0.5), "page-p50-ms")
	b.ReportMetric(benchQuantile(pageMS, 0.99), "page-p99-ms")
	b.ReportMetric(slices.Max(pageMS), "page-max-ms")
	b.ReportMetric(benchQuantile(fullMS, 0.5), "unpaged-ms")
	b.ReportMetric(benchQuantile(fullMB, 0.5), "unpaged-MB")
}

// BenchmarkStore1M measures the SQLite index on a store of 1,000,000
// chunks (100 videos of 10,000; VIDEOSHARD_BENCH_1M_VIDEOS changes the
// videos):
//
//   - the rebuild of the index from the metadata files (storage.Open with
//     Reindex, in this process), the reference;
//   - storage.Open with the clean index it left (target <= 3 s), and the
//     real worker's start-up to SERVING on it;
//   - ListShards of one whole video of 10,000 chunks, and pages of 1,000
//     through the whole listing: each call's latency (target p50 and p99
//     <= 50 ms).
//
// VIDEOSHARD_BENCH_1M_ROUNDS sets the rounds (default 3), each with a fresh
// worker process. The store is written straight in the on-disk layout; it
// takes some 9 GB in TMPDIR, removed at the end.
func BenchmarkStore1M(b *testing.B) {
	rounds := benchEnvInt(b, "VIDEOSHARD_BENCH_1M_ROUNDS", 3)
	videos := benchEnvInt(b, "VIDEOSHARD_BENCH_1M_VIDEOS", 100)
	const perVideo = 10000
	root := filepath.Join(b.TempDir(), "store")
	written := time.Now()
	chunks, err := storetest.Write(root, storetest.Layout{Videos: videos, ChunksPerVideo: perVideo})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d chunks in %.1f s", chunks, time.Since(written).Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()

	openStore := func(reindex bool) float64 {
		t0 := time.Now()
		s, err := storage.Open(storage.Options{Root: root, Lock: true, Reindex: reindex})
		d := time.Since(t0).Seconds()
		if err != nil {
			b.Fatal(err)
		}
		if u := s.Usage(); u.Chunks != int64(chunks) {
			b.Fatalf("store holds %d chunks, want %d", u.Chunks, chunks)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		return d
	}
	var rebuildS, openS, startS, videoMS, pageMS []float64
	for b.Loop() {
		rebuildS = append(rebuildS, openStore(true))
		for r := range rounds {
			openS = append(openS, openStore(false))
			w, d := startServing(b, ctx, root)
			startS = append(startS, d.Seconds())
			for i := range 20 {
				id := storetest.VideoID((r*20 + i) % videos)
				t0 := time.Now()
				resp, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{VideoId: id})
				if err != nil {
					b.Fatalf("ListShards %s: %v", id, err)
				}
				videoMS = append(videoMS, float64(time.Since(t0).Microseconds())/1e3)
				if n := len(resp.GetVideos()[0].GetChunks()); n != perVideo {
					b.Fatalf("ListShards %s: %d chunks, want %d", id, n, perVideo)
				}
			}
			req := &pb.ListShardsRequest{PageSize: 1000}
			listed := 0
			for {
				t0 := time.Now()
				resp, err := w.Client.ListShards(ctx, req)
				if err != nil {
					b.Fatalf("ListShards page: %v", err)
				}
				pageMS = append(pageMS, float64(time.Since(t0).Microseconds())/1e3)
				for _, v := range resp.GetVideos() {
					listed += len(v.GetChunks())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			if listed != chunks {
				b.Fatalf("pages listed %d chunks, want %d", listed, chunks)
			}
			w.Stop()
		}
	}
	b.Logf("rebuild from JSON s: %v | median %.2f", rebuildS, benchQuantile(rebuildS, 0.5))
	b.Logf("open, clean index s: %v | median %.3f", openS, benchQuantile(openS, 0.5))
	b.Logf("worker start-up to SERVING s: %v | median %.3f", startS, benchQuantile(startS, 0.5))
	b.Logf("ListShards of a 10,000-chunk video ms: p50 %.2f p99 %.2f max %.2f (%d calls)",
		benchQuantile(videoMS, 0.5), benchQuantile(videoMS, 0.99), slices.Max(videoMS), len(videoMS))
	b.Logf("page of 1000 of 1M ms: p50 %.2f p99 %.2f max %.2f (%d calls)",
		benchQuantile(pageMS, 0.5), benchQuantile(pageMS, 0.99), slices.Max(pageMS), len(pageMS))
	b.ReportMetric(float64(chunks), "chunks")
	b.ReportMetric(benchQuantile(rebuildS, 0.5), "rebuild-s")
	b.ReportMetric(benchQuantile(openS, 0.5), "open-s")
	b.ReportMetric(slices.Max(openS), "open-max-s")
	b.ReportMetric(benchQuantile(startS, 0.5), "startup-s")
	b.ReportMetric(benchQuantile(videoMS, 0.5), "video-p50-ms")
	b.ReportMetric(benchQuantile(videoMS, 0.99), "video-p99-ms")
	b.ReportMetric(benchQuantile(pageMS, 0.5), "page-p50-ms")
	b.ReportMetric(benchQuantile(pageMS, 0.99), "page-p99-ms")
}
