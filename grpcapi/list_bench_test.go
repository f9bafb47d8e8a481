package grpcapi_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/internal/storetest"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// quantile is the q-quantile of xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, max(0, int(math.Ceil(q*float64(len(s))))-1))]
}

// BenchmarkListShardsPage100k lists pages of 1,000 chunks (page_size 1000)
// of a 100,000-chunk store through the worker's server on loopback, at
// every position of the listing in random order, and as the reference
// the store's share of each (storage.ListPage of the same page), side by
// side and alternating which goes first. A second phase lists the same
// pages while a goroutine commits chunks one after the other (each commit
// takes the index's write lock), as a busy worker would. Latencies are in
// ms; VIDEOSHARD_BENCH_LIST_ROUNDS sets the rounds over every page
// (default 3).
func BenchmarkListShardsPage100k(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_LIST_ROUNDS", 3)
	root := filepath.Join(b.TempDir(), "store")
	if _, err := storetest.Write(root, storetest.Layout{Videos: 1000, ChunksPerVideo: 100}); err != nil {
		b.Fatal(err)
	}
	store, err := storage.Open(storage.Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	client := startBenchServer(b, store, enc, "simulated")
	ctx := benchCtx(b)

	// Every page's token, and the position the store pages from.
	const pageSize = 1000
	type position struct {
		token string
		after *storage.ChunkRef
	}
	positions := []position{{}}
	for p := 0; ; p++ {
		page, err := store.ListPage(storage.PageOptions{After: positions[p].after, Limit: pageSize})
		if err != nil {
			b.Fatal(err)
		}
		if !page.More {
			break
		}
		last, _ := page.Last()
		positions = append(positions, position{after: &last})
	}
	req := &pb.ListShardsRequest{PageSize: pageSize}
	for p := 1; p < len(positions); p++ {
		resp, err := client.ListShards(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		positions[p].token = resp.GetNextPageToken()
		req.PageToken = resp.GetNextPageToken()
	}

	ms := func(f func() error) float64 {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return float64(time.Since(start).Microseconds()) / 1e3
	}
	rng := rand.New(rand.NewPCG(8, 7))
	measure := func() (rpc, ref []float64) {
		for range rounds {
			for i, p := range rng.Perm(len(positions)) {
				call := func() error {
					resp, err := client.ListShards(ctx, &pb.ListShardsRequest{PageSize: pageSize, PageToken: positions[p].token})
					if err == nil && len(resp.GetVideos()) == 0 {
						b.Fatal("an empty page")
					}
					return err
				}
				direct := func() error {
					_, err := store.ListPage(storage.PageOptions{After: positions[p].after, Limit: pageSize})
					return err
				}
				if i%2 == 0 {
					rpc, ref = append(rpc, ms(call)), append(ref, ms(direct))
				} else {
					ref, rpc = append(ref, ms(direct)), append(rpc, ms(call))
				}
			}
		}
		return rpc, ref
	}
	var rpc, ref, busy []float64
	commits := 0
	for b.Loop() {
		rpc, ref = measure()
		// The same while chunks are committed, until the pages are done.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := processUnary(context.Background(), client, "churn", n, []byte("a chunk")); err != nil {
					b.Error(err)
					return
				}
				commits++
			}
		})
		busy, _ = measure()
		close(stop)
		wg.Wait()
	}
	b.Logf("ListShards page of 1000: p50 %.2f p90 %.2f p99 %.2f max %.2f ms (%d calls)",
		quantile(rpc, 0.5), quantile(rpc, 0.9), quantile(rpc, 0.99), slices.Max(rpc), len(rpc))
	b.Logf("storage ListPage 1000:   p50 %.2f p90 %.2f p99 %.2f max %.2f ms",
		quantile(ref, 0.5), quantile(ref, 0.9), quantile(ref, 0.99), slices.Max(ref))
	b.Logf("while committing:        p50 %.2f p90 %.2f p99 %.2f max %.2f ms (%d commits meanwhile)",
		quantile(busy, 0.5), quantile(busy, 0.9), quantile(busy, 0.99), slices.Max(busy), commits)
	b.ReportMetric(float64(len(rpc)), "pages")
	b.ReportMetric(quantile(rpc, 0.5), "page-p50-ms")
	b.ReportMetric(quantile(rpc, 0.99), "page-p99-ms")
	b.ReportMetric(quantile(ref, 0.5), "store-p50-ms")
	b.ReportMetric(quantile(ref, 0.99), "store-p99-ms")
	b.ReportMetric(quantile(busy, 0.99), "busy-page-p99-ms")
}

// BenchmarkListShardsVideo10k lists one video of 10,000 chunks (of a
// store of 5 such) whole, as an old client does (no page_size), through
// the worker's server on loopback, with the SQLite index and with the
// memory one, alternating. It reports p50 and p99 in ms of each;
// VIDEOSHARD_BENCH_LIST_ROUNDS sets the listings per index (default 30).
func BenchmarkListShardsVideo10k(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_LIST_ROUNDS", 30)
	enc, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	kinds := []storage.IndexKind{storage.IndexSQLite, storage.IndexMemory}
	clients := make([]pb.VideoProcessingServiceClient, len(kinds))
	for i, kind := range kinds {
		// One store at a time may use a root: each kind gets its own copy.
		dir := filepath.Join(b.TempDir(), string(kind))
		if _, err := storetest.Write(dir, storetest.Layout{Videos: 5, ChunksPerVideo: 10000}); err != nil {
			b.Fatal(err)
		}
		store, err := storage.Open(storage.Options{Root: dir, Index: kind})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		clients[i] = startBenchServer(b, store, enc, "simulated")
	}
	ctx := benchCtx(b)
	req := &pb.ListShardsRequest{VideoId: storetest.VideoID(2)}
	for _, c := range clients { // steady state: the first listing reads the database from disk
		if _, err := c.ListShards(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	ms := make([][]float64, len(kinds))
	for b.Loop() {
		for r := range rounds {
			for j := range kinds {
				i := (j + r) % len(kinds)
				start := time.Now()
				resp, err := clients[i].ListShards(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				ms[i] = append(ms[i], float64(time.Since(start).Microseconds())/1000)
				if n := len(resp.GetVideos()[0].GetChunks()); n != 10000 {
					b.Fatalf("%s: %d chunks listed, want 10000", kinds[i], n)
				}
			}
		}
	}
	for i, kind := range kinds {
		b.ReportMetric(quantile(ms[i], 0.5), string(kind)+"-p50-ms")
		b.ReportMetric(quantile(ms[i], 0.99), string(kind)+"-p99-ms")
	}
}
