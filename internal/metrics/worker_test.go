package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/internal/metrics"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// worker serves a simulated worker with m's interceptors, and m on a
// metrics listener; it returns a client and the metrics URL.
func worker(t *testing.T, pprof bool) (pb.VideoProcessingServiceClient, string) {
	t.Helper()
	store, err := storage.Open(storage.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcapi.NewServer(store, enc, grpcapi.Config{WorkerID: "m", MaxQueuedTasks: 3})
	m := metrics.NewWorker(metrics.WorkerConfig{
		Encoder: enc.Name(), Codec: "simulated",
		Tasks: func() metrics.TaskFigures {
			return metrics.TaskFigures{Active: srv.ActiveTasks(), Queued: srv.QueuedTasks(), Slots: srv.TaskSlots(), QueueCapacity: srv.QueueCapacity()}
		},
		Store: func() metrics.StoreFigures {
			return metrics.StoreFigures{Bytes: 7, Chunks: 1, Corrupted: store.Corrupted()}
		},
	})
	gs := grpc.NewServer(srv.GRPCOptions(m.ServerOptions()...)...)
	srv.Register(gs)
	m.InitializeGRPC(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, mlis, metrics.Handler(m.Registry(), pprof)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewVideoProcessingServiceClient(conn), "http://" + mlis.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// value returns the sample of the line starting with series in a scrape
// ("" if none).
func value(scrape, series string) string {
	for line := range strings.SplitSeq(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

// A scrape of /metrics sees the chunk counters, histograms, bytes and the
// gRPC server metrics move after RPCs, and the hooks' figures.
func TestScrapeAfterRPCs(t *testing.T) {
	c, url := worker(t, false)
	_, before := get(t, url+"/metrics")
	const processed = `grpc_server_handled_total{grpc_code="OK",grpc_method="ProcessChunk",grpc_service="replication.VideoProcessingService",grpc_type="unary"}`
	if got := value(before, processed); got != "0" {
		t.Fatalf("before any call, %s = %q, want 0 (initialised)", processed, got)
	}
	ctx := context.Background()
	data := make([]byte, 4000)
	for i := range 3 {
		if _, err := c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "m.mp4", ChunkIndex: int32(i), ChunkData: data}); err != nil {
			t.Fatal(err)
		}
	}
	c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "m.mp4", ChunkIndex: 0, ChunkData: data}) // a retry
	c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "", ChunkData: data})                     // refused

	code, after := get(t, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for series, want := range map[string]string{
		processed: "4", // the refused call is counted under InvalidArgument
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="ProcessChunk",grpc_service="replication.VideoProcessingService",grpc_type="unary"}`: "1",
		`videoshard_chunks_processed_total{codec="simulated",encoder="simulated",outcome="stored"}`:                                                             "3",
		`videoshard_chunks_processed_total{codec="simulated",encoder="simulated",outcome="reused"}`:                                                             "1",
		`videoshard_chunks_processed_total{codec="simulated",encoder="simulated",outcome="InvalidArgument"}`:                                                    "1",
		`videoshard_encode_seconds_count{codec="simulated",encoder="simulated"}`:                                                                                "3",
		`videoshard_compression_ratio_sum{codec="simulated",encoder="simulated"}`:                                                                               "0.75",
		"videoshard_chunk_bytes_in_total":  "12000",
		"videoshard_chunk_bytes_out_total": "3000",
		"videoshard_tasks_active":          "0",
		"videoshard_task_queue_capacity":   "3",
		"videoshard_store_bytes":           "7",
		"videoshard_store_chunks":          "1",
		"videoshard_store_evictions_total": "0",
	} {
		if got := value(after, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
	if strings.Contains(after, "videoshard_store_free_bytes") {
		t.Error("free bytes reported though the hook does not know the disk")
	}
	if code, _ := get(t, url+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof off: /debug/pprof/ is %d, want 404", code)
	}
}

func TestPprofWhenAsked(t *testing.T) {
	_, url := worker(t, true)
	if code, body := get(t, url+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/: %d\n%s", code, body)
	}
}

// TestChunkLabelsBounded: a reused chunk is labelled with its metadata's
// encoder and codec, which for a replicated copy a peer wrote: however
// many a peer makes up, the series stay bounded, the extra ones counted
// as "other".
func TestChunkLabelsBounded(t *testing.T) {
	m := metrics.NewWorker(metrics.WorkerConfig{Encoder: "ffmpeg", Codec: "libx264"})
	tests := []struct {
		name          string
		encoder, code string
	}{
		{"the worker's own", "ffmpeg", "libx264"},
		{"another allowed codec", "ffmpeg", "libx265"},
	}
	for _, tt := range tests {
		m.ObserveChunk(grpcapi.ChunkCall{Outcome: grpcapi.ChunkReused, Encoder: tt.encoder, Codec: tt.code})
	}
	for i := range 5000 {
		m.ObserveChunk(grpcapi.ChunkCall{Outcome: grpcapi.ChunkReused, Encoder: "ffmpeg", Codec: strings.Repeat("c", 100) + strconv.Itoa(i)})
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "videoshard_chunks_processed_total" {
			continue
		}
		if n := len(f.GetMetric()); n > 100 {
			t.Fatalf("%d series of %s after 5,000 made-up codecs", n, f.GetName())
		}
		seen := map[string]bool{}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "codec" {
					seen[l.GetValue()] = true
				}
			}
		}
		for _, want := range []string{"libx264", "libx265", "other"} {
			if !seen[want] {
				t.Errorf("no series of codec %q", want)
			}
		}
		return
	}
	t.Fatal("no chunks_processed_total")
}
