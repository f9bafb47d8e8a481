package master

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

// VerifyMode says how much of the output is compared with the source's
// pictures.
type VerifyMode string

// Verification modes.
const (
	// VerifyFull compares every picture of every chunk.
	VerifyFull VerifyMode = "full"
	// VerifySample compares the first sampleFrames pictures of every chunk:
	// cheap, since a chunk decodes from its start, and enough to catch a
	// chunk of garbage, another video, or pictures out of place.
	VerifySample VerifyMode = "sample"
	// VerifyOff compares no pictures (frame counts and timing are still
	// checked).
	VerifyOff VerifyMode = "off"
)

// ParseVerifyMode reads "full", "sample" or "off"; "" is full.
func ParseVerifyMode(s string) (VerifyMode, error) {
	switch m := VerifyMode(s); m {
	case "":
		return VerifyFull, nil
	case VerifyFull, VerifySample, VerifyOff:
		return m, nil
	}
	return "", fmt.Errorf("verify mode %q: want full, sample or off", s)
}

// sampleFrames is how many pictures of each chunk VerifySample compares.
const sampleFrames = 3

// DefaultMinPSNR is the floor a chunk's worst picture must reach, in dB:
// garbage (green frames, another video, shifted pictures) measures well
// under 15 dB, honest encodes at the lowest bitrates well above 20.
const DefaultMinPSNR = 20.0

// ErrQuality: a chunk's encode measured below the PSNR floor (or its
// pictures could not be paired with the source's) twice.
var ErrQuality = errors.New("chunk fails picture verification")

// failsFloor reports whether a chunk's measure fails the floor: its
// pictures could not be paired with the source's, or one of those compared
// measures below it. A chunk with nothing measured does not fail.
func (c ChunkState) failsFloor(floor float64) bool {
	return c.QualityProblem != "" || c.Quality != nil && c.Quality.Frames > 0 && c.Quality.MinPSNR < floor
}

// chunkChecker fetches each chunk's shard as soon as it is stored and
// measures its pictures against the chunk's (the source's own, as the
// split proved), while the other chunks still encode. Results go into the
// job state (ChunkState.Quality) and the shards stay in dir for the join.
type chunkChecker struct {
	ctx     context.Context
	cfg     JobConfig
	chunk   func(i int) media.Chunk // as split so far
	fields  fieldChecker
	clients map[string]*client.Client
	dir     string
	// mu guards state, which the dispatcher's onDone also writes.
	mu    *sync.Mutex
	state *JobState

	queueMu sync.Mutex
	queue   []int         // chunks to check, in order of arrival
	closed  bool          // wait was called: no more chunks come
	more    chan struct{} // holds a token while queue or closed is news
	wg      sync.WaitGroup

	errMu  sync.Mutex
	err    error           // the first failure that is not a quality verdict
	failed map[string]bool // workers at fault for a download (workerAtFault), guarded by errMu
}

// checkParallel is how many chunks are measured at once: one, so the
// measures share the machine with the encodes rather than compete.
const checkParallel = 1

// fieldChecker compares measured pictures' field modes with the
// source's (*media.Probing, media.SourceInfo).
type fieldChecker interface {
	CheckFields(first int64, frames []media.FrameQuality) *media.FieldCheck
}

func newChunkChecker(ctx context.Context, cfg JobConfig, chunk func(i int) media.Chunk, fields fieldChecker, clients map[string]*client.Client, dir string, mu *sync.Mutex, state *JobState) *chunkChecker {
	c := &chunkChecker{ctx: ctx, cfg: cfg, chunk: chunk, fields: fields, clients: clients, dir: dir, mu: mu, state: state,
		more: make(chan struct{}, 1)}
	for range checkParallel {
		c.wg.Go(func() {
			for {
				i, ok := c.next()
				if !ok {
					return
				}
				if err := c.check(i); err != nil && ctx.Err() == nil {
					c.errMu.Lock()
					if c.err == nil {
						c.err = err
					}
					c.errMu.Unlock()
				}
			}
		})
	}
	return c
}

// add queues chunk i; it never blocks (onDone calls it holding the job's
// lock, which check takes).
func (c *chunkChecker) add(i int) {
	c.queueMu.Lock()
	c.queue = append(c.queue, i)
	c.queueMu.Unlock()
	c.signal()
}

func (c *chunkChecker) signal() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// next waits for the next chunk to check; ok is false once wait was
// called and none is left.
func (c *chunkChecker) next() (i int, ok bool) {
	for {
		c.queueMu.Lock()
		if len(c.queue) > 0 {
			i, c.queue = c.queue[0], c.queue[1:]
			c.queueMu.Unlock()
			c.signal() // for the other checkers
			return i, true
		}
		closed := c.closed
		c.queueMu.Unlock()
		if closed {
			c.signal()
			return 0, false
		}
		<-c.more
	}
}

// wait waits for every queued chunk and returns the first failure to
// fetch or measure one (a low measure is not a failure: see failed).
func (c *chunkChecker) wait() error {
	c.queueMu.Lock()
	c.closed = true
	c.queueMu.Unlock()
	c.signal()
	c.wg.Wait()
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.err
}

// check fetches chunk i's shard and measures it.
func (c *chunkChecker) check(i int) error {
	c.mu.Lock()
	cs := c.state.Chunks[i]
	c.mu.Unlock()
	path := shardPath(c.dir, cs.Index)
	c.errMu.Lock()
	skip := c.failed[cs.Worker]
	c.errMu.Unlock()
	if skip {
		return nil // as below: waiting on that worker again would only delay the others
	}
	if _, err := fetchShard(c.ctx, c.clients[cs.Worker], cs, path); err != nil {
		_ = os.Remove(path)
		if workerAtFault(err) && c.ctx.Err() == nil {
			c.errMu.Lock()
			if c.failed == nil {
				c.failed = make(map[string]bool)
			}
			c.failed[cs.Worker] = true
			c.errMu.Unlock()
		}
		return nil // the join fetches it again, and handles a lost shard
	}
	if cs.Checksum == "" {
		// A worker that named no checksum (the original's answer has
		// none): the bytes measured here are pinned, so that the join
		// uses these, or bytes equal to them, not whatever it serves then.
		sum, err := fsutil.FileSHA256(path)
		if err != nil {
			return fmt.Errorf("verify chunk %d: %w", i, err)
		}
		c.mu.Lock()
		c.state.Chunks[i].Checksum = sum
		c.state.markChanged(i)
		c.mu.Unlock()
	}
	if cs.Encoder != pb.EncoderFFmpeg {
		return nil // simulated shards are not media
	}
	ch := c.chunk(i)
	frames := ch.Frames
	if c.cfg.Verify == VerifySample {
		frames = min(frames, sampleFrames)
	}
	var q media.QualityStats
	var fields *media.FieldCheck
	problem := ""
	measured, err := media.MeasureQuality(c.ctx, c.cfg.Tools,
		media.QualityInput{Path: ch.Path, Skip: ch.TrimStart, Frames: frames},
		media.QualityInput{Path: path, Frames: frames, Pictures: ch.Frames, Formats: media.ShardFormats()},
		media.QualityOptions{SameSize: true, SameTimes: true})
	switch {
	case media.IsQualityFinding(err):
		problem = err.Error()
	case err != nil:
		return fmt.Errorf("verify chunk %d: %w", i, err)
	default:
		q = media.Summarize(measured)
		fields = c.fields.CheckFields(ch.FirstFrame, measured)
	}
	c.mu.Lock()
	c.state.Chunks[i].Quality, c.state.Chunks[i].QualityProblem, c.state.Chunks[i].Fields = &q, problem, fields
	c.state.Chunks[i].QualityMode = c.cfg.Verify
	c.state.markChanged(i)
	err = c.state.Save(c.cfg.StateDir)
	c.mu.Unlock()
	return err
}

// shardPath is where a chunk's shard is fetched to.
func shardPath(dir string, index int) string {
	return filepath.Join(dir, fmt.Sprintf("shard_%06d.mkv", index))
}

// combineQuality merges chunks' measures into one for the whole video:
// the worst picture, the plain mean SSIM and the PSNR of the mean MSE,
// each weighted by the chunk's measured pictures.
func combineQuality(list []*media.QualityStats) *media.QualityStats {
	var all media.QualityStats
	var mse, ssim float64
	for _, q := range list {
		if q == nil || q.Frames == 0 {
			continue
		}
		if all.Frames == 0 || q.MinPSNR < all.MinPSNR {
			all.MinPSNR = q.MinPSNR
		}
		if all.Frames == 0 || q.MinSSIM < all.MinSSIM {
			all.MinSSIM = q.MinSSIM
		}
		all.Frames += q.Frames
		mse += float64(q.Frames) * math.Pow(10, -q.MeanPSNR/10)
		ssim += float64(q.Frames) * q.MeanSSIM
	}
	if all.Frames == 0 {
		return nil
	}
	all.MeanPSNR = -10 * math.Log10(mse/float64(all.Frames))
	all.MeanSSIM = ssim / float64(all.Frames)
	return &all
}

// belowFloor lists the chunks whose measure fails the floor, or whose
// pictures could not be paired with the source's.
func belowFloor(state *JobState, floor float64) []int {
	var bad []int
	for i, c := range state.Chunks {
		if c.failsFloor(floor) {
			bad = append(bad, i)
		}
	}
	return bad
}

// qualityError says which chunks failed the floor, and how.
func qualityError(state *JobState, bad []int, floor float64) error {
	var parts []string
	for _, i := range bad {
		parts = append(parts, chunkQualityProblem(state.Chunks[i], floor))
	}
	return fmt.Errorf("%w after it was encoded again: %s", ErrQuality, strings.Join(parts, "; "))
}

func chunkQualityProblem(c ChunkState, floor float64) string {
	if c.QualityProblem != "" {
		return fmt.Sprintf("chunk %d (pictures %d to %d): %s", c.Index, c.FirstFrame, c.FirstFrame+c.Frames-1, c.QualityProblem)
	}
	return fmt.Sprintf("chunk %d (pictures %d to %d): its worst picture measures %.2f dB PSNR against the source, below the floor of %.2f dB (mean %.2f dB, SSIM %.4f)",
		c.Index, c.FirstFrame, c.FirstFrame+c.Frames-1, c.Quality.MinPSNR, floor, c.Quality.MeanPSNR, c.Quality.MeanSSIM)
}

// verifyPictures compares the output's pictures with the source's and
// adds what falls short to v. When the chunk checker measured every
// shard as it arrived, the output only has to be those shards, packet for
// packet (sameShardPackets); otherwise (reconstruct, a resumed job) the
// output and the source are decoded side by side, and the measures
// aggregated per chunk into the chunk map. Either way each chunk must reach
// the floor.
func verifyPictures(ctx context.Context, cfg JobConfig, src media.SourceInfo, state *JobState, shards []string, v *media.Verification, sum *Summary) error {
	sum.VerifyMode = cfg.Verify
	if cfg.Verify == VerifyOff {
		return nil
	}
	measured := true
	for _, c := range state.Chunks {
		if c.Quality == nil || c.QualityMode != cfg.Verify {
			measured = false
		}
	}
	if measured {
		if err := media.SameShardPackets(ctx, cfg.Tools, cfg.Output, shards); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v.Problems = append(v.Problems, "the output's video is not the verified shards': "+err.Error())
		}
	} else if err := measureOutput(ctx, cfg, src, state); err != nil {
		return err
	}
	list := make([]*media.QualityStats, len(state.Chunks))
	sum.WorstChunk = -1
	for i, c := range state.Chunks {
		list[i] = c.Quality
		if c.failsFloor(cfg.MinPSNR) {
			v.Problems = append(v.Problems, chunkQualityProblem(c, cfg.MinPSNR))
		}
		if c.Quality != nil && c.Quality.Frames > 0 && (sum.WorstChunk < 0 || c.Quality.MinPSNR < state.Chunks[sum.WorstChunk].Quality.MinPSNR) {
			sum.WorstChunk = i
		}
	}
	sum.Quality = combineQuality(list)
	v.OK = len(v.Problems) == 0
	return nil
}

// measureOutput decodes the whole output and the source side by side
// (every picture, or in sample mode sampleFrames per chunk spread over the
// video) and records each chunk's measure in the chunk map.
func measureOutput(ctx context.Context, cfg JobConfig, src media.SourceInfo, state *JobState) error {
	opt := media.QualityOptions{SameSize: true}
	if cfg.Verify == VerifySample {
		opt.Sample = sampleFrames * len(state.Chunks)
	}
	frames, err := media.MeasureQuality(ctx, cfg.Tools, media.QualityInput{Path: src.Path}, media.QualityInput{Path: cfg.Output}, opt)
	if media.IsQualityFinding(err) {
		for i := range state.Chunks {
			state.Chunks[i].Quality, state.Chunks[i].QualityProblem, state.Chunks[i].Fields = nil, err.Error(), nil
			state.markChanged(i)
		}
		return state.Save(cfg.StateDir)
	}
	if err != nil {
		return fmt.Errorf("verify pictures: %w", err)
	}
	per := make([][]media.FrameQuality, len(state.Chunks))
	for _, f := range frames {
		i, found := slices.BinarySearchFunc(state.Chunks, f.Frame, func(c ChunkState, frame int64) int {
			switch {
			case c.FirstFrame+c.Frames <= frame:
				return -1
			case c.FirstFrame > frame:
				return 1
			}
			return 0
		})
		if found {
			per[i] = append(per[i], f)
		}
	}
	for i := range state.Chunks {
		q := media.Summarize(per[i])
		state.Chunks[i].Quality, state.Chunks[i].QualityMode, state.Chunks[i].QualityProblem = &q, cfg.Verify, ""
		state.Chunks[i].Fields = src.CheckFields(0, per[i])
		state.markChanged(i)
	}
	return state.Save(cfg.StateDir)
}

// fieldsWarning says how many of the pictures measured are coded in
// another field mode than the source's, and how the first is: nil when
// none is.
func fieldsWarning(state *JobState) []string {
	var first *media.FieldCheck
	var differ, measured int64
	for _, c := range state.Chunks {
		if c.Quality != nil {
			measured += int64(c.Quality.Frames)
		}
		if c.Fields == nil {
			continue
		}
		differ += c.Fields.Differ
		if first == nil {
			first = c.Fields
		}
	}
	if first == nil {
		return nil
	}
	return []string{fmt.Sprintf("video field mode: %d of the %d pictures compared are coded otherwise than the source's (the first, picture %d, is %s in the source, %s in the output)",
		differ, measured, first.First, first.Source, first.Output)}
}
