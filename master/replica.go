package master

import "slices"

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
