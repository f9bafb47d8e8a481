package master_test

import (
	"context"
	"os"
	"testing"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
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
