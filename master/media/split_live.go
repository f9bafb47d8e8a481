package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/videoshard/videoshard/internal/fftool"
)

// ErrReplan: SplitLive handed out chunks that the whole source, once
// decoded, cuts otherwise (its timestamps stop increasing midway, say).
// Those chunks are not the split's; the caller splits again with Split.
var ErrReplan = errors.New("the source cuts otherwise than its start promised")

// firstBatch is how many chunks SplitLive hands out first: few, so the
// first worker starts soon; later batches grow to copyBatch.
const firstBatch = 2

// SplitLive is Split of a source still being probed: it cuts, copies and
// proves chunks while the source's pictures are decoded, and hands each
// batch of proven chunks to emit as soon as it has them, so their encode
// can start long before the source is decoded to its end. A chunk is cut
// only once the pictures decoded reach far enough past it that the whole
// source cannot cut it otherwise (see stableCuts), and the cuts handed out
// are checked against the whole source's at the end: should they differ,
// SplitLive fails with ErrReplan. Lossless chunks (by plan, or because
// their copy did not decode to the source's pictures) are made at the end,
// in one decode of the source, and handed to emit then. emit is called
// from SplitLive's goroutine, with the chunks planned since its last call
// (contiguous, in index order: the next ones, their files written or not)
// and those of all planned whose files are written and proven, ready to be
// sent (once each); an error from it stops the split. The chunks returned
// are all of them, as Split returns them.
func SplitLive(ctx context.Context, tools Tools, p *Probing, segmentSeconds float64, dir string, opts SplitOptions,
	emit func(planned, ready []Chunk) error) (chunks []Chunk, stats SplitStats, err error) {
	src := p.Info()
	if dir, err = checkSplitArgs(ctx, src, segmentSeconds, dir); err != nil {
		return nil, SplitStats{}, err
	}
	defer func() {
		if err != nil {
			removeChunks(dir)
			chunks = nil
		}
	}()
	var (
		planned  []cut // the cuts handed out or kept for the end, by index
		deferred []int // the chunks made at the end: lossless ones
		proof    time.Duration
	)
	s := liveSplit{tools: tools, src: src, dir: dir, opts: opts, segment: segmentSeconds, packetPos: increasing(src.packets.pos)}
	fps := untimedFPS(src.Video.FPS)
	wait := 0    // pictures to have before planning again: a plan costs the pictures so far
	timedTo := 0 // the pictures so far known to have increasing timestamps
	for {
		pics, fields, tb, done, grew := p.pictures()
		if done {
			break
		}
		tl, ok := timeline{}, false
		if len(pics) >= wait {
			tl, ok = s.prefixTimeline(pics, fields, tb, &timedTo)
			if !ok && len(pics) >= 2 {
				wait = math.MaxInt // untimed: no later picture makes it timed
			}
		}
		if ok {
			cuts := planCuts(tl.pictures, tl.timeBase, tl.packets, tl.fields, segmentSeconds)
			stable := stableCuts(tl, cuts, segmentSeconds)
			// Batches grow with the job: small ones keep the first workers
			// fed, large ones spare ffmpeg runs on a long source.
			want := min(copyBatch, max(firstBatch, len(planned)/4))
			if stable-len(planned) >= want {
				batch := cuts[len(planned):stable]
				made, later, took, err := s.cut(ctx, tl, cuts, len(planned), batch)
				proof += took
				if err != nil {
					return nil, SplitStats{}, err
				}
				planned, chunks, deferred = append(planned, batch...), append(chunks, made...), append(deferred, later...)
				if err := emit(made, proven(made, later)); err != nil {
					return nil, SplitStats{}, err
				}
				continue
			}
			wait = len(pics) + int(float64(want-(stable-len(planned)))*segmentSeconds*fps/2) + 1
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return nil, SplitStats{}, ctx.Err()
		}
	}

	// The whole source: the cuts handed out must be its first ones.
	full, err := p.Wait(ctx)
	if err != nil {
		return nil, SplitStats{}, err
	}
	if full.OneThread && len(planned) > 0 {
		// The chunks handed out were proven against the first decode's
		// pictures, not the one-thread decode's.
		return nil, SplitStats{}, fmt.Errorf("split %s: %w: the video is damaged, and its pictures were decoded again on one thread",
			full.Path, ErrReplan)
	}
	s.src = full
	tl, err := sourceTimeline(ctx, tools, full)
	if err != nil {
		return nil, SplitStats{}, fmt.Errorf("split %s: %w", full.Path, err)
	}
	cuts := planCuts(tl.pictures, tl.timeBase, tl.packets, tl.fields, segmentSeconds)
	if len(cuts) < len(planned) {
		return nil, SplitStats{}, fmt.Errorf("split %s: %w: %d chunks handed out, the whole source has %d", full.Path, ErrReplan, len(planned), len(cuts))
	}
	for i, c := range planned {
		if cuts[i] != c {
			return nil, SplitStats{}, fmt.Errorf("split %s: %w: chunk %d", full.Path, ErrReplan, i)
		}
	}
	rest := cuts[len(planned):]
	made, later, took, err := s.cut(ctx, tl, cuts, len(planned), rest)
	proof += took
	if err != nil {
		return nil, SplitStats{}, err
	}
	chunks, deferred = append(chunks, made...), append(deferred, later...)
	slices.Sort(deferred)
	for _, i := range deferred {
		chunks[i].Lossless = true
		if opts.HeadProof {
			chunks[i].headLimit = headSlack + headPictures // no lead
		}
	}
	start := time.Now()
	if err := makeLossless(ctx, tools, full, tl, chunks, deferred, dir); err != nil {
		return nil, SplitStats{}, fmt.Errorf("split %s: %w", full.Path, err)
	}
	proof += time.Since(start)
	for _, i := range deferred {
		if err := chunks[i].stat(); err != nil {
			return nil, SplitStats{}, fmt.Errorf("split: %w", err)
		}
	}
	handedOut := make([]Chunk, len(chunks))
	copy(handedOut, chunks)
	tl.place(chunks)
	for i := range planned {
		if c := handedOut[i]; !c.Lossless && (c.Start != chunks[i].Start || c.Duration != chunks[i].Duration) {
			return nil, SplitStats{}, fmt.Errorf("split %s: %w: chunk %d is placed at %fs for %fs, not %fs for %fs",
				full.Path, ErrReplan, i, c.Start, c.Duration, chunks[i].Start, chunks[i].Duration)
		}
	}
	// Still to hand out: the lossless chunks and the copies cut now.
	var last []Chunk
	for i := range chunks {
		if i >= len(planned) || slices.Contains(deferred, i) {
			last = append(last, chunks[i])
		}
	}
	if len(last) > 0 {
		if err := emit(chunks[len(planned):], last); err != nil {
			return nil, SplitStats{}, err
		}
	}
	stats = SummarizeSplit(chunks)
	stats.ProofSeconds = proof.Seconds()
	return chunks, stats, nil
}

// proven is made less the chunks listed in deferred.
func proven(made []Chunk, deferred []int) []Chunk {
	var out []Chunk
	for _, c := range made {
		if !slices.Contains(deferred, c.Index) {
			out = append(out, c)
		}
	}
	return out
}

// liveSplit is what SplitLive's steps share.
type liveSplit struct {
	tools   Tools
	src     SourceInfo
	dir     string
	opts    SplitOptions
	segment float64
	// packetPos is the source's packet positions when they increase
	// (increasing), found once.
	packetPos []int64
}

// prefixTimeline is the timeline of the pictures decoded so far; ok is
// false when they have no timestamps of their own to cut by (the whole
// source is then awaited). *timedTo counts the pictures already checked
// for that, so each is checked once.
func (s liveSplit) prefixTimeline(pics []picture, fields []fieldRun, tb rational, timedTo *int) (timeline, bool) {
	if len(pics) < 2 || !timedFrom(pics, *timedTo) {
		return timeline{}, false
	}
	*timedTo = len(pics)
	tl := timeline{pictures: pics, timeBase: tb, fps: s.src.Video.FPS, timed: true, losslessCodec: losslessCodec(s.src.Video.PixFmt), fields: fields}
	if pkts := s.src.packets; pkts.timeBase == tb {
		tl.packets = packetTimeline{pts: pkts.pts, keys: pkts.keys, pos: s.packetPos}
	}
	return tl, true
}

// stableCuts is how many of cuts, planned over the pictures decoded so
// far, the whole source cuts the same way: those whose next cut lands
// three quarters of a segment before the last picture decoded. A cut
// lands within a quarter segment of its target, and the last chunk of a
// stretch is merged into the one before when it is shorter than a quarter
// segment, so pictures up to half a segment past a cut decide it, if a
// stretch ends there: a switch of field mode ends one, and it is known a
// run of minFieldRun later. One more frame covers the rounding.
func stableCuts(tl timeline, cuts []cut, segment float64) int {
	pics := tl.pictures
	last := float64(pics[len(pics)-1].pts)
	margin := (0.5+minFieldRun)*segment*float64(tl.timeBase.den)/float64(tl.timeBase.num) + float64(pics[len(pics)-1].pts-pics[len(pics)-2].pts)
	n := 0
	for _, c := range cuts {
		if c.end >= len(pics) || float64(pics[c.end].pts)+margin >= last {
			break
		}
		n++
	}
	return n
}

// cut makes the chunks of batch (cuts[from:from+len(batch)]): copies
// written and proven, placed; the lossless ones (by plan, or after a copy
// that did not prove) are returned in deferred, to be made at the end.
func (s liveSplit) cut(ctx context.Context, tl timeline, cuts []cut, from int, batch []cut) (made []Chunk, deferred []int, proof time.Duration, err error) {
	made = make([]Chunk, len(batch))
	var copies []int // indexes into made
	for j, c := range batch {
		i := from + j
		made[j] = newChunk(s.dir, i, c, tl, s.opts)
		if c.copy {
			copies = append(copies, j)
		} else {
			deferred = append(deferred, i)
		}
	}
	if len(copies) == 0 {
		return made, deferred, 0, nil
	}
	batchCuts := make([]cut, len(made))
	copy(batchCuts, batch)
	var failed []int
	if err := writeCopyChunks(ctx, s.tools, s.src, tl, batchCuts, made, copies); err != nil {
		if !fftool.IsFailure(ctx, err) {
			return nil, nil, 0, fmt.Errorf("split %s: %w", s.src.Path, err)
		}
		for _, j := range copies { // ffmpeg cannot stream-copy these: made losslessly instead
			_ = os.Remove(made[j].Path)
		}
		failed = copies
	} else {
		start := time.Now()
		failed, err = proveChunks(ctx, s.tools, s.src.Video.PixFmt, made, copies)
		proof = time.Since(start)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("split %s: %w", s.src.Path, err)
		}
	}
	for _, j := range copies {
		if slices.Contains(failed, j) {
			made[j].Fallback = true
			deferred = append(deferred, from+j)
			continue
		}
		if err := made[j].stat(); err != nil {
			return nil, nil, 0, fmt.Errorf("split: %w", err)
		}
		if cuts[from+j].end < len(tl.pictures) { // else the last chunk: placed with the whole source
			tl.placeOne(&made[j], cuts)
		}
	}
	return made, deferred, proof, nil
}

// placeOne is place for one chunk whose next chunk's first picture is in
// t (see stableCuts).
func (t timeline) placeOne(c *Chunk, cuts []cut) {
	pics := t.pictures
	first := pics[0].pts
	start := t.timeBase.micros(pics[c.FirstFrame].pts - first)
	next := t.timeBase.micros(pics[cuts[c.Index].end].pts - first)
	c.Start = float64(start) / 1e6
	c.Duration = float64(next-start) / 1e6
}
