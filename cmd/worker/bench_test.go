package main

// Benchmarks against the real worker binary (built by TestMain into
// workerBinary). Run them through scripts/bench.sh (make bench); `go test`
// without -bench never runs them.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// startBenchWorker starts the worker on root and waits until it reports
// healthy.
func startBenchWorker(tb testing.TB, root, yaml string) *e2etest.Worker {
	tb.Helper()
	w := e2etest.StartWorker(tb, workerBinary, root, "", yaml)
	w.WaitHealthy()
	return w
}

// procStatusKiB returns a "Vm..." field of /proc/pid/status in KiB.
func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: odd %s line %q", pid, field, line)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// procCPU returns the CPU time (user and system) process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command (field 2) may hold spaces; the fields after its ")" are
	// state, ppid, ... utime (14) and stime (15), in clock ticks.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// selfCPU returns the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is USER_HZ, the unit of /proc/pid/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// resetPeakRSS makes VmHWM equal the current VmRSS (clear_refs value 5).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func benchMedian(xs []float64) float64 {
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

const (
	shardBytes = 1 << 30
	shardPiece = 1 << 20
	shardVideo = "bench-download"
)

// plantShard commits a shardBytes shard of pseudo-random bytes as chunk 0 of
// shardVideo through the storage package, before any worker runs on root,
// and returns its metadata.
func plantShard(b *testing.B, root string) storage.Metadata {
	b.Helper()
	s, err := storage.Open(storage.Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	p, err := s.Create(shardVideo, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Abort()
	rng := rand.NewChaCha8([32]byte{'s', 'h', 'a', 'r', 'd'})
	buf := make([]byte, shardPiece)
	for range shardBytes / shardPiece {
		rng.Read(buf)
		if _, err := p.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	meta, err := p.Commit(storage.Metadata{OriginalSize: 2 * shardBytes, WorkerID: "bench", Encoder: "simulated"})
	if err != nil {
		b.Fatal(err)
	}
	return meta
}

// bulkDialOptions make a client that does not hold a bulk download back:
// gRPC's defaults (a 64 KiB stream window grown by its BDP estimate, 32 KiB
// reads) make a receiver that also hashes wait on the sender, so the
// figure would measure gRPC's defaults rather than the worker.
var bulkDialOptions = []grpc.DialOption{
	grpc.WithInitialWindowSize(16 << 20),
	grpc.WithInitialConnWindowSize(32 << 20),
	grpc.WithReadBufferSize(1 << 20),
}

// downloadShard streams the shard through DownloadShard, hashing and
// discarding it, and checks size and checksum against the metadata. With
// pipelined set the bytes are hashed on another goroutine while the next
// message is received, as a client that also stores them would.
func downloadShard(ctx context.Context, c pb.VideoProcessingServiceClient, want storage.Metadata, pipelined bool) error {
	var idx int32 = 0
	stream, err := c.DownloadShard(ctx, &pb.GetShardRequest{VideoId: shardVideo, ChunkIndex: &idx})
	if err != nil {
		return err
	}
	h := sha256.New()
	hash, hashed := func(b []byte) { h.Write(b) }, func() {}
	if pipelined {
		frames := make(chan []byte, 8)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for b := range frames {
				h.Write(b)
			}
		}()
		hash = func(b []byte) { frames <- b }
		hashed = func() { close(frames); <-done }
	}
	var n int64
	var meta *pb.ChunkMetadata
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			hashed()
			return err
		}
		if m := msg.GetMetadata(); m != nil {
			meta = m
		}
		hash(msg.GetData())
		n += int64(len(msg.GetData()))
	}
	hashed()
	if meta == nil || meta.GetChecksumSha256() != want.ChecksumSHA256 {
		return fmt.Errorf("metadata %v, want checksum %s", meta, want.ChecksumSHA256)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != want.EncodedSize || got != want.ChecksumSHA256 {
		return fmt.Errorf("downloaded %d bytes with sha256 %s, metadata says %d bytes, %s", n, got, want.EncodedSize, want.ChecksumSHA256)
	}
	return nil
}

// masterDownload is the master's download of the shard, into io.Discard:
// master/client checks its size and SHA-256 against the metadata.
func masterDownload(ctx context.Context, c *client.Client, want storage.Metadata) error {
	idx := int32(0)
	_, n, err := c.DownloadShard(ctx, &pb.GetShardRequest{VideoId: shardVideo, ChunkIndex: &idx}, io.Discard,
		client.ShardWant{Size: want.EncodedSize, Checksum: want.ChecksumSHA256})
	if err == nil && n != want.EncodedSize {
		err = fmt.Errorf("downloaded %d bytes, metadata says %d", n, want.EncodedSize)
	}
	return err
}

// readShard is the reference: the same file read from disk into SHA-256.
func readShard(path string, want storage.Metadata) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != want.EncodedSize || got != want.ChecksumSHA256 {
		return fmt.Errorf("read %d bytes with sha256 %s, metadata says %d bytes, %s", n, got, want.EncodedSize, want.ChecksumSHA256)
	}
	return nil
}

// BenchmarkDownloadShard1GiB streams a 1 GiB shard out of a real worker
// (simulated mode) through DownloadShard, and measures its MB/s (10^6 bytes
// per second; the client SHA-256s the bytes and compares them with the
// metadata) and how far the worker's resident memory rises while serving it
// (target: under 64 MiB). The shard is planted through the storage package
// before the worker starts, so no upload inflates the worker. Each round
// starts a fresh worker on the store, waits until it is healthy, reads its
// VmRSS (baseline), resets its peak (clear_refs 5), downloads three times,
// and reads VmHWM (peak). Each download has a reference run of its own,
// before or after it in turn: the same file read from disk into SHA-256
// (io.Copy). The shard is in the page cache for all (it was just written).
// The downloads: the figure's, by the master's own client
// (master/client: its codec's one copy into recycled buffers, bulk flow
// control, hashing and writing, here to io.Discard, beside receiving;
// target >= 0.8 of the reference); a bulk client of gRPC's own codec
// hashing beside receiving (bulkDialOptions: the figure's client before
// the master's was measured); and a client with gRPC's defaults, hashing
// inline. The worker's CPU seconds (/proc/pid/stat) and the client's
// (getrusage; gRPC's receiving and the SHA-256) for the figure's download
// say what it costs each side: on two cores the download cannot beat
// (worker + client CPU) / 2.
// VIDEOSHARD_BENCH_DOWNLOAD_ROUNDS sets the rounds (default 3).
func BenchmarkDownloadShard1GiB(b *testing.B) {
	rounds := 3
	if v := os.Getenv("VIDEOSHARD_BENCH_DOWNLOAD_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("VIDEOSHARD_BENCH_DOWNLOAD_ROUNDS=%q: want a positive integer", v)
		}
		rounds = n
	}
	root := filepath.Join(b.TempDir(), "store")
	meta := plantShard(b, root)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	timed := func(f func() error) time.Duration {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(meta.EncodedSize) / d.Seconds() / 1e6 }
	const mib = 1024.0 // KiB per MiB

	var refMB, dlMB, ratio, bulkRatio, defaultRatio, workerCPU, clientCPU, baseMiB, peakMiB, growMiB []float64
	for b.Loop() {
		for r := range rounds {
			w := startBenchWorker(b, root, "encoder: simulated\nworker_id: bench\n")
			bulk, err := grpc.NewClient(w.Addr, append([]grpc.DialOption{
				grpc.WithTransportCredentials(insecure.NewCredentials()),
			}, bulkDialOptions...)...)
			if err != nil {
				b.Fatal(err)
			}
			bulkClient := pb.NewVideoProcessingServiceClient(bulk)
			master, err := client.Dial(ctx, w.Addr, client.DialOptions{Insecure: true})
			if err != nil {
				b.Fatal(err)
			}
			pid := w.Cmd.Process.Pid
			base, err := procStatusKiB(pid, "VmRSS")
			if err != nil {
				b.Fatal(err)
			}
			if err := resetPeakRSS(pid); err != nil {
				b.Fatal(err)
			}
			// Each download beside a reference run of its own, before it
			// and after it in turn, so that a ratio compares runs that
			// shared the machine's state.
			var refs, downloads [3]time.Duration
			cpu0, err := procCPU(pid)
			if err != nil {
				b.Fatal(err)
			}
			var self0, self1 time.Duration
			for k, run := range [3]func() error{
				func() error { return masterDownload(ctx, master, meta) },
				func() error { return downloadShard(ctx, bulkClient, meta, true) },
				func() error { return downloadShard(ctx, w.Client, meta, false) },
			} {
				if (r+k)%2 == 0 {
					refs[k] = timed(func() error { return readShard(meta.ShardLocation, meta) })
				}
				self0 = selfCPU()
				downloads[k] = timed(run)
				self1 = selfCPU()
				if (r+k)%2 == 1 {
					refs[k] = timed(func() error { return readShard(meta.ShardLocation, meta) })
				}
				if k == 0 { // the worker's own cost of serving the figure's download
					cpu1, err := procCPU(pid)
					if err != nil {
						b.Fatal(err)
					}
					workerCPU = append(workerCPU, (cpu1 - cpu0).Seconds())
					clientCPU = append(clientCPU, (self1 - self0).Seconds())
				}
			}
			peak, err := procStatusKiB(pid, "VmHWM")
			if err != nil {
				b.Fatal(err)
			}
			bulk.Close()
			master.Close()
			w.Stop()

			ref, dl := refs[0], downloads[0]
			bulkRatio = append(bulkRatio, refs[1].Seconds()/downloads[1].Seconds())
			defaultRatio = append(defaultRatio, refs[2].Seconds()/downloads[2].Seconds())
			refMB = append(refMB, mbps(ref))
			dlMB = append(dlMB, mbps(dl))
			ratio = append(ratio, ref.Seconds()/dl.Seconds())
			baseMiB = append(baseMiB, float64(base)/mib)
			peakMiB = append(peakMiB, float64(peak)/mib)
			growMiB = append(growMiB, float64(peak-base)/mib)
		}
	}
	// One line per figure, rounds across (a benchmark's log keeps 10 lines).
	for _, f := range []struct {
		label string
		xs    []float64
	}{
		{"DownloadShard MB/s", dlMB}, {"read+sha256 MB/s", refMB}, {"download/ref", ratio},
		{"gRPC codec bulk/ref", bulkRatio}, {"gRPC defaults/ref", defaultRatio},
		{"worker CPU s", workerCPU}, {"client CPU s", clientCPU},
		{"RSS before MiB", baseMiB}, {"RSS peak MiB", peakMiB}, {"RSS growth MiB", growMiB},
	} {
		var sb strings.Builder
		for _, x := range f.xs {
			fmt.Fprintf(&sb, " %.2f", x)
		}
		b.Logf("%-20s%s | median %.2f", f.label+":", sb.String(), benchMedian(f.xs))
	}
	b.ReportMetric(float64(len(dlMB)), "rounds")
	b.ReportMetric(benchMedian(dlMB), "download-MB/s")
	b.ReportMetric(benchMedian(refMB), "ref-MB/s")
	b.ReportMetric(benchMedian(ratio), "download/ref")
	b.ReportMetric(slices.Min(ratio), "download/ref-min")
	b.ReportMetric(slices.Max(ratio), "download/ref-max")
	b.ReportMetric(benchMedian(bulkRatio), "stock-bulk/ref")
	b.ReportMetric(benchMedian(defaultRatio), "default-client/ref")
	b.ReportMetric(benchMedian(workerCPU), "worker-cpu-s")
	b.ReportMetric(benchMedian(clientCPU), "client-cpu-s")
	b.ReportMetric(benchMedian(baseMiB), "rss-base-MiB")
	b.ReportMetric(benchMedian(peakMiB), "rss-peak-MiB")
	b.ReportMetric(benchMedian(growMiB), "rss-growth-MiB")
	b.ReportMetric(slices.Max(growMiB), "rss-growth-max-MiB")
}
