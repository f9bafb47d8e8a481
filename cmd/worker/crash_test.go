package main

// The crash harness: the real worker binary, under concurrent writes, is
// killed with SIGKILL at a random moment, restarted on the same store, and
// the store is checked. `make crashtest` runs it for 60 cycles; plain
// `go test` runs a few (VIDEOSHARD_CRASH_CYCLES sets the number).

import (
	"context"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/e2etest"
	pb "github.com/videoshard/videoshard/proto"
)

const (
	crashDefaultCycles  = 8
	crashDefaultClients = 8
	crashMinChunk       = 1 << 10
	crashMaxChunk       = 2 << 20
	crashRPCTimeout     = 30 * time.Second
	crashSimRatio       = 0.5
	crashSimBlock       = 64 << 10
)

// crashVideos and crashChunks span the chunks the clients write: few
// enough that most writes replace an existing chunk.
var crashVideos = []string{"crash-a.mp4", "crash_b", "crash.c-0"}

const crashChunks = 8

// crashConfig is the worker's config for every cycle. The queue admits all
// clients, so a refusal is an error, not load shedding.
const crashConfig = `encoder: simulated
simulated: {ratio: 0.5}
limits: {max_concurrent_tasks: 4, max_queued_tasks: 64, max_unary_chunks: 68, max_uploads: 68}
shutdown_grace: 5s
`

type crashKey struct {
	video string
	chunk int32
}

func (k crashKey) String() string { return k.video + "/" + strconv.Itoa(int(k.chunk)) }

// crashChunk is what the test knows about one chunk. Writes to a chunk are
// serialised by mu, so "the latest acknowledged version" is well defined;
// after a failed write the chunk is not written again until the next cycle
// (the failed request may still be running in the worker until the kill).
type crashChunk struct {
	mu sync.Mutex
	// acked is the checksum of the version the store must hold ("" when
	// the chunk must not exist or has never been written).
	acked string
	// maybe are checksums of writes whose outcome is unknown (the RPC
	// failed, most often because the worker was killed). Any one of them,
	// or acked, is acceptable; if acked is "" so is no chunk at all.
	maybe []string
	// blocked is set after a failed write, until the next verification.
	blocked bool
	// ackedNow is set when a write was acknowledged since the last
	// verification.
	ackedNow bool
}

type crashTotals struct {
	writes, acked, unknown, overload    atomic.Int64
	checks, chunksVerified, resolvedNew atomic.Int64
	lost, corrupted, tempAfterRestart   atomic.Int64
	tempAfterKill                       int
	cyclesWithLeftovers                 int
	orphans                             int
	quarantined                         int
}

func crashEnvInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// TestCrashKill9 kills the worker with SIGKILL while clients write, again
// and again on one store, and after each restart checks that every chunk
// whose ProcessChunk or UploadChunk returned OK is listed with the
// acknowledged checksum (or with a later write whose outcome the kill made
// unknown), that every listed chunk's bytes match its metadata, and that
// no temporary file survived the restart.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash harness: skipped in -short")
	}
	cycles := crashEnvInt(t, "VIDEOSHARD_CRASH_CYCLES", crashDefaultCycles)
	clients := crashEnvInt(t, "VIDEOSHARD_CRASH_CLIENTS", crashDefaultClients)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIDEOSHARD_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("VIDEOSHARD_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("crash harness: %d cycles, %d clients, seed %d (VIDEOSHARD_CRASH_SEED fixes the random choices; timing still varies)", cycles, clients, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))

	root := filepath.Join(t.TempDir(), "store")
	model := map[crashKey]*crashChunk{}
	var keys []crashKey
	for _, v := range crashVideos {
		for c := range int32(crashChunks) {
			k := crashKey{v, c}
			model[k] = &crashChunk{}
			keys = append(keys, k)
		}
	}
	var tot crashTotals
	start := time.Now()

	w := e2etest.StartWorker(t, workerBinary, root, "", crashConfig)
	for cycle := 1; cycle <= cycles && !t.Failed(); cycle++ {
		delay := time.Duration(50+rng.IntN(451)) * time.Millisecond
		var killed atomic.Bool
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			cs := rng.Uint64()
			go func() {
				defer wg.Done()
				crashClient(ctx, t, w, c, cs, keys, model, &killed, &tot)
			}()
		}
		time.Sleep(delay)
		select {
		case <-w.Done:
			t.Fatalf("cycle %d: the worker exited on its own: %v\n%s", cycle, w.Err, w.Logs)
		default:
		}
		// No new writes from here on; those in flight (they have their own
		// contexts) meet the kill.
		killed.Store(true)
		stop()
		w.Kill()
		crashWait(t, &wg, 2*crashRPCTimeout, "clients after the kill")

		leftovers := crashScratch(t, root)
		tot.tempAfterKill += len(leftovers)
		if len(leftovers) > 0 {
			tot.cyclesWithLeftovers++
		}

		w = e2etest.StartWorker(t, workerBinary, root, "", crashConfig)
		crashVerify(t, cycle, w, model, &tot)
		if t.Failed() {
			t.Logf("worker log of cycle %d:\n%s", cycle, w.Logs)
		}
	}
	t.Logf("crash harness: %d cycles in %v: %d writes, %d acknowledged, %d unknown (in flight at a kill; %d of them found committed), %d refused as overload",
		cycles, time.Since(start).Round(time.Millisecond), tot.writes.Load(), tot.acked.Load(), tot.unknown.Load(), tot.resolvedNew.Load(), tot.overload.Load())
	t.Logf("crash harness: %d chunk checks after restarts (%d of them a chunk acknowledged in that cycle): lost=%d corrupted/wrong=%d; scratch files left by kills: %d in %d cycles, surviving a restart: %d; orphan shards at the end (a new chunk killed between its two renames; never listed): %d, entries in .quarantine: %d",
		tot.checks.Load(), tot.chunksVerified.Load(), tot.lost.Load(), tot.corrupted.Load(),
		tot.tempAfterKill, tot.cyclesWithLeftovers, tot.tempAfterRestart.Load(), tot.orphans, tot.quarantined)
}

// crashClient writes random chunks until ctx ends.
func crashClient(ctx context.Context, t *testing.T, w *e2etest.Worker, id int, seed uint64, keys []crashKey,
	model map[crashKey]*crashChunk, killed *atomic.Bool, tot *crashTotals) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	for ctx.Err() == nil {
		k, st := crashPick(rng, keys, model)
		if st == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		data := make([]byte, crashMinChunk+rng.IntN(crashMaxChunk-crashMinChunk+1))
		crashFill(rng, data)
		out := crashSimulated(data, crashSimRatio)
		want := sha(out)

		tot.writes.Add(1)
		rctx, cancel := context.WithTimeout(context.Background(), crashRPCTimeout)
		var resp *pb.ProcessChunkResponse
		var err error
		how := "ProcessChunk"
		if rng.IntN(2) == 0 {
			resp, err = w.Client.ProcessChunk(rctx, &pb.ProcessChunkRequest{VideoId: k.video, ChunkIndex: k.chunk, ChunkData: data})
		} else {
			how = "UploadChunk"
			frame := 16<<10 + rng.IntN(1<<20)
			resp, err = upload(rctx, w.Client, &pb.UploadHeader{VideoId: k.video, ChunkIndex: k.chunk, TotalSize: int64(len(data))}, data, frame)
		}
		cancel()
		switch {
		case err == nil:
			if resp.GetChecksumSha256() != want || resp.GetEncodedSize() != int64(len(out)) || resp.GetOriginalSize() != int64(len(data)) {
				t.Errorf("%s %v: OK with checksum %s, %d of %d bytes; want %s, %d of %d",
					how, k, resp.GetChecksumSha256(), resp.GetEncodedSize(), resp.GetOriginalSize(), want, len(out), len(data))
			}
			tot.acked.Add(1)
			st.acked, st.maybe, st.ackedNow = want, nil, true
		default:
			if status.Code(err) == codes.ResourceExhausted {
				tot.overload.Add(1)
			} else if !killed.Load() {
				// Returned before the kill was even decided: a real failure.
				t.Errorf("%s %v (%d bytes) failed with the worker up: %v", how, k, len(data), err)
			}
			tot.unknown.Add(1)
			st.maybe = append(st.maybe, want)
			st.blocked = true
		}
		st.mu.Unlock()
	}
}

// crashPick returns a random chunk no other client is writing and that has
// had no failed write this cycle, locked; nil if it found none quickly.
func crashPick(rng *rand.Rand, keys []crashKey, model map[crashKey]*crashChunk) (crashKey, *crashChunk) {
	for range 2 * len(keys) {
		k := keys[rng.IntN(len(keys))]
		st := model[k]
		if !st.mu.TryLock() {
			continue
		}
		if st.blocked {
			st.mu.Unlock()
			continue
		}
		return k, st
	}
	return crashKey{}, nil
}

// crashVerify checks the restarted worker's store against the model, then
// makes what it found the model's new baseline.
func crashVerify(t *testing.T, cycle int, w *e2etest.Worker, model map[crashKey]*crashChunk, tot *crashTotals) {
	t.Helper()
	// First, before anything could write a probe into .tmp: start-up must
	// have removed every scratch file the kill left behind.
	if left := crashScratch(t, w.Root); len(left) > 0 {
		time.Sleep(200 * time.Millisecond)
		if again := crashScratch(t, w.Root); len(again) > 0 {
			left = crashIntersect(left, again)
			tot.tempAfterRestart.Add(int64(len(left)))
			t.Errorf("cycle %d: temporary files survived the restart: %v", cycle, left)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
	if err != nil {
		t.Fatalf("cycle %d: ListShards after restart: %v\n%s", cycle, err, w.Logs)
	}
	realRoot, err := filepath.EvalSymlinks(w.Root) // the worker reports resolved paths
	if err != nil {
		t.Fatal(err)
	}
	listed := map[crashKey]*pb.ChunkInfo{}
	for _, v := range list.GetVideos() {
		for _, c := range v.GetChunks() {
			listed[crashKey{v.GetVideoId(), c.GetChunkIndex()}] = c
		}
	}
	for k, info := range listed {
		st, ok := model[k]
		if !ok {
			t.Errorf("cycle %d: %v is listed but was never written", cycle, k)
			continue
		}
		if want := filepath.Join(realRoot, k.video, "chunk_"+strconv.Itoa(int(k.chunk))+".shard"); info.GetShardLocation() != want {
			t.Errorf("cycle %d: %v listed at %s, want %s", cycle, k, info.GetShardLocation(), want)
		}
		sum := info.GetChecksumSha256()
		switch {
		case sum == st.acked:
		case slices.Contains(st.maybe, sum):
			tot.resolvedNew.Add(1)
		default:
			tot.corrupted.Add(1)
			t.Errorf("cycle %d: WRONG VERSION %v is listed with checksum %s; acknowledged %q, unknown-outcome writes %v",
				cycle, k, sum, st.acked, st.maybe)
		}
		crashReadBack(ctx, t, cycle, w, k, info, tot)
		tot.checks.Add(1)
		if st.ackedNow && sum == st.acked {
			tot.chunksVerified.Add(1)
		}
	}
	for k, st := range model {
		info, ok := listed[k]
		if !ok && st.acked != "" {
			tot.lost.Add(1)
			t.Errorf("cycle %d: LOST %v: acknowledged with checksum %s, not listed after restart (unknown-outcome writes %v)",
				cycle, k, st.acked, st.maybe)
		}
		// What the store holds now is the baseline for the next cycle.
		st.acked, st.maybe, st.blocked, st.ackedNow = "", nil, false, false
		if ok {
			st.acked = info.GetChecksumSha256()
		}
	}
	tot.orphans = crashOrphans(t, w.Root, listed)
	quarantined, _ := os.ReadDir(filepath.Join(w.Root, ".quarantine"))
	tot.quarantined = len(quarantined)
}

// crashReadBack reads a listed chunk both ways and checks its bytes.
func crashReadBack(ctx context.Context, t *testing.T, cycle int, w *e2etest.Worker, k crashKey, info *pb.ChunkInfo, tot *crashTotals) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, crashRPCTimeout)
	defer cancel()
	idx := k.chunk
	got, err := w.Client.GetShard(rctx, &pb.GetShardRequest{VideoId: k.video, ChunkIndex: &idx})
	if err != nil {
		tot.corrupted.Add(1)
		t.Errorf("cycle %d: GetShard %v: %v", cycle, k, err)
		return
	}
	if s := sha(got.GetShardData()); s != info.GetChecksumSha256() || int64(len(got.GetShardData())) != info.GetSizeBytes() ||
		got.GetMetadata().GetChecksumSha256() != info.GetChecksumSha256() {
		tot.corrupted.Add(1)
		t.Errorf("cycle %d: CORRUPTED %v: GetShard gave %d bytes with sha %s (metadata %s); listed %d bytes with %s",
			cycle, k, len(got.GetShardData()), s, got.GetMetadata().GetChecksumSha256(), info.GetSizeBytes(), info.GetChecksumSha256())
	}
	meta, data, err := download(rctx, w.Client, &pb.GetShardRequest{ShardLocation: info.GetShardLocation()})
	if err != nil {
		tot.corrupted.Add(1)
		t.Errorf("cycle %d: DownloadShard %v: %v", cycle, k, err)
		return
	}
	if sha(data) != info.GetChecksumSha256() || meta.GetChecksumSha256() != info.GetChecksumSha256() {
		tot.corrupted.Add(1)
		t.Errorf("cycle %d: CORRUPTED %v: DownloadShard gave sha %s (metadata %s), listed %s",
			cycle, k, sha(data), meta.GetChecksumSha256(), info.GetChecksumSha256())
	}
}

// crashScratch lists what under root is scratch: names with ".tmp-" or
// ".bak-" (interrupted commits) and anything inside .tmp/.
func crashScratch(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		name := d.Name()
		if strings.Contains(name, ".tmp-") || strings.Contains(name, ".bak-") ||
			strings.HasPrefix(rel, ".tmp"+string(filepath.Separator)) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	sort.Strings(out)
	return out
}

// crashOrphans counts shard files that are not listed: a new chunk whose
// shard was renamed into place but whose metadata was not, when the kill
// came. They are never served; a later write of the chunk replaces them.
func crashOrphans(t *testing.T, root string, listed map[crashKey]*pb.ChunkInfo) int {
	t.Helper()
	n := 0
	for _, v := range crashVideos {
		entries, err := os.ReadDir(filepath.Join(root, v))
		if err != nil {
			continue
		}
		for _, e := range entries {
			s, ok := strings.CutPrefix(e.Name(), "chunk_")
			if !ok {
				continue
			}
			s, ok = strings.CutSuffix(s, ".shard")
			c, err := strconv.Atoi(s)
			if !ok || err != nil {
				continue
			}
			if _, ok := listed[crashKey{v, int32(c)}]; !ok {
				n++
			}
		}
	}
	return n
}

// crashSimulated is what the simulated encoder makes of in: for each
// 64 KiB block, its first round(ratio*len) bytes. It is written from the
// encoder's documentation, not its code, to serve as an oracle.
func crashSimulated(in []byte, ratio float64) []byte {
	out := make([]byte, 0, int(float64(len(in))*ratio)+len(in)/crashSimBlock+1)
	for off := 0; off < len(in); off += crashSimBlock {
		block := in[off:min(off+crashSimBlock, len(in))]
		out = append(out, block[:int(math.Round(ratio*float64(len(block))))]...)
	}
	return out
}

func crashFill(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

func crashWait(t *testing.T, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish in %v", what, d)
	}
}

func crashIntersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
