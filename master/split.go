package master

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	ffmpeg "github.com/u2takey/ffmpeg-go"
)

// chunkPattern is the name of the chunk files Split writes.
const chunkPattern = "chunk_%06d.mkv"

// Chunk is one piece of the source's video, as Split wrote it: a Matroska
// file holding only the video stream, stream-copied, starting on a keyframe,
// with timestamps starting near zero.
type Chunk struct {
	// Index is the chunk's place, from 0.
	Index int
	// Path is the chunk file's absolute path.
	Path string
	// Frames is the chunk's frame (packet) count, counted in the file.
	Frames int64
	// Size is the file's size in bytes.
	Size int64
	// Start is where the chunk's first frame is in the source, in seconds
	// from the source's first video frame, to the microsecond.
	Start float64
	// Duration is how much of the source's video the chunk covers, in
	// seconds: up to the next chunk's Start, or, for the last chunk, to the
	// end of the source's last frame. It comes from the source's timestamps
	// and is what Join places the chunk's shard with (Shard.Duration). 0
	// when the source has no timestamps to measure with.
	Duration float64
}

// Split cuts the video stream of src into chunks of about segmentSeconds
// each, without re-encoding, and writes them to dir as chunk_000000.mkv,
// chunk_000001.mkv, ... Audio, subtitles and data are left out; see
// ExtractSideStreams.
//
// It runs ffmpeg's segment muxer, which cuts at the first keyframe at or
// after each multiple of segmentSeconds, so every chunk starts on a
// keyframe, chunks average segmentSeconds where keyframes are dense enough
// and are longer where they are sparse; each chunk's timestamps are reset
// to start near zero. Then it counts each chunk's
// frames and checks that every chunk starts with a keyframe, that the counts
// add up to src.Video.Frames exactly, and that every chunk begins on one of
// the source's keyframes; a failed check wraps ErrSplitMismatch and names
// the numbers. Chunk.Start and Chunk.Duration come from the source's
// keyframe timestamps, so rounding in the chunk files does not add up.
//
// dir must exist and hold no chunk_*.mkv files. On any error, including a
// cancelled ctx (the error then wraps ctx.Err()), the chunk files written so
// far are removed. src should come from Probe; otherwise Split reads the
// source's video packets again to find its keyframes. An open-GOP source
// (frames after a keyframe that refer to frames before it) cannot be cut
// this way; the frame check downstream will catch the frames a worker
// cannot decode.
func Split(ctx context.Context, tools Tools, src SourceInfo, segmentSeconds float64, dir string) (chunks []Chunk, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !(segmentSeconds > 0) || math.IsInf(segmentSeconds, 0) {
		return nil, fmt.Errorf("split: segment length %v must be a positive number of seconds", segmentSeconds)
	}
	if src.Path == "" {
		return nil, errors.New("split: the source has no path (use Probe)")
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("split: %s is not a directory", dir)
	}
	if old, err := chunkFiles(dir); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	} else if len(old) > 0 {
		return nil, fmt.Errorf("split: %s already holds %d chunk files", dir, len(old))
	}

	timeline, err := sourceTimeline(ctx, tools, src)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", src.Path, err)
	}
	if len(timeline.keys) == 0 || timeline.keys[0].packet != 0 {
		return nil, fmt.Errorf("split %s: %w: the video does not start with a keyframe, so its first chunk could not be decoded on its own", src.Path, ErrSplitMismatch)
	}

	defer func() {
		if err != nil {
			removeChunks(dir)
			chunks = nil
		}
	}()

	out := ffmpeg.Input("file:"+src.Path).Output(
		"file:"+filepath.Join(strings.ReplaceAll(dir, "%", "%%"), chunkPattern),
		ffmpeg.KwArgs{
			"map":                 "0:" + strconv.Itoa(src.Video.Index),
			"c":                   "copy",
			"an":                  "",
			"sn":                  "",
			"dn":                  "",
			"f":                   "segment",
			"segment_time":        strconv.FormatFloat(segmentSeconds, 'f', -1, 64),
			"segment_format":      "matroska",
			"break_non_keyframes": "0",
			"reset_timestamps":    "1",
		})
	if err := runFFmpeg(ctx, tools, out); err != nil {
		return nil, fmt.Errorf("split %s: %w", src.Path, err)
	}

	paths, err := chunkFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("split %s: %w: ffmpeg wrote no chunks", src.Path, ErrSplitMismatch)
	}
	chunks, err = measureChunks(ctx, tools, paths)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", src.Path, err)
	}
	if err := timeline.place(chunks); err != nil {
		return nil, fmt.Errorf("split %s: %w", src.Path, err)
	}
	return chunks, nil
}

// timeline is what Split needs to know about the source's video packets.
type timeline struct {
	frames     int64
	keys       []keyframe
	timeBase   rational
	startTicks int64
	duration   float64 // seconds, first frame start to last frame end
}

// sourceTimeline takes the keyframes from src, or scans the source when src
// did not come from Probe.
func sourceTimeline(ctx context.Context, tools Tools, src SourceInfo) (timeline, error) {
	if src.keys != nil {
		tb, ok := parseRational(src.Video.TimeBase)
		if !ok {
			return timeline{}, fmt.Errorf("bad video time base %q", src.Video.TimeBase)
		}
		return timeline{
			frames:     src.Video.Frames,
			keys:       src.keys,
			timeBase:   tb,
			startTicks: src.startTicks,
			duration:   src.Video.Duration,
		}, nil
	}
	scan, err := scanPackets(ctx, tools, src.Path, src.Video.Index, scanKeys)
	if err != nil {
		return timeline{}, fmt.Errorf("read video packets: %w", err)
	}
	return timeline{
		frames:     scan.packets,
		keys:       scan.keys,
		timeBase:   scan.timeBase,
		startTicks: scan.minPTS,
		duration:   scan.duration(src.Video.FPS),
	}, nil
}

// place checks chunks against the source (frame total, keyframe starts) and
// fills in their Start and Duration. Starts are whole microseconds from the
// source's first frame, each converted exactly from the source's ticks, so
// the durations add up to the whole without rounding drift.
func (t timeline) place(chunks []Chunk) error {
	var total int64
	for _, c := range chunks {
		total += c.Frames
	}
	if total != t.frames {
		return fmt.Errorf("%w: the %d chunks hold %d frames, the source %d", ErrSplitMismatch, len(chunks), total, t.frames)
	}
	starts := make([]int64, len(chunks)) // microseconds
	timed := true
	var packet int64
	for i := range chunks {
		k, found := slices.BinarySearchFunc(t.keys, packet, func(k keyframe, p int64) int {
			switch {
			case k.packet < p:
				return -1
			case k.packet > p:
				return 1
			}
			return 0
		})
		if !found {
			return fmt.Errorf("%w: chunk %d starts at the source's video packet %d, which is not a keyframe", ErrSplitMismatch, i, packet)
		}
		if pts := t.keys[k].pts; pts == noPTS {
			timed = false
		} else {
			starts[i] = t.timeBase.micros(pts - t.startTicks)
		}
		packet += chunks[i].Frames
	}
	if !timed || t.duration <= 0 {
		return nil // durations unknown: Join falls back to the shards' own
	}
	end := int64(math.Round(t.duration * 1e6))
	for i := range chunks {
		next := end
		if i+1 < len(chunks) {
			next = starts[i+1]
		}
		chunks[i].Start = float64(starts[i]) / 1e6
		chunks[i].Duration = float64(next-starts[i]) / 1e6
	}
	return nil
}

// measureChunks counts each chunk's frames and checks that it starts with a
// keyframe, running up to GOMAXPROCS ffprobes at a time.
func measureChunks(ctx context.Context, tools Tools, paths []string) ([]Chunk, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make([]Chunk, len(paths))
	errs := make([]error, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(paths)) {
		wg.Go(func() {
			for i := range next {
				chunks[i], errs[i] = measureChunk(ctx, tools, i, paths[i])
				if errs[i] != nil {
					cancel()
				}
			}
		})
	}
feed:
	for i := range paths {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, e := range errs { // the first real cause, not the cancellations it caused
			if e != nil && !errors.Is(e, context.Canceled) {
				return nil, e
			}
		}
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return chunks, nil
}

func measureChunk(ctx context.Context, tools Tools, i int, path string) (Chunk, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Chunk{}, err
	}
	scan, err := scanPackets(ctx, tools, path, 0, 0)
	if err != nil {
		return Chunk{}, fmt.Errorf("chunk %d: %w", i, err)
	}
	if scan.packets == 0 {
		return Chunk{}, fmt.Errorf("%w: chunk %d has no frames", ErrSplitMismatch, i)
	}
	if !scan.firstKey {
		return Chunk{}, fmt.Errorf("%w: chunk %d does not start with a keyframe", ErrSplitMismatch, i)
	}
	return Chunk{Index: i, Path: path, Frames: scan.packets, Size: fi.Size()}, nil
}

// chunkFiles lists dir's chunk files in order.
func chunkFiles(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(globEscape(dir), "chunk_*.mkv"))
	if err != nil {
		return nil, err
	}
	// Zero-padded, so name order is chunk order, up to a millionth chunk
	// whose name is longer.
	slices.SortFunc(paths, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return paths, nil
}

// removeChunks removes dir's chunk files, as far as it can.
func removeChunks(dir string) {
	paths, _ := chunkFiles(dir)
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
