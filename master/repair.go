package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

// What repair finds of a copy.
const (
	FoundOK          = "ok"
	FoundMissing     = "missing"     // the worker does not hold it (NotFound)
	FoundCorrupt     = "corrupt"     // its bytes do not match the chunk map's checksum or size
	FoundUnreachable = "unreachable" // the worker did not answer: the copy is kept in the map, not counted
	FoundQuarantined = "quarantined" // a worker quarantined it, and no chunk map names it
	FoundNoCopy      = "no copy"     // the chunk has no good copy left
)

// RepairConfig configures Repair.
type RepairConfig struct {
	// Job gives the state directory, the video (Job.VideoID, unless All),
	// more workers to check and place copies on (Job.Dispatch.Workers),
	// the connection settings, and Job.Input: the source to encode again
	// the chunks with no good copy left ("": they are reported, not
	// encoded). Job.Replicas 0 means each chunk map's.
	Job JobConfig
	// All repairs every chunk map in the state directory, starting with
	// the videos whose chunks the workers report quarantined.
	All bool
	// Parallel is how many under-replicated chunks are copied at once
	// (DefaultRepairParallel when 0); a chunk's own copies are made one
	// after the other.
	Parallel int
}

// DefaultRepairParallel is RepairConfig.Parallel when it is 0: two
// worker-to-worker streams keep a survivor's disk and the loopback busy
// without one repair taking every worker's bandwidth.
const DefaultRepairParallel = 2

// RepairFinding is what repair found of one copy of a chunk (Worker empty:
// of the chunk) and what it did.
type RepairFinding struct {
	VideoID string `json:"video_id"`
	Chunk   int    `json:"chunk"`
	Worker  string `json:"worker,omitempty"`
	Found   string `json:"found"`
	Action  string `json:"action,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// RepairReport is what Repair checked and did.
type RepairReport struct {
	Videos int `json:"videos"`
	Chunks int `json:"chunks"`
	// Copies counts the copies checked, byte for byte.
	Copies   int             `json:"copies"`
	Findings []RepairFinding `json:"findings"`
	// Short names the chunks left with fewer good copies than wanted.
	Short []string `json:"short,omitempty"`
	// Copied counts the copies made onto other workers, CopiedBytes their
	// bytes, CopySeconds the wall time spent making them.
	Copied      int     `json:"copied"`
	CopiedBytes int64   `json:"copied_bytes"`
	CopySeconds float64 `json:"copy_seconds"`
}

// repairVerifyParallel is how many copies are downloaded and verified at once.
const repairVerifyParallel = 4

// Repair checks every copy of the chunks of a video's chunk map (or of
// every map, cfg.All) by downloading it and verifying its bytes against
// the map's checksum and size; removes corrupt copies (DeleteShard on
// their worker) and lost ones from the map; copies under-replicated chunks
// from a good copy onto healthy workers holding none, placed by failure
// domain; and encodes again from cfg.Job.Input the chunks with no good
// copy left. The chunk map is saved after every change. The error is
// ErrUnderReplicated when chunks are left short although there were
// healthy workers enough, or what stopped the repair.
func Repair(ctx context.Context, cfg RepairConfig) (RepairReport, error) {
	if cfg.Parallel < 0 {
		return RepairReport{}, fmt.Errorf("repair: Parallel %d is negative", cfg.Parallel)
	}
	setDefaultValue(&cfg.Parallel, DefaultRepairParallel)
	replicas := cfg.Job.Replicas
	job := cfg.Job.withDefaults()
	var rep RepairReport
	f := newFarm(ctx, job.Dispatch.Dial)
	defer f.close()
	for _, a := range job.Dispatch.Workers {
		f.add(a)
	}
	videos := []string{job.VideoID}
	if cfg.All {
		var err error
		if videos, err = chunkMaps(job.StateDir); err != nil {
			return rep, err
		}
		for _, v := range videos { // every worker any map names
			if s, err := LoadState(job.StateDir, v); err == nil {
				for _, c := range s.Chunks {
					for _, r := range c.Copies() {
						f.add(r.Worker)
					}
				}
			}
		}
		f.probe()
		videos = quarantinedFirst(f, videos, &rep)
	} else if err := chunkid.ValidateVideoID(job.VideoID); err != nil {
		return rep, fmt.Errorf("--video-id: %w", err)
	}
	var errs []error
	for _, v := range videos {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		jcfg := job
		jcfg.VideoID = v
		if err := repairVideo(ctx, jcfg, replicas, cfg.Parallel, f, &rep); err != nil {
			errs = append(errs, fmt.Errorf("repair %s: %w", v, err))
		}
	}
	if len(rep.Short) > 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrUnderReplicated, strings.Join(rep.Short, "; ")))
	}
	return rep, errors.Join(errs...)
}

// errNoStateDir: the state directory does not exist (no job ran there).
var errNoStateDir = errors.New("no state directory")

// chunkMaps lists the video ids of the chunk maps in dir.
func chunkMaps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errNoStateDir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	var ids []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && chunkid.ValidateVideoID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// quarantinedFirst orders videos with those the workers report
// quarantined chunks of first, and reports quarantined chunks of videos
// no chunk map names.
func quarantinedFirst(f *farm, videos []string, rep *RepairReport) []string {
	hot := map[string]bool{}
	for _, addr := range f.addrs() {
		for _, q := range f.health(addr).GetQuarantinedChunks() {
			v := q.GetVideoId()
			if slices.Contains(videos, v) {
				hot[v] = true
				continue
			}
			rep.Findings = append(rep.Findings, RepairFinding{VideoID: v, Chunk: int(q.GetChunkIndex()), Worker: addr,
				Found: FoundQuarantined, Action: "none: no chunk map names the video", Detail: q.GetReason()})
		}
	}
	slices.SortStableFunc(videos, func(a, b string) int { return b2i(hot[b]) - b2i(hot[a]) })
	return videos
}

// repairVideo repairs one chunk map, copying parallel chunks at once.
func repairVideo(ctx context.Context, cfg JobConfig, replicas, parallel int, f *farm, rep *RepairReport) error {
	state, err := LoadState(cfg.StateDir, cfg.VideoID)
	if err != nil {
		return err
	}
	want := state.replicasWanted()
	if replicas > 0 {
		want = replicas
	}
	for _, c := range state.Chunks {
		for _, r := range c.Copies() {
			f.add(r.Worker)
		}
	}
	f.probe()
	rep.Videos++
	note := func(c ChunkState, worker, found, action, detail string) {
		rep.Findings = append(rep.Findings, RepairFinding{VideoID: state.VideoID, Chunk: c.Index, Worker: worker,
			Found: found, Action: action, Detail: detail})
	}

	// Every copy, verified byte for byte.
	type check struct {
		pos   int
		copy  Replica
		found string
		err   error
	}
	var checks []*check
	for i, c := range state.Chunks {
		if !c.Done {
			continue
		}
		rep.Chunks++
		for _, r := range c.Copies() {
			checks = append(checks, &check{pos: i, copy: r})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repairVerifyParallel)
	for _, ch := range checks {
		g.Go(func() error {
			ch.found, ch.err = verifyCopy(gctx, f.client(ch.copy.Worker), state.VideoID, state.Chunks[ch.pos], ch.copy)
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.Copies += len(checks)
	unreachable := map[int]bool{} // positions with a copy out of reach
	for _, ch := range checks {
		c := state.Chunks[ch.pos]
		detail := ""
		if ch.err != nil {
			detail = ch.err.Error()
		}
		switch ch.found {
		case FoundOK:
			note(c, ch.copy.Worker, FoundOK, "kept", "")
		case FoundUnreachable:
			unreachable[ch.pos] = true
			note(c, ch.copy.Worker, FoundUnreachable, "kept in the map, not counted", detail)
		case FoundMissing:
			state.dropReplica(ch.pos, ch.copy.Worker)
			note(c, ch.copy.Worker, FoundMissing, "dropped from the map", detail)
		case FoundCorrupt:
			action := "deleted"
			if _, err := f.client(ch.copy.Worker).DeleteShard(ctx, state.VideoID, int32(c.Index)); err != nil {
				action = "dropped from the map; delete failed: " + err.Error()
			}
			state.dropReplica(ch.pos, ch.copy.Worker)
			note(c, ch.copy.Worker, FoundCorrupt, action, detail)
		}
	}
	if err := state.Save(cfg.StateDir); err != nil {
		return err
	}

	// Copies onto workers holding none, from a good one.
	good := map[int][]Replica{} // position -> its good copies
	had := map[int]bool{}       // positions that had copies to check
	for _, ch := range checks {
		had[ch.pos] = true
		if ch.found == FoundOK {
			good[ch.pos] = append(good[ch.pos], ch.copy)
		}
	}
	positions := slices.Sorted(maps.Keys(had))
	var lost, short []int
	for _, i := range positions {
		switch {
		case len(good[i]) == 0 && !unreachable[i]:
			lost = append(lost, state.Chunks[i].Index)
		case len(good[i]) > 0 && len(good[i]) < want:
			short = append(short, i)
		}
	}
	copyNotes, err := f.copyChunks(ctx, cfg.StateDir, state, short, good, want, parallel, rep)
	for _, i := range positions {
		c := state.Chunks[i]
		if len(good[i]) == 0 && unreachable[i] {
			note(c, "", FoundNoCopy, "none: its other copies are out of reach", "")
		}
		for _, n := range copyNotes[i] {
			note(c, n.worker, "under-replicated", n.action, "")
		}
		if n := len(good[i]); n > 0 && n < want && f.healthy() >= want {
			rep.Short = append(rep.Short, fmt.Sprintf("%s chunk %d: %d of %d copies", state.VideoID, c.Index, n, want))
		}
	}
	if err != nil {
		return err
	}
	if len(lost) == 0 {
		return nil
	}
	return reencodeLost(ctx, cfg, state, want, lost, f, func(idx int, action string) {
		note(ChunkState{Index: idx}, "", FoundNoCopy, action, "")
	})
}

// verifyCopy downloads one copy of chunk c, hashing it on the way, and
// says what it found: a shard whose bytes are not the chunk map's is
// corrupt, whether the worker found it so (DataLoss) or the download did.
func verifyCopy(ctx context.Context, cl *client.Client, videoID string, c ChunkState, r Replica) (string, error) {
	if cl == nil {
		return FoundUnreachable, errNoClient
	}
	idx := int32(c.Index)
	_, _, err := cl.DownloadShard(ctx, &pb.GetShardRequest{VideoId: videoID, ChunkIndex: &idx}, io.Discard,
		client.ShardWant{Size: c.EncodedSize, Checksum: c.Checksum})
	switch {
	case err == nil:
		return FoundOK, nil
	case errors.Is(err, client.ErrChecksumMismatch), errors.Is(err, client.ErrSizeMismatch), errors.Is(err, client.ErrProtocol):
		return FoundCorrupt, err
	}
	switch status.Code(err) {
	case codes.NotFound:
		return FoundMissing, err
	case codes.DataLoss:
		return FoundCorrupt, err
	}
	return FoundUnreachable, err
}

// reencodeLost encodes again, from cfg.Input, the chunks lost (no copy
// left), as the job encoded them, onto want copies.
func reencodeLost(ctx context.Context, cfg JobConfig, state *JobState, want int, lost []int, f *farm, note func(int, string)) error {
	if cfg.Input == "" {
		for _, i := range lost {
			note(i, "none: give --input (the chunk map's source) to encode it again")
		}
		return nil
	}
	fi, err := os.Stat(cfg.Input)
	if err != nil {
		return err
	}
	if fi.Size() != state.SourceSize || !fi.ModTime().Equal(state.SourceModTime) {
		return fmt.Errorf("--input %s is not the chunk map's source %s as it was (size or modification time differ)", cfg.Input, state.Source)
	}
	workers := f.healthyAddrs()
	if len(workers) == 0 {
		return fmt.Errorf("chunks %v: %w to encode them again", lost, ErrNoHealthyWorker)
	}
	cfg.SegmentSeconds, cfg.Dispatch.Encoding, cfg.Replicas = state.SegmentSeconds, encodingOptions(state.Encoding), want
	cfg.Dispatch.Workers = workers
	d, err := NewDispatcher(ctx, cfg.Dispatch)
	if err != nil {
		return err
	}
	defer d.Close()
	src, err := probeCached(ctx, cfg, cfg.Input, state)
	if err != nil {
		return err
	}
	if err := encodeChunks(ctx, cfg, media.Probed(src), state, d, nil); err != nil {
		return err
	}
	for _, i := range lost {
		note(i, fmt.Sprintf("encoded again from %s", cfg.Input))
	}
	return nil
}

// farm is the workers a repair or rebalance talks to: a connection and
// the last health answer of each.
type farm struct {
	ctx  context.Context
	dial client.DialOptions

	mu      sync.Mutex
	clients map[string]*client.Client
	healths map[string]*pb.HealthCheckResponse // nil: not asked, or no healthy answer
	asked   map[string]bool
	placed  map[string]int64 // bytes of the copies placed on each worker by this run
}

func newFarm(ctx context.Context, dial client.DialOptions) *farm {
	setDefaultValue(&dial.MaxMessageBytes, DefaultJobMessageBytes)
	return &farm{ctx: ctx, dial: dial, clients: map[string]*client.Client{}, healths: map[string]*pb.HealthCheckResponse{}, asked: map[string]bool{},
		placed: map[string]int64{}}
}

func (f *farm) add(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if addr == "" || f.clients[addr] != nil {
		return
	}
	if c, err := client.Dial(f.ctx, addr, f.dial); err == nil {
		f.clients[addr] = c
	}
}

func (f *farm) client(addr string) *client.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clients[addr]
}

func (f *farm) addrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.clients))
}

// probe asks the workers not asked yet for their health.
func (f *farm) probe() {
	f.mu.Lock()
	todo := map[string]*client.Client{}
	for a, c := range f.clients {
		if !f.asked[a] {
			todo[a], f.asked[a] = c, true
		}
	}
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.ctx, DefaultProbeTimeout)
	defer cancel()
	for addr, c := range todo {
		if h, err := c.Health(ctx); err == nil && h.GetIsHealthy() {
			f.mu.Lock()
			f.healths[addr] = h
			f.mu.Unlock()
		}
	}
}

func (f *farm) health(addr string) *pb.HealthCheckResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.healths[addr]
}

func (f *farm) healthyAddrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.healths))
}

func (f *farm) healthy() int { return len(f.healthyAddrs()) }

func (f *farm) domain(addr string) Domain { return DomainOf(addr, f.health(addr).GetLabels()) }

func (f *farm) close() {
	for _, c := range f.clients {
		c.Close()
	}
}

// copyNote is what copyChunk did on one worker.
type copyNote struct{ worker, action string }

// copyChunks copies the chunks at positions of state (under-replicated:
// good holds their good copies, which it extends) up to want copies,
// parallel chunks at once, and counts what was made in rep. The chunk map
// is updated and saved one copy at a time, under one lock: a JobState is
// not safe for concurrent use. It returns, by position, what was done.
func (f *farm) copyChunks(ctx context.Context, stateDir string, state *JobState, positions []int, good map[int][]Replica,
	want, parallel int, rep *RepairReport) (map[int][]copyNote, error) {
	start := time.Now()
	var mu sync.Mutex // guards state, good, notes and rep
	notes := map[int][]copyNote{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, i := range positions {
		mu.Lock()
		c, from := state.Chunks[i], slices.Clone(good[i])
		mu.Unlock()
		g.Go(func() error {
			return f.copyChunk(gctx, state.VideoID, c, from, want, func(r Replica, err error) error {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					notes[i] = append(notes[i], copyNote{r.Worker, "copy failed: " + err.Error()})
					return nil
				}
				state.addReplica(i, r)
				if err := state.Save(stateDir); err != nil {
					return err
				}
				good[i] = append(good[i], r)
				notes[i] = append(notes[i], copyNote{r.Worker, "copied from " + r.From})
				rep.Copied++
				rep.CopiedBytes += c.EncodedSize
				return nil
			})
		})
	}
	err := g.Wait()
	rep.CopySeconds += time.Since(start).Seconds()
	return notes, err
}

// copyChunk copies chunk c from its good copies onto healthy workers
// holding none, placed by failure domain, until it has want; each copy
// verified by checksum and passed to done (with the target and the error,
// if it failed), whose error stops it.
func (f *farm) copyChunk(ctx context.Context, videoID string, c ChunkState, good []Replica, want int, done func(Replica, error) error) error {
	targets := f.place(c, good, want)
	for k, target := range targets {
		source := good[k%len(good)].Worker
		cctx, cancel := context.WithTimeout(ctx, DefaultChunkTimeout)
		r, err := replicateChunk(cctx, f.client(target), source, target, videoID, c)
		cancel()
		if err != nil {
			f.unplace(target, c.EncodedSize)
			r = Replica{Worker: target}
		}
		if err := done(r, err); err != nil {
			return err
		}
	}
	return nil
}

// place picks the workers for chunk c's missing copies and counts its
// bytes on each at once, so copies placed meanwhile spread over the
// workers instead of all going to the one whose health said it was
// emptiest.
func (f *farm) place(c ChunkState, good []Replica, want int) []string {
	var held []Domain
	for _, r := range good {
		held = append(held, f.domain(r.Worker))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var cands []Candidate
	for _, addr := range slices.Sorted(maps.Keys(f.healths)) {
		if !c.holds(addr) {
			cands = append(cands, Candidate{Addr: addr, Domain: DomainOf(addr, f.healths[addr].GetLabels()),
				Load: f.healths[addr].GetStoreBytes() + f.placed[addr]})
		}
	}
	targets := PlaceReplicas(want-len(good), held, cands)
	for _, t := range targets {
		f.placed[t] += c.EncodedSize
	}
	return targets
}

// unplace takes back the bytes place counted on target for a copy that
// failed.
func (f *farm) unplace(target string, bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.placed[target] -= bytes
}
