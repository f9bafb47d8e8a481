package master

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rebalance defaults.
const (
	DefaultTolerance = 0.10
	DefaultMaxMoves  = 10000
)

// RebalanceConfig configures Rebalance.
type RebalanceConfig struct {
	// Job gives the workers (Job.Dispatch.Workers, at least two), their
	// connection settings and the state directory whose chunk maps are
	// kept in step with the moves.
	Job JobConfig
	// Tolerance is how far from the mean each worker's stored bytes may
	// stay, as a fraction of the mean (DefaultTolerance when 0).
	Tolerance float64
	// MaxMoves bounds the moves of one run (DefaultMaxMoves when 0).
	MaxMoves int
}

// Move is one shard moved.
type Move struct {
	VideoID string `json:"video_id"`
	Chunk   int    `json:"chunk"`
	From    string `json:"from"`
	To      string `json:"to"`
	Bytes   int64  `json:"bytes"`
	// Mapped is whether a chunk map lists the chunk (and was updated).
	Mapped bool   `json:"mapped"`
	Error  string `json:"error,omitempty"`
}

// RebalanceReport is what Rebalance did.
type RebalanceReport struct {
	Before, After map[string]int64 // stored bytes by worker
	Moves         []Move
	Balanced      bool   // every worker within the tolerance of the mean
	Stopped       string `json:",omitempty"` // why it stopped short of balance
}

// shardRef is a shard a worker lists.
type shardRef struct {
	video    string
	chunk    int
	size     int64
	checksum string
}

// Rebalance moves shards from the workers storing the most bytes
// (store_bytes from their health, or their listing's sum when they report
// none) to those storing the least until every
// worker is within the tolerance of the mean. The shards are those the
// workers list (ListShards), so chunks no chunk map names move too. A move
// copies the shard onto the target peer to peer (ReplicateShard), checks
// the copy's checksum against the chunk map's (the listing's for a chunk
// no map names), records the copy in place of the source's in the chunk
// map and saves it, and only then deletes the source's: no chunk ever has
// fewer good copies than before. A move that would put two copies of a
// chunk in fewer zones is not made.
func Rebalance(ctx context.Context, cfg RebalanceConfig) (RebalanceReport, error) {
	job := cfg.Job.withDefaults()
	tol := cfg.Tolerance
	setDefaultValue(&tol, DefaultTolerance)
	maxMoves := cfg.MaxMoves
	setDefaultValue(&maxMoves, DefaultMaxMoves)
	rep := RebalanceReport{Before: map[string]int64{}, After: map[string]int64{}}
	f := newFarm(ctx, job.Dispatch.Dial)
	defer f.close()
	for _, a := range job.Dispatch.Workers {
		f.add(a)
	}
	f.probe()
	workers := f.healthyAddrs()
	if len(workers) < 2 {
		return rep, fmt.Errorf("rebalance: %d healthy workers of %d: %w for two at least", len(workers), len(job.Dispatch.Workers), ErrNoHealthyWorker)
	}
	maps, err := loadMaps(job.StateDir)
	if err != nil {
		return rep, err
	}
	shards := map[string][]shardRef{}
	load := map[string]int64{}
	for _, w := range workers {
		list, err := f.client(w).List(ctx, "")
		if err != nil {
			return rep, fmt.Errorf("rebalance: %w", err)
		}
		var listed int64
		for _, v := range list.GetVideos() {
			for _, c := range v.GetChunks() {
				size := max(0, c.GetSizeBytes())
				shards[w] = append(shards[w], shardRef{video: v.GetVideoId(), chunk: int(c.GetChunkIndex()),
					size: size, checksum: c.GetChecksumSha256()})
				listed += size
			}
		}
		// An older worker reports no store figures: its listing's sum.
		load[w] = max(0, f.health(w).GetStoreBytes())
		if load[w] == 0 {
			load[w] = listed
		}
		rep.Before[w] = load[w]
	}
	holds := func(w string, video string, chunk int) bool {
		return slices.ContainsFunc(shards[w], func(s shardRef) bool { return s.video == video && s.chunk == chunk })
	}
	for len(rep.Moves) < maxMoves {
		var total int64
		for _, w := range workers {
			total += load[w]
		}
		mean := float64(total) / float64(len(workers))
		full := slices.MaxFunc(workers, func(a, b string) int { return cmpLoad(load, a, b) })
		empty := slices.MinFunc(workers, func(a, b string) int { return cmpLoad(load, a, b) })
		if float64(load[full])-mean <= tol*mean && mean-float64(load[empty]) <= tol*mean {
			rep.Balanced = true
			break
		}
		gap := load[full] - load[empty]
		// The largest shard that narrows the gap the most: a move of size
		// s leaves |gap - 2s|, narrower for any s < gap.
		var pick *shardRef
		for k := range shards[full] {
			s := &shards[full][k]
			if s.size <= 0 || s.size >= gap || holds(empty, s.video, s.chunk) || !maps.keepsZones(f, s.video, s.chunk, full, empty) {
				continue
			}
			if pick == nil || abs64(gap-2*s.size) < abs64(gap-2*pick.size) {
				pick = s
			}
		}
		if pick == nil {
			rep.Stopped = fmt.Sprintf("no shard on %s fits the gap to %s", full, empty)
			break
		}
		ref := *pick
		m := Move{VideoID: ref.video, Chunk: ref.chunk, From: full, To: empty, Bytes: ref.size}
		err := maps.move(ctx, f, job.StateDir, ref, full, empty, &m)
		if err != nil {
			m.Error = err.Error()
			rep.Moves = append(rep.Moves, m)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			// Not this shard again; the others may still move.
			shards[full] = slices.DeleteFunc(shards[full], func(s shardRef) bool { return s.video == ref.video && s.chunk == ref.chunk })
			continue
		}
		rep.Moves = append(rep.Moves, m)
		shards[full] = slices.DeleteFunc(shards[full], func(s shardRef) bool { return s.video == ref.video && s.chunk == ref.chunk })
		shards[empty] = append(shards[empty], ref)
		load[full] -= ref.size
		load[empty] += ref.size
	}
	if !rep.Balanced && rep.Stopped == "" {
		rep.Stopped = fmt.Sprintf("%d moves, the most one run makes", maxMoves)
	}
	for _, w := range workers {
		rep.After[w] = load[w]
	}
	var errs []error
	for _, m := range rep.Moves {
		if m.Error != "" {
			errs = append(errs, fmt.Errorf("move %s chunk %d from %s to %s: %s", m.VideoID, m.Chunk, m.From, m.To, m.Error))
		}
	}
	return rep, errors.Join(errs...)
}

func cmpLoad(load map[string]int64, a, b string) int {
	if load[a] != load[b] {
		if load[a] < load[b] {
			return -1
		}
		return 1
	}
	return strings.Compare(b, a) // ties: the fullest and the emptiest differ
}

func abs64(x int64) int64 { return max(x, -x) }

// stateMaps is every chunk map of a state directory, by video id.
type stateMaps map[string]*JobState

func loadMaps(dir string) (stateMaps, error) {
	m := stateMaps{}
	ids, err := chunkMaps(dir)
	if errors.Is(err, errNoStateDir) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		s, err := LoadState(dir, id)
		if err != nil {
			return nil, err
		}
		m[id] = s
	}
	return m, nil
}

// chunk returns the map and position of a chunk, if a map lists it done.
func (ms stateMaps) chunk(video string, idx int) (*JobState, int, bool) {
	s := ms[video]
	if s == nil {
		return nil, 0, false
	}
	i, found := s.find(idx)
	if !found || !s.Chunks[i].Done {
		return nil, 0, false
	}
	return s, i, true
}

// keepsZones reports whether moving the chunk's copy from one worker to
// another keeps its copies in as many zones.
func (ms stateMaps) keepsZones(f *farm, video string, idx int, from, to string) bool {
	s, i, ok := ms.chunk(video, idx)
	if !ok {
		return true
	}
	zones := func(copies []Replica) int {
		set := map[string]bool{}
		for _, r := range copies {
			set[f.domain(r.Worker).Zone] = true
		}
		return len(set)
	}
	before := s.Chunks[i].Copies()
	after := slices.Clone(before)
	for k := range after {
		if after[k].Worker == from {
			after[k].Worker = to
		}
	}
	return zones(after) >= zones(before)
}

// move copies ref from one worker to another, verifies the copy, records
// it in the chunk map (saved) in place of the source's, and deletes the
// source's.
func (ms stateMaps) move(ctx context.Context, f *farm, dir string, ref shardRef, from, to string, m *Move) error {
	want := ChunkState{Index: ref.chunk, Checksum: ref.checksum, EncodedSize: ref.size}
	s, i, mapped := ms.chunk(ref.video, ref.chunk)
	if mapped {
		want = s.Chunks[i]
		if !strings.EqualFold(want.Checksum, ref.checksum) {
			return fmt.Errorf("%s holds another version than the chunk map's", from)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, DefaultChunkTimeout)
	r, err := replicateChunk(cctx, f.client(to), from, to, ref.video, want)
	cancel()
	if err != nil {
		return err
	}
	if mapped {
		m.Mapped = true
		if s.Chunks[i].holds(from) {
			s.addReplica(i, r)
			s.dropReplica(i, from)
		} else {
			s.addReplica(i, r) // the map did not know the source's copy
		}
		if err := s.Save(dir); err != nil {
			return fmt.Errorf("the copy is made, the source's kept: %w", err)
		}
	}
	if _, err := f.client(from).DeleteShard(ctx, ref.video, int32(ref.chunk)); err != nil {
		return fmt.Errorf("copied, but the source's copy is left: %w", err)
	}
	return nil
}
