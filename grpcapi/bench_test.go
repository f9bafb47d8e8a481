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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// benchMaxMessage is the benchmark servers' message limit: room for the
// ingest benchmarks' 64 MiB chunk in one message (the worker's default
// grpc.max_message_bytes, 64 MiB, takes unary chunks up to 64 KiB less).
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

// logSeries logs one line: each round's value of a figure, then the median.
// (A benchmark's log keeps only its first 10 lines, so rounds go across.)
func logSeries(b *testing.B, label, format string, xs []float64) {
	b.Helper()
	var sb strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&sb, " "+format, x)
	}
	b.Logf("%-24s%s | median "+format, label+":", sb.String(), median(xs))
}

// minorFaults is this process's count of minor page faults so far: the
// cost of touching memory the process never used (or gave back).
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
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

// startBenchServer serves grpcapi over store and enc with the worker's
// interceptors and message limits, not its admission, read budget or codec
// (see startWorkerBenchServer), on 127.0.0.1:0 and returns a client.
func startBenchServer(b *testing.B, store *storage.Store, enc encode.Encoder, codec string, extra ...grpc.ServerOption) pb.VideoProcessingServiceClient {
	b.Helper()
	return serveBench(b, newBenchServer(store, enc, codec).Register, extra...)
}

// startWorkerBenchServer is startBenchServer served with the worker's own
// server options (admission, read budget, its codec), as cmd/worker
// serves it: GetShard's buffers are recycled by that codec only.
func startWorkerBenchServer(b *testing.B, store *storage.Store, enc encode.Encoder, codec string, extra ...grpc.ServerOption) pb.VideoProcessingServiceClient {
	b.Helper()
	srv := newBenchServer(store, enc, codec)
	return serveBenchWith(b, srv.Register, append(srv.GRPCOptions(), extra...))
}

func newBenchServer(store *storage.Store, enc encode.Encoder, codec string) *grpcapi.Server {
	return grpcapi.NewServer(store, enc, grpcapi.Config{
		WorkerID:        "bench",
		VideoCodec:      codec,
		MaxMessageBytes: benchMaxMessage,
		Logger:          slog.New(slog.DiscardHandler),
	})
}

// phaseTimer is a server interceptor that splits the last call's time on
// the server: for a unary call, the handler's time (grpc has received and
// decoded the request before interceptors run, so the rest of the client's
// wall time is transport, encoding and decoding); for a stream, the time the
// handler spent inside RecvMsg (waiting for and decoding frames) and its
// whole time.
type phaseTimer struct {
	mu      sync.Mutex
	handler time.Duration
	recv    time.Duration
}

func (p *phaseTimer) last() (handler, recv time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handler, p.recv
}

func (p *phaseTimer) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			d := time.Since(start)
			p.mu.Lock()
			p.handler, p.recv = d, 0
			p.mu.Unlock()
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ts := &timedStream{ServerStream: ss}
			start := time.Now()
			err := h(srv, ts)
			d := time.Since(start)
			p.mu.Lock()
			p.handler, p.recv = d, ts.recv
			p.mu.Unlock()
			return err
		}),
	}
}

type timedStream struct {
	grpc.ServerStream
	recv time.Duration
}

func (s *timedStream) RecvMsg(m any) error {
	start := time.Now()
	err := s.ServerStream.RecvMsg(m)
	s.recv += time.Since(start)
	return err
}

// serveBench starts a gRPC server with the worker's interceptors and message
// limits (and extra options after them), lets register add services, and
// returns a client of it.
func serveBench(b *testing.B, register func(*grpc.Server), extra ...grpc.ServerOption) pb.VideoProcessingServiceClient {
	b.Helper()
	opts := append(grpcapi.ServerOptions(slog.New(slog.DiscardHandler)),
		grpc.MaxRecvMsgSize(benchMaxMessage),
		grpc.MaxSendMsgSize(benchMaxMessage),
	)
	return serveBenchWith(b, register, append(opts, extra...))
}

// serveBenchWith is serveBench with the server's options given whole.
func serveBenchWith(b *testing.B, register func(*grpc.Server), opts []grpc.ServerOption) pb.VideoProcessingServiceClient {
	b.Helper()
	gs := grpc.NewServer(opts...)
	register(gs)
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
func (h *argsRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *argsRecorder) WithGroup(string) slog.Handler            { return h }

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
// defaults (libx264, CRF 23, preset medium, audio copy, matroska, the
// pixels not rotated), in the order ffmpeg-go emits it (input options
// sorted, output options sorted).
func directFFmpegArgs(in, out string) []string {
	return []string{
		"-autorotate", "0",
		"-format_whitelist", strings.Join(benchInputFormats, ","),
		"-hide_banner",
		"-loglevel", "error",
		"-nostdin",
		"-protocol_whitelist", "file",
		"-i", "file:" + in,
		"-c:a", "copy",
		"-c:v", "libx264",
		"-crf", "23",
		"-enc_time_base:v", "-1",
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
		for range pairs {
			d := direct()
			r, resp := rpc()
			ratios = append(ratios, r.Seconds()/d.Seconds())
			directS = append(directS, d.Seconds())
			rpcS = append(rpcS, r.Seconds())
			ffmpegS = append(ffmpegS, resp.GetMetadata().GetEncodeTimeSeconds())
		}
	}
	logSeries(b, "direct s", "%.3f", directS)
	logSeries(b, "rpc s", "%.3f", rpcS)
	logSeries(b, "ffmpeg inside rpc s", "%.3f", ffmpegS)
	logSeries(b, "ratio rpc/direct", "%.4f", ratios)
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

// simulatedServer is a simulated-mode worker served as cmd/worker serves
// it (its own GRPCOptions). Against the generic options, three
// interleaved runs of 5 rounds gave streamed/ideal 0.67-0.73 and
// 0.56-0.64: no cost of the worker's options to explain.
func simulatedServer(b *testing.B, extra ...grpc.ServerOption) pb.VideoProcessingServiceClient {
	b.Helper()
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	return startWorkerBenchServer(b, benchStore(b), enc, "simulated", extra...)
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

// benchRun numbers the calls of processUnary and processStreamed.
var benchRun atomic.Uint64

// stampRun writes a new run number into data's first 8 bytes, so that a
// run that replaces a chunk sends new bytes: the same bytes again would be
// a retry, answered from the store without encoding.
func stampRun(data []byte) {
	if len(data) >= 8 {
		binary.LittleEndian.PutUint64(data, benchRun.Add(1))
	}
}

func processUnary(ctx context.Context, c pb.VideoProcessingServiceClient, video string, chunk int, data []byte) error {
	stampRun(data)
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
	stampRun(data)
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

// ingestTarget picks where the ingest benchmarks' runs write. By default
// (VIDEOSHARD_BENCH_INGEST_CHUNKS=replace) every worker run replaces the same
// chunk and every reference run writes a new file and removes the previous
// one, so both recycle the page cache they used: the steady state of a busy
// machine. With VIDEOSHARD_BENCH_INGEST_CHUNKS=new every worker run commits a
// new chunk and reference files are kept, so both take fresh memory for
// their page cache on every run, which on a VM whose memory the guest has
// not touched yet costs a host fault per page and dominates the figures.
type ingestTarget struct {
	fresh  bool
	refDir string
	run    int    // runs so far
	prev   string // the previous reference file, removed by the next
}

func newIngestTarget(b *testing.B) *ingestTarget {
	b.Helper()
	t := &ingestTarget{refDir: b.TempDir()} // same filesystem as the store: both under the test's temp dir
	switch v := os.Getenv("VIDEOSHARD_BENCH_INGEST_CHUNKS"); v {
	case "", "replace":
	case "new":
		t.fresh = true
	default:
		b.Fatalf("VIDEOSHARD_BENCH_INGEST_CHUNKS=%q: want replace or new", v)
	}
	return t
}

// chunk is the chunk index for this round's worker runs.
func (t *ingestTarget) chunk() int {
	if t.fresh {
		return t.run
	}
	return 0
}

// next ends a round.
func (t *ingestTarget) next() { t.run++ }

// reference writes and fsyncs data to a new file; unless fresh, it then
// removes the previous one, as a chunk replace unlinks the previous shard.
func (t *ingestTarget) reference(data []byte) error {
	path := filepath.Join(t.refDir, "ref-"+strconv.Itoa(t.run))
	if err := writeSync(path, data); err != nil {
		return err
	}
	if !t.fresh && t.prev != "" && t.prev != path {
		if err := os.Remove(t.prev); err != nil {
			return err
		}
	}
	t.prev = path
	return nil
}

// BenchmarkSimulatedIngest64MiB measures how fast a simulated-mode worker
// takes a 64 MiB chunk (unary ProcessChunk, and UploadChunk in 1 MiB frames)
// against two references: writing and fsyncing the same 64 MiB to a new
// file in the same filesystem, and the ideal this machine allows for the
// worker's job, which is to carry the chunk and keep the shard: the same
// call to a server that discards the chunk (discardServer: gRPC alone)
// plus writing and fsyncing the bytes the simulated encoder keeps (32 MiB).
// Each round runs the six (reference, unary, streamed, the two discarding
// calls, the kept bytes' write) in a rotating order after one untimed
// warm-up of each. By default every worker run replaces the same chunk and
// every reference run replaces its previous file; see ingestTarget for
// VIDEOSHARD_BENCH_INGEST_CHUNKS=new (new chunks, files kept). Metrics:
// median MB/s (10^6 bytes of chunk per second) of each, the median
// per-round ratios to the write+fsync reference (target >= 0.7) and to the
// ideal (the discarding call's time plus the kept write's, in the same
// round; target for unary >= 0.9), and that ratio from the runs' median
// times (unary/ideal-of-medians, less swayed by a slow round); where a
// worker call's time went on the server (phaseTimer): the unary handler's
// milliseconds (the rest is gRPC), the streamed handler's milliseconds and
// those of it spent in RecvMsg; and the process's minor page faults per run
// (client and server share the process). VIDEOSHARD_BENCH_INGEST_ROUNDS sets the rounds (default 15).
func BenchmarkSimulatedIngest64MiB(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_INGEST_ROUNDS", 15)
	data := ingestData()
	timer := &phaseTimer{}
	client := simulatedServer(b, timer.options()...)
	discard := serveBench(b, func(g *grpc.Server) { pb.RegisterVideoProcessingServiceServer(g, discardServer{}) })
	ctx := benchCtx(b)
	target := newIngestTarget(b)
	keptTarget := newIngestTarget(b)
	stampRun(data)
	first, err := client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "bench-kept", ChunkIndex: 0, ChunkData: data})
	if err != nil {
		b.Fatal(err)
	}
	kept := data[:first.GetEncodedSize()]

	const (
		ref = iota
		unary
		streamed
		discardUnary
		discardStreamed
		keptRef
		nRuns
	)
	runs := [nRuns]func() error{
		ref:             func() error { return target.reference(data) },
		unary:           func() error { return processUnary(ctx, client, "bench-unary", target.chunk(), data) },
		streamed:        func() error { return processStreamed(ctx, client, "bench-stream", target.chunk(), data) },
		discardUnary:    func() error { return processUnary(ctx, discard, "bench", 0, data) },
		discardStreamed: func() error { return processStreamed(ctx, discard, "bench", 0, data) },
		keptRef:         func() error { return keptTarget.reference(kept) },
	}
	names := [nRuns]string{"reference", "unary", "streamed", "discarding unary", "discarding streamed", "kept write+fsync"}
	timeRun := func(i int) (time.Duration, int64) {
		faults := minorFaults()
		start := time.Now()
		err := runs[i]()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", names[i], err)
		}
		return d, minorFaults() - faults
	}
	for i := range runs { // warm-up
		timeRun(i)
	}
	target.next()
	keptTarget.next()

	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 }
	var mb, faults [nRuns][]float64
	var unaryRatio, streamRatio, unaryIdeal, streamIdeal, idealMB []float64
	var unaryHandler, unaryGRPC, streamHandler, streamRecv []float64
	for b.Loop() {
		for r := range rounds {
			var d [nRuns]time.Duration
			var uh, sh, sr time.Duration
			for k := range nRuns {
				i := (r + k) % nRuns
				var f int64
				d[i], f = timeRun(i)
				faults[i] = append(faults[i], float64(f))
				switch i {
				case unary:
					uh, _ = timer.last()
				case streamed:
					sh, sr = timer.last()
				}
			}
			target.next()
			keptTarget.next()
			for i := range nRuns {
				mb[i] = append(mb[i], mbps(len(data), d[i]))
			}
			ideal := d[discardUnary] + d[keptRef]
			idealMB = append(idealMB, mbps(len(data), ideal))
			unaryRatio = append(unaryRatio, d[ref].Seconds()/d[unary].Seconds())
			streamRatio = append(streamRatio, d[ref].Seconds()/d[streamed].Seconds())
			unaryIdeal = append(unaryIdeal, ideal.Seconds()/d[unary].Seconds())
			streamIdeal = append(streamIdeal, (d[discardStreamed]+d[keptRef]).Seconds()/d[streamed].Seconds())
			unaryHandler = append(unaryHandler, ms(uh))
			unaryGRPC = append(unaryGRPC, ms(d[unary]-uh))
			streamHandler = append(streamHandler, ms(sh))
			streamRecv = append(streamRecv, ms(sr))
		}
	}
	logSeries(b, "reference MB/s", "%.0f", mb[ref])
	logSeries(b, "unary MB/s", "%.0f", mb[unary])
	logSeries(b, "streamed MB/s", "%.0f", mb[streamed])
	logSeries(b, "ideal unary MB/s", "%.0f", idealMB)
	logSeries(b, "unary/ref", "%.2f", unaryRatio)
	logSeries(b, "streamed/ref", "%.2f", streamRatio)
	logSeries(b, "unary/ideal", "%.2f", unaryIdeal)
	logSeries(b, "streamed/ideal", "%.2f", streamIdeal)
	logSeries(b, "unary handler ms", "%.0f", unaryHandler)
	logSeries(b, "minor faults ref/un/st", "%.0f", []float64{median(faults[ref]), median(faults[unary]), median(faults[streamed])})

	b.ReportMetric(float64(len(unaryRatio)), "rounds")
	b.ReportMetric(median(mb[ref]), "ref-MB/s")
	b.ReportMetric(median(mb[unary]), "unary-MB/s")
	b.ReportMetric(median(mb[streamed]), "stream-MB/s")
	b.ReportMetric(median(mb[discardUnary]), "discard-unary-MB/s")
	b.ReportMetric(median(mb[discardStreamed]), "discard-stream-MB/s")
	b.ReportMetric(median(mb[keptRef]), "kept-MB/s")
	b.ReportMetric(median(idealMB), "ideal-MB/s")
	b.ReportMetric(median(unaryRatio), "unary/ref")
	b.ReportMetric(median(streamRatio), "stream/ref")
	b.ReportMetric(median(unaryIdeal), "unary/ideal")
	// The same from each run's median time: one slow discarding call or
	// kept write (a disk flush behind the previous run's) makes a round's
	// ideal slower than the worker, and the rounds' ratios spread above 1.
	idealOfMedians := 1 / (1/median(mb[discardUnary]) + 1/median(mb[keptRef]))
	b.ReportMetric(median(mb[unary])/idealOfMedians, "unary/ideal-of-medians")
	b.ReportMetric(slices.Min(unaryIdeal), "unary/ideal-min")
	b.ReportMetric(slices.Max(unaryIdeal), "unary/ideal-max")
	b.ReportMetric(median(streamIdeal), "stream/ideal")
	b.ReportMetric(median(unaryHandler), "unary-handler-ms")
	b.ReportMetric(median(unaryGRPC), "unary-grpc-ms")
	b.ReportMetric(median(streamHandler), "stream-handler-ms")
	b.ReportMetric(median(streamRecv), "stream-recv-ms")
	b.ReportMetric(median(faults[ref]), "ref-minflt")
	b.ReportMetric(median(faults[unary]), "unary-minflt")
	b.ReportMetric(median(faults[streamed]), "stream-minflt")
}

// BenchmarkSimulatedUnary64MiB and BenchmarkSimulatedStream64MiB run one
// ingest path alone, for CPU profiles (scripts/bench.sh with
// BENCH_PROFILE=1) and benchstat; each iteration replaces the same chunk.
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
	if err := run(ctx, client, video, 0, data); err != nil { // warm-up: the timed runs all replace it
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := run(ctx, client, video, 0, data); err != nil { // replaces chunk 0
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteSync64MiB is the reference of the two above, alone (a new
// file each time, the previous one removed).
func BenchmarkWriteSync64MiB(b *testing.B) {
	data := ingestData()
	target := newIngestTarget(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := target.reference(data); err != nil {
			b.Fatal(err)
		}
		target.next()
	}
}

// discardServer answers ProcessChunk and UploadChunk without doing anything
// with the bytes: gRPC's own cost of carrying a chunk.
type discardServer struct {
	pb.UnimplementedVideoProcessingServiceServer
}

func (discardServer) ProcessChunk(_ context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	return &pb.ProcessChunkResponse{Success: true, OriginalSize: int64(len(req.GetChunkData()))}, nil
}

func (discardServer) UploadChunk(stream pb.VideoProcessingService_UploadChunkServer) error {
	var n int64
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&pb.ProcessChunkResponse{Success: true, OriginalSize: n})
		}
		if err != nil {
			return err
		}
		n += int64(len(msg.GetData()))
	}
}

// hashingReader is grpcapi's input hash (process.go), for the pipeline leg.
type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	return n, err
}

// pipelineNoRPC is what grpcapi's process does with a chunk once it has
// it, without gRPC: hash the input while the simulated encoder reads it,
// write the output through a Pending (which hashes it), and commit.
func pipelineNoRPC(store *storage.Store, enc encode.Encoder, chunk int, data []byte) error {
	p, err := store.Create("bench-pipeline", chunk)
	if err != nil {
		return err
	}
	defer p.Abort()
	in := &hashingReader{r: bytes.NewReader(data), h: sha256.New()}
	if _, err := enc.Encode(context.Background(), in, p, encode.Options{}); err != nil {
		return err
	}
	_, err = p.Commit(storage.Metadata{OriginalSize: int64(len(data)), InputChecksumSHA256: hex.EncodeToString(in.h.Sum(nil))})
	return err
}

// BenchmarkSimulatedIngestBreakdown splits BenchmarkSimulatedIngest64MiB's
// gap to the reference into its parts, in the same interleaved rounds:
// gRPC alone (a server that discards the chunk, unary and streamed), the
// worker's pipeline alone (input SHA-256, simulated encode, Pending with its
// SHA-256, Commit; no gRPC), and the two SHA-256 passes alone (64 MiB input
// + 32 MiB output, pure CPU). Each as median MB/s of chunk input and as a
// ratio to the reference write+fsync (see ingestTarget).
// VIDEOSHARD_BENCH_INGEST_ROUNDS sets the rounds (default 15).
func BenchmarkSimulatedIngestBreakdown(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_INGEST_ROUNDS", 15)
	data := ingestData()
	ctx := benchCtx(b)
	discard := serveBench(b, func(g *grpc.Server) { pb.RegisterVideoProcessingServiceServer(g, discardServer{}) })
	store := benchStore(b)
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	target := newIngestTarget(b)

	names := []string{"ref", "grpc-unary", "grpc-stream", "pipeline", "sha256x2"}
	runs := []func() error{
		func() error { return target.reference(data) },
		func() error { return processUnary(ctx, discard, "bench", 0, data) },
		func() error { return processStreamed(ctx, discard, "bench", 0, data) },
		func() error { return pipelineNoRPC(store, enc, target.chunk(), data) },
		func() error {
			sha256.Sum256(data)
			sha256.Sum256(data[:len(data)/2])
			return nil
		},
	}
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
	target.next()

	mb := make([][]float64, len(runs))
	ratio := make([][]float64, len(runs))
	for b.Loop() {
		for r := range rounds {
			d := make([]time.Duration, len(runs))
			for k := range runs {
				i := (r + k) % len(runs)
				d[i] = timeRun(i)
			}
			target.next()
			for i := range runs {
				mb[i] = append(mb[i], mbps(len(data), d[i]))
				ratio[i] = append(ratio[i], d[0].Seconds()/d[i].Seconds())
			}
		}
	}
	for i, name := range names {
		logSeries(b, name+" MB/s", "%.0f", mb[i])
	}
	b.ReportMetric(float64(len(mb[0])), "rounds")
	for i, name := range names {
		b.ReportMetric(median(mb[i]), name+"-MB/s")
		if i > 0 {
			b.ReportMetric(median(ratio[i]), name+"/ref")
		}
	}
}

// ---------------------------------------------------------------------------
// GetShard: a 64 MiB shard read and verified by the worker against the same
// bytes served from memory.

const getShardSize = 64 << 20

// memShardServer answers GetShard with one shard held in memory, reading
// and verifying nothing: gRPC's own cost of carrying a shard.
type memShardServer struct {
	pb.UnimplementedVideoProcessingServiceServer
	data []byte
	meta *pb.ChunkMetadata
}

func (m memShardServer) GetShard(context.Context, *pb.GetShardRequest) (*pb.GetShardResponse, error) {
	return &pb.GetShardResponse{Success: true, ShardData: m.data, Message: "from memory", Metadata: m.meta}, nil
}

// commitShard stores data as chunk n of video through a Pending, as an
// encoder writes it.
func commitShard(b *testing.B, store *storage.Store, video string, n int, data []byte) storage.Metadata {
	b.Helper()
	p, err := store.Create(video, n)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Abort()
	for off := 0; off < len(data); off += ingestFrame {
		if _, err := p.Write(data[off:min(off+ingestFrame, len(data))]); err != nil {
			b.Fatal(err)
		}
	}
	m, err := p.Commit(storage.Metadata{OriginalSize: 2 * int64(len(data)), WorkerID: "bench", Encoder: "simulated"})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// withoutCRC32C rewrites a chunk's metadata file without its crc32c key,
// as chunks committed before it was added have it.
func withoutCRC32C(b *testing.B, root, video string, n int) {
	b.Helper()
	path := filepath.Join(root, "metadata", video+"_chunk_"+strconv.Itoa(n)+"_metadata.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		b.Fatal(err)
	}
	delete(fields, "crc32c")
	if raw, err = json.MarshalIndent(fields, "", "  "); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGetShard64MiB measures GetShard of a 64 MiB shard from a worker
// served with its own gRPC options (startWorkerBenchServer; the store reads
// the shard from the page cache, into a recycled buffer, and verifies its
// CRC-32C) against
// a gRPC server that answers with the same bytes from memory, doing nothing
// else, on the same kind of connection. A third run reads a copy of the
// shard whose metadata has no CRC-32C (a chunk committed before it was
// added), which is verified by its SHA-256. Each round runs the three in a
// rotating order after one untimed warm-up of each, which also checks the
// bytes' SHA-256. Metrics: median MB/s of each, the median per-round
// ratios to the in-memory reference (target for the CRC-32C run: >= 0.8),
// and the worker's median handler milliseconds (phaseTimer).
// VIDEOSHARD_BENCH_GETSHARD_ROUNDS sets the rounds (default 15).
func BenchmarkGetShard64MiB(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_GETSHARD_ROUNDS", 15)
	data := make([]byte, getShardSize)
	rand.NewChaCha8([32]byte{'g', 'e', 't'}).Read(data)
	root := filepath.Join(b.TempDir(), "store")
	store, err := storage.Open(storage.Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	meta := commitShard(b, store, "bench-get", 0, data)
	commitShard(b, store, "bench-get", 1, data)
	withoutCRC32C(b, root, "bench-get", 1)
	if store, err = storage.Open(storage.Options{Root: root}); err != nil { // reads the rewritten metadata
		b.Fatal(err)
	}
	if m, err := store.Lookup("bench-get", 1); err != nil || m.ChecksumCRC32C != "" {
		b.Fatalf("chunk 1 should have no crc32c: %+v, %v", m, err)
	}
	enc, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	timer := &phaseTimer{}
	worker := startWorkerBenchServer(b, store, enc, "simulated", timer.options()...)
	memory := serveBench(b, func(g *grpc.Server) {
		pb.RegisterVideoProcessingServiceServer(g, memShardServer{data: data, meta: &pb.ChunkMetadata{
			VideoId: meta.VideoID, EncodedSize: meta.EncodedSize, ChecksumSha256: meta.ChecksumSHA256}})
	})
	ctx := benchCtx(b)

	get := func(c pb.VideoProcessingServiceClient, chunk int32, check bool) error {
		resp, err := c.GetShard(ctx, &pb.GetShardRequest{VideoId: "bench-get", ChunkIndex: &chunk})
		if err != nil {
			return err
		}
		got := resp.GetShardData()
		if len(got) != len(data) {
			return fmt.Errorf("got %d bytes, want %d", len(got), len(data))
		}
		if check {
			if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != meta.ChecksumSHA256 {
				return fmt.Errorf("got bytes with sha256 %x, want %s", sum, meta.ChecksumSHA256)
			}
		}
		return nil
	}
	names := [3]string{"memory", "crc32c", "sha256"}
	runs := [3]func(check bool) error{
		func(check bool) error { return get(memory, 0, check) },
		func(check bool) error { return get(worker, 0, check) },
		func(check bool) error { return get(worker, 1, check) },
	}
	timeRun := func(i int, check bool) time.Duration {
		start := time.Now()
		err := runs[i](check)
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", names[i], err)
		}
		return d
	}
	for i := range runs { // warm-up, and the bytes are the shard's
		timeRun(i, true)
	}

	var mb [3][]float64
	var crcRatio, shaRatio, crcHandler, shaHandler []float64
	for b.Loop() {
		for r := range rounds {
			var d [3]time.Duration
			for k := range 3 {
				i := (r + k) % 3
				d[i] = timeRun(i, false)
				switch h, _ := timer.last(); i {
				case 1:
					crcHandler = append(crcHandler, h.Seconds()*1e3)
				case 2:
					shaHandler = append(shaHandler, h.Seconds()*1e3)
				}
			}
			for i := range 3 {
				mb[i] = append(mb[i], mbps(len(data), d[i]))
			}
			crcRatio = append(crcRatio, d[0].Seconds()/d[1].Seconds())
			shaRatio = append(shaRatio, d[0].Seconds()/d[2].Seconds())
		}
	}
	logSeries(b, "from memory MB/s", "%.0f", mb[0])
	logSeries(b, "GetShard MB/s", "%.0f", mb[1])
	logSeries(b, "GetShard sha256 MB/s", "%.0f", mb[2])
	logSeries(b, "GetShard/memory", "%.2f", crcRatio)
	logSeries(b, "sha256/memory", "%.2f", shaRatio)
	logSeries(b, "handler ms", "%.1f", crcHandler)
	logSeries(b, "sha256 handler ms", "%.1f", shaHandler)
	b.ReportMetric(float64(len(crcRatio)), "rounds")
	b.ReportMetric(median(mb[0]), "ref-MB/s")
	b.ReportMetric(median(mb[1]), "getshard-MB/s")
	b.ReportMetric(median(mb[2]), "sha256-MB/s")
	b.ReportMetric(median(crcRatio), "getshard/ref")
	b.ReportMetric(slices.Min(crcRatio), "getshard/ref-min")
	b.ReportMetric(slices.Max(crcRatio), "getshard/ref-max")
	b.ReportMetric(median(shaRatio), "sha256/ref")
	b.ReportMetric(median(crcHandler), "handler-ms")
	b.ReportMetric(median(shaHandler), "sha256-handler-ms")
}
