package grpcapi_test

// Benchmarks behind the worker's performance figures. Each one measures the
// worker against a reference run side by side in the same process, in
// interleaved rounds, and reports medians as custom metrics (b.ReportMetric);
// the per-round figures go to the benchmark log. Run them through
// scripts/bench.sh (make bench); they are never run by `go test` without
// -bench.
//
// The server is the worker's: grpcapi.NewServer over a real storage.Store in
// a temporary directory, the worker's interceptors and message limits, on a
// 127.0.0.1 TCP listener, with a grpc.NewClient client in the same process.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// benchMaxMessage is the worker's default grpc.max_message_bytes.
const benchMaxMessage = 256 << 20

// benchRounds returns the number of rounds a benchmark runs, from the
// environment variable env (so scripts/bench.sh can change it) or def.
func benchRounds(b *testing.B, env string, def int) int {
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

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchStore opens a store in a fresh temporary directory.
func benchStore(b *testing.B) *storage.Store {
	b.Helper()
	s, err := storage.Open(storage.Options{Root: filepath.Join(b.TempDir(), "store")})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// startBenchServer serves grpcapi over store and enc as cmd/worker does
// (interceptors, message limits) on 127.0.0.1:0 and returns a client.
func startBenchServer(b *testing.B, store *storage.Store, enc encode.Encoder, codec string) pb.VideoProcessingServiceClient {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	srv := grpcapi.NewServer(store, enc, grpcapi.Config{
		WorkerID:        "bench",
		VideoCodec:      codec,
		MaxMessageBytes: benchMaxMessage,
		Logger:          log,
	})
	opts := append(grpcapi.ServerOptions(log),
		grpc.MaxRecvMsgSize(benchMaxMessage),
		grpc.MaxSendMsgSize(benchMaxMessage),
	)
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(benchMaxMessage), grpc.MaxCallSendMsgSize(benchMaxMessage)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return pb.NewVideoProcessingServiceClient(conn)
}

func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// ffmpeg mode: ProcessChunk against the same ffmpeg command run directly.

// argsRecorder is a slog.Handler that keeps the argv of the encoder's last
// "ffmpeg start" debug record, so the benchmark can check that its direct
// command line is the one the worker ran.
type argsRecorder struct {
	mu   sync.Mutex
	args []string
}

func (h *argsRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *argsRecorder) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h *argsRecorder) WithGroup(string) slog.Handler           { return h }

func (h *argsRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "ffmpeg start" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if s, ok := a.Value.Any().([]string); ok && a.Key == "args" {
			h.mu.Lock()
			h.args = slices.Clone(s)
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *argsRecorder) last() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.args)
}

// benchInputFormats mirrors encode's default -format_whitelist.
var benchInputFormats = []string{
	"mov", "matroska", "webm", "mpegts", "mpeg", "avi", "flv", "ogg", "ivf",
	"asf", "mxf", "nut", "m4v", "h264", "hevc", "obu", "yuv4mpegpipe",
}

// directFFmpegArgs is the command line encode.FFmpeg runs with the worker's
// defaults (libx264, CRF 23, preset medium, audio copy, matroska), in the
// order ffmpeg-go emits it (input options sorted, output options sorted).
func directFFmpegArgs(in, out string) []string {
	return []string{
		"-format_whitelist", strings.Join(benchInputFormats, ","),
		"-hide_banner",
		"-loglevel", "error",
		"-nostdin",
		"-protocol_whitelist", "file",
		"-i", "file:" + in,
		"-c:a", "copy",
		"-c:v", "libx264",
		"-crf", "23",
		"-f", "matroska",
		"-fps_mode", "passthrough",
		"-map", "0:v:0",
		"-map", "0:a?",
		"-preset", "medium",
		"file:" + out,
		"-y",
	}
}

// makeClip writes a 10 s 1280x720 30 fps h264 + aac MP4 with a keyframe
// every second.
func makeClip(b *testing.B, path string) {
	b.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
		"-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "128k",
		"-movflags", "+faststart", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make clip: %v\n%s", err, out)
	}
}

// BenchmarkFFmpegProcessChunkVsDirect times ProcessChunk (unary) of a 10 s
// 1280x720 clip against the worker's ffmpeg command run directly on the same
// file, in alternating pairs (direct, rpc, direct, rpc, ...), after one
// untimed warm-up of each. Metrics: the median per-pair ratio rpc/direct
// (target <= 1.05), the median seconds of each, and the median time ffmpeg
// itself ran inside the worker (metadata encode_time_seconds).
// VIDEOSHARD_BENCH_FFMPEG_PAIRS sets the number of pairs (default 5).
func BenchmarkFFmpegProcessChunkVsDirect(b *testing.B) {
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("this benchmark needs %s: %v", bin, err)
		}
	}
	pairs := benchRounds(b, "VIDEOSHARD_BENCH_FFMPEG_PAIRS", 5)
	dir := b.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	makeClip(b, clip)
	data, err := os.ReadFile(clip)
	if err != nil {
		b.Fatal(err)
	}

	store := benchStore(b)
	rec := &argsRecorder{}
	enc, err := encode.NewFFmpeg(encode.FFmpegConfig{TempDir: store.TempDir(), Logger: slog.New(rec)})
	if err != nil {
		b.Fatal(err)
	}
	client := startBenchServer(b, store, enc, "libx264")
	ctx := benchCtx(b)
	directOut := filepath.Join(dir, "direct.mkv")

	direct := func() time.Duration {
		start := time.Now()
		out, err := exec.Command("ffmpeg", directFFmpegArgs(clip, directOut)...).CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("direct ffmpeg: %v\n%s", err, out)
		}
		os.Remove(directOut)
		return d
	}
	chunk := 0
	rpc := func() (time.Duration, *pb.ProcessChunkResponse) {
		req := &pb.ProcessChunkRequest{VideoId: "bench-ffmpeg.mp4", ChunkIndex: int32(chunk), ChunkData: data}
		chunk++ // every run commits a new chunk
		start := time.Now()
		resp, err := client.ProcessChunk(ctx, req)
		d := time.Since(start)
		if err != nil {
			b.Fatalf("ProcessChunk: %v", err)
		}
		return d, resp
	}

	// Warm-up (page cache, binaries, connection), and a check that the
	// direct command line is exactly the one the worker ran.
	direct()
	_, resp := rpc()
	got := rec.last()
	if len(got) < 2 {
		b.Fatalf("no ffmpeg command line was logged by the encoder")
	}
	// The worker's input is its spooled temporary file; its output is the
	// pending shard.
	workerIn := strings.TrimPrefix(got[slices.Index(got, "-i")+1], "file:")
	workerOut := strings.TrimPrefix(got[len(got)-2], "file:")
	if want := directFFmpegArgs(workerIn, workerOut); !slices.Equal(got, want) {
		b.Fatalf("the direct command line differs from the worker's:\nworker: %q\ndirect: %q", got, want)
	}
	b.Logf("clip %d bytes; worker's ffmpeg argv = the direct one (paths aside): %q", len(data), got)
	b.Logf("shard %d bytes, %s %dx%d, %d frames", resp.GetEncodedSize(), resp.GetMetadata().GetVideoCodec(),
		resp.GetMetadata().GetWidth(), resp.GetMetadata().GetHeight(), resp.GetMetadata().GetFrameCount())

	var ratios, directS, rpcS, ffmpegS []float64
	for b.Loop() {
		for i := range pairs {
			d := direct()
			r, resp := rpc()
			ratios = append(ratios, r.Seconds()/d.Seconds())
			directS = append(directS, d.Seconds())
			rpcS = append(rpcS, r.Seconds())
			ffmpegS = append(ffmpegS, resp.GetMetadata().GetEncodeTimeSeconds())
			b.Logf("pair %d: direct %.3fs  rpc %.3fs (ffmpeg inside %.3fs)  ratio %.4f",
				i+1, d.Seconds(), r.Seconds(), resp.GetMetadata().GetEncodeTimeSeconds(), r.Seconds()/d.Seconds())
		}
	}
	b.ReportMetric(float64(len(ratios)), "pairs")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(median(directS), "direct-s")
	b.ReportMetric(median(rpcS), "rpc-s")
	b.ReportMetric(median(ffmpegS), "rpc-ffmpeg-s")
}

// ---------------------------------------------------------------------------
// simulated mode: ingest of a 64 MiB chunk against write+fsync of 64 MiB.

const (
	ingestSize  = 64 << 20
	ingestFrame = 1 << 20
)

func ingestData() []byte {
	data := make([]byte, ingestSize)
	rand.NewChaCha8([32]byte{'v', 's'}).Read(data)
	return data
}

func simulatedServer(b *testing.B) pb.VideoProcessingServiceClient {
	b.Helper()
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	return startBenchServer(b, benchStore(b), enc, "simulated")
}

// writeSync writes data to a new file at path, fsyncs and closes it: the
// least any durable store must do with the chunk.
func writeSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func processUnary(ctx context.Context, c pb.VideoProcessingServiceClient, video string, chunk int, data []byte) error {
	resp, err := c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: video, ChunkIndex: int32(chunk), ChunkData: data})
	if err != nil {
		return err
	}
	if resp.GetOriginalSize() != int64(len(data)) {
		return fmt.Errorf("original size %d, sent %d", resp.GetOriginalSize(), len(data))
	}
	return nil
}

func processStreamed(ctx context.Context, c pb.VideoProcessingServiceClient, video string, chunk int, data []byte) error {
	stream, err := c.UploadChunk(ctx)
	if err != nil {
		return err
	}
	h := &pb.UploadHeader{VideoId: video, ChunkIndex: int32(chunk), TotalSize: int64(len(data))}
	if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: h}}); err != nil {
		return err
	}
	for off := 0; off < len(data); off += ingestFrame {
		end := min(off+ingestFrame, len(data))
		if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: data[off:end]}}); err != nil {
			break // the server has answered; CloseAndRecv has its status
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if resp.GetOriginalSize() != int64(len(data)) {
		return fmt.Errorf("original size %d, sent %d", resp.GetOriginalSize(), len(data))
	}
	return nil
}

func mbps(bytes int, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e6 }

// BenchmarkSimulatedIngest64MiB measures how fast a simulated-mode worker
// takes a 64 MiB chunk (unary ProcessChunk, and UploadChunk in 1 MiB frames)
// against writing and fsyncing the same 64 MiB to a new file in the same
// filesystem. Each round runs the three in a rotating order (reference,
// unary, streamed; then unary, streamed, reference; ...) after one untimed
// warm-up of each; every worker run commits a new chunk (a fresh chunk
// index, never a replace). Metrics: median MB/s (10^6 bytes of input per
// second) of each and the median per-round ratios to the reference (target
// >= 0.7). VIDEOSHARD_BENCH_INGEST_ROUNDS sets the rounds (default 9).
func BenchmarkSimulatedIngest64MiB(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_INGEST_ROUNDS", 9)
	data := ingestData()
	client := simulatedServer(b)
	ctx := benchCtx(b)
	refDir := b.TempDir() // same filesystem as the store (both under the test's temp dir)
	if st, err := os.Stat(filepath.Dir(refDir)); err == nil {
		b.Logf("reference and store in %s (%v)", filepath.Dir(refDir), st.Mode())
	}

	chunk := 0
	runs := [3]func() error{
		func() error {
			path := filepath.Join(refDir, "ref-"+strconv.Itoa(chunk))
			defer os.Remove(path)
			return writeSync(path, data)
		},
		func() error { return processUnary(ctx, client, "bench-unary", chunk, data) },
		func() error { return processStreamed(ctx, client, "bench-stream", chunk, data) },
	}
	names := [3]string{"reference", "unary", "streamed"}
	timeRun := func(i int) time.Duration {
		start := time.Now()
		err := runs[i]()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", names[i], err)
		}
		return d
	}
	for i := range runs { // warm-up
		timeRun(i)
	}
	chunk++

	var mb [3][]float64
	var unaryRatio, streamRatio []float64
	for b.Loop() {
		for r := range rounds {
			var d [3]time.Duration
			for k := range 3 {
				i := (r + k) % 3
				d[i] = timeRun(i)
			}
			chunk++
			for i := range 3 {
				mb[i] = append(mb[i], mbps(len(data), d[i]))
			}
			unaryRatio = append(unaryRatio, d[0].Seconds()/d[1].Seconds())
			streamRatio = append(streamRatio, d[0].Seconds()/d[2].Seconds())
			b.Logf("round %d: reference %.0f MB/s  unary %.0f MB/s (%.2f)  streamed %.0f MB/s (%.2f)", r+1,
				mbps(len(data), d[0]), mbps(len(data), d[1]), d[0].Seconds()/d[1].Seconds(),
				mbps(len(data), d[2]), d[0].Seconds()/d[2].Seconds())
		}
	}
	b.ReportMetric(float64(len(unaryRatio)), "rounds")
	b.ReportMetric(median(mb[0]), "ref-MB/s")
	b.ReportMetric(median(mb[1]), "unary-MB/s")
	b.ReportMetric(median(mb[2]), "stream-MB/s")
	b.ReportMetric(median(unaryRatio), "unary/ref")
	b.ReportMetric(median(streamRatio), "stream/ref")
}

// BenchmarkSimulatedUnary64MiB and BenchmarkSimulatedStream64MiB run one
// ingest path alone, for CPU profiles (scripts/bench.sh with
// BENCH_PROFILE=1) and benchstat; they commit a new chunk each iteration.
func BenchmarkSimulatedUnary64MiB(b *testing.B) {
	benchIngestPath(b, "bench-unary", processUnary)
}

func BenchmarkSimulatedStream64MiB(b *testing.B) {
	benchIngestPath(b, "bench-stream", processStreamed)
}

func benchIngestPath(b *testing.B, video string,
	run func(context.Context, pb.VideoProcessingServiceClient, string, int, []byte) error) {
	data := ingestData()
	client := simulatedServer(b)
	ctx := benchCtx(b)
	if err := run(ctx, client, video+"-warm", 0, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	chunk := 0
	for b.Loop() {
		if err := run(ctx, client, video, chunk, data); err != nil {
			b.Fatal(err)
		}
		chunk++
	}
}

// BenchmarkWriteSync64MiB is the reference of the two above, alone.
func BenchmarkWriteSync64MiB(b *testing.B) {
	data := ingestData()
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		path := filepath.Join(dir, "ref-"+strconv.Itoa(i))
		if err := writeSync(path, data); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(path)
		b.StartTimer()
		i++
	}
}
