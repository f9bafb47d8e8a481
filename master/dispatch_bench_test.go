package master_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
)

// Benchmark shape: 32 workers, one encode slot each, 200 ms per chunk, 640
// chunks of 4 KiB. The ideal makespan is 640*0.2s/32 = 4 s.
const (
	benchWorkers = 32
	benchChunks  = 640
	benchDelay   = 200 * time.Millisecond
	benchIdeal   = benchChunks * benchDelay / benchWorkers
)

// BenchmarkDispatch measures Run's makespan against the ideal, and the CPU
// and memory it takes.
//
// The workers run in this process, so the CPU figures are the whole
// process: the master, the 32 workers' gRPC servers and stores (each chunk
// committed with fsyncs), and the loopback traffic. The "baseline"
// sub-benchmark sends the same 640 chunks over the same connections with
// no Dispatcher: one goroutine per worker, 20 chunks each, in order. The
// Dispatcher's own cost is the difference between the two.
//
// Metrics per op (one op = one video of 640 chunks):
//
//	makespan_s  wall time of the run
//	ratio       makespan over the ideal 4 s (target <= 1.1)
//	cpu_s       user+system CPU of the process during the run (getrusage)
//	heap_MiB    heap in use at the end of the run, before any GC
//	alloc_MiB   bytes allocated during the run (process-wide)
//	live_MiB    heap still reachable after the run and a GC (process-wide)
//	gap_ms      mean time a worker sat idle between two of its chunks, as
//	            its server sees it: the master's reaction time plus the
//	            round trip, without the worker's own per-chunk work
//
// Run with: go test -run '^$' -bench BenchmarkDispatch -benchtime 1x -count 3 ./master/
func BenchmarkDispatch(b *testing.B) {
	var addrs []string
	var workers []*testWorker
	for range benchWorkers {
		w := startWorker(b, workerOpts{MaxTasks: 1, Delay: benchDelay})
		addrs = append(addrs, w.Addr)
		workers = append(workers, w)
	}
	chunks := writeChunks(b, benchChunks, func(int) int { return 4 << 10 })
	tasks := tasksOf(chunks)
	cfg := master.DispatchConfig{
		Workers: addrs,
		Dial:    client.DialOptions{Insecure: true},
	}
	d, err := master.NewDispatcher(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	clients := d.Clients()
	// Learn every worker's unary limit once, outside the measurements.
	for _, c := range clients {
		if _, err := c.UnaryLimit(context.Background()); err != nil {
			b.Fatal(err)
		}
	}

	run := 0
	b.Run("dispatcher", func(b *testing.B) {
		for b.Loop() {
			run++
			videoID := fmt.Sprintf("bench-%d", run)
			done := 0
			measure(b, workers, func() {
				err := d.Run(context.Background(), videoID, tasks, func(master.ChunkResult) error {
					done++
					return nil
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
			})
			if done != benchChunks {
				b.Fatalf("%d chunks done", done)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			run++
			videoID := fmt.Sprintf("bench-%d", run)
			measure(b, workers, func() {
				var wg sync.WaitGroup
				for i, addr := range addrs {
					c := clients[addr]
					wg.Go(func() {
						for j := i; j < benchChunks; j += benchWorkers {
							t := tasks[j]
							if _, err := c.ProcessFile(context.Background(), videoID, int32(t.Index), t.Path, nil); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	})
}

// measure runs fn and reports its wall time, CPU and memory.
func measure(b *testing.B, workers []*testWorker, fn func()) {
	b.Helper()
	for _, w := range workers {
		w.TakeIdle()
	}
	runtime.GC()
	var before, after syscall.Rusage
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	fn()
	elapsed := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	runtime.ReadMemStats(&m1)
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	b.ReportMetric(elapsed.Seconds(), "makespan_s")
	b.ReportMetric(elapsed.Seconds()/benchIdeal.Seconds(), "ratio")
	b.ReportMetric(cpu.Seconds(), "cpu_s")
	b.ReportMetric(float64(m1.HeapInuse)/(1<<20), "heap_MiB")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/(1<<20), "alloc_MiB")
	var idle time.Duration
	gaps := 0
	for _, w := range workers {
		i, n := w.TakeIdle()
		idle += i
		gaps += n
	}
	if gaps > 0 {
		b.ReportMetric(float64(idle.Microseconds())/float64(gaps)/1000, "gap_ms")
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.HeapAlloc)/(1<<20), "live_MiB")
}
