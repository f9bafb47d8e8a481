package master_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

func addrsOf(ws ...*testWorker) []string {
	addrs := make([]string, len(ws))
	for i, w := range ws {
		addrs[i] = w.Addr
	}
	return addrs
}

func smallChunk(int) int { return 4 << 10 }

// checkResults checks that every chunk is done once, with what the
// simulated encoder makes of it.
func checkResults(t *testing.T, chunks []chunkFile, got map[int]master.ChunkResult, workers []string) {
	t.Helper()
	if len(got) != len(chunks) {
		t.Fatalf("%d chunks done, want %d", len(got), len(chunks))
	}
	for _, c := range chunks {
		r, ok := got[c.Index]
		if !ok {
			t.Errorf("chunk %d not done", c.Index)
			continue
		}
		switch {
		case r.Index != c.Index:
			t.Errorf("chunk %d: result for %d", c.Index, r.Index)
		case !slices.Contains(workers, r.Worker):
			t.Errorf("chunk %d: worker %q not among %v", c.Index, r.Worker, workers)
		case r.Location == "":
			t.Errorf("chunk %d: no location", c.Index)
		case r.Checksum != c.wantSum:
			t.Errorf("chunk %d: checksum %s, want %s", c.Index, r.Checksum, c.wantSum)
		case r.OriginalSize != c.Size || r.EncodedSize != c.wantSize:
			t.Errorf("chunk %d: sizes %d -> %d, want %d -> %d", c.Index, r.OriginalSize, r.EncodedSize, c.Size, c.wantSize)
		case r.Encoder != pb.EncoderSimulated || r.MediaChecked:
			t.Errorf("chunk %d: encoder %q, media checked %v; want simulated, unchecked", c.Index, r.Encoder, r.MediaChecked)
		case r.Attempts < 1:
			t.Errorf("chunk %d: %d attempts", c.Index, r.Attempts)
		}
	}
}

// TestDispatch spreads 20 chunks, some streamed, over 3 workers with 2
// slots each.
func TestDispatch(t *testing.T) {
	var ws []*testWorker
	for range 3 {
		ws = append(ws, startWorker(t, workerOpts{MaxTasks: 2, Delay: 30 * time.Millisecond, MaxMessageBytes: 256 << 10}))
	}
	addrs := addrsOf(ws...)
	chunks := writeChunks(t, 20, func(i int) int {
		if i%5 == 0 {
			return 300 << 10 // over the unary limit: streamed
		}
		return 2<<10 + i*1000
	})
	d := newDispatcher(t, fastConfig(t, addrs...))
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "video.mp4", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	checkResults(t, chunks, got, addrs)
	for _, r := range got {
		if r.Attempts != 1 {
			t.Errorf("chunk %d took %d attempts", r.Index, r.Attempts)
		}
	}

	stats := d.Stats()
	totalStreams, sawFull := 0, false
	for _, w := range ws {
		calls, streams := w.Calls()
		totalStreams += streams
		if peak := w.Peak(); peak > 2 {
			t.Errorf("worker %s had %d chunks in flight, cap 2", w.Addr, peak)
		} else if peak == 2 {
			sawFull = true
		}
		if calls < 4 {
			t.Errorf("worker %s got %d of 20 chunks: not spread by load", w.Addr, calls)
		}
		s := stats[w.Addr]
		if !s.Up || s.Cap != 2 || s.Done != calls || s.Failures != 0 || s.InFlight != 0 {
			t.Errorf("stats of %s: %+v; want up, cap 2, %d done, no failures", w.Addr, s, calls)
		}
	}
	if !sawFull {
		t.Errorf("no worker ever had 2 chunks in flight")
	}
	if totalStreams != 4 {
		t.Errorf("%d streamed uploads, want 4", totalStreams)
	}
	if n := len(rec.Events(master.EventStarted, "")); n != 20 {
		t.Errorf("%d started events, want 20", n)
	}
	done := rec.Events(master.EventDone, "")
	if len(done) != 20 || done[len(done)-1].Done != 20 || done[len(done)-1].Total != 20 {
		t.Errorf("done events: %d, last %+v", len(done), done[len(done)-1])
	}

	// Every chunk is where the results say.
	s := &master.JobState{VideoID: "video.mp4"}
	for _, r := range got {
		s.Record(r)
	}
	confirmed, missing := d.ConfirmDone(context.Background(), s)
	if len(confirmed) != 20 || len(missing) != 0 {
		t.Errorf("ConfirmDone: %d confirmed, missing %v", len(confirmed), missing)
	}
}

// TestDispatch_CapFromHealth: with no PerWorkerCap each worker gets its
// reported max_concurrent_tasks, up to MaxReportedSlots (one that says
// 1000 is not sent every chunk at once); PerWorkerCap overrides it.
func TestDispatch_CapFromHealth(t *testing.T) {
	for _, perWorker := range []int{0, 1} {
		ws := []*testWorker{
			startWorker(t, workerOpts{MaxTasks: 1}),
			startWorker(t, workerOpts{MaxTasks: 2}),
			startWorker(t, workerOpts{MaxTasks: 3}),
			startWorker(t, workerOpts{MaxTasks: 1000}),
		}
		// Every chunk waits until all the slots are taken: the first
		// pass fills them at once, however slowly this machine runs it.
		slots := 1 + 2 + 3 + master.MaxReportedSlots
		if perWorker > 0 {
			slots = 4 * perWorker
		}
		fillSlots(t, slots, ws...)
		cfg := fastConfig(t, addrsOf(ws...)...)
		cfg.PerWorkerCap = perWorker
		d := newDispatcher(t, cfg)
		chunks := writeChunks(t, 24, smallChunk)
		rec := newRecorder(t)
		if err := d.Run(context.Background(), "caps", tasksOf(chunks), rec.onDone, nil); err != nil {
			t.Fatal(err)
		}
		checkResults(t, chunks, rec.Results(), addrsOf(ws...))
		for i, w := range ws {
			want := i + 1
			if i == 3 {
				want = master.MaxReportedSlots // not 1000
			}
			if perWorker > 0 {
				want = perWorker
			}
			// The first pass fills every slot at once, so the peak is the cap.
			if got := w.Peak(); got != want {
				t.Errorf("PerWorkerCap %d: worker %d peaked at %d in flight, want %d", perWorker, i, got, want)
			}
			if got := d.Stats()[w.Addr].Cap; got != want {
				t.Errorf("PerWorkerCap %d: worker %d cap %d, want %d", perWorker, i, got, want)
			}
		}
	}
}

// fillSlots makes each chunk RPC to ws wait, once it is in flight, until n
// are (or 10 s have passed, when the test then fails on its peaks); those
// after them do not wait.
func fillSlots(t *testing.T, n int, ws ...*testWorker) {
	var arrived atomic.Int32
	full := make(chan struct{})
	for _, w := range ws {
		w.OnChunk = func(int) {
			if arrived.Add(1) == int32(n) {
				close(full)
			}
			select {
			case <-full:
			case <-time.After(10 * time.Second):
			}
		}
	}
}

// TestDispatch_ActiveTasksLowerCap: tasks the worker runs for someone else
// at the probe leave fewer slots for us.
func TestDispatch_ActiveTasksLowerCap(t *testing.T) {
	w := startWorker(t, workerOpts{MaxTasks: 3, Delay: 20 * time.Millisecond, Hooks: &hooks{
		Health: func(h *pb.HealthCheckResponse) *pb.HealthCheckResponse {
			h.ActiveTasks = 2
			return h
		},
	}})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	chunks := writeChunks(t, 6, smallChunk)
	if err := d.Run(context.Background(), "busy", tasksOf(chunks), nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := d.Stats()[w.Addr].Cap; got != 1 {
		t.Errorf("cap %d, want 1 (3 slots, 2 busy)", got)
	}
	if got := w.Peak(); got != 1 {
		t.Errorf("peak %d in flight, want 1", got)
	}
}

// TestDispatch_SendAhead: once every slot is busy, each worker that takes
// streamed uploads is sent one chunk more, streamed, which waits in the
// worker for the slot: chunk RPCs in flight reach the cap + 1, encodes
// never pass the cap, and every chunk is stored once. A worker whose
// health says it takes no streamed upload never gets more than its cap.
func TestDispatch_SendAhead(t *testing.T) {
	ahead := startWorker(t, workerOpts{MaxTasks: 1, Delay: 30 * time.Millisecond})
	unary := startWorker(t, workerOpts{MaxTasks: 1, Delay: 30 * time.Millisecond, Hooks: &hooks{
		Health: func(h *pb.HealthCheckResponse) *pb.HealthCheckResponse {
			h.MaxChunkBytes = 0
			return h
		},
	}})
	cfg := fastConfig(t, ahead.Addr, unary.Addr)
	cfg.NoSendAhead = false
	d := newDispatcher(t, cfg)
	chunks := writeChunks(t, 16, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "ahead", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	checkResults(t, chunks, got, []string{ahead.Addr, unary.Addr})
	if peak := ahead.Peak(); peak != 2 {
		t.Errorf("the streaming worker had at most %d chunk RPCs in flight, want 2 (its slot and one sent ahead)", peak)
	}
	if peak := ahead.EncodePeak(); peak != 1 {
		t.Errorf("the streaming worker ran %d encodes at once, its slots are 1", peak)
	}
	if _, streams := ahead.Calls(); streams == 0 {
		t.Errorf("no chunk was streamed to the streaming worker: sent ahead as unary calls, which it refuses")
	}
	if peak := unary.Peak(); peak != 1 {
		t.Errorf("the worker without streamed uploads had %d chunk RPCs in flight, want its cap, 1", peak)
	}
	for _, r := range got {
		if r.Attempts != 1 {
			t.Errorf("chunk %d took %d attempts", r.Index, r.Attempts)
		}
	}
}

// TestDispatch_SendAheadRefused: a worker whose health offers streamed
// uploads but whose UploadChunk is Unimplemented (an older or lying
// worker) gets no chunk sent ahead after the first refusal; the refused
// chunk is sent again, its attempt not counted, and the job succeeds.
func TestDispatch_SendAheadRefused(t *testing.T) {
	old := startWorker(t, workerOpts{MaxTasks: 1, Delay: 30 * time.Millisecond, Hooks: &hooks{NoUploads: true}})
	cfg := fastConfig(t, old.Addr)
	cfg.NoSendAhead = false
	cfg.MaxAttempts = 1 // a counted refusal would fail the job
	d := newDispatcher(t, cfg)
	chunks := writeChunks(t, 8, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "refused", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), []string{old.Addr})
	if calls, streams := old.Calls(); streams != 1 || calls != len(chunks)+1 {
		t.Errorf("%d chunk RPCs, %d of them UploadChunk: want one refused upload and one unary call a chunk", calls, streams)
	}
}

// TestDispatch_RetryElsewhere: a worker failing its first chunks with
// Unavailable leaves the rotation, its chunks are done by the others, and
// it comes back once its probe succeeds.
func TestDispatch_RetryElsewhere(t *testing.T) {
	flaky := startWorker(t, workerOpts{MaxTasks: 2, Delay: 20 * time.Millisecond, Hooks: &hooks{
		Process: func(ctx context.Context, n int, req *pb.ProcessChunkRequest,
			next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
			if n <= 3 {
				return nil, status.Error(codes.Unavailable, "test: not now")
			}
			return next()
		},
	}})
	a := startWorker(t, workerOpts{MaxTasks: 2, Delay: 20 * time.Millisecond})
	b := startWorker(t, workerOpts{MaxTasks: 2, Delay: 20 * time.Millisecond})
	addrs := addrsOf(flaky, a, b)
	d := newDispatcher(t, fastConfig(t, addrs...))
	chunks := writeChunks(t, 30, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "flaky", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	checkResults(t, chunks, got, addrs)

	retries := rec.Events(master.EventRetry, flaky.Addr)
	if len(retries) != 3 {
		t.Fatalf("%d retries after failures on the flaky worker, want 3", len(retries))
	}
	for _, ev := range retries {
		if status.Code(ev.Err) != codes.Unavailable {
			t.Errorf("retry error %v, want Unavailable", ev.Err)
		}
		if r := got[ev.Chunk]; r.Worker == flaky.Addr || r.Attempts < 2 {
			t.Errorf("chunk %d failed on the flaky worker, then done on %s in %d attempts; want another worker, 2+ attempts",
				ev.Chunk, r.Worker, r.Attempts)
		}
	}
	if len(rec.Events(master.EventWorkerDown, flaky.Addr)) == 0 || len(rec.Events(master.EventWorkerUp, flaky.Addr)) == 0 {
		t.Errorf("the flaky worker did not go down and come back")
	}
	if s := d.Stats()[flaky.Addr]; s.Failures != 3 || !s.Up {
		t.Errorf("flaky stats %+v, want 3 failures and up", s)
	}
}

// TestDispatch_AllDownWaits: when the only worker leaves the rotation, the
// chunks wait for it to come back.
func TestDispatch_AllDownWaits(t *testing.T) {
	var sickUntil atomic.Int64 // unix nanoseconds
	h := &hooks{
		Process: func(ctx context.Context, n int, req *pb.ProcessChunkRequest,
			next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
			if n == 1 {
				sickUntil.Store(time.Now().Add(300 * time.Millisecond).UnixNano())
				return nil, status.Error(codes.Unavailable, "test: restarting")
			}
			return next()
		},
		Health: func(resp *pb.HealthCheckResponse) *pb.HealthCheckResponse {
			if time.Now().UnixNano() < sickUntil.Load() {
				resp.IsHealthy, resp.Message = false, "unhealthy: test: restarting"
			}
			return resp
		},
	}
	w := startWorker(t, workerOpts{MaxTasks: 1, Hooks: h})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	chunks := writeChunks(t, 3, smallChunk)
	rec := newRecorder(t)
	start := time.Now()
	if err := d.Run(context.Background(), "waits", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("done in %v, before the worker came back", elapsed)
	}
	checkResults(t, chunks, rec.Results(), []string{w.Addr})
	if len(rec.Events(master.EventWorkerDown, w.Addr)) != 1 || len(rec.Events(master.EventWorkerUp, w.Addr)) != 1 {
		t.Errorf("want one worker-down and one worker-up event")
	}
}

// TestDispatch_WorkerKilled: a worker stopped with chunks in flight; the job
// completes on the others.
func TestDispatch_WorkerKilled(t *testing.T) {
	victim := startWorker(t, workerOpts{MaxTasks: 2, Delay: 100 * time.Millisecond})
	a := startWorker(t, workerOpts{MaxTasks: 2, Delay: 100 * time.Millisecond})
	b := startWorker(t, workerOpts{MaxTasks: 2, Delay: 100 * time.Millisecond})
	victim.OnChunk = func(n int) {
		if n == 3 { // two done, the third (and maybe the fourth) in flight
			go func() {
				time.Sleep(30 * time.Millisecond)
				victim.Kill()
			}()
		}
	}
	addrs := addrsOf(victim, a, b)
	d := newDispatcher(t, fastConfig(t, addrs...))
	chunks := writeChunks(t, 24, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "killed", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), addrs)
	if s := d.Stats()[victim.Addr]; s.Up || s.Failures == 0 || s.Done > 3 {
		t.Errorf("victim stats %+v, want down, failures, at most 3 done", s)
	}
	if len(rec.Events(master.EventWorkerDown, victim.Addr)) != 1 {
		t.Errorf("no worker-down event for the victim")
	}
	if len(rec.Events(master.EventRetry, victim.Addr)) == 0 {
		t.Errorf("no chunk was retried after the kill")
	}
}

// TestDispatch_DeadWorkers: listed workers that never answer (one accepts
// and stays silent, one refuses connections) stay out of rotation.
func TestDispatch_DeadWorkers(t *testing.T) {
	silent, closed := silentWorker(t), closedPort(t)
	a := startWorker(t, workerOpts{MaxTasks: 2, Delay: 10 * time.Millisecond})
	b := startWorker(t, workerOpts{MaxTasks: 2, Delay: 10 * time.Millisecond})
	cfg := fastConfig(t, silent, a.Addr, closed, b.Addr)
	cfg.ProbeTimeout = time.Second // generous: a loaded CI machine must not fail the live ones
	d := newDispatcher(t, cfg)
	chunks := writeChunks(t, 12, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "dead", tasksOf(chunks), rec.onDone, nil); err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), []string{a.Addr, b.Addr})
	stats := d.Stats()
	for _, addr := range []string{silent, closed} {
		if s := stats[addr]; s.Up || s.Done != 0 || s.LastError == "" {
			t.Errorf("dead worker %s: %+v; want down with an error", addr, s)
		}
	}
}

func TestNewDispatcher_ErrNoHealthyWorker(t *testing.T) {
	silent, closed := silentWorker(t), closedPort(t)
	draining := startWorker(t, workerOpts{Hooks: &hooks{
		Health: func(h *pb.HealthCheckResponse) *pb.HealthCheckResponse {
			h.IsHealthy, h.Message = false, "unhealthy: draining: shutting down"
			return h
		},
	}})
	cfg := fastConfig(t, silent, closed, draining.Addr)
	cfg.ProbeTimeout = time.Second
	start := time.Now()
	d, err := master.NewDispatcher(context.Background(), cfg)
	if err == nil {
		d.Close()
		t.Fatal("NewDispatcher succeeded with no healthy worker")
	}
	if !errors.Is(err, master.ErrNoHealthyWorker) {
		t.Errorf("error %v does not wrap ErrNoHealthyWorker", err)
	}
	for _, want := range []string{silent, closed, draining.Addr, "draining: shutting down"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if elapsed := time.Since(start); elapsed > 3*cfg.ProbeTimeout {
		t.Errorf("took %v; the probes run in parallel, each within ProbeTimeout", elapsed)
	}
}

// refuse answers InvalidArgument for chunk 5 and encodes the others slowly.
func refuse(ctx context.Context, n int, req *pb.ProcessChunkRequest,
	next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
	if req.GetChunkIndex() == 5 {
		return nil, status.Error(codes.InvalidArgument, "test: cannot decode chunk 5: moov atom not found")
	}
	return next()
}

// TestDispatch_InvalidArgument: a refused chunk stops the job at once,
// with the worker's message, and cancels the chunks in flight.
func TestDispatch_InvalidArgument(t *testing.T) {
	a := startWorker(t, workerOpts{MaxTasks: 4, Delay: 10 * time.Second, Hooks: &hooks{Process: refuse}})
	b := startWorker(t, workerOpts{MaxTasks: 4, Delay: 10 * time.Second, Hooks: &hooks{Process: refuse}})
	d := newDispatcher(t, fastConfig(t, a.Addr, b.Addr))
	chunks := writeChunks(t, 8, smallChunk)
	rec := newRecorder(t)
	start := time.Now()
	err := d.Run(context.Background(), "refused", tasksOf(chunks), rec.onDone, nil)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Run took %v to give up", elapsed)
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "moov atom not found") {
		t.Fatalf("error %v, want InvalidArgument with the worker's message", err)
	}
	var ce *master.ChunkError
	if !errors.As(err, &ce) || ce.Index != 5 || !ce.Permanent || ce.Attempts != 1 {
		t.Errorf("error %#v, want a permanent ChunkError for chunk 5 after 1 attempt", ce)
	}
	if n := len(rec.Results()); n != 0 {
		t.Errorf("%d chunks reported done", n)
	}
	for _, w := range []*testWorker{a, b} {
		if s := d.Stats()[w.Addr]; s.InFlight != 0 {
			t.Errorf("%s still has %d in flight", w.Addr, s.InFlight)
		}
	}
}

// TestDispatch_MissingFile: a chunk file that cannot be read stops the job.
func TestDispatch_MissingFile(t *testing.T) {
	w := startWorker(t, workerOpts{MaxTasks: 2})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	chunks := writeChunks(t, 2, smallChunk)
	os.Remove(chunks[1].Path)
	err := d.Run(context.Background(), "missing", tasksOf(chunks), nil, nil)
	var ce *master.ChunkError
	if !errors.As(err, &ce) || ce.Index != 1 || !ce.Permanent || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want a permanent ChunkError for chunk 1 wrapping ErrNotExist", err)
	}
}

// withFrames gives every task frames pictures, as a media chunk has.
func withFrames(tasks []master.ChunkTask, frames int64) []master.ChunkTask {
	for i := range tasks {
		tasks[i].Frames = frames
	}
	return tasks
}

// ffmpegHealth makes a worker's health say it encodes with ffmpeg, as the
// chunks asFFmpeg answers say.
func ffmpegHealth(resp *pb.HealthCheckResponse) *pb.HealthCheckResponse {
	resp.Encoder = pb.EncoderFFmpeg
	return resp
}

// asFFmpeg makes a worker answer like an ffmpeg worker whose shards have
// frames frames (with ffmpegHealth).
func asFFmpeg(frames int64) func(context.Context, int, *pb.ProcessChunkRequest,
	func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
	return func(ctx context.Context, n int, req *pb.ProcessChunkRequest,
		next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
		resp, err := next()
		if err != nil {
			return nil, err
		}
		resp.Metadata.Encoder = pb.EncoderFFmpeg
		resp.Metadata.VideoCodec = "h264"
		resp.Metadata.FrameCount = frames
		return resp, nil
	}
}

// TestDispatch_FrameMismatch: shards with the wrong frame count are retried
// elsewhere; those with the right one are media-checked.
func TestDispatch_FrameMismatch(t *testing.T) {
	liar := startWorker(t, workerOpts{MaxTasks: 2, Delay: 10 * time.Millisecond, Hooks: &hooks{Health: ffmpegHealth, Process: asFFmpeg(99)}})
	honest := startWorker(t, workerOpts{MaxTasks: 2, Delay: 10 * time.Millisecond, Hooks: &hooks{Health: ffmpegHealth, Process: asFFmpeg(100)}})
	d := newDispatcher(t, fastConfig(t, liar.Addr, honest.Addr))
	chunks := writeChunks(t, 10, smallChunk)
	tasks := withFrames(tasksOf(chunks), 100)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "frames", tasks, rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	if len(got) != 10 {
		t.Fatalf("%d chunks done, want 10", len(got))
	}
	for _, r := range got {
		if r.Worker != honest.Addr || !r.MediaChecked || r.Frames != 100 || r.Encoder != pb.EncoderFFmpeg {
			t.Errorf("chunk %d: %+v; want done on the honest worker, media checked, 100 frames", r.Index, r)
		}
	}
	retries := rec.Events(master.EventRetry, liar.Addr)
	if len(retries) == 0 {
		t.Fatal("no chunk was retried after a frame mismatch")
	}
	for _, ev := range retries {
		if !errors.Is(ev.Err, master.ErrFrameMismatch) {
			t.Errorf("retry error %v, want ErrFrameMismatch", ev.Err)
		}
		if got[ev.Chunk].Attempts != 2 {
			t.Errorf("chunk %d: %d attempts, want 2", ev.Chunk, got[ev.Chunk].Attempts)
		}
	}
	if s := d.Stats()[liar.Addr]; !s.Up {
		t.Errorf("a frame mismatch took the worker out of rotation")
	}
}

// TestDispatch_MaxAttempts: a chunk failing every attempt fails the job,
// naming the chunk and the errors.
func TestDispatch_MaxAttempts(t *testing.T) {
	w := startWorker(t, workerOpts{MaxTasks: 2, Hooks: &hooks{
		Process: func(ctx context.Context, n int, req *pb.ProcessChunkRequest,
			next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
			if req.GetChunkIndex() == 1 {
				return nil, status.Errorf(codes.Internal, "test: boom %d", n)
			}
			return next()
		},
	}})
	cfg := fastConfig(t, w.Addr)
	cfg.MaxAttempts = 3
	d := newDispatcher(t, cfg)
	chunks := writeChunks(t, 2, smallChunk)
	rec := newRecorder(t)
	err := d.Run(context.Background(), "doomed", tasksOf(chunks), rec.onDone, rec.onEvent)
	var ce *master.ChunkError
	if !errors.As(err, &ce) || ce.Index != 1 || ce.Permanent || ce.Attempts != 3 || len(ce.Errs) != 3 {
		t.Fatalf("error %v, want a ChunkError for chunk 1 after 3 attempts", err)
	}
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "chunk 1 failed 3 attempts") ||
		!strings.Contains(err.Error(), "test: boom") {
		t.Errorf("error %q, want Internal naming the chunk, the attempts and the errors", err)
	}
	if n := len(rec.Events(master.EventRetry, "")); n != 2 {
		t.Errorf("%d retry events, want 2", n)
	}
	for _, ev := range rec.Events(master.EventRetry, "") {
		if ev.Delay <= 0 || ev.Delay > 40*time.Millisecond {
			t.Errorf("retry delay %v outside (0, BackoffMax]", ev.Delay)
		}
	}
}

// TestDispatch_OnDoneError: onDone failing stops the job with its error.
func TestDispatch_OnDoneError(t *testing.T) {
	w := startWorker(t, workerOpts{MaxTasks: 2})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	chunks := writeChunks(t, 10, smallChunk)
	errFull := errors.New("test: disk full")
	calls := 0
	err := d.Run(context.Background(), "unsaved", tasksOf(chunks), func(master.ChunkResult) error {
		calls++
		if calls == 3 {
			return errFull
		}
		return nil
	}, nil)
	if !errors.Is(err, errFull) {
		t.Fatalf("error %v, want the onDone error", err)
	}
	if calls != 3 {
		t.Errorf("onDone called %d times, want 3 (none after it failed)", calls)
	}
}

// TestDispatch_Cancel: cancelling ctx stops the job promptly and leaves no
// goroutine behind once the Dispatcher is closed.
func TestDispatch_Cancel(t *testing.T) {
	a := startWorker(t, workerOpts{MaxTasks: 2, Delay: 10 * time.Second})
	b := startWorker(t, workerOpts{MaxTasks: 2, Delay: 10 * time.Second})
	chunks := writeChunks(t, 8, smallChunk)
	before := runtime.NumGoroutine()

	d, err := master.NewDispatcher(context.Background(), fastConfig(t, a.Addr, b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 8)
	errc := make(chan error, 1)
	go func() {
		errc <- d.Run(ctx, "cancelled", tasksOf(chunks), nil, func(ev master.Event) {
			if ev.Kind == master.EventStarted {
				started <- struct{}{}
			}
		})
	}()
	for range 4 {
		<-started
	}
	time.Sleep(50 * time.Millisecond) // let the uploads reach the workers
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of the cancel")
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDispatch_BadInput(t *testing.T) {
	w := startWorker(t, workerOpts{})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	chunks := writeChunks(t, 1, smallChunk)
	for name, run := range map[string]func() error{
		"video id": func() error { return d.Run(context.Background(), "../x", tasksOf(chunks), nil, nil) },
		"duplicate": func() error {
			return d.Run(context.Background(), "v", append(tasksOf(chunks), chunks[0].ChunkTask), nil, nil)
		},
		"negative": func() error {
			return d.Run(context.Background(), "v", []master.ChunkTask{{Index: -1, Path: chunks[0].Path}}, nil, nil)
		},
		"no path": func() error { return d.Run(context.Background(), "v", []master.ChunkTask{{Index: 0}}, nil, nil) },
	} {
		if err := run(); err == nil {
			t.Errorf("%s: Run accepted it", name)
		}
	}
	if err := d.Run(context.Background(), "v", nil, nil, nil); err != nil {
		t.Errorf("no tasks: %v", err)
	}
	for name, cfg := range map[string]master.DispatchConfig{
		"no workers": {},
		"twice":      {Workers: []string{w.Addr, w.Addr}},
		"negative":   {Workers: []string{w.Addr}, MaxAttempts: -1},
	} {
		if d, err := master.NewDispatcher(context.Background(), cfg); err == nil {
			d.Close()
			t.Errorf("%s: NewDispatcher accepted it", name)
		}
	}
	d.Close()
	if err := d.Run(context.Background(), "v", tasksOf(chunks), nil, nil); !errors.Is(err, master.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestConfirmDone keeps only the chunks their worker still holds with the
// recorded checksum.
func TestConfirmDone(t *testing.T) {
	a := startWorker(t, workerOpts{MaxTasks: 4})
	b := startWorker(t, workerOpts{MaxTasks: 4})
	empty := startWorker(t, workerOpts{})
	gone := closedPort(t)
	d := newDispatcher(t, fastConfig(t, a.Addr, b.Addr, empty.Addr))
	chunks := writeChunks(t, 8, smallChunk)
	s := &master.JobState{VideoID: "resume.mp4"}
	for _, c := range chunks {
		s.Chunks = append(s.Chunks, master.ChunkState{Index: c.Index, Size: c.Size})
	}
	s.Chunks = append(s.Chunks, master.ChunkState{Index: 8}, master.ChunkState{Index: 9}, master.ChunkState{Index: 10})
	err := d.Run(context.Background(), s.VideoID, tasksOf(chunks), func(r master.ChunkResult) error {
		s.Record(r)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Chunks[1].Checksum = strings.Repeat("0", 64) // other content
	s.Chunks[2].Checksum = strings.ToUpper(s.Chunks[2].Checksum)
	s.Chunks[8] = master.ChunkState{Index: 8, Done: true, Worker: a.Addr, Checksum: s.Chunks[0].Checksum} // never there
	s.Chunks[9] = master.ChunkState{Index: 9, Done: true, Worker: empty.Addr, Checksum: "ab"}             // worker has no such video
	s.Chunks[10] = master.ChunkState{Index: 10, Done: true, Worker: gone, Checksum: "ab"}                 // unknown worker

	clients := d.Clients()
	c, err := client.Dial(context.Background(), gone, client.DialOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	clients[gone] = c // listed, but nothing answers

	confirmed, missing := master.ConfirmDone(context.Background(), clients, s)
	if want := []int{0, 2, 3, 4, 5, 6, 7}; !slices.Equal(confirmed, want) {
		t.Errorf("confirmed %v, want %v", confirmed, want)
	}
	if want := []int{1, 8, 9, 10}; !slices.Equal(missing, want) {
		t.Errorf("missing %v, want %v", missing, want)
	}
	if got, want := s.Pending(), []int{1, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("pending after ConfirmDone %v, want %v", got, want)
	}
	if c := s.Chunks[1]; c.Worker != "" || c.Checksum != "" || c.Size != chunks[1].Size {
		t.Errorf("forgotten chunk keeps its result or loses its size: %+v", c)
	}

	delete(clients, gone)
	s.Chunks[10] = master.ChunkState{Index: 10, Done: true, Worker: gone, Checksum: "ab"}
	if _, missing := master.ConfirmDone(context.Background(), clients, s); !slices.Equal(missing, []int{10}) {
		t.Errorf("a worker not among the clients: missing %v, want [10]", missing)
	}
}

// TestDispatch_ConcurrentRuns: two videos at once share the workers' caps.
func TestDispatch_ConcurrentRuns(t *testing.T) {
	a := startWorker(t, workerOpts{MaxTasks: 1, Delay: 20 * time.Millisecond})
	b := startWorker(t, workerOpts{MaxTasks: 2, Delay: 20 * time.Millisecond})
	d := newDispatcher(t, fastConfig(t, a.Addr, b.Addr))
	first, second := writeChunks(t, 8, smallChunk), writeChunks(t, 8, smallChunk)
	errc := make(chan error, 2)
	for i, chunks := range [][]chunkFile{first, second} {
		go func() {
			errc <- d.Run(context.Background(), "video-"+string(rune('a'+i)), tasksOf(chunks), nil, nil)
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if a.Peak() != 1 || b.Peak() != 2 {
		t.Errorf("peaks %d and %d, want the caps 1 and 2", a.Peak(), b.Peak())
	}
	if s := d.Stats(); s[a.Addr].Done+s[b.Addr].Done != 16 {
		t.Errorf("stats %+v, want 16 chunks done", s)
	}
}

// withoutFeatures makes a worker answer health checks like one built
// before HealthCheckResponse.features: it would ignore a trim.
func withoutFeatures() *hooks {
	return &hooks{Health: func(h *pb.HealthCheckResponse) *pb.HealthCheckResponse {
		h.Features = nil
		return h
	}}
}

// TestDispatch_Trim: trimmed chunks, unary and streamed, reach the worker
// with their trim, and only the worker listing frame_trim; the other is
// reported as skipped and still takes untrimmed chunks.
func TestDispatch_Trim(t *testing.T) {
	trimmer := startWorker(t, workerOpts{MaxTasks: 2, Delay: 20 * time.Millisecond, MaxMessageBytes: 256 << 10})
	old := startWorker(t, workerOpts{MaxTasks: 2, Delay: 20 * time.Millisecond, MaxMessageBytes: 256 << 10, Hooks: withoutFeatures()})
	chunks := writeChunks(t, 12, func(i int) int {
		if i%3 == 0 {
			return 300 << 10 // over the unary limit: streamed
		}
		return 4 << 10
	})
	tasks := tasksOf(chunks)
	for i := range tasks {
		if i%2 == 0 {
			tasks[i].TrimStart, tasks[i].TrimFrames = int64(i), int64(10+i)
		}
	}
	d := newDispatcher(t, fastConfig(t, trimmer.Addr, old.Addr))
	if f := d.Stats()[trimmer.Addr].Features; !slices.Contains(f, pb.FeatureFrameTrim) {
		t.Fatalf("trimmer's features = %q", f)
	}
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "trimmed", tasks, rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	got := rec.Results()
	checkResults(t, chunks, got, []string{trimmer.Addr, old.Addr})
	usedOld := false
	for _, task := range tasks {
		r := got[task.Index]
		w := trimmer
		if r.Worker == old.Addr {
			w, usedOld = old, true
		}
		m, err := w.Store.Lookup("trimmed", task.Index)
		if err != nil {
			t.Fatal(err)
		}
		start, frames := m.EncoderSettings["trim_start"], m.EncoderSettings["trim_frames"]
		if task.TrimFrames == 0 {
			if start != "" || frames != "" {
				t.Errorf("chunk %d: untrimmed, but stored with trim %s/%s", task.Index, start, frames)
			}
			continue
		}
		if r.Worker != trimmer.Addr {
			t.Errorf("trimmed chunk %d sent to %s, which lacks frame_trim", task.Index, r.Worker)
		}
		if start != strconv.FormatInt(task.TrimStart, 10) || frames != strconv.FormatInt(task.TrimFrames, 10) {
			t.Errorf("chunk %d: stored with trim %q/%q, want %d/%d", task.Index, start, frames, task.TrimStart, task.TrimFrames)
		}
	}
	if !usedOld {
		t.Errorf("the worker without frame_trim got no chunk at all")
	}
	skipped := rec.Events(master.EventWorkerSkipped, old.Addr)
	if len(skipped) != 1 || !strings.Contains(skipped[0].Err.Error(), pb.FeatureFrameTrim) {
		t.Errorf("skipped events for the old worker: %+v, want one naming %q", skipped, pb.FeatureFrameTrim)
	}
	if n := len(rec.Events(master.EventWorkerSkipped, trimmer.Addr)); n != 0 {
		t.Errorf("%d skipped events for the worker that trims", n)
	}
}

// TestDispatch_TrimFrameCheck: a trimmed chunk's shard is checked against
// Frames, which callers set to TrimFrames.
func TestDispatch_TrimFrameCheck(t *testing.T) {
	w := startWorker(t, workerOpts{MaxTasks: 2, Hooks: &hooks{Health: ffmpegHealth, Process: asFFmpeg(25)}})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	chunks := writeChunks(t, 1, smallChunk)
	task := chunks[0].ChunkTask
	task.Frames, task.TrimStart, task.TrimFrames = 25, 7, 25
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "trim-frames", []master.ChunkTask{task}, rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	if r := rec.Results()[0]; !r.MediaChecked || r.Frames != 25 {
		t.Errorf("result %+v, want media checked with 25 frames", r)
	}
}

// TestDispatch_NoTrimWorker: with no worker listing frame_trim the job
// fails at once, saying why, and sends nothing.
func TestDispatch_NoTrimWorker(t *testing.T) {
	a := startWorker(t, workerOpts{Hooks: withoutFeatures()})
	b := startWorker(t, workerOpts{Hooks: withoutFeatures()})
	d := newDispatcher(t, fastConfig(t, a.Addr, b.Addr))
	tasks := tasksOf(writeChunks(t, 3, smallChunk))
	tasks[2].TrimStart, tasks[2].TrimFrames = 3, 40
	rec := newRecorder(t)
	err := d.Run(context.Background(), "no-trim", tasks, rec.onDone, rec.onEvent)
	if !errors.Is(err, master.ErrNoTrimWorker) {
		t.Fatalf("Run = %v, want ErrNoTrimWorker", err)
	}
	for _, want := range []string{"chunk 2", "pictures 3..42", `"frame_trim"`, a.Addr, b.Addr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, w := range []*testWorker{a, b} {
		if calls, _ := w.Calls(); calls != 0 {
			t.Errorf("worker %s got %d chunks", w.Addr, calls)
		}
	}
}

// TestDispatch_TrimWaitsForAnUnprobedWorker: a worker that never answered
// might trim once it does, so a trimmed chunk waits for it rather than
// failing the job.
func TestDispatch_TrimWaitsForAnUnprobedWorker(t *testing.T) {
	old := startWorker(t, workerOpts{Hooks: withoutFeatures()})
	d := newDispatcher(t, fastConfig(t, old.Addr, closedPort(t)))
	tasks := tasksOf(writeChunks(t, 2, smallChunk))
	tasks[1].TrimFrames = 10
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rec := newRecorder(t)
	err := d.Run(ctx, "waits", tasks, rec.onDone, rec.onEvent)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, master.ErrNoTrimWorker) {
		t.Fatalf("Run = %v, want DeadlineExceeded while waiting", err)
	}
	if got := rec.Results(); len(got) != 1 || got[0].Worker != old.Addr {
		t.Errorf("results %+v, want only the untrimmed chunk 0, on the old worker", got)
	}
}

func TestDispatch_BadTrim(t *testing.T) {
	w := startWorker(t, workerOpts{})
	d := newDispatcher(t, fastConfig(t, w.Addr))
	path := writeChunks(t, 1, smallChunk)[0].Path
	for name, task := range map[string]master.ChunkTask{
		"negative start":        {Path: path, TrimStart: -1, TrimFrames: 5},
		"negative frames":       {Path: path, TrimFrames: -5},
		"start without frames":  {Path: path, TrimStart: 4},
		"frames not the trim's": {Path: path, TrimFrames: 5, Frames: 6},
	} {
		if err := d.Run(context.Background(), "v", []master.ChunkTask{task}, nil, nil); err == nil {
			t.Errorf("%s: Run accepted %+v", name, task)
		}
	}
	if calls, _ := w.Calls(); calls != 0 {
		t.Errorf("worker got %d chunks", calls)
	}
}

// TestDispatch_Shun: a shunned worker (its downloads stalled) gets no chunk
// while another can take it, and still gets them when it is the only one
// left that can.
func TestDispatch_Shun(t *testing.T) {
	a := startWorker(t, workerOpts{MaxTasks: 2})
	b := startWorker(t, workerOpts{MaxTasks: 2})
	d := newDispatcher(t, fastConfig(t, a.Addr, b.Addr))
	d.Shun(a.Addr)
	chunks := writeChunks(t, 6, func(i int) int { return 2<<10 + i })
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "video.mp4", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.Results() {
		if r.Worker != b.Addr {
			t.Errorf("chunk %d went to %s, shunned", r.Index, r.Worker)
		}
	}
	d.Shun(b.Addr)
	rec = newRecorder(t)
	if err := d.Run(context.Background(), "video2.mp4", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatalf("every worker shunned: %v", err)
	}
	if n := len(rec.Results()); n != 6 {
		t.Errorf("%d chunks done with every worker shunned, want 6", n)
	}
}

// TestDispatch_SimulatedWorkerInAnFFmpegJob: a worker whose health and
// chunks say "simulated" (consistently, so no answer contradicts
// another) beside an ffmpeg worker is given no chunk: its shards would be
// joined as bytes, unchecked.
func TestDispatch_SimulatedWorkerInAnFFmpegJob(t *testing.T) {
	liar := startWorker(t, workerOpts{MaxTasks: 4, Delay: time.Millisecond})
	honest := startWorker(t, workerOpts{MaxTasks: 1, Delay: 10 * time.Millisecond, Hooks: &hooks{Health: ffmpegHealth, Process: asFFmpeg(100)}})
	d := newDispatcher(t, fastConfig(t, liar.Addr, honest.Addr))
	chunks := writeChunks(t, 6, smallChunk)
	tasks := withFrames(tasksOf(chunks), 100)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "mixed", tasks, rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.Results() {
		if r.Worker != honest.Addr || r.Encoder != pb.EncoderFFmpeg || !r.MediaChecked {
			t.Errorf("chunk %d: %+v; want it encoded by the ffmpeg worker, media checked", r.Index, r)
		}
	}
	if calls, streams := liar.Calls(); calls+streams != 0 {
		t.Errorf("the simulated worker got %d chunks, want none", calls+streams)
	}
}
