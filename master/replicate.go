package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// ErrUnderReplicated: some chunk has fewer verified copies than the job
// wants although enough workers were healthy to hold them (replication
// failed after its retries). The output was still built from the copies
// there are; Summary.Replication says which chunks are short.
var ErrUnderReplicated = errors.New("chunks under-replicated")

// Replication defaults.
const (
	DefaultReplicas = 1
	// replicateParallel is how many chunks are replicated at once, and
	// replicatePerTarget how many copies one worker receives at once:
	// copies are disk and network work, which must not starve the encodes
	// sharing the worker.
	replicateParallel  = 4
	replicatePerTarget = 2
)

// ReplicationReport says how many verified copies each chunk reached.
type ReplicationReport struct {
	Wanted int `json:"wanted"`
	// Workers is how many distinct healthy workers the job had: fewer than
	// Wanted caps every chunk's copies at that.
	Workers int `json:"workers"`
	// Copies is each chunk's count of verified copies, by chunk index.
	Copies []int `json:"copies"`
	// Short lists the chunks with fewer than Wanted copies.
	Short []int `json:"short,omitempty"`
}

// replicator makes the copies of a job's chunks beyond the first: peer to
// peer, by asking a target worker to pull the chunk from a worker holding
// it (ReplicateShard), onto workers placed by failure domain. Chunks are
// queued as they are stored (add never blocks), so copies overlap the
// encoding of the chunks after them.
type replicator struct {
	ctx      context.Context
	d        *Dispatcher
	videoID  string
	want     int
	stateDir string
	log      *slog.Logger
	mu       *sync.Mutex // the job's lock: guards state
	state    *JobState

	queueMu sync.Mutex
	queue   []int // chunk indexes
	closed  bool
	more    chan struct{}
	wg      sync.WaitGroup

	slotMu   sync.Mutex
	slotFree *sync.Cond
	busy     map[string]int   // copies in flight by target
	placed   map[string]int64 // bytes copied onto each target, as load
	// shunned are the targets given no more copies in this job: one that
	// cannot take copies at all (isPermanentCopyError), or let a copy run
	// out of its transfer time, would only cost each chunk as much again.
	shunned map[string]bool
	err     error // the first failure to save the chunk map
}

func newReplicator(ctx context.Context, cfg JobConfig, d *Dispatcher, mu *sync.Mutex, state *JobState) *replicator {
	r := &replicator{ctx: ctx, d: d, videoID: cfg.VideoID, want: max(cfg.Replicas, 1), stateDir: cfg.StateDir,
		log: cfg.Logger, mu: mu, state: state, more: make(chan struct{}, 1),
		busy: map[string]int{}, placed: map[string]int64{}, shunned: map[string]bool{}}
	r.slotFree = sync.NewCond(&r.slotMu)
	if r.want <= 1 {
		return r
	}
	for range replicateParallel {
		r.wg.Go(func() {
			for {
				i, ok := r.next()
				if !ok {
					return
				}
				r.replicate(i)
			}
		})
	}
	return r
}

// add queues chunk index i; it never blocks (onDone calls it holding the
// job's lock, which replicate takes).
func (r *replicator) add(i int) {
	if r.want <= 1 {
		return
	}
	r.queueMu.Lock()
	r.queue = append(r.queue, i)
	r.queueMu.Unlock()
	r.signal()
}

// addShort queues every done chunk of the state with fewer copies than
// wanted; the caller holds the job's lock or owns the state alone.
func (r *replicator) addShort() {
	for _, c := range r.state.Chunks {
		if c.Done && len(c.Copies()) < r.want {
			r.add(c.Index)
		}
	}
}

func (r *replicator) signal() {
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *replicator) next() (int, bool) {
	for {
		r.queueMu.Lock()
		if len(r.queue) > 0 {
			i := r.queue[0]
			r.queue = r.queue[1:]
			r.queueMu.Unlock()
			r.signal()
			return i, true
		}
		closed := r.closed
		r.queueMu.Unlock()
		if closed {
			r.signal()
			return 0, false
		}
		<-r.more
	}
}

// wait waits for every queued chunk and returns the first failure to
// save the chunk map, or ctx's end. A copy that could not be made is no
// error here: report says so.
func (r *replicator) wait() error {
	r.queueMu.Lock()
	r.closed = true
	r.queueMu.Unlock()
	r.signal()
	r.wg.Wait()
	if err := r.ctx.Err(); err != nil {
		return err
	}
	r.slotMu.Lock()
	defer r.slotMu.Unlock()
	return r.err
}

// replicate makes chunk index idx's missing copies, retrying failed ones
// on other workers with backoff, up to the dispatcher's MaxAttempts.
func (r *replicator) replicate(idx int) {
	failed := map[string]bool{}
	for attempt := 1; r.ctx.Err() == nil; {
		r.mu.Lock()
		pos, found := r.state.find(idx)
		var c ChunkState
		if found {
			c = r.state.Chunks[pos]
			c.Replicas = slices.Clone(c.Copies())
		}
		r.mu.Unlock()
		if !found || !c.Done || len(c.Replicas) >= r.want {
			return // forgotten (encoded again: queued again then), or done
		}
		targets := r.place(c, failed)
		if len(targets) == 0 {
			return // no worker left to take a copy: the report says so
		}
		for k, target := range targets {
			source := c.Replicas[k%len(c.Replicas)].Worker // spread the reads over the holders
			rep, err := r.copyTo(c, source, target)
			if err == nil {
				err = r.record(idx, rep)
			}
			if err == nil {
				continue
			}
			failed[target] = true
			if errors.Is(err, errShunned) {
				continue
			}
			if isPermanentCopyError(err) {
				r.shun(target, "worker cannot take copies", source, err)
				continue // no retry on it, and no attempt spent
			}
			if (errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded) && r.ctx.Err() == nil {
				r.shun(target, "worker did not finish a copy in its transfer time", source, err)
			}
			r.log.Warn("copy of a chunk failed", "video_id", r.videoID, "chunk", idx, "target", target, "source", source,
				"attempt", attempt, "err", err)
			if attempt++; attempt > r.d.cfg.MaxAttempts {
				return
			}
			select {
			case <-time.After(r.d.backoff(attempt - 1)):
			case <-r.ctx.Done():
			}
			break // place again: the chunk's copies have changed
		}
	}
}

// errShunned: the target was shunned while the copy waited for its slot.
var errShunned = errors.New("shunned for copies in this job")

// shun gives target no more copies in this job, saying why once.
func (r *replicator) shun(target, why, source string, err error) {
	r.slotMu.Lock()
	first := !r.shunned[target]
	r.shunned[target] = true
	r.slotMu.Unlock()
	if first {
		r.log.Warn(why+": no more copies sent to it in this job", "target", target, "source", source, "err", err)
	}
}

// place chooses the workers for chunk c's missing copies: in rotation,
// holding none, not failed for it, not shunned.
func (r *replicator) place(c ChunkState, failed map[string]bool) []string {
	stats := r.d.Stats()
	var held []Domain
	for _, rep := range c.Replicas {
		held = append(held, domainIn(stats, rep.Worker))
	}
	r.slotMu.Lock()
	var cands []Candidate
	for addr, w := range stats {
		if w.Up && !failed[addr] && !r.shunned[addr] && !c.holds(addr) {
			cands = append(cands, Candidate{Addr: addr, Domain: w.Domain, Load: w.StoreBytes + r.placed[addr]})
		}
	}
	r.slotMu.Unlock()
	return PlaceReplicas(r.want-len(c.Replicas), held, cands)
}

// domainIn is addr's domain as stats know it.
func domainIn(stats map[string]WorkerStats, addr string) Domain {
	if w, ok := stats[addr]; ok && w.Probed {
		return w.Domain
	}
	return DomainOf(addr, nil)
}

// copyTo asks target to copy chunk c from source, within target's slots,
// and checks the copy is c's.
func (r *replicator) copyTo(c ChunkState, source, target string) (Replica, error) {
	cl := r.d.Client(target)
	if cl == nil {
		return Replica{}, errNoClient
	}
	r.slotMu.Lock()
	for r.busy[target] >= replicatePerTarget {
		r.slotFree.Wait()
	}
	if r.shunned[target] { // while waiting for its slot
		r.slotMu.Unlock()
		return Replica{}, errShunned
	}
	r.busy[target]++
	r.slotMu.Unlock()
	defer func() {
		r.slotMu.Lock()
		r.busy[target]--
		r.slotMu.Unlock()
		r.slotFree.Broadcast()
	}()
	ctx, cancel := context.WithTimeout(r.ctx, r.d.cfg.ChunkTimeout)
	defer cancel()
	rep, err := replicateChunk(ctx, cl, source, target, r.videoID, c)
	if err == nil {
		r.slotMu.Lock()
		r.placed[target] += c.EncodedSize
		r.slotMu.Unlock()
	}
	return rep, err
}

// replicateChunk asks the worker behind cl (at target) to copy chunk c of
// videoID from source, within cl.TransferTimeout of its size, and checks
// that the copy it reports is c's: its checksum (and size, when the map
// knows it) must be the chunk map's.
func replicateChunk(ctx context.Context, cl *client.Client, source, target, videoID string, c ChunkState) (Replica, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.TransferTimeout(c.EncodedSize))
	defer cancel()
	meta, _, err := cl.ReplicateShard(ctx, source, videoID, int32(c.Index))
	if err != nil {
		return Replica{}, err
	}
	if err := sameShard(meta, c); err != nil {
		return Replica{}, fmt.Errorf("replicate %s chunk %d from %s: %w", videoID, c.Index, source, err)
	}
	return Replica{Worker: target, Location: meta.GetShardLocation(), From: source}, nil
}

// sameShard checks that a worker's metadata is of chunk c's shard.
func sameShard(meta *pb.ChunkMetadata, c ChunkState) error {
	switch {
	case c.Checksum == "" || !strings.EqualFold(meta.GetChecksumSha256(), c.Checksum):
		return fmt.Errorf("%w: the copy has sha256 %q, the chunk map %q", client.ErrChecksumMismatch, meta.GetChecksumSha256(), c.Checksum)
	case c.EncodedSize > 0 && meta.GetEncodedSize() != c.EncodedSize:
		return fmt.Errorf("%w: the copy has %d bytes, the chunk map %d", client.ErrSizeMismatch, meta.GetEncodedSize(), c.EncodedSize)
	case meta.GetShardLocation() == "":
		return fmt.Errorf("%w: the copy has no shard_location", client.ErrProtocol)
	}
	return nil
}

// record adds a verified copy to the chunk map and saves it.
func (r *replicator) record(idx int, rep Replica) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pos, found := r.state.find(idx)
	if !found || !r.state.Chunks[pos].Done {
		return nil // forgotten meanwhile: the copy is of a shard no longer used
	}
	r.state.addReplica(pos, rep)
	if err := r.state.Save(r.stateDir); err != nil {
		r.slotMu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.slotMu.Unlock()
		return err
	}
	return nil
}

// replicationReport says how many copies each chunk of state has; workers
// is how many healthy workers could hold them.
func replicationReport(state *JobState, want, workers int) *ReplicationReport {
	rep := &ReplicationReport{Wanted: max(want, 1), Workers: workers}
	for _, c := range state.Chunks {
		n := len(c.Copies())
		rep.Copies = append(rep.Copies, n)
		if n < rep.Wanted {
			rep.Short = append(rep.Short, c.Index)
		}
	}
	return rep
}

// err is ErrUnderReplicated when a chunk is short although the job had
// workers enough for every copy.
func (rep *ReplicationReport) err() error {
	if len(rep.Short) == 0 || rep.Workers < rep.Wanted {
		return nil
	}
	return fmt.Errorf("%w: chunks %v have fewer than %d verified copies on %d healthy workers", ErrUnderReplicated, rep.Short, rep.Wanted, rep.Workers)
}

// isPermanentCopyError: the target cannot ever copy (an older worker, or
// the source is not among its peers).
func isPermanentCopyError(err error) bool {
	switch status.Code(err) {
	case codes.Unimplemented, codes.PermissionDenied:
		return true
	}
	return false
}
