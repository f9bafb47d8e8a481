package master_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// Repair verifies every copy's bytes, deletes a corrupt one, drops a lost
// one, copies both chunks back to two copies, and encodes again from the
// input a chunk with no copy left.
func TestRepair(t *testing.T) {
	ws := []*testWorker{startWorker(t, workerOpts{MaxTasks: 2}), startWorker(t, workerOpts{MaxTasks: 2}), startWorker(t, workerOpts{MaxTasks: 2})}
	byAddr := map[string]*testWorker{}
	for _, w := range ws {
		byAddr[w.Addr] = w
	}
	dir := t.TempDir()
	cfg := replJob(t, dir, 2, ws...)
	if _, err := master.Encode(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	state, err := master.LoadState(cfg.StateDir, "repl")
	if err != nil {
		t.Fatal(err)
	}
	// Chunk 0: one copy corrupt. Chunk 1: one copy gone. Chunk 2: both gone.
	m, _ := byAddr[state.Chunks[0].Copies()[0].Worker].Store.Lookup("repl", 0)
	corrupt(t, m.ShardLocation)
	del := func(addr string, idx int) {
		c, err := client.Dial(context.Background(), addr, client.DialOptions{Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.DeleteShard(context.Background(), "repl", int32(idx)); err != nil {
			t.Fatal(err)
		}
	}
	del(state.Chunks[1].Copies()[1].Worker, 1)
	for _, r := range state.Chunks[2].Copies() {
		del(r.Worker, 2)
	}

	rcfg := cfg
	rcfg.Replicas = 0 // the chunk map's
	rep, err := master.Repair(context.Background(), master.RepairConfig{Job: rcfg})
	if err != nil {
		t.Fatalf("repair: %v\n%+v", err, rep)
	}
	found := map[string]int{}
	for _, f := range rep.Findings {
		found[f.Found]++
	}
	if found[master.FoundCorrupt] != 1 || found[master.FoundMissing] != 3 || found[master.FoundNoCopy] != 1 {
		t.Fatalf("findings %+v", rep.Findings)
	}
	after, err := master.LoadState(cfg.StateDir, "repl")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range after.Chunks {
		if len(c.Copies()) != 2 {
			t.Fatalf("chunk %d after repair: %+v", c.Index, c.Copies())
		}
		for _, r := range c.Copies() {
			if !holds(byAddr[r.Worker], "repl", c.Index, c.Checksum) {
				t.Fatalf("chunk %d: %s does not hold the copy the map records", c.Index, r.Worker)
			}
		}
	}
	// A second repair finds every copy good.
	rep, err = master.Repair(context.Background(), master.RepairConfig{Job: rcfg, All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Found != master.FoundOK {
			t.Fatalf("second repair found %+v", f)
		}
	}
}

// Rebalance moves bytes onto an empty worker, keeps every chunk's copies
// and leaves the video reconstructible.
func TestRebalance(t *testing.T) {
	w1, w2 := startWorker(t, workerOpts{MaxTasks: 2}), startWorker(t, workerOpts{MaxTasks: 2})
	dir := t.TempDir()
	cfg := replJob(t, dir, 1, w1, w2)
	if _, err := master.Encode(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	w3 := startWorker(t, workerOpts{MaxTasks: 2})
	rcfg := cfg
	rcfg.Dispatch.Workers = []string{w1.Addr, w2.Addr, w3.Addr}
	rep, err := master.Rebalance(context.Background(), master.RebalanceConfig{Job: rcfg, Tolerance: 0.5})
	if err != nil {
		t.Fatalf("rebalance: %v\n%+v", err, rep)
	}
	if rep.After[w3.Addr] == 0 || len(rep.Moves) == 0 {
		t.Fatalf("nothing moved to the empty worker: %+v", rep)
	}
	state, err := master.LoadState(cfg.StateDir, "repl")
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]*testWorker{w1.Addr: w1, w2.Addr: w2, w3.Addr: w3}
	for _, c := range state.Chunks {
		if len(c.Copies()) != 1 || !holds(byAddr[c.Worker], "repl", c.Index, c.Checksum) {
			t.Fatalf("chunk %d after rebalance: %+v", c.Index, c.Copies())
		}
	}
	for _, m := range rep.Moves {
		if _, err := byAddr[m.From].Store.Lookup(m.VideoID, m.Chunk); err == nil {
			t.Fatalf("move %+v left the source's copy", m)
		}
	}
	rcfg.Output = dir + "/again.mkv"
	if _, err := master.Reconstruct(context.Background(), rcfg); err != nil {
		t.Fatal(err)
	}
	same(t, cfg.Output, rcfg.Output)
	os.Remove(rcfg.Output)
}

// streams counts the ReplicateShard calls in flight on a set of workers;
// with barrier > 0 the first calls wait until barrier of them are in
// flight at once.
type streams struct {
	mu        sync.Mutex
	cond      *sync.Cond
	cur, peak int
	barrier   int
	released  bool
}

func newStreams(barrier int) *streams {
	s := &streams{barrier: barrier}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *streams) hooks() *hooks {
	return &hooks{
		Replicate: func(*pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.cur++
			s.peak = max(s.peak, s.cur)
			if s.cur >= s.barrier {
				s.released = true
				s.cond.Broadcast()
			}
			for !s.released {
				s.cond.Wait()
			}
			return nil, nil
		},
		Replicated: func(*pb.ReplicateShardRequest) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.cur--
		},
	}
}

// Repair copies the same chunks with one stream and with three, never
// more at once than --parallel, and spreads them over the empty workers
// instead of piling them on the one its probe found emptiest.
func TestRepair_Parallel(t *testing.T) {
	copied := map[int][]int{} // parallel -> chunk indexes copied
	for _, parallel := range []int{1, 3} {
		t.Run(strconv.Itoa(parallel), func(t *testing.T) {
			st := newStreams(parallel)
			src := startWorker(t, workerOpts{MaxTasks: 2})
			var targets []*testWorker
			for range 3 {
				targets = append(targets, startWorker(t, workerOpts{MaxTasks: 2, Hooks: st.hooks()}))
			}
			dir := t.TempDir()
			cfg := replJob(t, dir, 1, src)
			if _, err := master.Encode(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			rcfg := cfg
			rcfg.Replicas = 2
			rcfg.Dispatch.Workers = addrsOf(append(targets, src)...)
			rep, err := master.Repair(context.Background(), master.RepairConfig{Job: rcfg, Parallel: parallel})
			if err != nil {
				t.Fatalf("repair: %v\n%+v", err, rep)
			}
			state, err := master.LoadState(cfg.StateDir, "repl")
			if err != nil {
				t.Fatal(err)
			}
			onto := map[string]bool{}
			var bytes int64
			for _, c := range state.Chunks {
				copies := c.Copies()
				if len(copies) != 2 || copies[0].Worker != src.Addr || copies[1].From != src.Addr {
					t.Fatalf("chunk %d after repair: %+v", c.Index, copies)
				}
				onto[copies[1].Worker] = true
				copied[parallel] = append(copied[parallel], c.Index)
				bytes += c.EncodedSize
			}
			if len(onto) != len(state.Chunks) {
				t.Fatalf("%d chunks copied onto %d of 3 empty workers: %v", len(state.Chunks), len(onto), onto)
			}
			if rep.Copied != len(state.Chunks) || rep.CopiedBytes != bytes {
				t.Fatalf("report: %d copies of %d bytes, want %d of %d", rep.Copied, rep.CopiedBytes, len(state.Chunks), bytes)
			}
			if st.peak != parallel {
				t.Fatalf("%d copies at once at most, want %d", st.peak, parallel)
			}
		})
	}
	if !slices.Equal(copied[1], copied[3]) || len(copied[1]) < 3 {
		t.Fatalf("chunks copied with one stream %v, with three %v", copied[1], copied[3])
	}
}

func TestRepair_ErrNegativeParallel(t *testing.T) {
	if _, err := master.Repair(context.Background(), master.RepairConfig{Parallel: -1}); err == nil {
		t.Fatal("Parallel -1 accepted")
	}
}
