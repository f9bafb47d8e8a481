package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/framehash"
	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

// ErrVerification: the output does not match its source (Summary's
// Verification says how); it is kept beside the output path, never at it.
var ErrVerification = errors.New("verification failed")

// Job defaults.
const (
	DefaultSegmentSeconds = 10
	DefaultStateDir       = "master_state"
	// fetchParallel is how many shards are downloaded at once.
	fetchParallel = 4
)

// JobConfig configures Encode and Reconstruct.
type JobConfig struct {
	// Input is the source video (Encode only).
	Input string
	// Output is the file to write; its extension picks the container.
	Output string
	// Force lets the job replace an existing Output (and the unverified
	// output beside it). Nothing replaces the input, Force or not.
	Force bool
	// VideoID names the job on the workers and in the state directory;
	// empty means DefaultVideoID(Input).
	VideoID string
	// SegmentSeconds is the target chunk length (DefaultSegmentSeconds).
	SegmentSeconds float64
	// StateDir holds the chunk map of every job, <video_id>.json, and a
	// <video_id>.work directory while the job runs (DefaultStateDir).
	StateDir string
	Tools    media.Tools
	// Dispatch says which workers to use and how (Workers is required for
	// Encode; Reconstruct adds the workers the chunk map names).
	Dispatch DispatchConfig
	// Verify says how many of the output's pictures are compared with the
	// source's (VerifyFull when empty), and MinPSNR is the floor each
	// chunk's worst compared picture must reach (DefaultMinPSNR when 0): a
	// chunk below it is encoded again, once, then fails the job.
	Verify  VerifyMode
	MinPSNR float64
	// Cleanup deletes the job's shards from its workers once the output
	// is verified (Encode only).
	Cleanup bool
	// Replicas is how many verified copies of each chunk the job keeps on
	// distinct workers (DefaultReplicas when 0): encoded once, then copied
	// worker to worker (see replicator).
	Replicas int
	// WorkersFile names more workers, one HOST:PORT a line, read again
	// every WorkersFileInterval (DefaultWorkersFileInterval) while the job
	// runs: workers added to it join the job.
	WorkersFile         string
	WorkersFileInterval time.Duration
	// Progress receives the progress bar or lines; nil shows none.
	Progress io.Writer
	// OnEvent (may be nil) receives every event of the job's dispatch, one
	// at a time, as Progress does: for metrics and reports.
	OnEvent func(Event)
	Logger  *slog.Logger
}

// Summary describes a finished job.
type Summary struct {
	VideoID, Input, Output string
	// Chunks is the job's chunk count; Resumed of them were already stored
	// on the workers when this run started; Reencoded were encoded again
	// because their shards were lost or corrupted on a worker, or could
	// not be fetched from it (EncodedAgain says why, chunk by chunk).
	Chunks, Resumed, Reencoded int
	EncodedAgain               []string
	// PerWorker counts the chunks each worker holds.
	PerWorker map[string]int
	// Encoders are the encoders that made the shards (ffmpeg, simulated).
	Encoders              []string
	InputSize, OutputSize int64
	EncodedSize           int64 // the shards' bytes
	CompressionRatio      float64
	MediaSeconds          float64
	Wall                  time.Duration
	Speed                 float64 // MediaSeconds / Wall
	StatePath             string
	// Split says how the source was cut; nil when this run did not split
	// it (every chunk was already stored).
	Split        *media.SplitStats
	Verification *media.Verification // nil when not verified
	// Quality is the output's pictures measured against the source's,
	// over every chunk (VerifyMode says how many pictures of each); the
	// chunk map holds each chunk's. WorstChunk is the chunk with the lowest
	// picture. Nil when no picture was compared.
	Quality                *media.QualityStats
	VerifyMode             VerifyMode
	WorstChunk             int
	VerificationSkipReason string
	// Warnings name what of the source's presentation the output does not
	// carry (its container cannot, or ffmpeg cannot write it): streams
	// left out, rotation, colour, HDR metadata, titles, dispositions.
	Warnings []string
	// Cleanup is what JobConfig.Cleanup deleted; nil without it.
	Cleanup *Cleanup
	// Replication is how many copies each chunk reached (Encode).
	Replication *ReplicationReport
}

// DefaultVideoID derives a job's video id from its input's file name: the
// characters a worker does not accept become '_'.
func DefaultVideoID(input string) string {
	name := []byte(filepath.Base(input))
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			name[i] = '_'
		}
	}
	id := strings.TrimLeft(string(name), ".")
	if len(id) > chunkid.MaxVideoIDLen {
		id = id[:chunkid.MaxVideoIDLen]
	}
	if id == "" || id == "metadata" {
		id = "video_" + id
	}
	return id
}

func (c JobConfig) withDefaults() JobConfig {
	if c.SegmentSeconds <= 0 {
		c.SegmentSeconds = DefaultSegmentSeconds
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.VideoID == "" && c.Input != "" {
		c.VideoID = DefaultVideoID(c.Input)
	}
	if c.Verify == "" {
		c.Verify = VerifyFull
	}
	if c.MinPSNR == 0 {
		c.MinPSNR = DefaultMinPSNR
	}
	setDefaultValue(&c.Replicas, DefaultReplicas)
	setDefaultValue(&c.WorkersFileInterval, DefaultWorkersFileInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dispatch.Logger == nil {
		c.Dispatch.Logger = c.Logger
	}
	return c
}

func (c JobConfig) workDir() string { return filepath.Join(c.StateDir, c.VideoID+".work") }

// shardDir is where shards are fetched to, by the chunk checker as they
// are stored and by the join.
func (c JobConfig) shardDir() string { return filepath.Join(c.workDir(), "shards") }

// chunkDir is where the job's chunk files are cut to.
func (c JobConfig) chunkDir() string { return filepath.Join(c.workDir(), "chunks") }

// Encode runs a whole job: probe the input, split its video into chunks,
// encode them across the workers, and rebuild and verify the output. The
// chunk map is saved after every chunk; running Encode again with the same
// input, video id and settings resumes, without encoding again the chunks
// the workers still hold. Before any work it refuses an output that exists
// (unless Force) or that is the input (checkOutputs).
func Encode(ctx context.Context, cfg JobConfig) (Summary, error) {
	start := time.Now()
	cfg = cfg.withDefaults()
	if err := checkOutputs(cfg, cfg.Input); err != nil {
		return Summary{}, err
	}
	if err := chunkid.ValidateVideoID(cfg.VideoID); err != nil {
		return Summary{}, fmt.Errorf("--video-id: %w", err)
	}
	probing, err := startProbe(ctx, cfg, cfg.Input)
	if err != nil {
		return Summary{}, err
	}
	if err := probing.Started(ctx); err != nil {
		return Summary{}, err
	}
	src := probing.Info() // until the probe is done
	container, err := media.ContainerFor(cfg.Output)
	if err != nil {
		return Summary{}, err
	}
	if codec := outputCodec(cfg.Dispatch.Encoding); codec != "" {
		if err := media.CheckCompatible(container, codec); err != nil {
			return Summary{}, err
		}
	}
	_, statErr := os.Stat(cfg.StateDir)
	newStateDir := errors.Is(statErr, fs.ErrNotExist)
	state, resumed, err := openState(cfg, src)
	if err != nil {
		return Summary{}, err
	}

	d, stopWatch, err := jobDispatcher(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	defer d.Close()
	defer stopWatch()
	if outputCodec(cfg.Dispatch.Encoding) == "" {
		if err := checkWorkerCodecs(container, d.Stats()); err != nil {
			return Summary{}, err
		}
	}
	// Pinned for the job's whole life: a worker short of disk must not
	// evict the shards of a job in flight. Unpinned once verified.
	pinJob(ctx, cfg.Logger, d.Clients(), cfg.VideoID)

	if resumed {
		_, missing := d.ConfirmDone(ctx, state)
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		if len(missing) > 0 {
			cfg.Logger.Info("chunks no longer on their workers will be encoded again", "chunks", missing)
		}
		if err := state.Save(cfg.StateDir); err != nil {
			return Summary{}, err
		}
	}
	sum := Summary{VideoID: cfg.VideoID, Input: src.Path, Output: cfg.Output}
	if pending := state.Pending(); len(pending) > 0 || len(state.Chunks) == 0 {
		sum.Resumed = len(state.Chunks) - len(pending)
		if err := encodeChunks(ctx, cfg, probing, state, d, &sum); err != nil {
			if errors.Is(err, media.ErrSizeChange) {
				// The source can never be encoded: nothing is kept.
				abandonJob(ctx, cfg, d, newStateDir)
			}
			return Summary{}, resumable(err, cfg.StateDir)
		}
	} else {
		sum.Resumed = len(state.Chunks)
		// Every chunk stored: only copies may be missing.
		var mu sync.Mutex
		rp := newReplicator(ctx, cfg, d, &mu, state)
		rp.addShort()
		if err := rp.wait(); err != nil {
			return Summary{}, err
		}
	}
	if src, err = finishProbe(ctx, cfg, probing, state); err != nil {
		return Summary{}, err
	}
	// A chunk whose encode measured below the floor is encoded again,
	// once; a second failure fails the job naming it.
	if bad := belowFloor(state, cfg.MinPSNR); len(bad) > 0 {
		cfg.Logger.Warn("chunks below the picture-quality floor; encoding them again", "chunks", bad, "min_psnr", cfg.MinPSNR)
		for _, i := range bad {
			state.forget(i)
		}
		if err := state.Save(cfg.StateDir); err != nil {
			return Summary{}, err
		}
		if err := encodeChunks(ctx, cfg, media.Probed(src), state, d, nil); err != nil {
			return Summary{}, resumable(err, cfg.StateDir)
		}
		sum.Reencoded += len(bad)
		if bad := belowFloor(state, cfg.MinPSNR); len(bad) > 0 {
			return Summary{}, qualityError(state, bad, cfg.MinPSNR)
		}
	}
	err = rebuild(ctx, cfg, state, &src, d.Clients(), func() (*Dispatcher, error) { return d, nil }, &sum)
	if errors.Is(err, ErrVerification) {
		sum.Wall = time.Since(start)
		return sum, err // the summary says what failed
	}
	if err != nil {
		return Summary{}, err
	}
	if cfg.Cleanup {
		c := cleanupJob(ctx, d.Clients(), cfg.VideoID)
		sum.Cleanup = &c
	}
	unpinJob(ctx, cfg.Logger, d.Clients(), cfg.VideoID)
	sum.Wall = time.Since(start)
	sum.Speed = sum.MediaSeconds / sum.Wall.Seconds()
	sum.Replication = replicationReport(state, cfg.Replicas, healthyWorkers(d))
	return sum, sum.Replication.err()
}

// checkWorkerCodecs refuses, before anything is encoded, an output
// container that cannot carry the codec an ffmpeg worker encodes to by
// default (a job without --codec): the join would refuse it only after
// every chunk was encoded.
func checkWorkerCodecs(container string, workers map[string]WorkerStats) error {
	for _, addr := range slices.Sorted(maps.Keys(workers)) {
		w := workers[addr]
		if !w.Probed || w.Encoder != pb.EncoderFFmpeg || w.VideoCodec == "" {
			continue
		}
		if err := media.CheckCompatible(container, w.VideoCodec); err != nil {
			return fmt.Errorf("worker %s encodes %s by default: %w; ask for a codec the output takes with --codec", addr, w.VideoCodec, err)
		}
	}
	return nil
}

// jobDispatcher starts the job's dispatcher on cfg's workers and those
// of its workers file, which it then reads again while the job runs;
// stop ends that.
func jobDispatcher(ctx context.Context, cfg JobConfig) (d *Dispatcher, stop func(), err error) {
	dcfg := cfg.Dispatch
	if cfg.WorkersFile != "" {
		more, err := ReadWorkersFile(cfg.WorkersFile)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range more {
			if !slices.Contains(dcfg.Workers, a) {
				dcfg.Workers = append(slices.Clone(dcfg.Workers), a)
			}
		}
	}
	if d, err = NewDispatcher(ctx, dcfg); err != nil {
		return nil, nil, err
	}
	if cfg.WorkersFile == "" {
		return d, func() {}, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchWorkers(wctx, cfg.WorkersFile, cfg.WorkersFileInterval, d, cfg.Logger)
	}()
	return d, func() { cancel(); <-done }, nil
}

// healthyWorkers counts the workers that were healthy in the job.
func healthyWorkers(d *Dispatcher) int {
	n := 0
	for _, w := range d.Stats() {
		if w.Probed {
			n++
		}
	}
	return n
}

// rebuild fetches the shards and rebuilds the output (reconstruct). A
// shard lost on its worker, or whose worker cannot be reached, is encoded
// again from src on a live worker (of dispatcher(), called when first
// needed) and the output rebuilt, twice at most; without src (nil: the
// input is not there as it was) the error names the chunks.
func rebuild(ctx context.Context, cfg JobConfig, state *JobState, src *media.SourceInfo, clients map[string]*client.Client,
	dispatcher func() (*Dispatcher, error), sum *Summary) error {
	for attempt := 1; ; attempt++ {
		err := reconstruct(ctx, cfg, state, src, clients, sum)
		var lost *LostShardsError
		if !errors.As(err, &lost) || attempt > 2 {
			return err
		}
		if src == nil {
			return fmt.Errorf("%w; they cannot be encoded again: the chunk map's input %s is not there as it was", err, state.Source)
		}
		d, err := dispatcher()
		if err != nil {
			return fmt.Errorf("%w; encoding them again: %w", lost, err)
		}

		cfg.Logger.Warn("shards lost or out of reach; encoding them again", "chunks", lost.Chunks, "err", lost.Err)
		for _, w := range lost.Unreliable {
			cfg.Logger.Warn("worker shunned for the chunks it lost: its downloads stalled or brought other bytes than it said", "worker", w)
			d.Shun(w)
		}
		for _, i := range lost.Chunks {
			state.forget(i)
		}
		if err := state.Save(cfg.StateDir); err != nil {
			return err
		}
		if err := encodeChunks(ctx, cfg, media.Probed(*src), state, d, nil); err != nil {
			return resumable(err, cfg.StateDir)
		}
		sum.Reencoded += len(lost.Chunks)
		sum.EncodedAgain = append(sum.EncodedAgain, lost.Reasons...)
	}
}

// abandonJob undoes a job that can never finish: the chunks its workers
// stored are deleted and the video unpinned, and its chunk map and work
// directory removed, with the state directory when the job made it and
// nothing else is in it. What cannot be deleted is logged. The delete
// waits out chunks a worker is still writing (cleanupJob); a cancelled call
// whose write had not even begun may still land afterwards (a worker keeps
// what it encoded, for a retry): unpinned, eviction reclaims it.
func abandonJob(ctx context.Context, cfg JobConfig, d *Dispatcher, newStateDir bool) {
	if c := cleanupJob(ctx, d.Clients(), cfg.VideoID); len(c.Failed) > 0 {
		cfg.Logger.Warn("chunks of the abandoned job left on workers", "video_id", cfg.VideoID, "failed", c.Failed)
	}
	unpinJob(ctx, cfg.Logger, d.Clients(), cfg.VideoID)
	path, _ := StatePath(cfg.StateDir, cfg.VideoID) // the id was checked
	for _, remove := range []func() error{
		func() error { return os.RemoveAll(cfg.workDir()) },
		func() error { return os.Remove(journalPath(path)) },
		func() error { return os.Remove(path) },
	} {
		if err := remove(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			cfg.Logger.Warn("a file of the abandoned job is left", "err", err)
		}
	}
	if newStateDir {
		_ = os.Remove(cfg.StateDir) // only if empty
	}
}

// resumable is err, an encode's failure, saying that the job can be
// resumed from stateDir, unless the source itself is what was refused
// (not ErrNotMedia or ErrNoVideo: those may be a shard's).
func resumable(err error, stateDir string) error {
	if errors.Is(err, media.ErrSizeChange) {
		return err
	}
	return fmt.Errorf("%w (the chunk map is kept in %s: run the same command to resume)", err, stateDir)
}

// outputCodec maps a requested ffmpeg encoder to the codec it produces, for
// an early container check; "" when the workers' default applies.
func outputCodec(o *pb.EncodingOptions) string {
	e, _ := fftool.LookupVideoEncoder(o.GetVideoCodec())
	return e.Codec
}

// encodingMap records the requested options, so a resume can refuse others.
func encodingMap(o *pb.EncodingOptions) map[string]string {
	m := map[string]string{}
	if o.GetVideoCodec() != "" {
		m["codec"] = o.GetVideoCodec()
	}
	if o != nil && o.Crf != nil {
		m["crf"] = strconv.Itoa(int(o.GetCrf()))
	}
	if o.GetPreset() != "" {
		m["preset"] = o.GetPreset()
	}
	return m
}

// encodingOptions is encodingMap reversed.
func encodingOptions(m map[string]string) *pb.EncodingOptions {
	if len(m) == 0 {
		return nil
	}
	o := &pb.EncodingOptions{VideoCodec: m["codec"], Preset: m["preset"]}
	if crf, err := strconv.Atoi(m["crf"]); err == nil {
		o.Crf = proto.Int32(int32(crf))
	}
	return o
}

// openState loads the job's chunk map for a resume, or starts a new one. A
// map made from another input or with other settings is refused rather
// than mixed with this run.
func openState(cfg JobConfig, src media.SourceInfo) (*JobState, bool, error) {
	fi, err := os.Stat(src.Path)
	if err != nil {
		return nil, false, err
	}
	fresh := &JobState{
		VideoID: cfg.VideoID, Source: src.Path, SourceSize: fi.Size(), SourceModTime: fi.ModTime().UTC(),
		SourceFrames: src.Video.Frames, SegmentSeconds: cfg.SegmentSeconds,
		Encoding: encodingMap(cfg.Dispatch.Encoding), Output: cfg.Output, Replicas: cfg.Replicas,
	}
	removeStateTemps(cfg.StateDir, cfg.VideoID) // left by a master that crashed mid-save
	state, err := LoadState(cfg.StateDir, cfg.VideoID)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, false, fresh.Save(cfg.StateDir)
	}
	if err != nil {
		return nil, false, err
	}
	var differs []string
	// SourceFrames is 0 until the probe has decoded the whole source.
	if state.Source != fresh.Source || state.SourceSize != fresh.SourceSize || !state.SourceModTime.Equal(fresh.SourceModTime) ||
		state.SourceFrames != fresh.SourceFrames && state.SourceFrames != 0 && fresh.SourceFrames != 0 {
		differs = append(differs, "input "+state.Source)
	}
	if state.SegmentSeconds != fresh.SegmentSeconds {
		differs = append(differs, fmt.Sprintf("segment length %gs", state.SegmentSeconds))
	}
	if fmt.Sprint(state.Encoding) != fmt.Sprint(fresh.Encoding) {
		differs = append(differs, fmt.Sprintf("encoding %v", state.Encoding))
	}
	if len(differs) > 0 {
		path, _ := StatePath(cfg.StateDir, cfg.VideoID)
		return nil, false, fmt.Errorf("video %s already has a job in %s with another %s: choose another --video-id, or remove that file to start over",
			cfg.VideoID, path, strings.Join(differs, ", "))
	}
	state.Output, state.Replicas = cfg.Output, cfg.Replicas
	return state, true, nil
}

// startProbe starts media.StartProbe of input, or gives what it found for
// this job before, while input is unchanged (source.gob in the work
// directory, written by finishProbe).
func startProbe(ctx context.Context, cfg JobConfig, input string) (*media.Probing, error) {
	abs, err := filepath.Abs(input)
	if err != nil {
		return nil, err
	}
	if key, err := media.KeyOf(abs); err == nil {
		if src, err := media.LoadSource(sourcePath(cfg), key); err == nil {
			return media.Probed(src), nil
		}
	}
	return media.StartProbe(ctx, cfg.Tools, abs)
}

func sourcePath(cfg JobConfig) string { return filepath.Join(cfg.workDir(), "source.gob") }

// finishProbe waits for p and keeps what it found for a resume; the
// chunk map learns the source's picture count.
func finishProbe(ctx context.Context, cfg JobConfig, p *media.Probing, state *JobState) (media.SourceInfo, error) {
	src, err := p.Wait(ctx)
	if err != nil {
		return media.SourceInfo{}, err
	}
	keepSource(cfg, src)
	if state.SourceFrames != src.Video.Frames {
		state.SourceFrames = src.Video.Frames
		if err := state.Save(cfg.StateDir); err != nil {
			return media.SourceInfo{}, err
		}
	}
	return src, nil
}

// keepSource keeps what Probe found of src for a resume, unless it is
// kept already.
func keepSource(cfg JobConfig, src media.SourceInfo) {
	key, err := media.KeyOf(src.Path)
	if err != nil {
		return
	}
	if media.SourceKept(sourcePath(cfg), key) {
		return
	}
	err = os.MkdirAll(cfg.workDir(), 0o755)
	if err == nil {
		err = media.SaveSource(sourcePath(cfg), key, src)
	}
	if err != nil {
		cfg.Logger.Warn("cannot keep what the probe found for a resume", "err", err)
	}
}

// probeCached is media.Probe of input through the job's cache (startProbe,
// finishProbe).
func probeCached(ctx context.Context, cfg JobConfig, input string, state *JobState) (media.SourceInfo, error) {
	p, err := startProbe(ctx, cfg, input)
	if err != nil {
		return media.SourceInfo{}, err
	}
	return finishProbe(ctx, cfg, p, state)
}

// splitCached is media.Split of src into dir, or the chunks it made for
// this job before (split.gob in the work directory), while the source,
// the split's settings and the chunk files are unchanged. reused says
// which.
func splitCached(ctx context.Context, cfg JobConfig, src media.SourceInfo, key media.SplitKey, dir string) (chunks []media.Chunk, stats media.SplitStats, reused bool, err error) {
	if chunks, err := media.LoadSplit(splitPath(cfg), key); err == nil {
		return chunks, media.SummarizeSplit(chunks), true, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, stats, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, stats, false, err
	}
	start := time.Now()
	chunks, stats, err = media.Split(ctx, cfg.Tools, src, cfg.SegmentSeconds, dir, media.SplitOptions{HeadProof: key.HeadProof})
	if err != nil {
		return nil, stats, false, err
	}
	stats.Seconds = time.Since(start).Seconds()
	return chunks, stats, false, saveSplit(cfg, key, chunks)
}

func splitPath(cfg JobConfig) string { return filepath.Join(cfg.workDir(), "split.gob") }

// saveSplit keeps chunks for a resume (see splitCached); after Reprove
// too, which may have made some again.
func saveSplit(cfg JobConfig, key media.SplitKey, chunks []media.Chunk) error {
	if err := media.SaveSplit(splitPath(cfg), key, chunks); err != nil {
		return fmt.Errorf("keep the split for a resume: %w", err)
	}
	return nil
}

// encodeChunks splits the source and dispatches the chunks not yet done;
// with sum set, it records there how the source was cut. A fresh job on a
// source still being probed is cut while its pictures are decoded, each
// batch of chunks dispatched as soon as it is proven (encodeLive).
func encodeChunks(ctx context.Context, cfg JobConfig, p *media.Probing, state *JobState, d *Dispatcher, sum *Summary) error {
	srcKey, err := media.KeyOf(p.Info().Path)
	if err != nil {
		return err
	}
	// Workers that hash the pictures they decode prove the chunks' tails:
	// the master then decodes only each chunk's head. So does a simulated
	// encoder, which decodes nothing: its shards are not media, and the
	// head is where a cut goes wrong.
	headProof := d.All(func(w WorkerStats) bool {
		return w.Encoder == pb.EncoderSimulated || slices.Contains(w.Features, pb.FeaturePictureHashes)
	})
	splitKey := media.SplitKey{Source: srcKey, SegmentSeconds: cfg.SegmentSeconds, HeadProof: headProof}
	if !p.Done() {
		// Chunks the workers hold without the map knowing them are adopted
		// on the whole split: a map that lists chunks (a resume) knows them.
		held := false
		if len(state.Chunks) == 0 {
			if held, err = workersHold(ctx, d, cfg.VideoID); err != nil {
				return err
			}
		}
		if !held {
			err := encodeLive(ctx, cfg, p, state, d, sum, splitKey)
			if !errors.Is(err, media.ErrReplan) {
				return err
			}
			cfg.Logger.Warn("the source cuts otherwise than its start promised; cutting it again, and encoding again the chunks already encoded",
				"err", err)
			state.resetSplit()
			if err := state.Save(cfg.StateDir); err != nil {
				return err
			}
		}
	}
	src, err := p.Wait(ctx)
	if err != nil {
		return err
	}
	chunks, stats, reused, err := splitCached(ctx, cfg, src, splitKey, cfg.chunkDir())
	if err != nil {
		return err
	}
	if reused {
		cfg.Logger.Info("the chunks of the previous run are used again", "chunks", len(chunks))
	}
	if err := state.mergeSplit(chunks); err != nil {
		return err
	}
	if err := state.Save(cfg.StateDir); err != nil {
		return err
	}
	if err := adopt(ctx, cfg, src, state, d, chunks, splitKey); err != nil {
		return err
	}
	r := newJobRun(ctx, cfg, state, d, chunks, p, src.Video.Duration)
	if sum != nil {
		stats.Reused = reused
		sum.Split = &stats
	}
	var tasks []ChunkTask
	for _, i := range state.Pending() {
		tasks = append(tasks, chunkTask(chunks[i]))
	}
	r.progress.skip(state)
	return r.finish(ctx, src, sum, splitKey, d.Run(ctx, cfg.VideoID, tasks, r.onDone, r.onEvent))
}

// workersHold reports whether a worker holds chunks of videoID: a job
// whose chunk map was lost, whose chunks adopt takes back.
func workersHold(ctx context.Context, d *Dispatcher, videoID string) (bool, error) {
	for _, c := range d.Clients() {
		resp, err := c.Metadata(ctx, videoID)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			continue // not there, or not answering: nothing to adopt from it
		}
		if len(resp.GetChunksMetadata()) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// encodeLive is encodeChunks for a source still being probed (a fresh
// job, or one killed before its split was kept): media.SplitLive hands out
// chunks as it proves them, and they go straight to the dispatcher, but
// for those the chunk map holds done. The map lists the chunks as they are
// planned, in order, so a job killed midway resumes with what it holds.
func encodeLive(ctx context.Context, cfg JobConfig, p *media.Probing, state *JobState, d *Dispatcher, sum *Summary, splitKey media.SplitKey) error {
	dir := cfg.chunkDir()
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	info := p.Info()
	r := newJobRun(ctx, cfg, state, d, nil, p, info.Video.Duration)
	r.progress.skip(state)
	// The split and the dispatch stop together.
	liveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tasks := make(chan ChunkTask)
	runErr := make(chan error, 1)
	go func() {
		runErr <- d.RunStream(liveCtx, cfg.VideoID, tasks, r.onDone, r.onEvent)
		cancel()
	}()
	start := time.Now()
	chunks, stats, err := media.SplitLive(liveCtx, cfg.Tools, p, cfg.SegmentSeconds, dir, media.SplitOptions{HeadProof: splitKey.HeadProof},
		func(planned, ready []media.Chunk) error {
			r.mu.Lock()
			r.chunks = append(r.chunks, planned...)
			for _, c := range ready {
				r.chunks[c.Index] = c
			}
			err := state.mergePlanned(planned)
			var send []media.Chunk // a resumed job's done chunks are not sent again
			for _, c := range ready {
				state.setSplit(c)
				if i, ok := state.position(c.Index); !ok || !state.Chunks[i].Done {
					send = append(send, c)
				}
			}
			if err == nil {
				err = state.Save(cfg.StateDir)
			}
			r.mu.Unlock()
			if err != nil {
				return err
			}
			for _, c := range send {
				select {
				case tasks <- chunkTask(c):
				case <-liveCtx.Done():
					return liveCtx.Err()
				}
			}
			return nil
		})
	if err == nil {
		r.mu.Lock()
		// r.chunks holds every chunk emit handed out, with what onDone
		// has learnt of them since; the copy is this goroutine's own, for
		// saveSplit to read while onDone goes on writing r.chunks.
		if len(r.chunks) != len(chunks) {
			err = fmt.Errorf("the live split handed out %d chunks and returned %d", len(r.chunks), len(chunks))
		} else {
			chunks = slices.Clone(r.chunks)
			err = state.mergeSplit(chunks)
		}
		if err == nil {
			err = state.Save(cfg.StateDir)
		}
		r.mu.Unlock()
		if p := r.progress.p; p != nil {
			p.SetTotal(len(chunks))
		}
	}
	var src media.SourceInfo
	if err == nil {
		// A resume from here on needs neither probe nor split.
		if src, err = p.Wait(ctx); err == nil {
			keepSource(cfg, src)
			err = saveSplit(cfg, splitKey, chunks)
		}
	}
	close(tasks)
	if err != nil {
		cancel()
		if runErrV := <-runErr; runErrV != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
			return runErrV // the dispatch failed, and stopped the split
		}
		return err
	}
	runErrV := <-runErr
	if sum != nil {
		stats.Seconds = time.Since(start).Seconds()
		stats.Live = true
		sum.Split = &stats
	}
	return r.finish(ctx, src, sum, splitKey, runErrV)
}

// adopt records as done the pending chunks the workers already hold
// (adoptStored); what was not proven of them is proven now.
func adopt(ctx context.Context, cfg JobConfig, src media.SourceInfo, state *JobState, d *Dispatcher, chunks []media.Chunk, splitKey media.SplitKey) error {
	adopted, err := adoptStored(ctx, d.Clients(), state, chunks, cfg.Dispatch.Encoding)
	if err != nil || len(adopted) == 0 {
		return err
	}
	var unproven []int
	for _, i := range adopted {
		if chunks[i].Proven < chunks[i].Frames {
			unproven = append(unproven, i)
		}
	}
	changed, err := media.Reprove(ctx, cfg.Tools, src, chunks, unproven)
	if err != nil {
		return err
	}
	for _, i := range unproven {
		state.setSplit(chunks[i])
	}
	for _, i := range changed {
		state.forget(i)
	}
	if len(changed) > 0 {
		if err := saveSplit(cfg, splitKey, chunks); err != nil {
			return err
		}
	}
	adopted = slices.DeleteFunc(adopted, func(a int) bool { return slices.Contains(changed, a) })
	cfg.Logger.Info("chunks the workers already hold for this input are not encoded again", "chunks", adopted)
	return state.Save(cfg.StateDir)
}

// jobRun is one dispatch of a job's chunks: the dispatcher's callbacks and
// what they share with the split.
type jobRun struct {
	cfg      JobConfig
	state    *JobState
	d        *Dispatcher
	progress *jobProgress
	checker  *chunkChecker // nil without --verify
	copies   *replicator

	mu       sync.Mutex    // guards the fields below and state (onDone, the checker, the split)
	chunks   []media.Chunk // by index, as split so far
	unproven []ChunkResult // results whose worker's pictures did not prove the chunk
	headOnly int           // results of head-proven chunks that nothing decoded whole
	err      error         // why the checker could not start
}

func newJobRun(ctx context.Context, cfg JobConfig, state *JobState, d *Dispatcher, chunks []media.Chunk, fields fieldChecker, media float64) *jobRun {
	r := &jobRun{cfg: cfg, state: state, d: d, chunks: chunks}
	r.progress = newJobProgress(cfg, cfg.SegmentSeconds, media, len(chunks))
	r.copies = newReplicator(ctx, cfg, d, &r.mu, state)
	r.copies.addShort() // stored before this run, or adopted
	if cfg.Verify != VerifyOff {
		if r.err = os.MkdirAll(cfg.shardDir(), 0o755); r.err == nil {
			r.checker = newChunkChecker(ctx, cfg, r.chunk, fields, d.Clients(), cfg.shardDir(), &r.mu, state)
			for _, c := range state.Chunks { // stored before this run, or adopted
				if c.Done && (c.Quality == nil || c.QualityMode != cfg.Verify) {
					r.checker.add(c.Index)
				}
			}
		}
	}
	return r
}

// chunk is chunk i as split.
func (r *jobRun) chunk(i int) media.Chunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chunks[i]
}

func (r *jobRun) onDone(res ChunkResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chunks[res.Index]
	if c.Proven < c.Frames && res.Encoder == pb.EncoderSimulated {
		r.headOnly++
	} else if c.Proven < c.Frames {
		if !c.ProvenBy(res.PictureHashes) {
			r.unproven = append(r.unproven, res)
			return nil // decided once every chunk is in
		}
		r.chunks[res.Index].Decoded = int64(len(res.PictureHashes) / framehash.Size)
		r.state.setSplit(r.chunks[res.Index])
	}
	r.state.Record(res)
	if err := r.state.Save(r.cfg.StateDir); err != nil {
		return err
	}
	if r.checker != nil {
		r.checker.add(res.Index)
	}
	r.copies.add(res.Index)
	return nil
}

func (r *jobRun) onEvent(e Event) {
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
	p := r.progress.p
	if p == nil {
		return
	}
	switch e.Kind {
	case EventDone:
		p.ChunkDone(e.Chunk, r.chunk(e.Chunk).Duration, e.Worker)
	case EventRetry:
		p.Logf("chunk %d failed on %s (attempt %d): %v; retrying in %s", e.Chunk, e.Worker, e.Attempt, e.Err, e.Delay.Round(time.Millisecond))
	case EventWorkerDown:
		p.Logf("worker %s out of rotation: %v", e.Worker, e.Err)
	case EventWorkerUp:
		p.Logf("worker %s back in rotation", e.Worker)
	case EventWorkerSkipped:
		p.Logf("worker %s passed over: %v", e.Worker, e.Err)
	}
}

// finish settles the results that did not prove their chunks, encodes
// again the chunks that changed, waits for the checker and removes the
// chunk files; err is how the dispatch ended.
func (r *jobRun) finish(ctx context.Context, src media.SourceInfo, sum *Summary, splitKey media.SplitKey, err error) error {
	defer r.progress.finish()
	if r.err != nil {
		return errors.Join(r.err, r.copies.wait())
	}
	if sum != nil && sum.Split != nil {
		sum.Split.HeadOnly = r.headOnly
	}
	if err == nil && len(r.unproven) > 0 {
		proofStart := time.Now()
		var again []ChunkTask
		again, err = r.settle(ctx, src, r.unproven)
		if sum != nil && sum.Split != nil {
			stats := *sum.Split
			s := media.SummarizeSplit(r.chunks) // some made again
			s.Seconds, s.HeadProven, s.HeadOnly, s.Reused, s.Live = stats.Seconds, stats.HeadProven, r.headOnly, stats.Reused, stats.Live
			s.ProofSeconds = stats.ProofSeconds + time.Since(proofStart).Seconds()
			s.Reproven = len(r.unproven)
			sum.Split = &s
		}
		if err == nil && len(again) > 0 {
			err = saveSplit(r.cfg, splitKey, r.chunks)
		}
		if err == nil && len(again) > 0 {
			err = r.d.Run(ctx, r.cfg.VideoID, again, r.onDone, r.onEvent)
		}
	}
	if r.checker != nil {
		if cerr := r.checker.wait(); err == nil {
			err = cerr
		}
	}
	if cerr := r.copies.wait(); err == nil {
		err = cerr
	}
	if err == nil {
		err = errors.Join(os.Remove(splitPath(r.cfg)), os.RemoveAll(r.cfg.chunkDir()))
	}
	return err
}

// jobProgress is the job's Progress (nil p without cfg.Progress), its
// total estimated from the source's length until the split is known.
type jobProgress struct{ p *Progress }

func newJobProgress(cfg JobConfig, segment, mediaSeconds float64, chunks int) *jobProgress {
	if cfg.Progress == nil {
		return &jobProgress{}
	}
	estimated := chunks == 0
	if estimated && segment > 0 {
		chunks = int(math.Round(mediaSeconds / segment))
	}
	p := NewProgress(cfg.Progress, chunks, mediaSeconds)
	p.estimated = estimated
	return &jobProgress{p: p}
}

// skip counts the chunks state holds done.
func (jp *jobProgress) skip(state *JobState) {
	if jp.p == nil {
		return
	}
	n, media := 0, 0.0
	for _, c := range state.Chunks {
		if c.Done {
			n++
			media += c.Duration
		}
	}
	if n > 0 {
		jp.p.Skip(n, media)
	}
}

func (jp *jobProgress) finish() {
	if jp.p != nil {
		jp.p.Finish()
	}
}

// settle decides the results whose worker decoded other pictures than
// the chunk's head proof expected, or gave none to compare: the master
// decodes those chunks whole (Reprove). A result whose chunk proves with
// the trim it was encoded with is recorded (through onDone); the others'
// chunks, trimmed anew or made again losslessly, are returned to be
// encoded again.
func (r *jobRun) settle(ctx context.Context, src media.SourceInfo, results []ChunkResult) ([]ChunkTask, error) {
	which := make([]int, len(results))
	for j, res := range results {
		which[j] = res.Index
	}
	r.cfg.Logger.Warn("chunks whose workers did not return the pictures the split expected; decoding them whole",
		"chunks", which)
	r.mu.Lock() // the chunks change under the checker's eyes
	changed, err := media.Reprove(ctx, r.cfg.Tools, src, r.chunks, which)
	for _, i := range which {
		r.state.setSplit(r.chunks[i])
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var again []ChunkTask
	for _, res := range results {
		c := r.chunk(res.Index)
		if slices.Contains(changed, c.Index) {
			r.cfg.Logger.Warn("chunk encoded from other pictures than its own; encoding it again", "chunk", c.Index,
				"lossless", c.Lossless, "trim_start", c.TrimStart)
			again = append(again, chunkTask(c))
			continue
		}
		if err := r.onDone(res); err != nil {
			return nil, err
		}
	}
	return again, nil
}

// adoptStored records as done the pending chunks that a worker already
// holds, encoded from the same input bytes with the requested settings: a
// chunk a worker finished after the master stopped following it (killed
// mid-chunk), or a job whose chunk map was lost. It asks each worker once
// and hashes only the chunk files a worker holds a version of, so a fresh
// job reads no chunk twice.
func adoptStored(ctx context.Context, clients map[string]*client.Client, state *JobState, chunks []media.Chunk, o *pb.EncodingOptions) ([]int, error) {
	pending := map[int]bool{}
	for _, i := range state.Pending() {
		pending[i] = true
	}
	if len(pending) == 0 {
		return nil, nil
	}
	addrs := make([]string, 0, len(clients))
	for addr := range clients {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	inputSums := map[int]string{} // hashed only for chunks some worker holds
	var adopted []int
	for _, addr := range addrs {
		resp, err := clients[addr].Metadata(ctx, state.VideoID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // not there, or not answering: nothing to adopt from it
		}
		for _, m := range resp.GetChunksMetadata() {
			i := int(m.GetChunkIndex())
			if !pending[i] || !sameSettings(m.GetEncoderSettings(), o) || !sameTrim(m.GetEncoderSettings(), chunks[i]) {
				continue
			}
			sum, ok := inputSums[i]
			if !ok {
				if sum, err = fsutil.FileSHA256(chunks[i].Path); err != nil {
					return nil, err
				}
				inputSums[i] = sum
			}
			if !strings.EqualFold(m.GetInputChecksumSha256(), sum) {
				continue
			}
			media := m.GetEncoder() == pb.EncoderFFmpeg
			if media && m.GetFrameCount() != chunks[i].Frames {
				continue
			}
			state.Record(ChunkResult{
				Index: i, Worker: addr, Location: m.GetShardLocation(), Checksum: m.GetChecksumSha256(),
				OriginalSize: m.GetOriginalSize(), EncodedSize: m.GetEncodedSize(), Frames: m.GetFrameCount(),
				Encoder: m.GetEncoder(), VideoCodec: m.GetVideoCodec(), EncodeSeconds: m.GetEncodeTimeSeconds(),
				Attempts: 1, MediaChecked: media,
			})
			delete(pending, i)
			adopted = append(adopted, i)
		}
	}
	slices.Sort(adopted)
	return adopted, nil
}

// sameSettings reports whether a stored chunk's encoder settings agree
// with every option the job requests.
func sameSettings(settings map[string]string, o *pb.EncodingOptions) bool {
	for k, v := range encodingMap(o) {
		if settings[k] != v {
			return false
		}
	}
	return true
}

// The worker's encoder_settings keys of a trimmed chunk.
const (
	settingTrimStart  = "trim_start"
	settingTrimFrames = "trim_frames"
)

// sameTrim reports whether a stored chunk was trimmed as c must be (or not
// at all, when c needs no trim).
func sameTrim(settings map[string]string, c media.Chunk) bool {
	if !c.NeedsTrim() {
		return settings[settingTrimStart] == "" && settings[settingTrimFrames] == ""
	}
	return settings[settingTrimStart] == strconv.FormatInt(c.TrimStart, 10) &&
		settings[settingTrimFrames] == strconv.FormatInt(c.Frames, 10)
}

// reconstruct fetches every shard of the job, joins them with the source's
// side streams (src nil: none), writes cfg.Output and verifies it against
// src. Shards a simulated encoder made are not media: they are
// concatenated as bytes, and the media checks are skipped, saying so.
func reconstruct(ctx context.Context, cfg JobConfig, state *JobState, src *media.SourceInfo, clients map[string]*client.Client, sum *Summary) error {
	if len(state.Chunks) == 0 {
		return errors.New("reconstruct: the job has no chunks")
	}
	if pending := state.Pending(); len(pending) > 0 {
		return fmt.Errorf("reconstruct: chunks %v are not encoded yet", pending)
	}
	shardDir := cfg.shardDir() // may hold shards the chunk checker fetched
	if err := os.MkdirAll(shardDir, 0o755); err != nil {
		return err
	}
	paths, encoders, err := fetchShards(ctx, state, clients, shardDir)
	if err != nil {
		return err
	}
	summarizeChunks(cfg, state, src, encoders, sum)
	failed, err := assemble(ctx, cfg, state, src, paths, encoders, sum)
	if err != nil {
		return err
	}
	out := cfg.Output
	if failed != nil {
		out = unverifiedPath(cfg.Output)
	}
	if fi, err := os.Stat(out); err == nil {
		sum.OutputSize = fi.Size()
	}
	if sum.InputSize > 0 {
		sum.CompressionRatio = float64(sum.OutputSize) / float64(sum.InputSize)
	}
	if err := os.RemoveAll(cfg.workDir()); err != nil {
		cfg.Logger.Warn("cannot remove the work directory", "dir", cfg.workDir(), "err", err)
	}
	return failed
}

// summarizeChunks fills in what the summary says of the chunks, their
// workers and encoders, and the source.
func summarizeChunks(cfg JobConfig, state *JobState, src *media.SourceInfo, encoders map[string]bool, sum *Summary) {
	sum.Chunks = len(state.Chunks)
	sum.PerWorker = map[string]int{}
	for _, c := range state.Chunks {
		for _, rep := range c.Copies() {
			sum.PerWorker[rep.Worker]++
		}
		sum.EncodedSize += c.EncodedSize
		sum.MediaSeconds += c.Duration
	}
	for e := range encoders {
		sum.Encoders = append(sum.Encoders, e)
	}
	slices.Sort(sum.Encoders)
	if src != nil {
		sum.InputSize = src.Size
		if src.Video.Duration > 0 {
			sum.MediaSeconds = src.Video.Duration
		}
	}
	if path, err := StatePath(cfg.StateDir, cfg.VideoID); err == nil {
		if _, err := os.Stat(path); err == nil {
			sum.StatePath = path
		}
	}
}

// assemble writes the output from the fetched shards at paths: their bytes
// concatenated for a simulated encoder's, which are not media; otherwise
// joined with the source's side streams and, with src, verified against it
// (joinVerified). failed is a verification that failed (the output is then
// beside cfg.Output, see unverifiedPath); err what stopped the output.
func assemble(ctx context.Context, cfg JobConfig, state *JobState, src *media.SourceInfo, paths []string, encoders map[string]bool, sum *Summary) (failed, err error) {
	if encoders[pb.EncoderSimulated] {
		if len(encoders) > 1 {
			// The dispatcher sends a job's chunks to one encoder's workers;
			// a chunk map that mixes them was not made by this master.
			return nil, fmt.Errorf("assemble: the shards mix a simulated encoder's, which are not media, with %s's: encode the video again",
				strings.Join(slices.Sorted(maps.Keys(encoders)), " and "))
		}
		sum.VerificationSkipReason = "shards made by a simulated encoder are not media: the output is their bytes, concatenated; media checks skipped"
		return nil, concatFiles(paths, cfg.Output)
	}
	shards := make([]media.Shard, len(paths))
	for i, p := range paths {
		shards[i] = media.Shard{Path: p, Duration: state.Chunks[i].Duration}
	}
	if src == nil {
		sum.VerificationSkipReason = "no source to compare with: the chunk map is missing or its input changed"
		return nil, media.Join(ctx, cfg.Tools, media.SourceInfo{}, shards, media.SideStreams{}, cfg.Output)
	}
	container, err := media.ContainerFor(cfg.Output)
	if err != nil {
		return nil, err
	}
	side, err := media.PlanSideStreams(ctx, cfg.Tools, *src, container)
	if err != nil {
		return nil, err
	}
	err = joinVerified(ctx, cfg, *src, state, shards, paths, side, sum)
	if errors.Is(err, ErrVerification) {
		return err, nil // summarised like a verified output
	}
	return nil, err
}

// joinVerified joins the shards into an unverified file beside the output
// (unverifiedPath), verifies it against src, and only then renames it to
// cfg.Output: a failed verification never replaces or leaves a file at the
// output path, and the error names where the unverified output is.
func joinVerified(ctx context.Context, cfg JobConfig, src media.SourceInfo, state *JobState, shards []media.Shard, paths []string, side media.SideStreams, sum *Summary) error {
	vcfg := cfg
	vcfg.Output = unverifiedPath(cfg.Output)
	if err := media.Join(ctx, cfg.Tools, src, shards, side, vcfg.Output); err != nil {
		return err
	}
	// The checks read the output each on its own, side by side: the job's
	// tail is the longest of them, not their sum.
	var v, pv media.Verification // Verify's, and the picture checks' problems
	var srcP, outP media.Presentation
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		v, err = media.Verify(gctx, cfg.Tools, src.Without(side.Left), side, vcfg.Output)
		return err
	})
	g.Go(func() error { return verifyPictures(gctx, vcfg, src, state, paths, &pv, sum) })
	g.Go(func() (err error) {
		srcP, outP, err = probePresentations(gctx, cfg.Tools, src, vcfg.Output)
		return err
	})
	err := g.Wait()
	if err == nil {
		v.Problems = append(v.Problems, pv.Problems...)
		v.Problems = append(v.Problems, side.CheckCodecs(outP)...)
		v.OK = len(v.Problems) == 0
		sum.Warnings, err = presentationWarnings(vcfg, src, side, srcP.WithoutTracks(side.Left), outP, v)
		sum.Warnings = append(sum.Warnings, fieldsWarning(state)...)
	}
	if err != nil {
		_ = os.Remove(vcfg.Output)
		return err
	}
	sum.Verification = &v
	if !v.OK {
		return fmt.Errorf("%w: %s (the output is kept as %s; %s is untouched): %s",
			ErrVerification, cfg.Output, vcfg.Output, cfg.Output, strings.Join(v.Problems, "; "))
	}
	if err := os.Rename(vcfg.Output, cfg.Output); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(cfg.Output))
}

// unverifiedPath is where an output is joined before it is verified:
// beside it, "out.unverified.mkv" for "out.mkv".
func unverifiedPath(output string) string {
	ext := filepath.Ext(output)
	return strings.TrimSuffix(output, ext) + ".unverified" + ext
}

// probePresentations reads the source's and the output's presentations,
// side by side: the output, made of workers' shards, as one
// (media.ProbeEncodedPresentation).
func probePresentations(ctx context.Context, tools media.Tools, src media.SourceInfo, output string) (srcP, outP media.Presentation, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if srcP, err = media.ProbePresentation(gctx, tools, src.Path); err != nil {
			return fmt.Errorf("read the source's presentation: %w", err)
		}
		return nil
	})
	g.Go(func() (err error) {
		if outP, err = media.ProbeEncodedPresentation(gctx, tools, output, src.Video.Width, src.Video.Height); err != nil {
			return fmt.Errorf("read the output's presentation: %w", err)
		}
		return nil
	})
	err = g.Wait()
	return srcP, outP, err
}

// presentationWarnings compares the output's presentation with the
// source's, after the streams the side-stream plan left out and what the
// source's decode found; track offsets count from each file's first
// picture (outVideoStart for the output, as Verify measured it).
func presentationWarnings(cfg JobConfig, src media.SourceInfo, side media.SideStreams, srcP, outP media.Presentation, v media.Verification) ([]string, error) {
	container, err := media.ContainerFor(cfg.Output)
	if err != nil {
		return nil, err
	}
	// Offsets from the first picture shown, not the first packet, to the
	// first sample of the source's sound, not the first packet's.
	srcP.PlaceVideo(src.Video.StartTime)
	outP.PlaceVideo(v.OutputVideoStart) // as Verify found it
	srcP.PlaceAudio(v.AudioStartsSource)
	outP.PlaceAudio(v.AudioStartsOutput)
	warnings := slices.Clone(side.Dropped)
	for i := range warnings {
		warnings[i] = "left out: " + warnings[i]
	}
	warnings = append(warnings, src.Warnings...)
	return append(warnings, media.ComparePresentation(srcP, outP, container)...), nil
}

// fetchShards downloads every chunk's shard into dir, a few at a time,
// each checked against the checksum in the chunk map. A chunk is read
// from the least loaded of the workers holding a copy, and from the next
// one when that copy is lost or out of reach (see lostBecause); a worker
// that failed one download as a whole (workerAtFault) is not asked for
// another, so a stalling worker costs one idle timeout, not one a chunk.
// It returns the local paths in chunk order and the encoders that made
// them.
func fetchShards(ctx context.Context, state *JobState, clients map[string]*client.Client, dir string) ([]string, map[string]bool, error) {
	paths := make([]string, len(state.Chunks))
	encoders := make([]string, len(state.Chunks))
	lost := make([]error, len(state.Chunks)) // why each lost chunk is lost; nil for the others
	picker := newReadPicker(ctx, clients)
	var mu sync.Mutex
	shun := map[string]bool{}   // the workers found unreliable, guarded by mu
	failed := map[string]bool{} // the workers at fault for a download (workerAtFault), guarded by mu
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	for i, c := range state.Chunks {
		g.Go(func() error {
			path := shardPath(dir, c.Index)
			if c.Checksum != "" && c.Encoder != "" {
				if sum, err := fsutil.FileSHA256(path); err == nil && sum == c.Checksum {
					paths[i], encoders[i] = path, c.Encoder // fetched by the chunk checker
					return nil
				}
			}
			var whys []error
			for _, rep := range picker.order(c.Copies()) {
				cs := c
				cs.Worker, cs.Location = rep.Worker, rep.Location
				mu.Lock()
				skip := failed[rep.Worker]
				mu.Unlock()
				if skip {
					whys = append(whys, fmt.Errorf("its worker %s failed another download of this job", rep.Worker))
					continue
				}
				done := picker.start(rep.Worker)
				enc, err := fetchShard(gctx, clients[rep.Worker], cs, path)
				done()
				if why := lostBecause(gctx, err); why != "" {
					whys = append(whys, fmt.Errorf("%s %s (%w)", why, rep.Worker, err))
					mu.Lock()
					shun[rep.Worker] = shun[rep.Worker] || unreliable(err)
					failed[rep.Worker] = failed[rep.Worker] || workerAtFault(err)
					mu.Unlock()
					continue // the next copy
				}
				if err != nil {
					return fmt.Errorf("fetch chunk %d from %s: %w", c.Index, rep.Worker, err)
				}
				paths[i], encoders[i] = path, enc
				return nil
			}
			if len(whys) == 0 {
				whys = append(whys, errors.New("the chunk map names no worker holding it"))
			}
			lost[i] = fmt.Errorf("chunk %d: %w", c.Index, errors.Join(whys...))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var lostErr LostShardsError
	for i, err := range lost {
		if err != nil {
			lostErr.Chunks = append(lostErr.Chunks, i)
			lostErr.Reasons = append(lostErr.Reasons, err.Error())
			lostErr.Err = err
		}
	}
	if len(lostErr.Chunks) > 0 {
		lostErr.Unreliable = slices.Sorted(maps.Keys(shun))
		return nil, nil, &lostErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	set := map[string]bool{}
	for _, e := range encoders {
		set[e] = true
	}
	return paths, set, nil
}

// LostShardsError reports chunks whose shards their workers no longer hold
// intact (NotFound, or DataLoss: the worker found them corrupted and
// quarantined them), or whose workers cannot be reached (gone, not
// answering, stalling). Chunks are positions in the chunk map; Reasons
// say, for each, what happened.
type LostShardsError struct {
	Chunks  []int
	Reasons []string
	Err     error // one of the failures
	// Unreliable are the workers whose downloads stalled or brought other
	// bytes than their metadata said: they answer, but cannot be trusted
	// with the chunks they lost (Dispatcher.Shun).
	Unreliable []string
}

// unreliable reports whether a failed fetch says its worker cannot be
// trusted with chunks: it stalled, or sent other bytes than it said.
func unreliable(err error) bool {
	return errors.Is(err, client.ErrDownloadStalled) || otherBytes(err)
}

// workerAtFault reports whether a failed fetch says its worker cannot serve
// this job's downloads, not just that one shard (lost or corrupt there):
// it is not given, out of reach, stalled, or sent other bytes than it said.
func workerAtFault(err error) bool {
	return errors.Is(err, errNoClient) || unreliable(err) || unreachable(err)
}

// otherBytes reports whether a failed fetch brought other bytes than the
// worker's metadata, or the chunk map, said.
func otherBytes(err error) bool {
	return errors.Is(err, client.ErrSizeMismatch) || errors.Is(err, client.ErrChecksumMismatch) || errors.Is(err, client.ErrProtocol)
}

// lostBecause says why a failed fetch leaves its chunk to be encoded again
// ("" when it does not): the shard is gone from its worker, or the worker
// is out of reach. The job's own end (ctx) is neither.
func lostBecause(ctx context.Context, err error) string {
	switch {
	case err == nil || ctx.Err() != nil:
		return ""
	case errors.Is(err, errNoClient):
		return "its worker is not among the workers given:"
	case errors.Is(err, client.ErrDownloadStalled):
		return "its worker stalled:"
	case otherBytes(err):
		return "its worker serves another version of it:"
	}
	switch {
	case status.Code(err) == codes.NotFound, status.Code(err) == codes.DataLoss:
		return "its shard is lost on"
	case unreachable(err):
		return "its worker cannot be reached:"
	}
	return ""
}

// unreachable reports whether a failed call says its worker is out of
// reach: gone, not answering in time, or going away.
func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

func (e *LostShardsError) Error() string {
	return fmt.Sprintf("shards of chunks %v are lost on their workers: %v", e.Chunks, e.Err)
}

func (e *LostShardsError) Unwrap() error { return e.Err }

// errNoClient: a chunk's worker is not one the job was given.
var errNoClient = errors.New("that worker is not among the workers given")

func fetchShard(ctx context.Context, c *client.Client, chunk ChunkState, path string) (encoder string, err error) {
	if c == nil {
		return "", errNoClient
	}
	var meta *pb.ChunkMetadata
	err = fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		meta, _, err = c.DownloadShard(ctx, &pb.GetShardRequest{ShardLocation: chunk.Location}, w,
			client.ShardWant{Size: chunk.EncodedSize, Checksum: chunk.Checksum, MaxSize: fsutil.RoomFor(path)})
		return err
	})
	if err != nil {
		return "", err
	}
	if chunk.Encoder != "" && meta.GetEncoder() != chunk.Encoder {
		_ = os.Remove(path)
		return "", fmt.Errorf("%w: the shard's metadata says encoder %q, the chunk map %q", client.ErrProtocol, meta.GetEncoder(), chunk.Encoder)
	}
	return meta.GetEncoder(), nil
}

// concatFiles writes the files' bytes, in order, to out atomically.
func concatFiles(paths []string, out string) error {
	return fsutil.WriteFileAtomic(out, func(w io.Writer) error {
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}
