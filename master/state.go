package master

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
)

// StateVersion is the JobState format this package writes and reads.
const StateVersion = 1

// JobState is a job's chunk map, persisted as JSON at
// <dir>/<video_id>.json so an interrupted job can resume. It is not safe
// for concurrent use; Run's onDone is serialised, so recording from there
// needs no lock.
type JobState struct {
	Version int    `json:"version"`
	VideoID string `json:"video_id"`
	// Source is the input file; SourceSize and SourceModTime identify its
	// content, so a resume can refuse a changed input.
	Source         string    `json:"source"`
	SourceSize     int64     `json:"source_size"`
	SourceModTime  time.Time `json:"source_mod_time"`
	SourceFrames   int64     `json:"source_frames"`
	SegmentSeconds float64   `json:"segment_seconds"`
	// Encoding holds the requested options (codec, crf, preset), so a
	// resume can refuse different ones.
	Encoding  map[string]string `json:"encoding,omitempty"`
	Output    string            `json:"output"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Chunks is sorted by Index.
	Chunks []ChunkState `json:"chunks"`
}

// ChunkState is one chunk of a JobState. Frames, Size, Start and Duration
// describe the chunk as split (see Chunk); the other fields are the stored
// result once Done.
type ChunkState struct {
	Index int `json:"index"`
	// FirstFrame and Frames are the source pictures the chunk holds
	// (Chunk.FirstFrame, Chunk.Frames).
	FirstFrame int64 `json:"first_frame"`
	Frames     int64 `json:"frames"`
	Size       int64 `json:"size"`
	// TrimStart and Decoded are Chunk.TrimStart and Chunk.Decoded; Lossless
	// is Chunk.Lossless.
	TrimStart int64 `json:"trim_start,omitempty"`
	Decoded   int64 `json:"decoded,omitempty"`
	Lossless  bool  `json:"lossless,omitempty"`
	// Start and Duration are Chunk.Start and Chunk.Duration, kept so a
	// resumed job can place the shards without splitting again.
	Start        float64 `json:"start,omitempty"`
	Duration     float64 `json:"duration,omitempty"`
	Done         bool    `json:"done"`
	Worker       string  `json:"worker,omitempty"`
	Location     string  `json:"location,omitempty"`
	Checksum     string  `json:"checksum_sha256,omitempty"`
	Encoder      string  `json:"encoder,omitempty"`
	VideoCodec   string  `json:"video_codec,omitempty"`
	EncodedSize  int64   `json:"encoded_size,omitempty"`
	Attempts     int     `json:"attempts,omitempty"`
	MediaChecked bool    `json:"media_checked,omitempty"`
	// Quality is the shard's pictures measured against the source's
	// (QualityMode says how many of them); QualityProblem says why they
	// could not be paired. Nil when not measured.
	Quality        *media.QualityStats `json:"quality,omitempty"`
	QualityMode    VerifyMode          `json:"quality_mode,omitempty"`
	QualityProblem string              `json:"quality_problem,omitempty"`
}

// StatePath returns where the state of videoID lives in dir. The id is
// validated like the worker validates it, so the path never leaves dir.
func StatePath(dir, videoID string) (string, error) {
	if err := chunkid.ValidateVideoID(videoID); err != nil {
		return "", err
	}
	return filepath.Join(dir, videoID+".json"), nil
}

// LoadState reads the state of videoID from dir. A missing state is an
// error wrapping os.ErrNotExist. It only reads: a job may be saving the
// state at the same time.
func LoadState(dir, videoID string) (*JobState, error) {
	path, err := StatePath(dir, videoID)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	var s JobState
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("load state %s: %w", path, err)
	}
	if s.Version != StateVersion {
		return nil, fmt.Errorf("load state %s: version %d, this master reads %d", path, s.Version, StateVersion)
	}
	if s.VideoID != videoID {
		return nil, fmt.Errorf("load state %s: it belongs to video %q", path, s.VideoID)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("load state %s: %w", path, err)
	}
	return &s, nil
}

func (s *JobState) check() error {
	for i, c := range s.Chunks {
		if err := chunkid.ValidateChunkIndex(int64(c.Index)); err != nil {
			return err
		}
		if i > 0 && c.Index <= s.Chunks[i-1].Index {
			return fmt.Errorf("chunks are not sorted by index without duplicates at chunk %d", c.Index)
		}
	}
	return nil
}

// Save writes s to <dir>/<video_id>.json atomically: the file holds either
// its old content or the whole new state, even across a crash. It creates
// dir if needed, sets Version (if zero) and CreatedAt (if zero), and sets
// UpdatedAt to now.
func (s *JobState) Save(dir string) error {
	path, err := StatePath(dir, s.VideoID)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if s.Version == 0 {
		s.Version = StateVersion
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	now := time.Now().UTC()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.UpdatedAt = now
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	err = fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	return nil
}

// Record marks the chunk of r done with r's result, adding the chunk if s
// does not list it.
func (s *JobState) Record(r ChunkResult) {
	i, found := slices.BinarySearchFunc(s.Chunks, r.Index, func(c ChunkState, idx int) int {
		return cmp.Compare(c.Index, idx)
	})
	if !found {
		s.Chunks = slices.Insert(s.Chunks, i, ChunkState{Index: r.Index, Size: r.OriginalSize})
	}
	c := &s.Chunks[i]
	c.Done = true
	c.Worker = r.Worker
	c.Location = r.Location
	c.Checksum = r.Checksum
	c.Encoder = r.Encoder
	c.VideoCodec = r.VideoCodec
	c.EncodedSize = r.EncodedSize
	c.Attempts = r.Attempts
	c.MediaChecked = r.MediaChecked
	c.Quality, c.QualityMode, c.QualityProblem = nil, "", "" // a new encode, not measured yet
}

// setSplit records what the split says of chunk c anew (proven since, or
// made again).
func (s *JobState) setSplit(c media.Chunk) {
	i, found := slices.BinarySearchFunc(s.Chunks, c.Index, func(cs ChunkState, idx int) int {
		return cmp.Compare(cs.Index, idx)
	})
	if !found {
		return
	}
	cs := &s.Chunks[i]
	cs.Size, cs.TrimStart, cs.Decoded, cs.Lossless = c.Size, c.TrimStart, c.Decoded, c.Lossless
}

// Pending returns the indexes of the chunks not done, in order.
func (s *JobState) Pending() []int {
	var p []int
	for _, c := range s.Chunks {
		if !c.Done {
			p = append(p, c.Index)
		}
	}
	return p
}

// forget marks chunk i not done and clears its result.
func (s *JobState) forget(i int) {
	c := &s.Chunks[i]
	*c = ChunkState{Index: c.Index, FirstFrame: c.FirstFrame, Frames: c.Frames, Size: c.Size,
		TrimStart: c.TrimStart, Decoded: c.Decoded, Lossless: c.Lossless, Start: c.Start, Duration: c.Duration}
}

// ConfirmDone checks, for a resume, that the workers still hold the chunks
// s says are done: one GetVideoMetadata per worker, in parallel. A done
// chunk is confirmed if its worker lists it with the same checksum;
// otherwise (the worker is not in clients, does not answer, no longer has
// it, or has other content) it is missing, and ConfirmDone marks it not
// done in s so Pending returns it for dispatch again. Both lists are
// sorted. Cancelling ctx makes every unconfirmed chunk missing.
func ConfirmDone(ctx context.Context, clients map[string]*client.Client, s *JobState) (confirmed, missing []int) {
	byWorker := make(map[string][]int) // worker -> positions in s.Chunks
	for i, c := range s.Chunks {
		if c.Done {
			byWorker[c.Worker] = append(byWorker[c.Worker], i)
		}
	}
	type answer struct {
		positions []int
		have      map[int]string // chunk index -> checksum on the worker
	}
	answers := make(chan answer, len(byWorker))
	var wg sync.WaitGroup
	for addr, positions := range byWorker {
		c := clients[addr]
		if c == nil {
			answers <- answer{positions: positions}
			continue
		}
		wg.Go(func() {
			a := answer{positions: positions, have: make(map[int]string)}
			resp, err := c.Metadata(ctx, s.VideoID)
			if err == nil {
				for _, m := range resp.GetChunksMetadata() {
					a.have[int(m.GetChunkIndex())] = m.GetChecksumSha256()
				}
			} else if status.Code(err) != codes.NotFound {
				// Unknown is as good as missing: the chunk is encoded again.
				a.have = nil
			}
			answers <- a
		})
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		for _, i := range a.positions {
			c := s.Chunks[i]
			sum, ok := a.have[c.Index]
			if ok && c.Checksum != "" && strings.EqualFold(sum, c.Checksum) {
				confirmed = append(confirmed, c.Index)
				continue
			}
			missing = append(missing, c.Index)
			s.forget(i)
		}
	}
	slices.Sort(confirmed)
	slices.Sort(missing)
	return confirmed, missing
}

// removeStateTemps removes the temporary files of interrupted Saves of
// videoID. Errors are ignored: a leftover is only clutter.
func removeStateTemps(dir, videoID string) {
	matches, _ := filepath.Glob(filepath.Join(dir, fsutil.TempPrefix(videoID+".json")+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}
