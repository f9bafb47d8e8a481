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
}

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
		if err := repairVideo(ctx, jcfg, replicas, f, &rep); err != nil {
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

// repairVideo repairs one chunk map.
func repairVideo(ctx context.Context, cfg JobConfig, replicas int, f *farm, rep *RepairReport) error {
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
	var lost []int
	for _, i := range slices.Sorted(maps.Keys(had)) {
		c := state.Chunks[i]
		switch {
		case len(good[i]) == 0 && unreachable[i]:
			note(c, "", FoundNoCopy, "none: its other copies are out of reach", "")
		case len(good[i]) == 0:
			lost = append(lost, c.Index)
		case len(good[i]) < want:
			made, err := f.copyChunk(ctx, cfg.StateDir, state, i, good[i], want, func(worker, action string) {
				note(c, worker, "under-replicated", action, "")
			})
			if err != nil {
				return err
			}
			good[i] = append(good[i], made...)
		}
		if n := len(good[i]); n > 0 && n < want && f.healthy() >= want {
			rep.Short = append(rep.Short, fmt.Sprintf("%s chunk %d: %d of %d copies", state.VideoID, c.Index, n, want))
		}
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
}

func newFarm(ctx context.Context, dial client.DialOptions) *farm {
	setDefaultValue(&dial.MaxMessageBytes, DefaultJobMessageBytes)
	return &farm{ctx: ctx, dial: dial, clients: map[string]*client.Client{}, healths: map[string]*pb.HealthCheckResponse{}, asked: map[string]bool{}}
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

// copyChunk copies chunk position i of state from its good copies onto
// healthy workers holding none, placed by failure domain, until it has
// want; each copy verified by checksum and saved in the map. It returns
// the copies made.
func (f *farm) copyChunk(ctx context.Context, stateDir string, state *JobState, i int, good []Replica, want int, note func(worker, action string)) ([]Replica, error) {
	c := state.Chunks[i]
	var held []Domain
	for _, r := range good {
		held = append(held, f.domain(r.Worker))
	}
	var cands []Candidate
	for _, addr := range f.healthyAddrs() {
		if !c.holds(addr) {
			cands = append(cands, Candidate{Addr: addr, Domain: f.domain(addr), Load: f.health(addr).GetStoreBytes()})
		}
	}
	var made []Replica
	for k, target := range PlaceReplicas(want-len(good), held, cands) {
		source := good[k%len(good)].Worker
		cctx, cancel := context.WithTimeout(ctx, DefaultChunkTimeout)
		r, err := replicateChunk(cctx, f.client(target), source, target, state.VideoID, c)
		cancel()
		if err != nil {
			note(target, "copy failed: "+err.Error())
			continue
		}
		state.addReplica(i, r)
		if err := state.Save(stateDir); err != nil {
			return made, err
		}
		made = append(made, r)
		note(target, "copied from "+source)
	}
	return made, nil
}
