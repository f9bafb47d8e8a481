package master

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

// Dispatcher defaults, used when the DispatchConfig field is zero.
const (
	DefaultMaxAttempts   = 5
	DefaultBackoffBase   = 200 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	DefaultProbeInterval = 2 * time.Second
	DefaultProbeTimeout  = 5 * time.Second
	DefaultChunkTimeout  = 30 * time.Minute

	// DefaultStragglerMin and DefaultStragglerFactor bound an attempt
	// against the job's stored chunks (DispatchConfig.StragglerMin).
	DefaultStragglerMin    = 2 * time.Minute
	DefaultStragglerFactor = 8

	// DefaultJobMessageBytes is Dial.MaxMessageBytes when it is 0. A unary
	// upload holds its whole chunk in memory, a streamed one a frame: the
	// smaller limit keeps a job's memory at a few chunks of 16 MiB however
	// large the workers' limits are.
	DefaultJobMessageBytes = 16 << 20

	// MaxReportedSlots bounds the chunks in flight a worker is given on
	// its own word (max_concurrent_tasks, when PerWorkerCap is 0): each
	// unary upload holds its chunk in the master's memory until the worker
	// answers, so a worker that said 100000 and answered none would have
	// the master hold the whole source, and the honest workers idle.
	MaxReportedSlots = 16
)

// Errors of the dispatcher. They come wrapped; test them with errors.Is.
var (
	// ErrNoHealthyWorker: NewDispatcher found no worker answering healthy.
	// The message names each worker's problem.
	ErrNoHealthyWorker = errors.New("no healthy worker")

	// ErrUnhealthy: a worker answered its health check with is_healthy=false.
	ErrUnhealthy = errors.New("worker unhealthy")

	// ErrFrameMismatch: an ffmpeg worker's shard has a frame count other
	// than the chunk's (ChunkTask.Frames, which is the trim's frame count
	// for a trimmed chunk). The chunk is retried, like any transient failure.
	ErrFrameMismatch = errors.New("frame count mismatch")

	// ErrNoTrimWorker: a chunk has a frame trim and no worker can take it:
	// every worker's last good health check lacks FeatureFrameTrim. The
	// message names the chunk and the workers.
	ErrNoTrimWorker = errors.New("no worker can trim frames")

	// ErrClosed: Run was called on a closed Dispatcher.
	ErrClosed = errors.New("dispatcher closed")

	// ErrStraggler: an attempt ran far longer than the job's stored chunks
	// took (DispatchConfig.StragglerMin) and was cancelled; the chunk goes
	// to another worker. Retry events carry it.
	ErrStraggler = errors.New("straggler")
)

// DispatchConfig configures a Dispatcher. Zero values mean the defaults.
type DispatchConfig struct {
	// Workers are the workers' addresses (HOST:PORT); at least one, no
	// duplicates. They are the names in results, events and Stats.
	Workers []string

	// PerWorkerCap is the most chunks in flight on one worker. 0 means the
	// worker's own max_concurrent_tasks (at least 1, at most
	// MaxReportedSlots), learnt from each health probe. Either way a probe that finds the worker already running
	// tasks that are not ours lowers it by that many, to no less than 1.
	PerWorkerCap int

	// NoSendAhead turns off the chunk sent ahead: by default, once every
	// worker has its cap of chunks in flight, each worker that takes
	// streamed uploads (max_chunk_bytes in its health) is sent one chunk
	// more, streamed, which the worker receives whole and queues for the
	// slot its current chunk frees, so it goes from one chunk to the next
	// without waiting on the master. (A unary call beyond its slots a
	// worker refuses.)
	NoSendAhead bool

	// MaxAttempts is how many times one chunk is tried before the job
	// fails (DefaultMaxAttempts).
	MaxAttempts int

	// BackoffBase and BackoffMax bound the wait before a retry: attempt n
	// waits BackoffBase*2^(n-1), capped at BackoffMax, of which a random
	// half is jitter (DefaultBackoffBase, DefaultBackoffMax).
	BackoffBase, BackoffMax time.Duration

	// ProbeInterval is how often a worker out of rotation is probed with a
	// health check (DefaultProbeInterval).
	ProbeInterval time.Duration

	// ProbeTimeout is the deadline of one health probe (DefaultProbeTimeout).
	ProbeTimeout time.Duration

	// ChunkTimeout is the deadline of one attempt at one chunk, upload and
	// encode included (DefaultChunkTimeout).
	ChunkTimeout time.Duration

	// StragglerMin and StragglerFactor catch a worker that took a chunk and
	// never answers, well before ChunkTimeout: once stragglerSamples of the
	// job's chunks are stored, an attempt still running after
	// max(StragglerMin, StragglerFactor x a time per frame x the chunk's
	// frames; bytes when frames are unknown), doubled for each earlier
	// straggle of that chunk and each straggle in a row of that worker, is
	// cancelled and the chunk sent to another worker, with no backoff and
	// without counting against MaxAttempts (the doubling ends at
	// ChunkTimeout, which does count). The time per frame is the greater of
	// the worker's own median and the lower median of all workers' (see
	// chunkPaces). DefaultStragglerMin and DefaultStragglerFactor.
	StragglerMin    time.Duration
	StragglerFactor float64

	// Encoding is sent with every chunk; nil means the workers' defaults.
	Encoding *pb.EncodingOptions

	// Dial is used for every worker: Insecure for plaintext workers, or
	// the TLS files, and the Token when the workers require one.
	Dial client.DialOptions

	// Logger receives one line per retry, failure and worker change, and
	// debug lines per chunk; nil discards.
	Logger *slog.Logger
}

// ChunkTask is one chunk to encode: the file holding its bytes, and what is
// known about it to check the result.
type ChunkTask struct {
	// Index is the chunk index, 0 to math.MaxInt32, unique within a Run.
	Index int
	// Path is the chunk file; it must stay unchanged until Run returns.
	Path string
	// Frames is the shard's expected frame count: the chunk's, or, for a
	// trimmed chunk, TrimFrames (callers set it so; Run refuses another
	// non-zero value). An ffmpeg worker's result must match it. 0 means
	// unknown: no frame check.
	Frames int64
	// Size is the file's size in bytes; a worker that reports receiving
	// another size fails the job. 0 means unknown.
	Size int64
	// TrimStart and TrimFrames, when TrimFrames > 0, ask the worker to keep
	// only TrimFrames pictures from picture TrimStart on (counted from 0 in
	// the chunk's decode output order), video only: for chunks that start
	// at a keyframe before the frames they contribute and may run on past
	// them. The chunk goes only to workers whose health lists
	// FeatureFrameTrim; if no worker can take it, Run fails with
	// ErrNoTrimWorker. TrimFrames 0 means no trim (TrimStart must be 0).
	TrimStart, TrimFrames int64
	// WantPictureHashes asks the worker for the hashes of the pictures it
	// decoded (ChunkResult.PictureHashes), from workers that can give them.
	WantPictureHashes bool
}

// options are the task's ChunkOptions.
func (t ChunkTask) options() client.ChunkOptions {
	o := client.ChunkOptions{WantPictureHashes: t.WantPictureHashes}
	if t.TrimFrames > 0 {
		o.Trim = &pb.FrameTrim{StartFrame: t.TrimStart, FrameCount: t.TrimFrames}
	}
	return o
}

// ChunkResult is a chunk stored on a worker.
type ChunkResult struct {
	Index int
	// Worker is the address of the worker holding the shard.
	Worker string
	// Location is the shard_location to fetch it with.
	Location string
	// Checksum is the shard's SHA-256, hex.
	Checksum                  string
	OriginalSize, EncodedSize int64
	// Frames is the frame count the worker measured (0 for simulated).
	Frames        int64
	Encoder       string
	VideoCodec    string
	EncodeSeconds float64
	// Attempts is how many attempts it took, this one included.
	Attempts int
	// MediaChecked is true when the worker encoded with ffmpeg and the
	// shard's frame count was checked against ChunkTask.Frames; false for
	// the simulated encoder (its shards are not media) or unknown frames.
	MediaChecked bool
	// PictureHashes are the hashes of the pictures the worker decoded the
	// chunk to (see ChunkOptions.WantPictureHashes), framehash.Size bytes
	// each; empty when it gave none.
	PictureHashes []byte
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventStarted    EventKind = "started"     // an attempt at a chunk was sent
	EventRetry      EventKind = "retry"       // an attempt failed and will be retried after Delay
	EventDone       EventKind = "done"        // a chunk is stored (and onDone accepted it)
	EventWorkerDown EventKind = "worker-down" // a worker left the rotation; Err says why
	EventWorkerUp   EventKind = "worker-up"   // a worker came back into rotation
	// EventWorkerSkipped: a worker in rotation is passed over for some of
	// the job's chunks (trimmed ones, it lacks FeatureFrameTrim); Err says
	// why. Once per job and worker.
	EventWorkerSkipped EventKind = "worker-skipped"
)

// Event is a step of a job, for progress and logs.
type Event struct {
	Kind EventKind
	Time time.Time
	// VideoID is empty for worker events.
	VideoID string
	// Chunk is the chunk index; -1 for worker events.
	Chunk  int
	Worker string
	// Attempt is the attempt's number, from 1 (chunk events).
	Attempt int
	// Delay is the wait before the next attempt (retry).
	Delay time.Duration
	// Err is the failure (retry) or the reason (worker-down).
	Err error
	// Done and Total count the job's chunks (chunk events).
	Done, Total int
	// Result is the stored chunk (done).
	Result *ChunkResult
}

// WorkerStats is a worker's state as the Dispatcher sees it.
type WorkerStats struct {
	// WorkerID, Encoder, VideoCodec and Features are what its last good
	// probe said.
	WorkerID, Encoder, VideoCodec string
	Features                      []string
	// Probed is whether it ever answered a probe healthy; Up whether it
	// is in rotation.
	Probed, Up bool
	// Cap is the most chunks it is given at once (0 until a good probe).
	Cap      int
	InFlight int
	// Done counts chunks it stored, Failures attempts that failed on it,
	// over the Dispatcher's life.
	Done, Failures int
	// Domain is its failure domain, StoreBytes the shard bytes it stores,
	// both as its last good probe said.
	Domain     Domain
	StoreBytes int64
	// LastError is the last failure or failed probe, if any.
	LastError string
}

// ChunkError is the error Run returns when a chunk failed for good: the
// worker refused it (Permanent), or it failed MaxAttempts times. It unwraps
// to the last attempt's error, so status.Code gives the worker's code.
type ChunkError struct {
	Index     int
	Attempts  int
	Permanent bool
	// Workers and Errs are every failed attempt's worker and error, oldest
	// first.
	Workers []string
	Errs    []error
}

func (e *ChunkError) Error() string {
	last := len(e.Errs) - 1
	if e.Permanent {
		return fmt.Sprintf("chunk %d refused by %s: %v", e.Index, e.Workers[last], e.Errs[last])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chunk %d failed %d attempts; last errors:", e.Index, e.Attempts)
	for i := max(0, len(e.Errs)-3); i < len(e.Errs); i++ {
		fmt.Fprintf(&b, " [%s] %v;", e.Workers[i], e.Errs[i])
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (e *ChunkError) Unwrap() error { return e.Errs[len(e.Errs)-1] }

// Dispatcher spreads the chunks of a video over workers: each chunk goes to
// the least loaded worker in rotation, never more than a worker's cap at
// once; transient failures are retried on another worker with backoff;
// workers that stop answering leave the rotation and are probed in the
// background until they are healthy again. It is safe for concurrent use,
// and concurrent Runs share the workers' caps.
type Dispatcher struct {
	cfg     DispatchConfig
	log     *slog.Logger
	workers []*dispWorker // in cfg.Workers order, then as AddWorkers added them; guarded by mu

	bg      context.Context // ends at Close; bounds the probers
	stop    context.CancelFunc
	probers sync.WaitGroup

	eventMu sync.Mutex // serialises event callbacks; never held with mu

	mu      sync.Mutex        // guards the fields below and every worker's mutable fields
	changed chan struct{}     // closed and replaced when a slot frees or a worker returns
	jobs    map[*dispJob]bool // running jobs, for worker events
	closed  bool

	// encoder is the encoder chunks go to (set once, before any job): ffmpeg
	// when any worker reported it at the start, else the one the healthy
	// workers reported. A worker of another takes none: a shard that
	// claims to be simulated is not media, and joining it would put its
	// bytes into the output unverified.
	encoder string
}

// dispWorker is one worker. Fields below client are guarded by Dispatcher.mu.
type dispWorker struct {
	addr   string
	client *client.Client

	up, probing         bool
	shunned             bool // see Shun
	cap, inflight       int
	done, failures      int
	lastErr             string
	id, encoder, vcodec string
	features            []string
	probed              bool // a probe has succeeded: features are known
	domain              Domain
	storeBytes          int64
	streams             bool // takes streamed uploads (UploadChunk)
	// refusedUploads: its UploadChunk answered Unimplemented though its
	// health offered uploads; no chunk is sent ahead to it again.
	refusedUploads bool
	// slowUntil: a chunk straggled on it (ErrStraggler); until then it
	// takes new chunks only when no other worker can.
	slowUntil time.Time
}

// trims reports whether w honours frame trims, as far as is known: a
// worker never probed successfully might.
func (w *dispWorker) trims() (yes, known bool) {
	return slices.Contains(w.features, pb.FeatureFrameTrim), w.probed
}

// takesLocked reports whether w may be given t: only a worker of the
// job's encoder, and a trimmed chunk only one known to trim.
func (d *Dispatcher) takesLocked(w *dispWorker, t ChunkTask) bool {
	return w.encoder == d.encoder && w.takes(t)
}

// takes reports whether w may be given t as far as its features go: a
// trimmed chunk only goes to a worker known to trim.
func (w *dispWorker) takes(t ChunkTask) bool {
	if t.TrimFrames <= 0 {
		return true
	}
	yes, _ := w.trims()
	return yes
}

// jobEncoder is the encoder a job's chunks go to, of those its healthy
// workers reported: ffmpeg when one did (a worker that says otherwise
// cannot make a job of media chunks skip their checks), else the first
// by name.
func jobEncoder(reported map[string]bool) string {
	if reported[pb.EncoderFFmpeg] {
		return pb.EncoderFFmpeg
	}
	return slices.Min(slices.Collect(maps.Keys(reported)))
}

// NewDispatcher dials every worker and probes each with a health check
// (bounded by ctx and ProbeTimeout). Workers that fail the probe start out
// of rotation and are probed in the background. It fails only on a bad
// config or when no worker is healthy; that error wraps ErrNoHealthyWorker
// and names each worker's problem. ctx bounds only these first probes:
// Close ends the background work.
func NewDispatcher(ctx context.Context, cfg DispatchConfig) (*Dispatcher, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:     cfg,
		log:     cfg.Logger,
		changed: make(chan struct{}),
		jobs:    make(map[*dispJob]bool),
	}
	d.bg, d.stop = context.WithCancel(context.WithoutCancel(ctx))
	for _, addr := range cfg.Workers {
		c, err := client.Dial(ctx, addr, cfg.Dial)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("new dispatcher: %w", err)
		}
		d.workers = append(d.workers, &dispWorker{addr: addr, client: c})
	}

	resps := make([]*pb.HealthCheckResponse, len(d.workers))
	errs := make([]error, len(d.workers))
	var wg sync.WaitGroup
	for i, w := range d.workers {
		wg.Go(func() { resps[i], errs[i] = d.probe(ctx, w) })
	}
	wg.Wait()

	var problems []string
	healthy := 0
	encoders := make(map[string]bool)
	for i, w := range d.workers {
		if errs[i] == nil {
			healthy++
			encoders[resps[i].GetEncoder()] = true
			d.mu.Lock()
			d.upLocked(w, resps[i])
			capacity := w.cap
			d.mu.Unlock()
			h := resps[i]
			d.log.Info("worker ready", "worker", w.addr, "worker_id", h.GetWorkerId(), "encoder", h.GetEncoder(),
				"codec", h.GetVideoCodec(), "cap", capacity, "features", h.GetFeatures())
			continue
		}
		problems = append(problems, fmt.Sprintf("%s: %v", w.addr, errs[i]))
	}
	if healthy == 0 {
		d.Close()
		return nil, fmt.Errorf("new dispatcher: %w: %s", ErrNoHealthyWorker, strings.Join(problems, "; "))
	}
	d.encoder = jobEncoder(encoders)
	if len(encoders) > 1 {
		d.log.Warn("workers use different encoders: chunks go only to those of one", "encoders", slices.Sorted(maps.Keys(encoders)), "encoder", d.encoder)
	}
	for i, w := range d.workers {
		if errs[i] != nil {
			d.log.Warn("worker not ready; probing it in the background", "worker", w.addr, "error", errs[i])
			d.markDown(w, errs[i])
		}
	}
	return d, nil
}

func (c *DispatchConfig) setDefaults() error {
	if len(c.Workers) == 0 {
		return errors.New("dispatch config: Workers is empty")
	}
	seen := make(map[string]bool)
	for _, w := range c.Workers {
		if w == "" {
			return errors.New("dispatch config: Workers has an empty address")
		}
		if seen[w] {
			return fmt.Errorf("dispatch config: worker %s is listed twice", w)
		}
		seen[w] = true
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"PerWorkerCap", int64(c.PerWorkerCap)}, {"MaxAttempts", int64(c.MaxAttempts)},
		{"BackoffBase", int64(c.BackoffBase)}, {"BackoffMax", int64(c.BackoffMax)},
		{"ProbeInterval", int64(c.ProbeInterval)}, {"ProbeTimeout", int64(c.ProbeTimeout)},
		{"ChunkTimeout", int64(c.ChunkTimeout)}, {"StragglerMin", int64(c.StragglerMin)},
	} {
		if f.v < 0 {
			return fmt.Errorf("dispatch config: %s is negative", f.name)
		}
	}
	setDefaultValue(&c.MaxAttempts, DefaultMaxAttempts)
	setDefaultValue(&c.BackoffBase, DefaultBackoffBase)
	setDefaultValue(&c.BackoffMax, DefaultBackoffMax)
	setDefaultValue(&c.ProbeInterval, DefaultProbeInterval)
	setDefaultValue(&c.ProbeTimeout, DefaultProbeTimeout)
	setDefaultValue(&c.ChunkTimeout, DefaultChunkTimeout)
	if math.IsNaN(c.StragglerFactor) || c.StragglerFactor < 0 {
		return fmt.Errorf("dispatch config: StragglerFactor %v is not a positive number", c.StragglerFactor)
	}
	setDefaultValue(&c.StragglerMin, DefaultStragglerMin)
	setDefaultValue(&c.StragglerFactor, DefaultStragglerFactor)
	setDefaultValue(&c.Dial.MaxMessageBytes, DefaultJobMessageBytes)
	c.BackoffMax = max(c.BackoffMax, c.BackoffBase)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefaultValue[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Close stops the background probes and closes every connection. Call it
// after Run has returned; Runs still going fail.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stop()
	d.probers.Wait()
	var errs []error
	for _, w := range d.snapshot() {
		if err := w.client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", w.addr, err))
		}
	}
	return errors.Join(errs...)
}

// snapshot returns the workers as they are now.
func (d *Dispatcher) snapshot() []*dispWorker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.workers)
}

// Client returns the connection to the worker at addr, for fetching its
// shards, or nil if addr is not one of the Dispatcher's workers. It stays
// valid until Close.
func (d *Dispatcher) Client(addr string) *client.Client {
	for _, w := range d.snapshot() {
		if w.addr == addr {
			return w.client
		}
	}
	return nil
}

// Clients returns every worker's connection by address, as ConfirmDone
// takes them. They stay valid until Close.
func (d *Dispatcher) Clients() map[string]*client.Client {
	ws := d.snapshot()
	m := make(map[string]*client.Client, len(ws))
	for _, w := range ws {
		m[w.addr] = w.client
	}
	return m
}

// AddWorkers adds the workers of addrs it does not have yet, while jobs
// run: each is dialled and starts out of rotation, probed at once and
// then every ProbeInterval until healthy (a worker-up event then). It
// returns the addresses added; a bad address is an error, after the
// others are added.
func (d *Dispatcher) AddWorkers(addrs []string) ([]string, error) {
	var added []string
	var errs []error
	for _, addr := range addrs {
		d.mu.Lock()
		known := d.closed || slices.ContainsFunc(d.workers, func(w *dispWorker) bool { return w.addr == addr })
		d.mu.Unlock()
		if known || addr == "" {
			continue
		}
		c, err := client.Dial(d.bg, addr, d.cfg.Dial)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w := &dispWorker{addr: addr, client: c}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.Close()
			break
		}
		d.workers = append(d.workers, w)
		w.probing = true
		d.probers.Add(1)
		d.mu.Unlock()
		go d.probeLoop(w, true)
		d.log.Info("worker added", "worker", addr)
		added = append(added, addr)
	}
	return added, errors.Join(errs...)
}

// ConfirmDone is ConfirmDone over the Dispatcher's connections.
func (d *Dispatcher) ConfirmDone(ctx context.Context, s *JobState) (confirmed, missing []int) {
	return ConfirmDone(ctx, d.Clients(), s)
}

// All reports whether every worker whose health is known satisfies ok,
// and at least one's is.
func (d *Dispatcher) All(ok func(WorkerStats) bool) bool {
	known := 0
	for _, w := range d.Stats() {
		if !w.Probed {
			continue
		}
		if !ok(w) {
			return false
		}
		known++
	}
	return known > 0
}

// Stats returns every worker's state, by address.
func (d *Dispatcher) Stats() map[string]WorkerStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]WorkerStats, len(d.workers))
	for _, w := range d.workers {
		m[w.addr] = WorkerStats{
			WorkerID: w.id, Encoder: w.encoder, VideoCodec: w.vcodec, Features: slices.Clone(w.features),
			Probed: w.probed, Up: w.up, Cap: w.cap, InFlight: w.inflight,
			Done: w.done, Failures: w.failures, LastError: w.lastErr,
			Domain: w.domain, StoreBytes: w.storeBytes,
		}
	}
	return m
}

// probe asks w for its health within ProbeTimeout. An unhealthy answer is
// an error wrapping ErrUnhealthy.
func (d *Dispatcher) probe(ctx context.Context, w *dispWorker) (*pb.HealthCheckResponse, error) {
	// A connection in backoff after a failure would fail the probe at once
	// until its next attempt, which gRPC spaces up to two minutes apart.
	w.client.ResetConnectBackoff()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ProbeTimeout)
	defer cancel()
	resp, err := w.client.Health(ctx)
	if err != nil {
		return nil, err
	}
	if !resp.GetIsHealthy() {
		return nil, fmt.Errorf("%w: %s", ErrUnhealthy, resp.GetMessage())
	}
	return resp, nil
}

// upLocked puts w into rotation with what its probe said.
func (d *Dispatcher) upLocked(w *dispWorker, h *pb.HealthCheckResponse) {
	c := d.cfg.PerWorkerCap
	if c <= 0 {
		c = int(min(max(1, h.GetMaxConcurrentTasks()), MaxReportedSlots))
	}
	// Tasks running that are not ours: another master, or ours from before
	// the worker left the rotation.
	others := max(0, int(h.GetActiveTasks())-w.inflight)
	w.cap = max(1, c-others)
	w.up = true
	w.id, w.encoder, w.vcodec = h.GetWorkerId(), h.GetEncoder(), h.GetVideoCodec()
	w.features, w.probed = slices.Clone(h.GetFeatures()), true
	w.domain, w.storeBytes = DomainOf(w.addr, h.GetLabels()), max(0, h.GetStoreBytes())
	w.streams = h.GetMaxChunkBytes() > 0 && !w.refusedUploads
	d.broadcastLocked()
}

func (d *Dispatcher) broadcastLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// markDown takes w out of rotation and starts probing it, once.
func (d *Dispatcher) markDown(w *dispWorker, reason error) {
	d.mu.Lock()
	wasUp := w.up
	w.up = false
	w.lastErr = reason.Error()
	startProbe := !w.probing && !d.closed
	if startProbe {
		w.probing = true
		d.probers.Add(1)
	}
	d.mu.Unlock()
	if startProbe {
		go d.probeLoop(w, false)
	}
	if wasUp {
		d.log.Warn("worker out of rotation", "worker", w.addr, "error", reason)
		d.workerEvent(Event{Kind: EventWorkerDown, Worker: w.addr, Err: reason})
	}
}

// probeLoop probes w every ProbeInterval (the first at once when now)
// until it is healthy or Close.
func (d *Dispatcher) probeLoop(w *dispWorker, now bool) {
	defer d.probers.Done()
	t := time.NewTicker(d.cfg.ProbeInterval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first || !now {
			select {
			case <-d.bg.Done():
				d.mu.Lock()
				w.probing = false
				d.mu.Unlock()
				return
			case <-t.C:
			}
		}
		resp, err := d.probe(d.bg, w)
		d.mu.Lock()
		if err != nil {
			if d.bg.Err() == nil {
				w.lastErr = err.Error()
			}
			d.mu.Unlock()
			continue
		}
		w.probing = false
		d.upLocked(w, resp)
		capacity := w.cap
		d.mu.Unlock()
		d.log.Info("worker back in rotation", "worker", w.addr, "cap", capacity)
		d.workerEvent(Event{Kind: EventWorkerUp, Worker: w.addr})
		return
	}
}

// workerEvent reports ev to every running job.
func (d *Dispatcher) workerEvent(ev Event) {
	ev.Time = time.Now()
	ev.Chunk = -1
	d.mu.Lock()
	var fns []func(Event)
	for j := range d.jobs {
		if j.onEvent != nil {
			fns = append(fns, j.onEvent)
		}
	}
	d.mu.Unlock()
	d.eventMu.Lock()
	defer d.eventMu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// pickLocked returns the least loaded worker in rotation with a free slot
// that takes p's task, avoiding the workers p failed on unless every such
// worker in rotation did; when no worker has a free slot, the one to send
// p ahead to (DispatchConfig.NoSendAhead), ahead true; nil if there is
// none now.
func (d *Dispatcher) pickLocked(p *pendingChunk) (w *dispWorker, ahead bool) {
	if w := d.pickUnderLocked(p, 0); w != nil {
		return w, false
	}
	if d.cfg.NoSendAhead || d.anyFreeLocked() {
		return nil, false
	}
	w = d.pickUnderLocked(p, 1)
	return w, w != nil
}

// Shun keeps the worker at addr from new chunks while another worker in
// rotation can take them: it answers its health checks, but its shards
// came back stalled or other than it said (see LostShardsError.Unreliable),
// so the chunks it lost would only be lost there again.
func (d *Dispatcher) Shun(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		if w.addr == addr {
			w.shunned = true
		}
	}
}

// pickUnderLocked is the least loaded worker that may take p with fewer
// than its cap + extra chunks in flight (with extra, one that takes
// streamed uploads), or nil. Workers that failed p, that are shunned, or
// on which a chunk straggled lately, take it only when no other worker in
// rotation can.
func (d *Dispatcher) pickUnderLocked(p *pendingChunk, extra int) *dispWorker {
	now := time.Now()
	avoid := func(w *dispWorker) bool { return p.failed[w] || w.shunned || now.Before(w.slowUntil) }
	others := false
	for _, w := range d.workers {
		if w.up && d.takesLocked(w, p.task) && !avoid(w) {
			others = true
			break
		}
	}
	var best *dispWorker
	for _, w := range d.workers {
		if !w.up || w.inflight >= w.cap+extra || !d.takesLocked(w, p.task) || (others && avoid(w)) || extra > 0 && !w.streams {
			continue
		}
		if best == nil || lessLoadedWorker(w, best) {
			best = w
		}
	}
	return best
}

// lessLoadedWorker orders workers by inflight/cap, then failures, then address.
func lessLoadedWorker(a, b *dispWorker) bool {
	if l, r := a.inflight*b.cap, b.inflight*a.cap; l != r {
		return l < r
	}
	if a.failures != b.failures {
		return a.failures < b.failures
	}
	return a.addr < b.addr
}

// noTrimLocked returns, for a trimmed task, the error ending the job when
// no worker can take it (every worker's last good probe lacks
// FeatureFrameTrim; a worker never probed successfully might yet have it),
// and, either way, the workers in rotation that lack it.
func (d *Dispatcher) noTrimLocked(t ChunkTask) (lacking []*dispWorker, err error) {
	possible := false
	var says []string
	for _, w := range d.workers {
		yes, known := w.trims()
		switch {
		case yes || !known:
			possible = true
		default:
			says = append(says, w.addr)
			if w.up {
				lacking = append(lacking, w)
			}
		}
	}
	if !possible {
		err = fmt.Errorf("chunk %d: %w: it has a frame trim (pictures %d..%d) and no worker lists the %q feature (%s lack it); upgrade the workers",
			t.Index, ErrNoTrimWorker, t.TrimStart, t.TrimStart+t.TrimFrames-1, pb.FeatureFrameTrim, strings.Join(says, ", "))
	}
	return lacking, err
}

func (d *Dispatcher) anyFreeLocked() bool {
	for _, w := range d.workers {
		if w.up && w.inflight < w.cap {
			return true
		}
	}
	return false
}

// backoff is the wait before attempt n+1 after n failed attempts.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.cfg.BackoffMax
	if shift := n - 1; shift < 62 && d.cfg.BackoffBase <= math.MaxInt64>>shift {
		b = min(b, d.cfg.BackoffBase<<shift)
	}
	half := b / 2
	return half + rand.N(b-half+1)
}

// Run encodes tasks, chunks of videoID, on the workers and returns when
// every one is stored, or with the first error that ends the job.
//
// onDone (may be nil) is called once per stored chunk, never concurrently,
// in completion order; the caller persists its state there. If it returns
// an error the job stops with it. onEvent (may be nil) receives the job's
// events and worker changes while Run lasts, never concurrently; it must
// not block for long.
//
// Errors: a chunk the worker refuses (InvalidArgument, FailedPrecondition,
// PermissionDenied, Unauthenticated, NotFound, or a local problem such as a
// missing chunk file) stops the job at once, cancelling the chunks in
// flight; so does a chunk failing MaxAttempts times. Both are *ChunkError.
// A trimmed chunk no worker can take (see ChunkTask.TrimFrames) stops the
// job with ErrNoTrimWorker; while some worker out of rotation was never
// probed successfully, it waits for it instead.
// Transient failures (Unavailable, DeadlineExceeded, ResourceExhausted,
// Aborted, Internal, Unknown, DataLoss, a frame count mismatch, a broken
// connection) are retried on another worker if there is one. Cancelling
// ctx stops the job with ctx's error. Chunks stored before the job stopped
// stay stored on their workers; onDone has seen each of them, unless
// onDone itself failed. Run returns only once no attempt is in flight.
func (d *Dispatcher) Run(ctx context.Context, videoID string, tasks []ChunkTask,
	onDone func(ChunkResult) error, onEvent func(Event)) error {
	if err := chunkid.ValidateVideoID(videoID); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	seen := make(map[int]bool, len(tasks))
	more := make(chan ChunkTask, len(tasks))
	for _, t := range tasks {
		if err := checkTask(seen, t); err != nil {
			return fmt.Errorf("dispatch %s: %w", videoID, err)
		}
		more <- t
	}
	close(more)
	return d.run(ctx, videoID, more, onDone, onEvent)
}

// RunStream is Run with the tasks arriving on tasks while the job runs
// (chunks cut while earlier ones encode); it ends once tasks is closed and
// every chunk received is done, or when a chunk fails for good, onDone
// fails, a task is invalid (as Run would refuse it), or ctx ends. It
// stops receiving from tasks when it returns: a sender must also watch
// ctx, or a context it cancels when RunStream returns.
func (d *Dispatcher) RunStream(ctx context.Context, videoID string, tasks <-chan ChunkTask,
	onDone func(ChunkResult) error, onEvent func(Event)) error {
	if err := chunkid.ValidateVideoID(videoID); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	return d.run(ctx, videoID, tasks, onDone, onEvent)
}

// checkTask reports what is wrong with t, a task of a job whose tasks so
// far are in seen (which t joins).
func checkTask(seen map[int]bool, t ChunkTask) error {
	if err := chunkid.ValidateChunkIndex(int64(t.Index)); err != nil {
		return err
	}
	if seen[t.Index] {
		return fmt.Errorf("chunk %d is listed twice", t.Index)
	}
	seen[t.Index] = true
	if t.Path == "" {
		return fmt.Errorf("chunk %d has no path", t.Index)
	}
	switch {
	case t.TrimFrames < 0 || t.TrimStart < 0:
		return fmt.Errorf("chunk %d: negative trim (TrimStart %d, TrimFrames %d)", t.Index, t.TrimStart, t.TrimFrames)
	case t.TrimFrames == 0 && t.TrimStart != 0:
		return fmt.Errorf("chunk %d: TrimStart %d without TrimFrames", t.Index, t.TrimStart)
	case t.TrimFrames > 0 && t.Frames != 0 && t.Frames != t.TrimFrames:
		return fmt.Errorf("chunk %d: Frames %d must be TrimFrames %d for a trimmed chunk", t.Index, t.Frames, t.TrimFrames)
	}
	return nil
}

// run runs a job on d.
func (d *Dispatcher) run(ctx context.Context, videoID string, tasks <-chan ChunkTask,
	onDone func(ChunkResult) error, onEvent func(Event)) error {
	j := &dispJob{d: d, videoID: videoID, onDone: onDone, onEvent: onEvent}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.jobs[j] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.jobs, j)
		d.mu.Unlock()
	}()
	if err := j.run(ctx, tasks); err != nil {
		return fmt.Errorf("dispatch %s: %w", videoID, err)
	}
	return nil
}

// dispJob is one Run.
type dispJob struct {
	d       *Dispatcher
	videoID string
	onDone  func(ChunkResult) error
	onEvent func(Event)

	doneMu     sync.Mutex // serialises onDone, guards doneFailed
	doneFailed bool

	skipped map[*dispWorker]bool // workers reported as skipped; run's goroutine only
	paces   chunkPaces           // run's goroutine only
}

// pendingChunk is a chunk waiting to be sent, or in flight.
type pendingChunk struct {
	task      ChunkTask
	attempts  int
	straggles int       // attempts cancelled as stragglers, not counted in attempts
	ready     time.Time // not before
	failed    map[*dispWorker]bool
	workers   []string
	errs      []error
}

// attemptOutcome classifies an attempt.
type attemptOutcome int

const (
	outcomeOK         attemptOutcome = iota
	outcomeTransient                 // retry
	outcomeWorkerDown                // retry, and take the worker out of rotation
	outcomePermanent                 // stop the job
	outcomeAborted                   // the job was stopped meanwhile
	outcomeRecordFail                // onDone failed
	outcomeStraggler                 // cancelled as a straggler: retry elsewhere, not counted
	// Sent ahead, and the worker has no UploadChunk: queued again, the
	// attempt not counted, and nothing sent ahead to that worker again.
	outcomeNoUploads
)

type attemptResult struct {
	p     *pendingChunk
	w     *dispWorker
	ahead bool // sent ahead of a free slot (DispatchConfig.NoSendAhead)
	took  time.Duration
	res   ChunkResult
	out   attemptOutcome
	err   error
}

func (j *dispJob) run(ctx context.Context, tasks <-chan ChunkTask) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := j.d
	var queue []*pendingChunk
	seen := map[int]bool{}
	// take queues the tasks that are there without waiting; it reports
	// whether more may come.
	take := func() (open bool, err error) {
		for {
			select {
			case t, ok := <-tasks:
				if !ok {
					return false, nil
				}
				if err := checkTask(seen, t); err != nil {
					return true, err
				}
				queue = insertPendingChunk(queue, &pendingChunk{task: t, failed: make(map[*dispWorker]bool)})
			default:
				return true, nil
			}
		}
	}
	open, fail := take()
	results := make(chan attemptResult, 64)
	flights := make(map[*pendingChunk]*flight)
	inflight, done := 0, 0
	total := func() int { return done + inflight + len(queue) }

	for fail == nil && (done < total() || open) {
		now := time.Now()
		var next time.Time // when the earliest waiting retry is due
		var started []attemptResult
		var lacking []*dispWorker // in rotation, passed over for a trimmed chunk
		d.mu.Lock()
		for _, p := range queue {
			if p.task.TrimFrames > 0 {
				lacking, fail = d.noTrimLocked(p.task)
				break
			}
		}
		for i := 0; fail == nil && i < len(queue); {
			p := queue[i]
			if p.ready.After(now) {
				if next.IsZero() || p.ready.Before(next) {
					next = p.ready
				}
				i++
				continue
			}
			w, ahead := d.pickLocked(p)
			if w == nil {
				if !d.anyFreeLocked() {
					break
				}
				i++
				continue
			}
			w.inflight++
			p.attempts++
			queue = slices.Delete(queue, i, i+1)
			started = append(started, attemptResult{p: p, w: w, ahead: ahead})
		}
		wake := d.changed
		d.mu.Unlock()
		if fail != nil {
			d.log.Error("chunk cannot be sent", "video_id", j.videoID, "error", fail)
			continue
		}
		j.reportSkipped(lacking)

		for _, s := range started {
			inflight++
			d.log.Debug("chunk sent", "video_id", j.videoID, "chunk", s.p.task.Index, "worker", s.w.addr, "attempt", s.p.attempts)
			j.event(Event{Kind: EventStarted, Chunk: s.p.task.Index, Worker: s.w.addr, Attempt: s.p.attempts, Done: done, Total: total()})
			f := newFlight(ctx, s.w)
			flights[s.p] = f
			go j.attempt(ctx, f, s.p, s.ahead, results)
		}
		if due := j.stopStragglers(flights, time.Now()); !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}

		var timer *time.Timer
		var due <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			due = timer.C
		}
		var incoming <-chan ChunkTask
		if open {
			incoming = tasks
		}
		select {
		case r := <-results:
			inflight--
			flights[r.p].stop(nil)
			delete(flights, r.p)
			if r.out == outcomeAborted {
				// Only ctx ending aborts an attempt while the loop runs.
				fail = ctx.Err()
				break
			}
			if r.out == outcomeNoUploads {
				r.p.attempts--
				queue = insertPendingChunk(queue, r.p)
				break
			}
			var retry *pendingChunk
			retry, fail = j.handle(r, &done, total()+1) // r is no longer in flight, not yet done
			if retry != nil {
				queue = insertPendingChunk(queue, retry)
			}
		case t, ok := <-incoming:
			if !ok {
				open = false
				break
			}
			if fail = checkTask(seen, t); fail == nil {
				queue = insertPendingChunk(queue, &pendingChunk{task: t, failed: make(map[*dispWorker]bool)})
				open, fail = take()
			}
		case <-wake:
		case <-due:
		case <-ctx.Done():
			fail = ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
	}

	// Stop the chunks still in flight and wait for them: stored ones still
	// reach onDone.
	cancel()
	total0 := total()
	for ; inflight > 0; inflight-- {
		r := <-results
		flights[r.p].stop(nil)
		if r.out == outcomeOK {
			done++
			j.event(Event{Kind: EventDone, Chunk: r.p.task.Index, Worker: r.w.addr, Attempt: r.p.attempts,
				Done: done, Total: total0, Result: &r.res})
		}
	}
	return fail
}

// reportSkipped logs, and reports as an event, each worker in lacking not
// reported yet in this job: trimmed chunks are not sent to it.
func (j *dispJob) reportSkipped(lacking []*dispWorker) {
	for _, w := range lacking {
		if j.skipped[w] {
			continue
		}
		if j.skipped == nil {
			j.skipped = make(map[*dispWorker]bool)
		}
		j.skipped[w] = true
		err := fmt.Errorf("worker does not list the %q feature: the job's trimmed chunks are not sent to it", pb.FeatureFrameTrim)
		j.d.log.Warn("worker skipped for trimmed chunks", "video_id", j.videoID, "worker", w.addr, "error", err)
		j.event(Event{Kind: EventWorkerSkipped, Chunk: -1, Worker: w.addr, Err: err})
	}
}

// handle digests one attempt's result. It returns the chunk to retry, or
// the error that ends the job.
func (j *dispJob) handle(r attemptResult, done *int, total int) (*pendingChunk, error) {
	p := r.p
	idx := p.task.Index
	switch r.out {
	case outcomeOK:
		*done++
		j.paces.record(r.w.addr, p.task, r.took, r.res.EncodeSeconds)
		j.d.log.Debug("chunk stored", "video_id", j.videoID, "chunk", idx, "worker", r.w.addr,
			"attempts", p.attempts, "encoded_size", r.res.EncodedSize)
		j.event(Event{Kind: EventDone, Chunk: idx, Worker: r.w.addr, Attempt: p.attempts,
			Done: *done, Total: total, Result: &r.res})
		return nil, nil
	case outcomeRecordFail:
		return nil, fmt.Errorf("chunk %d: record result: %w", idx, r.err)
	}
	p.failed[r.w] = true
	p.workers = append(p.workers, r.w.addr)
	p.errs = append(p.errs, r.err)
	var delay time.Duration
	switch {
	case r.out == outcomePermanent:
		j.d.log.Error("chunk refused", "video_id", j.videoID, "chunk", idx, "worker", r.w.addr, "error", r.err)
		return nil, &ChunkError{Index: idx, Attempts: p.attempts, Permanent: true, Workers: p.workers, Errs: p.errs}
	case r.out == outcomeStraggler:
		// Not the chunk's fault, and the worker may never answer: at once,
		// elsewhere, uncounted (its limit doubles: see chunkPaces.limit).
		p.attempts--
		p.straggles++
		j.paces.straggled(r.w.addr)
	case p.attempts >= j.d.cfg.MaxAttempts:
		j.d.log.Error("chunk failed", "video_id", j.videoID, "chunk", idx, "attempts", p.attempts, "error", r.err)
		return nil, &ChunkError{Index: idx, Attempts: p.attempts, Workers: p.workers, Errs: p.errs}
	default:
		delay = j.d.backoff(p.attempts)
	}
	p.ready = time.Now().Add(delay)
	j.d.log.Warn("chunk failed, will retry", "video_id", j.videoID, "chunk", idx, "worker", r.w.addr,
		"attempt", p.attempts, "delay", delay.Round(time.Millisecond), "error", r.err)
	j.event(Event{Kind: EventRetry, Chunk: idx, Worker: r.w.addr, Attempt: p.attempts, Delay: delay,
		Err: r.err, Done: *done, Total: total})
	return p, nil
}

func insertPendingChunk(queue []*pendingChunk, p *pendingChunk) []*pendingChunk {
	i, _ := slices.BinarySearchFunc(queue, p.task.Index, func(q *pendingChunk, idx int) int {
		return cmp.Compare(q.task.Index, idx)
	})
	return slices.Insert(queue, i, p)
}

// event reports a chunk event to the job's callback.
func (j *dispJob) event(ev Event) {
	if j.onEvent == nil {
		return
	}
	ev.Time = time.Now()
	ev.VideoID = j.videoID
	j.d.eventMu.Lock()
	defer j.d.eventMu.Unlock()
	j.onEvent(ev)
}

// attempt sends one chunk to one worker, frees the worker's slot, records a
// success with onDone, and reports to the job's loop.
func (j *dispJob) attempt(ctx context.Context, f *flight, p *pendingChunk, ahead bool, results chan<- attemptResult) {
	d := j.d
	w := f.w
	actx, cancel := context.WithTimeout(f.ctx, d.cfg.ChunkTimeout)
	opts := p.task.options()
	opts.Stream = ahead
	resp, err := w.client.ProcessFileWith(actx, j.videoID, int32(p.task.Index), p.task.Path, d.cfg.Encoding, opts)
	cancel()
	took := time.Since(f.start)
	var res ChunkResult
	if err == nil {
		res, err = j.check(w, p, resp)
	}
	out := classifyAttempt(ctx, err)
	switch cause := context.Cause(f.ctx); {
	case out == outcomeOK || out == outcomeAborted:
	case errors.Is(cause, ErrStraggler):
		out, err = outcomeStraggler, cause
	case ahead && out == outcomePermanent && status.Code(err) == codes.Unimplemented:
		out = outcomeNoUploads
	}

	d.mu.Lock()
	w.inflight--
	switch out {
	case outcomeNoUploads:
		if !w.refusedUploads {
			d.log.Warn("worker offers streamed uploads but has no UploadChunk: no more chunks sent ahead to it",
				"worker", w.addr, "error", err)
		}
		w.refusedUploads, w.streams = true, false
	case outcomeOK:
		w.done++
		w.slowUntil = time.Time{}
	case outcomeStraggler:
		w.failures++
		w.lastErr = err.Error()
		w.slowUntil = time.Now().Add(took)
	case outcomeTransient, outcomeWorkerDown, outcomePermanent:
		w.failures++
		w.lastErr = err.Error()
	}
	d.broadcastLocked()
	d.mu.Unlock()
	if out == outcomeWorkerDown {
		d.markDown(w, err)
	}

	if out == outcomeOK && j.onDone != nil {
		j.doneMu.Lock()
		if !j.doneFailed {
			if rerr := j.onDone(res); rerr != nil {
				j.doneFailed = true
				out, err = outcomeRecordFail, rerr
			}
		}
		j.doneMu.Unlock()
	}
	results <- attemptResult{p: p, w: w, ahead: ahead, took: took, res: res, out: out, err: err}
}

// check turns a worker's answer into a result, or an error if the answer
// is not the chunk asked for.
func (j *dispJob) check(w *dispWorker, p *pendingChunk, resp *pb.ProcessChunkResponse) (ChunkResult, error) {
	t := p.task
	meta := resp.GetMetadata()
	j.d.mu.Lock()
	healthEncoder := w.encoder
	j.d.mu.Unlock()
	res := ChunkResult{
		Index:         t.Index,
		Worker:        w.addr,
		Location:      resp.GetShardLocation(),
		Checksum:      resp.GetChecksumSha256(),
		OriginalSize:  resp.GetOriginalSize(),
		EncodedSize:   resp.GetEncodedSize(),
		Frames:        meta.GetFrameCount(),
		Encoder:       meta.GetEncoder(),
		VideoCodec:    meta.GetVideoCodec(),
		EncodeSeconds: meta.GetEncodeTimeSeconds(),
		Attempts:      p.attempts,
		PictureHashes: resp.GetPictureHashes(),
	}
	switch {
	case res.Location == "":
		return res, fmt.Errorf("chunk %d: %w: the answer has no shard_location", t.Index, client.ErrProtocol)
	case meta != nil && (int(meta.GetChunkIndex()) != t.Index || meta.GetVideoId() != "" && meta.GetVideoId() != j.videoID):
		return res, fmt.Errorf("chunk %d: %w: the answer is for chunk %d of %q", t.Index, client.ErrProtocol,
			meta.GetChunkIndex(), meta.GetVideoId())
	case t.Size > 0 && res.OriginalSize > 0 && res.OriginalSize != t.Size:
		return res, fmt.Errorf("chunk %d: %w: the worker received %d bytes, the chunk has %d",
			t.Index, client.ErrFileChanged, res.OriginalSize, t.Size)
	case res.Encoder != healthEncoder:
		// Its health said one encoder, its chunk another: a shard that
		// claims to be simulated would be joined as bytes, unverified.
		return res, fmt.Errorf("chunk %d: %w: the worker's health says encoder %q, its chunk's metadata %q",
			t.Index, client.ErrProtocol, healthEncoder, res.Encoder)
	case res.Encoder != j.d.encoder:
		return res, fmt.Errorf("chunk %d: %w: its metadata says encoder %q, the job's is %q",
			t.Index, client.ErrProtocol, res.Encoder, j.d.encoder)
	case res.EncodedSize <= 0 || t.Size > 0 && res.EncodedSize > maxShardBytes(t.Size):
		return res, fmt.Errorf("chunk %d: %w: the worker says its shard of a %d-byte chunk has %d bytes",
			t.Index, client.ErrProtocol, t.Size, res.EncodedSize)
	}
	if res.Encoder == pb.EncoderFFmpeg && t.Frames > 0 {
		if res.Frames != t.Frames {
			return res, fmt.Errorf("chunk %d: %w: the shard has %d frames, the chunk %d",
				t.Index, ErrFrameMismatch, res.Frames, t.Frames)
		}
		res.MediaChecked = true
	}
	return res, nil
}

// maxShardBytes bounds the shard of a chunk of size bytes a worker may
// claim: far beyond any encode (a lossless one of a low-bitrate source is
// a few times its input), and small enough that fetching it is no attack.
func maxShardBytes(size int64) int64 { return 64*size + 64<<20 }

// classifyAttempt sorts an attempt's error. jobCtx is the job's context: once it
// is done, failures are the job's doing, not the worker's.
func classifyAttempt(jobCtx context.Context, err error) attemptOutcome {
	if err == nil {
		return outcomeOK
	}
	if jobCtx.Err() != nil {
		return outcomeAborted
	}
	if errors.Is(err, ErrFrameMismatch) || errors.Is(err, client.ErrProtocol) || errors.Is(err, client.ErrRejected) {
		return outcomeTransient
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			// Canceled that we did not ask for: the worker is shutting down.
			return outcomeWorkerDown
		case codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown, codes.DataLoss:
			return outcomeTransient
		}
		return outcomePermanent
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return outcomeWorkerDown
	}
	// Local: the chunk file is missing, unreadable or changed.
	return outcomePermanent
}

// chunkTask is the chunk's task: a trim when it needs one, and the
// worker's picture hashes asked for when only its head is proven.
func chunkTask(c media.Chunk) ChunkTask {
	t := ChunkTask{Index: c.Index, Path: c.Path, Frames: c.Frames, Size: c.Size, WantPictureHashes: c.Proven < c.Frames}
	if c.NeedsTrim() {
		t.TrimStart, t.TrimFrames = c.TrimStart, c.Frames
	}
	return t
}
