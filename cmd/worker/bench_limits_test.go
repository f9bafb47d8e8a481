package main

// Benchmarks of the worker's admission limits against the real binary (issue
// 8): its resident memory under the worst load the default config admits,
// and honest latency under a slowloris attack. Run them through
// scripts/bench.sh (make bench); `go test` without -bench never runs them.

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
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
// has ended. The bound is the README's formula, as the worker computes it
// for its soft memory limit and logs it (memory_limit): a round over it
// fails the benchmark. Its reads term (limits.max_read_bytes) counts even
// though this load reads nothing: the collector, held to that limit, may
// let garbage use the room. How many messages' worth each admitted call
// held is reported beside it (the README's 4). VIDEOSHARD_BENCH_RSS_ROUNDS sets the rounds
// (default 3).
func BenchmarkWorkerRSSWorstAdmitted(b *testing.B) {
	rounds := benchRoundsEnv(b, "VIDEOSHARD_BENCH_RSS_ROUNDS", 3)
	cfg := defaultLimits(b)
	msg := int64(cfg.Server.MaxMessageBytes)
	unary := mustMarshal(&pb.ProcessChunkRequest{VideoId: "rss", ChunkData: make([]byte, msg-64<<10)})
	frame := make([]byte, msg-1<<10)
	data := dataFrame(frame)
	unaryLimit, uploadLimit := effectiveLimits(cfg)
	const mib = 1 << 20
	memLimitPattern := regexp.MustCompile(`memory_limit=(\d+)`)

	var peaks, bases, bounds, factors []float64
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
			m := memLimitPattern.FindStringSubmatch(w.Logs.String())
			if m == nil {
				b.Fatalf("the worker logged no memory_limit:\n%s", w.Logs)
			}
			bound, _ := strconv.ParseInt(m[1], 10, 64)
			if peak<<10 > bound {
				b.Errorf("peak RSS %d MiB is over the README's bound of %d MiB", peak>>10, bound/mib)
			}
			bases = append(bases, float64(base)/1024)
			peaks = append(peaks, float64(peak)/1024)
			bounds = append(bounds, float64(bound)/mib)
			// What the admitted messages held, in messages' worth each.
			factors = append(factors, float64(peak<<10-base<<10-64<<20)/float64(msg)/float64(unaryLimit+uploadLimit))
		}
	}
	b.Logf("limits: max_message_bytes %d MiB, max_unary_chunks %d, max_uploads %d, max_concurrent_tasks %d",
		msg/mib, unaryLimit, uploadLimit, cfg.Server.MaxConcurrentTasks)
	b.Logf("calls: unary %d ok, %d refused; uploads %d ok, %d refused", okUnary, refusedUnary, okUploads, refusedUploads)
	logSeries(b, "RSS before MiB", "%.1f", bases)
	logSeries(b, "RSS peak MiB", "%.1f", peaks)
	logSeries(b, "README bound MiB", "%.1f", bounds)
	logSeries(b, "messages held each", "%.2f", factors)
	b.ReportMetric(benchMedian(peaks), "rss-peak-MiB")
	b.ReportMetric(maxOf(peaks), "rss-peak-max-MiB")
	b.ReportMetric(benchMedian(bounds), "bound-MiB")
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// logSeries logs one figure's value in each round, then their median.
func logSeries(b *testing.B, label, format string, xs []float64) {
	b.Helper()
	var sb strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&sb, " "+format, x)
	}
	b.Logf("%-20s%s | median "+format, label+":", sb.String(), benchMedian(xs))
}

// effectiveLimits resolves the limits whose 0 means a multiple of
// limits.max_concurrent_tasks, as the README says.
func effectiveLimits(cfg Config) (unary, uploads int) {
	unary, uploads = cfg.Server.MaxUnaryChunks, cfg.Server.MaxUploads
	if unary == 0 {
		unary = cfg.Server.MaxConcurrentTasks
	}
	if uploads == 0 {
		uploads = 2 * cfg.Server.MaxConcurrentTasks
	}
	return unary, uploads
}

// slowlorisConfig is the worker of BenchmarkHonestUnderSlowloris: room for
// every honest client in the slots and the queue, and for the stalled
// uploads beside the honest ones, so that any refusal of an honest call is
// the attack's doing; the stalled uploads outlast a round.
const slowlorisConfig = `encoder: simulated
simulated: {delay: 20ms}
limits: {max_concurrent_tasks: 4, max_queued_tasks: 64, max_unary_chunks: 64, max_uploads: 128,
  upload_idle_timeout: 10m, upload_timeout: 20m}
`

const (
	slowlorisStreams = 64 // stalled uploads, 60 MiB announced each
	honestClients    = 64 // half unary, half streamed
	honestCalls      = 10 // calls per honest client per phase
	honestChunk      = 256 << 10
)

// BenchmarkHonestUnderSlowloris measures honest latency under the attack
// of issue 8, item 1: 64 uploads that send a header announcing 60 MiB and
// then nothing, beside 64 honest clients (32 unary ProcessChunk, 32
// UploadChunk in 1 MiB frames, 256 KiB chunks, each client one call at a
// time over 8 connections) against a simulated worker with a 20 ms encode.
// Each round runs the honest load alone and under the attack, in
// alternating order; the stalled uploads are opened on connections of
// their own before their phase, known to be waiting once each has its
// spool file, and cancelled after it. Figures: per phase the p50 and p99
// of the honest calls, the per-round ratios attack/alone (target: p99
// within 2x), and the honest calls refused (target 0; the worker has room
// for all of them). VIDEOSHARD_BENCH_SLOWLORIS_ROUNDS sets the rounds
// (default 5).
func BenchmarkHonestUnderSlowloris(b *testing.B) {
	rounds := benchRoundsEnv(b, "VIDEOSHARD_BENCH_SLOWLORIS_ROUNDS", 5)
	w := startBenchWorker(b, "", slowlorisConfig)
	tmp := filepath.Join(w.Root, ".tmp")
	honestConns := make([]*grpc.ClientConn, 8)
	for i := range honestConns {
		honestConns[i] = dialRaw(b, w.Addr)
	}
	chunks := make([][]byte, honestClients)
	for i := range chunks {
		chunks[i] = randomBytes(honestChunk, uint64(1000+i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	// phase runs the honest load once: every call's latency, and how many
	// were refused.
	seq := 0
	phase := func() (lat []time.Duration, refused int) {
		seq++
		var mu sync.Mutex
		var wg sync.WaitGroup
		for c := range honestClients {
			wg.Go(func() {
				client := pb.NewVideoProcessingServiceClient(honestConns[c%len(honestConns)])
				data := chunks[c]
				for i := range honestCalls {
					binary.LittleEndian.PutUint64(data, uint64(seq<<20|i)) // new bytes: never "already stored"
					start := time.Now()
					var err error
					if c%2 == 0 {
						_, err = client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "honest-unary", ChunkIndex: int32(c), ChunkData: data})
					} else {
						_, err = upload(ctx, client, &pb.UploadHeader{VideoId: "honest-upload", ChunkIndex: int32(c), TotalSize: int64(len(data))}, data, 1<<20)
					}
					d := time.Since(start)
					mu.Lock()
					switch {
					case err == nil:
						lat = append(lat, d)
					case status.Code(err) == codes.ResourceExhausted:
						refused++
					default:
						mu.Unlock()
						b.Errorf("honest call: %v", err)
						return
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return lat, refused
	}
	spools := func() int { // spooled uploads; .tmp holds pending shards too
		entries, err := os.ReadDir(tmp)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "upload-") {
				n++
			}
		}
		return n
	}
	waitSpools := func(n int) {
		deadline := time.Now().Add(time.Minute)
		for spools() != n {
			if time.Now().After(deadline) {
				b.Fatalf("%d spool files in %s, want %d", spools(), tmp, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	attack := func() (stop func()) {
		actx, acancel := context.WithCancel(ctx)
		conns := []*grpc.ClientConn{dialRaw(b, w.Addr), dialRaw(b, w.Addr)}
		for i := range slowlorisStreams {
			if _, err := slowloris(actx, conns[i%2], "slowloris", int32(i), 60<<20); err != nil {
				b.Fatal(err)
			}
		}
		waitSpools(slowlorisStreams) // every one admitted and waiting for data
		return func() {
			acancel()
			waitSpools(0)
			for _, c := range conns {
				c.Close()
			}
		}
	}
	p := func(lat []time.Duration, q float64) float64 {
		xs := make([]float64, len(lat))
		for i, d := range lat {
			xs[i] = d.Seconds() * 1e3
		}
		sort.Float64s(xs)
		return xs[min(len(xs)-1, int(q*float64(len(xs))))]
	}

	phase() // warm-up
	var aloneP50, aloneP99, attackP50, attackP99, ratio99, ratio50 []float64
	var refusedAlone, refusedAttack int
	for b.Loop() {
		for r := range rounds {
			var alone, under []time.Duration
			var ra, ru int
			runAlone := func() { alone, ra = phase() }
			runUnder := func() {
				stop := attack()
				under, ru = phase()
				stop()
			}
			if r%2 == 0 {
				runAlone()
				runUnder()
			} else {
				runUnder()
				runAlone()
			}
			refusedAlone += ra
			refusedAttack += ru
			aloneP50 = append(aloneP50, p(alone, 0.50))
			aloneP99 = append(aloneP99, p(alone, 0.99))
			attackP50 = append(attackP50, p(under, 0.50))
			attackP99 = append(attackP99, p(under, 0.99))
			ratio50 = append(ratio50, p(under, 0.50)/p(alone, 0.50))
			ratio99 = append(ratio99, p(under, 0.99)/p(alone, 0.99))
		}
	}
	b.Logf("%d honest clients x %d calls per phase, %d stalled uploads; refused: %d alone, %d under attack",
		honestClients, honestCalls, slowlorisStreams, refusedAlone, refusedAttack)
	logSeries(b, "alone p50 ms", "%.1f", aloneP50)
	logSeries(b, "attack p50 ms", "%.1f", attackP50)
	logSeries(b, "alone p99 ms", "%.1f", aloneP99)
	logSeries(b, "attack p99 ms", "%.1f", attackP99)
	logSeries(b, "p50 attack/alone", "%.2f", ratio50)
	logSeries(b, "p99 attack/alone", "%.2f", ratio99)
	b.ReportMetric(float64(len(ratio99)), "rounds")
	b.ReportMetric(benchMedian(aloneP99), "alone-p99-ms")
	b.ReportMetric(benchMedian(attackP99), "attack-p99-ms")
	b.ReportMetric(benchMedian(ratio99), "p99-attack/alone")
	b.ReportMetric(benchMedian(ratio50), "p50-attack/alone")
	b.ReportMetric(float64(refusedAttack), "refused-under-attack")
	b.ReportMetric(float64(refusedAlone), "refused-alone")
}
