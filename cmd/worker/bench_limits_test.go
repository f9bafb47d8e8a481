package main

// Benchmarks of the worker's admission limits against the real binary (issue
// 8): its resident memory under the worst load the default config admits,
// and honest latency under a slowloris attack. Run them through
// scripts/bench.sh (make bench); `go test` without -bench never runs them.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// benchRounds reads a round count from env, or def.
func benchRoundsEnv(b *testing.B, env string, def int) int {
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

// defaultLimits are the default config's values the memory bound depends
// on, read back from the config loader so that they cannot drift from it.
func defaultLimits(b *testing.B) Config {
	b.Helper()
	cfg, err := loadConfig(newViper())
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// BenchmarkWorkerRSSWorstAdmitted measures the worker's peak resident memory
// (VmHWM) under the worst load its default limits admit: twice
// limits.max_unary_chunks unary ProcessChunk calls of the largest chunk
// one message carries (grpc.max_message_bytes less its headroom), and at
// once twice limits.max_uploads UploadChunk streams, each sending two data
// frames of the largest size a message carries (honest clients send 1 MiB).
// Half of each are refused before their message is read. The encoder is
// the simulated one with a 2 s delay, so the admitted calls hold their
// messages while more arrive; the limits are the defaults. Each round
// starts a fresh worker, resets its peak (clear_refs 5) once it is healthy,
// fires the load from several connections, and reads VmHWM when every call
// has ended. The bound is the README's formula (maxRSSBound); a round over
// it fails the benchmark. The worker's own soft memory limit (logged at
// start) is reported beside it. VIDEOSHARD_BENCH_RSS_ROUNDS sets the rounds
// (default 3).
func BenchmarkWorkerRSSWorstAdmitted(b *testing.B) {
	rounds := benchRoundsEnv(b, "VIDEOSHARD_BENCH_RSS_ROUNDS", 3)
	cfg := defaultLimits(b)
	msg := cfg.GRPC.MaxMessageBytes
	unary := mustMarshal(&pb.ProcessChunkRequest{VideoId: "rss", ChunkData: make([]byte, msg-64<<10)})
	frame := make([]byte, msg-1<<10)
	data := dataFrame(frame)
	unaryLimit, uploadLimit := effectiveLimits(cfg)
	const mib = 1 << 20

	var peaks, bases, bounds, limits []float64
	var refusedUnary, refusedUploads, okUnary, okUploads int
	for b.Loop() {
		for range rounds {
			w := startBenchWorker(b, "", "encoder: simulated\nsimulated: {delay: 2s}\n")
			pid := w.Cmd.Process.Pid
			base, err := procStatusKiB(pid, "VmRSS")
			if err != nil {
				b.Fatal(err)
			}
			if err := resetPeakRSS(pid); err != nil {
				b.Fatal(err)
			}
			conns := make([]*grpc.ClientConn, 4)
			for i := range conns {
				conns[i] = dialRaw(b, w.Addr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			type result struct {
				upload bool
				err    error
			}
			var wg sync.WaitGroup
			results := make(chan result, 2*(unaryLimit+uploadLimit))
			for i := range 2 * unaryLimit {
				wg.Go(func() {
					var resp pb.ProcessChunkResponse
					err := conns[i%len(conns)].Invoke(ctx, pb.VideoProcessingService_ProcessChunk_FullMethodName,
						unary, &resp, grpc.ForceCodecV2(rawCodec{}))
					results <- result{false, err}
				})
			}
			for i := range 2 * uploadLimit {
				wg.Go(func() {
					h := headerFrame(&pb.UploadHeader{VideoId: "rss-up", ChunkIndex: int32(i), TotalSize: 2 * int64(len(frame))})
					cs, err := openStream(ctx, conns[i%len(conns)], pb.VideoProcessingService_UploadChunk_FullMethodName, h, data, data)
					if err == nil {
						err = cs.CloseSend()
					}
					if cs != nil {
						// A refused stream fails its sends; its answer says why.
						err = outcome(cs)
					}
					results <- result{true, err}
				})
			}
			wg.Wait()
			cancel()
			close(results)
			for r := range results {
				switch {
				case r.err == nil && r.upload:
					okUploads++
				case r.err == nil:
					okUnary++
				case status.Code(r.err) == codes.ResourceExhausted && r.upload:
					refusedUploads++
				case status.Code(r.err) == codes.ResourceExhausted:
					refusedUnary++
				default:
					b.Fatalf("a call failed otherwise than refused: %v\n%s", r.err, w.Logs)
				}
			}
			peak, err := procStatusKiB(pid, "VmHWM")
			if err != nil {
				b.Fatal(err)
			}
			w.Stop()
			bound := maxRSSBound(cfg, base<<10)
			if peak<<10 > bound {
				b.Errorf("peak RSS %d MiB is over the README's bound of %d MiB", peak>>10, bound/mib)
			}
			if m := memLimitPattern.FindStringSubmatch(w.Logs.String()); m != nil {
				limit, _ := strconv.ParseInt(m[1], 10, 64)
				limits = append(limits, float64(limit)/mib)
			}
			bases = append(bases, float64(base)/1024)
			peaks = append(peaks, float64(peak)/1024)
			bounds = append(bounds, float64(bound)/mib)
		}
	}
	b.Logf("limits: max_message_bytes %d MiB, max_unary_chunks %d, max_uploads %d, max_concurrent_tasks %d",
		msg/mib, unaryLimit, uploadLimit, cfg.Limits.MaxConcurrentTasks)
	b.Logf("calls: unary %d ok, %d refused; uploads %d ok, %d refused", okUnary, refusedUnary, okUploads, refusedUploads)
	logSeries(b, "RSS before MiB", bases)
	logSeries(b, "RSS peak MiB", peaks)
	logSeries(b, "README bound MiB", bounds)
	logSeries(b, "soft limit MiB", limits)
	b.ReportMetric(benchMedian(peaks), "rss-peak-MiB")
	b.ReportMetric(maxOf(peaks), "rss-peak-max-MiB")
	b.ReportMetric(benchMedian(bounds), "bound-MiB")
}

var memLimitPattern = regexp.MustCompile(`memory_limit=(\d+)`)

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func logSeries(b *testing.B, label string, xs []float64) {
	b.Helper()
	var sb strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&sb, " %.1f", x)
	}
	b.Logf("%-20s%s | median %.1f", label+":", sb.String(), benchMedian(xs))
}

// effectiveLimits resolves the limits whose 0 means a multiple of
// limits.max_concurrent_tasks, as the README says.
func effectiveLimits(cfg Config) (unary, uploads int) {
	unary, uploads = cfg.Limits.MaxUnaryChunks, cfg.Limits.MaxUploads
	if unary == 0 {
		unary = cfg.Limits.MaxConcurrentTasks
	}
	if uploads == 0 {
		uploads = 2 * cfg.Limits.MaxConcurrentTasks
	}
	return unary, uploads
}

// maxRSSBound is the README's worst case of the worker's resident memory
// (see "Memory and disk" there): its memory at start-up, plus 64 MiB, plus
// 4 x (limits.max_unary_chunks + limits.max_uploads) x
// grpc.max_message_bytes.
func maxRSSBound(cfg Config, startRSS int64) int64 {
	unary, uploads := effectiveLimits(cfg)
	return startRSS + 64<<20 + 4*int64(unary+uploads)*cfg.GRPC.MaxMessageBytes
}
