package master

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/videoshard/videoshard/master/client"
)

// Replica is one verified copy of a chunk: the worker holding it and the
// shard_location that worker gave it. Every copy has the chunk's checksum.
type Replica struct {
	Worker   string `json:"worker"`
	Location string `json:"location,omitempty"`
	// From is the worker it was copied from; empty for the encoding
	// worker's copy.
	From string `json:"from,omitempty"`
}

// Copies returns the chunk's copies: Replicas, or, in a map written
// before replication, the one copy on Worker. Nil when the chunk has none.
func (c ChunkState) Copies() []Replica {
	if len(c.Replicas) > 0 {
		return c.Replicas
	}
	if c.Worker == "" {
		return nil
	}
	return []Replica{{Worker: c.Worker, Location: c.Location}}
}

// holds reports whether worker holds a copy of c.
func (c ChunkState) holds(worker string) bool {
	return slices.ContainsFunc(c.Copies(), func(r Replica) bool { return r.Worker == worker })
}

// addReplica records a verified copy of chunk i, once per worker.
func (s *JobState) addReplica(i int, r Replica) {
	c := &s.Chunks[i]
	if c.holds(r.Worker) {
		return
	}
	c.Replicas = append(slices.Clone(c.Copies()), r)
	s.markChanged(i)
}

// dropReplica forgets chunk i's copy on worker (lost, corrupt or moved).
// When it was the first copy, the next one becomes the chunk's Worker and
// Location; with none left the chunk is forgotten (not done).
func (s *JobState) dropReplica(i int, worker string) {
	c := &s.Chunks[i]
	copies := slices.DeleteFunc(slices.Clone(c.Copies()), func(r Replica) bool { return r.Worker == worker })
	if len(copies) == 0 {
		s.forget(i)
		return
	}
	c.Replicas = copies
	c.Worker, c.Location = copies[0].Worker, copies[0].Location
	s.markChanged(i)
}

// replicasWanted is the copies a job with JobState.Replicas keeps.
func (s *JobState) replicasWanted() int { return max(s.Replicas, 1) }

// readPicker orders a chunk's copies for reading: the least loaded worker
// first, its load the tasks its health reported plus the reads this
// picker has in flight on it; a worker that did not answer comes last.
type readPicker struct {
	mu   sync.Mutex
	load map[string]int
}

// readProbeTimeout bounds the health checks that learn the loads.
const readProbeTimeout = 5 * time.Second

func newReadPicker(ctx context.Context, clients map[string]*client.Client) *readPicker {
	p := &readPicker{load: map[string]int{}}
	_ = forEachWorker(ctx, clients, readProbeTimeout, func(ctx context.Context, c *client.Client) error {
		n := math.MaxInt32 // unreachable or unhealthy: last
		if h, err := c.Health(ctx); err == nil && h.GetIsHealthy() {
			n = int(max(0, h.GetActiveTasks()))
		}
		for addr, cc := range clients {
			if cc == c {
				p.mu.Lock()
				p.load[addr] = n
				p.mu.Unlock()
			}
		}
		return nil
	})
	return p
}

// order returns copies, the least loaded worker's first (stable).
func (p *readPicker) order(copies []Replica) []Replica {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(copies)
	slices.SortStableFunc(out, func(a, b Replica) int { return cmp.Compare(p.load[a.Worker], p.load[b.Worker]) })
	return out
}

// start counts a read on worker until the returned func is called.
func (p *readPicker) start(worker string) (done func()) {
	p.mu.Lock()
	p.load[worker]++
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.load[worker]--
		p.mu.Unlock()
	}
}
