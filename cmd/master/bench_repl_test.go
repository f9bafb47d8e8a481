package main

// The benchmark behind replication's figure: the same job with
// --replicas 2 and --replicas 1, side by side, on simulated workers. It
// needs workers that implement ReplicateShard.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkMasterReplicas runs `master encode --verify off` of a
// VIDEOSHARD_BENCH_REPL_MINUTES (default 4) minute 320x180 source, 2 s
// segments, across VIDEOSHARD_BENCH_REPL_WORKERS (default 4) simulated
// workers (one chunk at a time, 200 ms each), with --replicas 1 and 2
// alternately, VIDEOSHARD_BENCH_REPL_ROUNDS (default 5) rounds, and
// reports the median walls and their ratio (the target <= 1.10):
// copies are made worker to worker while the next chunks encode.
func BenchmarkMasterReplicas(b *testing.B) {
	minutes := mbenchEnvInt(b, "VIDEOSHARD_BENCH_REPL_MINUTES", 4)
	nworkers := mbenchEnvInt(b, "VIDEOSHARD_BENCH_REPL_WORKERS", 4)
	rounds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_REPL_ROUNDS", 5)
	dir := b.TempDir()
	src := farmSource(b, dir, minutes)
	_, workers := farmWorkers(b, nworkers, 200*time.Millisecond)
	walls := map[int][]float64{}
	for i := 0; i < b.N; i++ {
		for round := range rounds {
			for _, r := range []int{1, 2} {
				id := fmt.Sprintf("repl-%d-%d-%d", r, i, round)
				out := filepath.Join(dir, id+".mkv")
				run := mbenchMaster(b, "encode", "--workers", workers, "--segment-seconds", "2", "--verify", "off",
					"--replicas", fmt.Sprint(r), "--video-id", id, "--state-dir", filepath.Join(dir, "state"), "--timeout", "0",
					"--output", out, src)
				if r > 1 && !strings.Contains(run.stdout, "verified copies of every chunk") {
					b.Fatalf("--replicas %d did not reach every copy:\n%s", r, run.stdout)
				}
				walls[r] = append(walls[r], run.wall.Seconds())
				os.Remove(out)
			}
		}
	}
	one, two := mbenchMedian(walls[1]), mbenchMedian(walls[2])
	b.Logf("%d min source, %d workers: median wall %.2f s with --replicas 1, %.2f s with 2: %.3fx (walls %v and %v)",
		minutes, nworkers, one, two, two/one, walls[1], walls[2])
	b.ReportMetric(two/one, "wall-r2/r1")
}
