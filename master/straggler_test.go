package master_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/videoshard/videoshard/master"
	pb "github.com/videoshard/videoshard/proto"
)

// hangOn is a Process hook that takes call number hang and never answers
// it, until the master gives up on it; cancelled counts those given up on.
func hangOn(hang int, cancelled *atomic.Int32) func(context.Context, int, *pb.ProcessChunkRequest,
	func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
	return func(ctx context.Context, n int, _ *pb.ProcessChunkRequest,
		next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
		if n != hang {
			return next()
		}
		<-ctx.Done()
		cancelled.Add(1)
		return nil, ctx.Err()
	}
}

// stragglerConfig is fastConfig with a straggler floor far below its
// ChunkTimeout (20 s), so that a chunk done in time was taken back as a
// straggler, not timed out.
func stragglerConfig(tb testing.TB, addrs ...string) master.DispatchConfig {
	cfg := fastConfig(tb, addrs...)
	cfg.StragglerMin = 300 * time.Millisecond
	return cfg
}

// TestDispatch_Straggler: a worker that takes a chunk and never answers
// loses it, once the job knows how long its chunks take, to another
// worker: without backoff, without the attempt counted, and without the
// worker leaving the rotation.
func TestDispatch_Straggler(t *testing.T) {
	var cancelled atomic.Int32
	stuck := startWorker(t, workerOpts{MaxTasks: 1, Delay: 10 * time.Millisecond,
		Hooks: &hooks{Process: hangOn(3, &cancelled)}})
	good := startWorker(t, workerOpts{MaxTasks: 1, Delay: 10 * time.Millisecond})
	d := newDispatcher(t, stragglerConfig(t, stuck.Addr, good.Addr))
	chunks := writeChunks(t, 12, smallChunk)
	rec := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // under ChunkTimeout
	defer cancel()
	if err := d.Run(ctx, "straggler", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	checkResults(t, chunks, got, addrsOf(stuck, good))
	if n := cancelled.Load(); n != 1 {
		t.Errorf("the stuck worker saw %d of its calls cancelled, want 1", n)
	}
	retries := rec.Events(master.EventRetry, stuck.Addr)
	if len(retries) != 1 {
		t.Fatalf("%d retries on the stuck worker, want 1: %v", len(retries), retries)
	}
	ev := retries[0]
	if !errors.Is(ev.Err, master.ErrStraggler) || ev.Delay != 0 {
		t.Errorf("retry of chunk %d: error %v, delay %v; want ErrStraggler, no delay", ev.Chunk, ev.Err, ev.Delay)
	}
	if r := got[ev.Chunk]; r.Worker != good.Addr || r.Attempts != 1 {
		t.Errorf("straggled chunk %d done on %s in %d attempts; want %s, 1 (a straggle is not counted)",
			ev.Chunk, r.Worker, r.Attempts, good.Addr)
	}
	if downs := rec.Events(master.EventWorkerDown, stuck.Addr); len(downs) != 0 {
		t.Errorf("the stuck worker left the rotation: %v", downs)
	}
	if s := d.Stats()[stuck.Addr]; !s.Up || s.Failures != 1 {
		t.Errorf("stuck worker's stats %+v, want up with 1 failure", s)
	}
}

// TestDispatch_StragglerAlone: with no other worker, the straggled chunk
// goes back to the same one, and is done there.
func TestDispatch_StragglerAlone(t *testing.T) {
	var cancelled atomic.Int32
	w := startWorker(t, workerOpts{MaxTasks: 1, Delay: 10 * time.Millisecond,
		Hooks: &hooks{Process: hangOn(4, &cancelled)}})
	d := newDispatcher(t, stragglerConfig(t, w.Addr))
	chunks := writeChunks(t, 6, smallChunk)
	rec := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.Run(ctx, "alone", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	checkResults(t, chunks, got, []string{w.Addr})
	retries := rec.Events(master.EventRetry, w.Addr)
	if len(retries) != 1 || !errors.Is(retries[0].Err, master.ErrStraggler) || cancelled.Load() != 1 {
		t.Fatalf("retries %v, %d calls cancelled; want one straggler", retries, cancelled.Load())
	}
	if r := got[3]; r.Attempts != 1 {
		t.Errorf("chunk 3 (the 4th call) done in %d attempts, want 1", r.Attempts)
	}
}

// TestDispatch_NoStragglerBeforeSamples: before the job has stored enough
// chunks to know their pace, a slow chunk is left to ChunkTimeout.
func TestDispatch_NoStragglerBeforeSamples(t *testing.T) {
	slow := startWorker(t, workerOpts{MaxTasks: 4, Hooks: &hooks{Process: func(ctx context.Context, n int,
		_ *pb.ProcessChunkRequest, next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
		time.Sleep(600 * time.Millisecond) // twice StragglerMin, each
		return next()
	}}})
	d := newDispatcher(t, stragglerConfig(t, slow.Addr))
	chunks := writeChunks(t, 2, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "slow", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), []string{slow.Addr})
	if retries := rec.Events(master.EventRetry, ""); len(retries) != 0 {
		t.Errorf("retries %v: no chunk can straggle before %d are stored", retries, 3)
	}
}

// TestDispatch_StragglerDespiteASlowWord: a worker that says one encode
// took 1e9 s, then takes a chunk and never answers, loses it like any
// other: its word lifts no limit past ChunkTimeout.
func TestDispatch_StragglerDespiteASlowWord(t *testing.T) {
	var cancelled atomic.Int32
	hostile := startWorker(t, workerOpts{MaxTasks: 1, Delay: 10 * time.Millisecond,
		Hooks: &hooks{Process: func(ctx context.Context, n int, req *pb.ProcessChunkRequest,
			next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
			switch n {
			case 1:
				resp, err := next()
				if err == nil && resp.GetMetadata() != nil {
					resp.Metadata.EncodeTimeSeconds = 1e9
				}
				return resp, err
			case 3:
				return hangOn(3, &cancelled)(ctx, n, req, next)
			}
			return next()
		}}})
	good := startWorker(t, workerOpts{MaxTasks: 1, Delay: 10 * time.Millisecond})
	d := newDispatcher(t, stragglerConfig(t, hostile.Addr, good.Addr))
	chunks := writeChunks(t, 12, smallChunk)
	rec := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // under ChunkTimeout
	defer cancel()
	if err := d.Run(ctx, "slowword", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatalf("%v (%d calls cancelled)", err, cancelled.Load())
	}
	checkResults(t, chunks, rec.Results(), addrsOf(hostile, good))
	if n := cancelled.Load(); n != 1 {
		t.Errorf("%d calls taken back, want 1", n)
	}
}

// TestDispatch_SlowHonestWorkerGetsThrough: beside a worker 12 times
// faster, an honest worker's chunks look late until it has stored one of
// its own; each straggle in a row doubles its limit, so it stores one
// after a straggle or two, and is judged by its own pace from then on.
func TestDispatch_SlowHonestWorkerGetsThrough(t *testing.T) {
	fast := startWorker(t, workerOpts{MaxTasks: 1, Delay: 100 * time.Millisecond})
	slow := startWorker(t, workerOpts{MaxTasks: 1, Delay: 1200 * time.Millisecond})
	d := newDispatcher(t, stragglerConfig(t, fast.Addr, slow.Addr)) // StragglerMin 300 ms
	chunks := writeChunks(t, 60, smallChunk)
	rec := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.Run(ctx, "slowhonest", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), addrsOf(fast, slow))
	var straggles []time.Time
	for _, ev := range rec.Events(master.EventRetry, slow.Addr) {
		if errors.Is(ev.Err, master.ErrStraggler) {
			straggles = append(straggles, ev.Time)
		}
	}
	var stored []time.Time
	for _, ev := range rec.Events(master.EventDone, slow.Addr) {
		stored = append(stored, ev.Time)
	}
	if len(stored) < 2 || len(straggles) > 2 {
		t.Fatalf("the slow worker stored %d chunks, had %d taken back; want 2 or more, at most 2", len(stored), len(straggles))
	}
	for _, at := range straggles {
		if at.After(stored[0]) {
			t.Errorf("a chunk of the slow worker's was taken back after it had stored one")
		}
	}
}
