package media

import (
	"bytes"
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
	"time"

	ffmpeg "github.com/u2takey/ffmpeg-go"
	"golang.org/x/sync/errgroup"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/framehash"
)

// chunkPattern is the name of the chunk files Split writes.
const chunkPattern = "chunk_%06d.mkv"

// Chunk is one piece of the source's video, as Split wrote it: a Matroska
// file holding only the video stream, proven to decode on its own to the
// source's pictures FirstFrame .. FirstFrame+Frames-1.
type Chunk struct {
	// Index is the chunk's place, from 0.
	Index int
	// Path is the chunk file's absolute path.
	Path string
	// FirstFrame is the source picture the chunk's own pictures start at,
	// and Frames how many it has: the chunks' ranges follow each other with
	// no gap or overlap.
	FirstFrame, Frames int64
	// Decoded is how many pictures the chunk file decodes to, and
	// TrimStart how many of them come before its own: a chunk
	// stream-copied from a keyframe before FirstFrame (open GOP, sparse
	// keyframes) carries pictures of its neighbours, which the worker
	// drops (NeedsTrim).
	Decoded, TrimStart int64
	// Lossless is set for a chunk sent as a lossless encode of exactly its
	// pictures rather than a stream copy of the source's packets: its
	// keyframe lay too far before it, or (Fallback) the copy did not decode
	// to the source's pictures (parameter sets the copy cannot carry, a
	// source that cannot be cut).
	Lossless, Fallback bool
	// Size is the file's size in bytes.
	Size int64
	// Start is where the chunk's first picture is in the source, in seconds
	// from the source's first picture, to the microsecond.
	Start float64
	// Duration is how much of the source's video the chunk covers, in
	// seconds: up to the next chunk's Start, or, for the last chunk, to the
	// end of the source's last picture. It comes from the source's
	// timestamps and is what Join places the chunk's shard with
	// (Shard.Duration). 0 when the source has no timestamps to measure
	// with.
	Duration float64
	// Proven is how many of the chunk's own pictures, from its first, the
	// split compared with the source's: Frames, or, for a chunk proven by
	// its head only (SplitOptions.HeadProof; its Decoded is then 0,
	// unknown), fewer. The rest must be compared before the chunk's shard
	// is used: with the pictures the worker decoded (ProvenBy), or by
	// decoding the chunk whole (Reprove).
	Proven int64
	// source are the source's pictures the chunk must decode to, with
	// their times in ticks of sourceTB: the chunk's pictures must be shown
	// as far apart as they are.
	source   []picture
	sourceTB rational
	// headLimit is how many pictures a head proof decodes.
	headLimit int
}

// ProvenBy reports whether hashes, the pictures a worker decoded the chunk
// to (framehash.Size bytes each, before its trim), hold the source's
// pictures where the chunk's trim takes them.
func (c Chunk) ProvenBy(hashes []byte) bool {
	n := int64(len(hashes) / framehash.Size)
	if len(hashes)%framehash.Size != 0 || n < c.TrimStart+c.Frames || int64(len(c.source)) != c.Frames {
		return false
	}
	for i, p := range c.source {
		at := (c.TrimStart + int64(i)) * framehash.Size
		if !bytes.Equal(hashes[at:at+framehash.Size], p.hash[:]) {
			return false
		}
	}
	return true
}

// SplitOptions tune Split.
type SplitOptions struct {
	// HeadProof proves each chunk on its first headPictures pictures (and
	// its lead) rather than all of them, and leaves the rest to the
	// workers' own decode (Chunk.Proven, ProvenBy): a chunk's pictures are
	// then decoded once on the master's side instead of twice in all. For
	// jobs whose workers list FeaturePictureHashes.
	HeadProof bool
}

// headPictures is how many of a chunk's own pictures a head proof
// compares: enough to catch a chunk that decodes to garbage from the
// start (parameter sets it lacks) or to wrong leading pictures (open GOP),
// and to place its trim. headSlack more are decoded, for leading pictures
// the decoder shows before them.
const (
	headPictures = 8
	headSlack    = 8
)

// NeedsTrim reports whether the worker must drop pictures of the chunk
// file: those before TrimStart and after TrimStart+Frames.
func (c Chunk) NeedsTrim() bool { return c.TrimStart > 0 || c.Decoded != c.Frames }

// Split cuts the video stream of src into chunks of about segmentSeconds
// each and writes them to dir as chunk_000000.mkv, chunk_000001.mkv, ...
// Audio, subtitles and data are left out; see ExtractSideStreams.
//
// Cuts land on a keyframe when one is near a segment's target time, and on
// the target's picture otherwise (planCuts), so a source with keyframes a
// minute apart still gives segmentSeconds chunks. A chunk is the source's
// packets, stream-copied, from the keyframe at or before its first picture
// until every one of its pictures can be decoded; the pictures of its
// neighbours it carries are dropped by the worker (Chunk.NeedsTrim). When
// that keyframe is too far back, the chunk is a lossless encode of just its
// pictures instead.
//
// Every chunk is then proven: decoded on its own and compared, picture by
// picture (hashes of the decoded pixels), with the source's pictures from
// one sequential decode. A copy that does not match (in-band parameter
// sets the copy lost, leading pictures the decoder cannot rebuild) is made
// again as a lossless encode, which must match; a chunk that cannot be
// made to match fails Split with ErrSplitMismatch, naming it.
//
// dir must exist and hold no chunk_*.mkv files. On any error, including a
// cancelled ctx (the error then wraps ctx.Err()), the chunk files written so
// far are removed. src should come from Probe; otherwise Split decodes the
// source once more.
func Split(ctx context.Context, tools Tools, src SourceInfo, segmentSeconds float64, dir string, opts SplitOptions) (chunks []Chunk, stats SplitStats, err error) {
	chunks, proof, err := split(ctx, tools, src, segmentSeconds, dir, opts)
	if err != nil {
		return nil, SplitStats{}, err
	}
	stats = SummarizeSplit(chunks)
	stats.ProofSeconds = proof.Seconds()
	return chunks, stats, nil
}

// split is Split; it also returns the time spent proving chunks.
func split(ctx context.Context, tools Tools, src SourceInfo, segmentSeconds float64, dir string, opts SplitOptions) (chunks []Chunk, proof time.Duration, err error) {
	if dir, err = checkSplitArgs(ctx, src, segmentSeconds, dir); err != nil {
		return nil, 0, err
	}

	tl, err := sourceTimeline(ctx, tools, src)
	if err != nil {
		return nil, 0, fmt.Errorf("split %s: %w", src.Path, err)
	}
	defer func() {
		if err != nil {
			removeChunks(dir)
			chunks = nil
		}
	}()

	cuts := planCuts(tl.pictures, tl.timeBase, tl.packets, tl.fields, segmentSeconds)
	chunks = make([]Chunk, len(cuts))
	for i, c := range cuts {
		chunks[i] = newChunk(dir, i, c, tl, opts)
	}
	var copies []int
	for i, c := range cuts {
		if c.copy {
			copies = append(copies, i)
		}
	}
	var failed []int
	if err := writeCopyChunks(ctx, tools, src, tl, cuts, chunks, copies); err != nil {
		if !fftool.IsFailure(ctx, err) {
			return nil, 0, fmt.Errorf("split %s: %w", src.Path, err)
		}
		// ffmpeg cannot stream-copy this source (timestamps it cannot
		// order, say): every chunk is made losslessly instead.
		removeChunks(dir)
		failed = copies
	} else {
		proofStart := time.Now()
		failed, err = proveChunks(ctx, tools, src.Video.PixFmt, chunks, copies)
		proof += time.Since(proofStart)
		if err != nil {
			return nil, 0, fmt.Errorf("split %s: %w", src.Path, err)
		}
	}
	var lossless []int
	for i := range chunks {
		if slices.Contains(failed, i) {
			chunks[i].Lossless, chunks[i].Fallback = true, true
		}
		if chunks[i].Lossless {
			lossless = append(lossless, i)
			if opts.HeadProof {
				chunks[i].headLimit = headSlack + headPictures // no lead
			}
		}
	}
	proofStart := time.Now()
	if err := makeLossless(ctx, tools, src, tl, chunks, lossless, dir); err != nil {
		return nil, 0, fmt.Errorf("split %s: %w", src.Path, err)
	}
	proof += time.Since(proofStart)
	for i := range chunks {
		if err := chunks[i].stat(); err != nil {
			return nil, 0, fmt.Errorf("split: %w", err)
		}
	}
	tl.place(chunks)
	return chunks, proof, nil
}

// newChunk is the chunk cut c makes, the i-th, in dir: not written yet.
func newChunk(dir string, i int, c cut, tl timeline, opts SplitOptions) Chunk {
	ch := Chunk{
		Index: i, Path: filepath.Join(dir, fmt.Sprintf(chunkPattern, i)),
		FirstFrame: int64(c.first), Frames: int64(c.end - c.first), Lossless: !c.copy,
		source: tl.pictures[c.first:c.end], sourceTB: tl.timeBase,
	}
	if opts.HeadProof {
		ch.headLimit = c.lead + headSlack + headPictures
	}
	return ch
}

// checkSplitArgs checks Split's arguments; it returns dir made absolute.
func checkSplitArgs(ctx context.Context, src SourceInfo, segmentSeconds float64, dir string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !(segmentSeconds > 0) || math.IsInf(segmentSeconds, 0) {
		return "", fmt.Errorf("split: segment length %v must be a positive number of seconds", segmentSeconds)
	}
	if src.Path == "" {
		return "", errors.New("split: the source has no path (use Probe)")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("split: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("split: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("split: %s is not a directory", dir)
	}
	if old, err := chunkFiles(dir); err != nil {
		return "", fmt.Errorf("split: %w", err)
	} else if len(old) > 0 {
		return "", fmt.Errorf("split: %s already holds %d chunk files", dir, len(old))
	}
	return dir, nil
}

// makeLossless writes the chunks listed in which as lossless encodes and
// proves them; one that still does not match is ErrSplitMismatch.
func makeLossless(ctx context.Context, tools Tools, src SourceInfo, tl timeline, chunks []Chunk, which []int, dir string) error {
	if err := writeLosslessChunks(ctx, tools, src, tl, chunks, which, dir); err != nil {
		return err
	}
	failed, err := proveChunks(ctx, tools, src.Video.PixFmt, chunks, which)
	if err != nil {
		return err
	} else if len(failed) > 0 {
		c := chunks[failed[0]]
		return fmt.Errorf("%w: chunk %d (pictures %d to %d) does not decode to the source's pictures even as a lossless encode (%s)",
			ErrSplitMismatch, c.Index, c.FirstFrame, c.FirstFrame+c.Frames-1, tl.losslessEncoder(src.Video.PixFmt, fieldAt(tl.fields, int(c.FirstFrame))))
	}
	return nil
}

// stat sets c.Size from its file.
func (c *Chunk) stat() error {
	fi, err := os.Stat(c.Path)
	if err != nil {
		return err
	}
	c.Size = fi.Size()
	return nil
}

// Reprove decodes the chunks of src listed in which whole and compares
// them with the source's pictures, as Split does without HeadProof: for a
// chunk only proven by its head whose worker decoded other pictures, or
// gave none to compare. A chunk that matches gets its TrimStart and
// Decoded anew; one that does not is made again, a lossless encode of its
// pictures (Lossless, Fallback, Size anew), which must match: otherwise
// ErrSplitMismatch. It returns the chunks that changed, made again or
// trimmed otherwise: a shard encoded from one of them before is not its
// encode. chunks and src are Split's.
func Reprove(ctx context.Context, tools Tools, src SourceInfo, chunks []Chunk, which []int) (changed []int, err error) {
	trims := make([]int64, len(which))
	for j, i := range which {
		chunks[i].headLimit = 0
		trims[j] = chunks[i].TrimStart
	}
	failed, err := proveChunks(ctx, tools, src.Video.PixFmt, chunks, which)
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		tl, err := sourceTimeline(ctx, tools, src)
		if err != nil {
			return nil, err
		}
		for _, i := range failed {
			chunks[i].Lossless, chunks[i].Fallback = true, true
		}
		if err := makeLossless(ctx, tools, src, tl, chunks, failed, filepath.Dir(chunks[failed[0]].Path)); err != nil {
			return nil, err
		}
		for _, i := range failed {
			if err := chunks[i].stat(); err != nil {
				return nil, err
			}
		}
	}
	for j, i := range which {
		if slices.Contains(failed, i) || chunks[i].TrimStart != trims[j] {
			changed = append(changed, i)
		}
	}
	return changed, nil
}

// timeline is what Split knows of the source's video: its pictures with
// increasing timestamps (made up, one frame apart, when the decoder gave
// none), and its packets when they can be mapped onto the pictures.
type timeline struct {
	pictures []picture
	timeBase rational
	// packets is empty when the pictures' timestamps are made up or in
	// another time base than the packets': no chunk can be a stream copy.
	packets packetTimeline
	fps     float64
	// timed: the timestamps are the source's own, or mended where they
	// repeat or go back (see repairTimes; spans is then set).
	timed bool
	// spans say how the mended timestamps are had from a decode's; nil
	// when none was mended.
	spans []timeSpan
	// losslessCodec is the encoder progressive lossless chunks are made
	// with (see losslessEncoder).
	losslessCodec string
	// fields are the pictures' field modes (as the decode gave them: of
	// pictures, not their times, so mending leaves them).
	fields []fieldRun
}

// sourceTimeline takes the packets and pictures from src, or scans the
// source when src did not come from Probe.
func sourceTimeline(ctx context.Context, tools Tools, src SourceInfo) (timeline, error) {
	pkts, pics := src.packets, src.pictures
	var err error
	if pkts == nil {
		if pkts, err = scanPackets(ctx, tools, src.Path, src.Video.Index, scanKeys|scanPTS); err != nil {
			return timeline{}, fmt.Errorf("read video packets: %w", err)
		}
	}
	if pics == nil {
		if pics, err = scanPictures(ctx, tools, src.Path, src.Video.Index, ""); err != nil {
			return timeline{}, fmt.Errorf("decode the video: %w", err)
		}
	}
	if len(pics.pictures) == 0 {
		return timeline{}, fmt.Errorf("%w: the video has no picture ffmpeg can decode", ErrNoVideo)
	}
	withPackets := src
	withPackets.packets = pkts
	repair, timed := withPackets.repair(pics)
	tl := timeline{pictures: pics.pictures, timeBase: pics.timeBase, fps: src.Video.FPS, timed: timed,
		losslessCodec: losslessCodec(src.Video.PixFmt), fields: pics.log.fields}
	if repair.repaired() {
		tl.pictures, tl.spans = repair.pictures, repair.spans
	}
	// Copies carry the source's own timestamps: none where they went
	// back for good (a packet's no longer names one picture), none holding
	// a picture whose time was mended (see planCuts).
	if tl.timed && pkts.timeBase == pics.timeBase && len(repair.restarts) == 0 {
		tl.packets = packetTimeline{pts: pkts.pts, keys: pkts.keys, pos: increasing(pkts.pos), mended: repair.mended()}
	}
	if !tl.timed {
		tl.fps = untimedFPS(tl.fps)
		fps := tl.fps
		tl.pictures = slices.Clone(tl.pictures)
		for i := range tl.pictures {
			tl.pictures[i].pts = int64(i)
		}
		tl.timeBase = rational{1_000_000, int64(math.Round(fps * 1_000_000))}
	}
	return tl, nil
}

// packetSpan is the earliest and latest pts of packets first..last, in
// seconds; ok is false when none has one.
func (t timeline) packetSpan(first, last int64) (from, to float64, ok bool) {
	lo, hi := noPTS, noPTS
	for _, p := range t.packets.pts[first : last+1] {
		if p == noPTS {
			continue
		}
		if lo == noPTS || p < lo {
			lo = p
		}
		if hi == noPTS || p > hi {
			hi = p
		}
	}
	if lo == noPTS {
		return 0, 0, false
	}
	return t.timeBase.seconds(lo), t.timeBase.seconds(hi), true
}

// place fills in the chunks' Start and Duration from the source's picture
// timestamps. Starts are whole microseconds from the source's first
// picture, each converted exactly from the source's ticks, so the
// durations add up to the whole without rounding drift. Without the
// source's own timestamps they stay 0 (Join then takes the shards' own).
func (t timeline) place(chunks []Chunk) {
	if !t.timed {
		return
	}
	pics := t.pictures
	first := pics[0].pts
	end := t.timeBase.micros(endOf(pics) - first)
	for i := range chunks {
		start := t.timeBase.micros(pics[chunks[i].FirstFrame].pts - first)
		next := end
		if i+1 < len(chunks) {
			next = t.timeBase.micros(pics[chunks[i+1].FirstFrame].pts - first)
		}
		chunks[i].Start = float64(start) / 1e6
		chunks[i].Duration = float64(next-start) / 1e6
	}
}

// endOf is where the last of pics ends (see pictureScan.endTicks).
func endOf(pics []picture) int64 {
	return (&pictureScan{pictures: pics}).endTicks(0)
}

// copyBatch bounds how many chunk files one ffmpeg writes: each is an
// output of its own, so each batch reads the source once.
const copyBatch = 48

// copyMargin is how far before a batch's first packet its ffmpeg seeks,
// and how far past its last packet it reads, in seconds: a seek lands on a
// keyframe at or before its target, and a demuxer that seeks coarsely
// still lands before the packets wanted.
const copyMargin = 2.0

// writeCopyChunks writes the copy chunks listed in which: for each, the
// source's video packets startPacket..endPacket stream-copied into
// Matroska with timestamps generated where the source has none. The
// packets are selected with the noise bitstream filter's drop expression:
// by their byte position in the file when every packet's is known
// (tl.packets.pos), so each batch seeks to its first packet and stops
// reading after its last; by index otherwise, each batch then reading the
// source from its start. (Not by timestamp: the filter sees them in the
// muxer's time base, which its tb does not say.)
func writeCopyChunks(ctx context.Context, tools Tools, src SourceInfo, tl timeline, cuts []cut, chunks []Chunk, which []int) error {
	pos := tl.packets.pos
	for len(which) > 0 {
		batch := which[:min(copyBatch, len(which))]
		which = which[len(batch):]
		inOpts := ffmpeg.KwArgs{"fflags": "+genpts"}
		if pos != nil {
			first, last := cuts[batch[0]].startPacket, cuts[batch[0]].endPacket
			for _, i := range batch {
				first, last = min(first, cuts[i].startPacket), max(last, cuts[i].endPacket)
			}
			// -ss counts from the file's start and -t from -ss.
			if from, to, ok := tl.packetSpan(first, last); ok {
				ss := max(0, from-src.StartTime-copyMargin)
				inOpts["ss"] = formatSeconds(ss)
				inOpts["t"] = formatSeconds(to - src.StartTime - ss + copyMargin)
			}
		}
		in := ffmpeg.Input("file:"+src.Path, inOpts)
		outs := make([]*ffmpeg.Stream, len(batch))
		for j, i := range batch {
			c := cuts[i]
			drop := fmt.Sprintf(`not(between(n\,%d\,%d))`, c.startPacket, c.endPacket)
			if pos != nil {
				drop = fmt.Sprintf(`not(between(pos\,%d\,%d))`, pos[c.startPacket], pos[c.endPacket])
			}
			outs[j] = in.Output("file:"+chunks[i].Path, ffmpeg.KwArgs{
				"map":      "0:" + strconv.Itoa(src.Video.Index),
				"c":        "copy",
				"copyinkf": "", // every packet reaches the filter, keyframe or not
				// The chunk's packets, their times moved to start at zero
				// (the shard then does too, whatever the concat demuxer
				// can tell of its start).
				"bsf:v": fmt.Sprintf(`noise=drop=%s,setts=pts=PTS-STARTPTS:dts=DTS-STARTPTS`, drop),
				"f":     "matroska",
			})
		}
		if err := runSourceFFmpeg(ctx, tools, ffmpeg.MergeOutputs(outs...)); err != nil {
			return fmt.Errorf("copy chunks: %w", err)
		}
	}
	return nil
}

// losslessCodec picks the encoder of lossless chunks for a pixel format,
// one that stores it as it is: libx264 at QP 0 (fast, and fast to decode)
// for the 8-bit YUV formats, full range too; PNG for a palette (FFV1 would
// store the colours, and going back to a palette picks other indexes);
// FFV1 for the rest, which it stores as they are or converts exactly
// (packed to planar, RGB to BGR0). FFV1 has no full-range formats: it
// would convert yuvj420p to limited range.
func losslessCodec(pixFmt string) string {
	switch pixFmt {
	case "yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p":
		return "libx264"
	case "pal8":
		return "png"
	}
	return "ffv1"
}

// interlacedLossless are the pixel formats libx264 stores losslessly (QP
// 0) coded interlaced, as an interlaced chunk must be: a worker codes the
// chunk as its first picture is, and FFV1 and PNG have no interlaced
// pictures.
var interlacedLossless = []string{"yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p",
	"nv12", "yuv420p10le", "yuv422p10le", "yuv444p10le"}

// losslessEncoder is the encoder of lossless chunks whose pictures are of
// field mode fields: tl.losslessCodec for progressive ones and formats
// libx264 cannot code interlaced losslessly, libx264 coding interlaced
// otherwise.
func (tl timeline) losslessEncoder(pixFmt string, fields byte) string {
	if fields != progressive && slices.Contains(interlacedLossless, pixFmt) {
		return "libx264"
	}
	return tl.losslessCodec
}

// writeLosslessChunks writes the chunks listed in which as lossless
// encodes of exactly their pictures, those of each field mode in one
// decode of the source (writeLosslessRun).
func writeLosslessChunks(ctx context.Context, tools Tools, src SourceInfo, tl timeline, chunks []Chunk, which []int, dir string) error {
	byMode := map[byte][]int{}
	for _, i := range which {
		mode := fieldAt(tl.fields, int(chunks[i].FirstFrame))
		byMode[mode] = append(byMode[mode], i)
	}
	for _, mode := range []byte{progressive, topFirst, bottomFirst} {
		if err := writeLosslessRun(ctx, tools, src, tl, chunks, byMode[mode], dir, mode); err != nil {
			return err
		}
	}
	return nil
}

// writeLosslessRun writes the chunks listed in which, whose pictures are
// of field mode fields, as lossless encodes of exactly their pictures, in
// one decode of the source: the pictures of every listed chunk are
// selected by their timestamps (not their index: ffmpeg rebuilds the
// filter, and restarts its count, when the stream's format changes),
// encoded intra-only, and cut by the segment muxer where each chunk
// starts.
func writeLosslessRun(ctx context.Context, tools Tools, src SourceInfo, tl timeline, chunks []Chunk, which []int, dir string, fields byte) error {
	if len(which) == 0 {
		return nil
	}
	// The segments come out in the source's order, whatever the caller's.
	which = slices.Sorted(slices.Values(which))
	var ranges []pictureRange // the pictures to encode, chunks next to each other merged
	var starts []string
	var kept int64
	for j, i := range which {
		c := chunks[i]
		if j > 0 {
			starts = append(starts, strconv.FormatInt(kept, 10))
		}
		kept += c.Frames
		r := pictureRange{c.FirstFrame, c.FirstFrame + c.Frames - 1}
		if n := len(ranges); n > 0 && ranges[n-1].last+1 == r.first {
			ranges[n-1].last = r.last
			continue
		}
		ranges = append(ranges, r)
	}
	var sel strings.Builder
	writeSelect(&sel, tl, ranges)
	pattern := filepath.Join(strings.ReplaceAll(dir, "%", "%%"), "lossless_%06d.mkv")
	codec := tl.losslessEncoder(src.Video.PixFmt, fields)
	out := ffmpeg.KwArgs{
		"fps_mode":         "passthrough",
		"enc_time_base":    "-1",
		"c:v":              codec,
		"g":                "1",
		"f":                "segment",
		"segment_format":   "matroska",
		"reset_timestamps": "1",
	}
	if len(starts) > 0 {
		out["segment_frames"] = strings.Join(starts, ",")
	} else {
		out["segment_time"] = "1000000000" // one chunk: never cut
	}
	switch codec {
	case "libx264":
		out["qp"], out["preset"] = "0", "ultrafast"
		if fields != progressive {
			// libx264 takes the field order from the encoder's, not the
			// pictures', which ffmpeg sets from the decoder's first
			// picture: that of the source, not of these chunks.
			out["flags"], out["top"] = "+ildct+ilme", "0"
			if fields == topFirst {
				out["top"] = "1"
			}
		}
	case "ffv1":
		out["level"], out["slices"] = "3", "4"
	}
	inOpts := decodeInput()
	if src.OneThread {
		inOpts["threads"] = "1"
	}
	var s *ffmpeg.Stream
	if tl.byIndex() {
		// Timestamps made up or mended: the pictures are selected by their
		// index and timed by it, so the filters must see every picture and
		// never be rebuilt (which restarts their counts) when the stream's
		// format changes midway; scale converts such pictures instead, as
		// the rebuilt filters would.
		inOpts["reinit_filter"] = "0"
		retime := untimedExpr(tl.fps)
		if tl.timed {
			retime = retimeExpr(tl.spans)
		}
		s = ffmpeg.Input("file:"+src.Path, inOpts).Get(strconv.Itoa(src.Video.Index)).
			Filter("scale", nil).Filter("setpts", ffmpeg.Args{retime}).Filter("select", ffmpeg.Args{sel.String()}).
			Filter("setpts", ffmpeg.Args{"PTS-STARTPTS"})
	} else {
		// The segment muxer restarts every chunk's timestamps at zero but
		// the first's: setpts does it for the first, by a constant
		// (STARTPTS restarts when the filters are rebuilt).
		first := strconv.FormatInt(tl.pictures[ranges[0].first].pts, 10)
		s = ffmpeg.Input("file:"+src.Path, inOpts).Get(strconv.Itoa(src.Video.Index)).
			Filter("select", ffmpeg.Args{sel.String()}).Filter("setpts", ffmpeg.Args{"PTS-" + first})
	}
	st := s.Output("file:"+pattern, out)
	if err := runSourceFFmpeg(ctx, tools, st); err != nil {
		return fmt.Errorf("lossless chunks: %w", err)
	}
	for j, i := range which {
		tmp := filepath.Join(dir, fmt.Sprintf("lossless_%06d.mkv", j))
		if err := os.Rename(tmp, chunks[i].Path); err != nil {
			return fmt.Errorf("lossless chunks: %w", err)
		}
	}
	return nil
}

// pictureRange is the source's pictures first..last, by index.
type pictureRange struct{ first, last int64 }

// writeSelect writes a select filter expression true for the pictures in
// ranges: by timestamp, or by index when the timestamps are made up or
// mended (see writeLosslessChunks). The
// terms are added as a balanced tree: ffmpeg's parser refuses a flat sum
// of a few hundred terms.
func writeSelect(b *strings.Builder, tl timeline, ranges []pictureRange) {
	if len(ranges) > 1 {
		m := len(ranges) / 2
		b.WriteByte('(')
		writeSelect(b, tl, ranges[:m])
		b.WriteString(")+(")
		writeSelect(b, tl, ranges[m:])
		b.WriteByte(')')
		return
	}
	r := ranges[0]
	if tl.byIndex() {
		fmt.Fprintf(b, "between(n,%d,%d)", r.first, r.last)
	} else {
		fmt.Fprintf(b, "between(pts,%d,%d)", tl.pictures[r.first].pts, tl.pictures[r.last].pts)
	}
}

// byIndex reports whether lossless chunks select and time the pictures by
// their index: when the source's timestamps are not all its own.
func (t timeline) byIndex() bool { return !t.timed || t.spans != nil }

// proofBatch is how many chunks one ffmpeg decodes to prove them: a
// process per chunk costs more than the decode of a chunk's head.
const proofBatch = 32

// proveChunks decodes the chunks listed in which, proofBatch to an ffmpeg
// and up to GOMAXPROCS ffmpegs at a time, and compares their pictures with
// the source's: it sets each matching chunk's Decoded and TrimStart and
// returns the chunks that do not match (in order). A chunk file that
// cannot be decoded at all does not match; the error is for what stops the
// proof (ffmpeg missing, ctx).
func proveChunks(ctx context.Context, tools Tools, pixFmt string, chunks []Chunk, which []int) ([]int, error) {
	var batches [][]int
	for len(which) > 0 {
		n := min(proofBatch, len(which))
		batches, which = append(batches, which[:n]), which[n:]
	}
	ok := make([][]bool, len(batches))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for b, batch := range batches {
		g.Go(func() error {
			var err error
			ok[b], err = proveBatch(gctx, tools, pixFmt, chunks, batch)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var failed []int
	for b, batch := range batches {
		for j, i := range batch {
			if !ok[b][j] {
				failed = append(failed, i)
			}
		}
	}
	return failed, nil
}

// proveBatch proves the chunks listed in which with one ffmpeg, each chunk
// an input of its own decoded to a framehash file beside it. When that
// ffmpeg fails (a chunk it cannot open), each chunk is proven alone, so
// only the bad one fails.
func proveBatch(ctx context.Context, tools Tools, pixFmt string, chunks []Chunk, which []int) ([]bool, error) {
	ok := make([]bool, len(which))
	scans, err := decodeChunks(ctx, tools, pixFmt, chunks, which)
	if err != nil && !errors.Is(err, ErrNotMedia) {
		return nil, err
	}
	for j, i := range which {
		c := &chunks[i]
		if scans == nil {
			ok[j], err = proveChunk(ctx, tools, pixFmt, c)
		} else {
			ok[j], err = judgeChunk(ctx, tools, pixFmt, c, scans[j])
		}
		if err != nil {
			return nil, err
		}
	}
	return ok, nil
}

// decodeChunks decodes the chunks listed in which (each up to its
// headLimit) with one ffmpeg: decodePictures for several files.
func decodeChunks(ctx context.Context, tools Tools, pixFmt string, chunks []Chunk, which []int) ([]*pictureScan, error) {
	outs := make([]*ffmpeg.Stream, len(which))
	paths := make([]string, len(which))
	defer func() {
		for _, p := range paths {
			_ = os.Remove(p)
		}
	}()
	for j, i := range which {
		c := chunks[i]
		paths[j] = filepath.Join(filepath.Dir(c.Path), fmt.Sprintf(".proof_%06d.framehash", c.Index))
		in := decodeInput()
		in["threads"] = "1" // batches run side by side: a decoder's own threads only add their cost
		outs[j] = ffmpeg.Input("file:"+c.Path, in).Get("0").Output("file:"+paths[j], pictureHashArgs(pixFmt, c.headLimit))
	}
	if err := runSourceFFmpeg(ctx, tools, ffmpeg.MergeOutputs(outs...)); err != nil {
		if fftool.IsFailure(ctx, err) {
			return nil, fmt.Errorf("%w: %w", ErrNotMedia, err)
		}
		return nil, err
	}
	scans := make([]*pictureScan, len(which))
	for j := range which {
		data, err := os.ReadFile(paths[j])
		if err != nil {
			return nil, err
		}
		if scans[j], err = parsePictures(data); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", chunks[which[j]].Index, err)
		}
	}
	return scans, nil
}

// proveChunk decodes c's file alone and judges it (judgeChunk).
func proveChunk(ctx context.Context, tools Tools, pixFmt string, c *Chunk) (bool, error) {
	scan, err := decodePictures(ctx, tools, c.Path, 0, pixFmt, c.headLimit, nil)
	if errors.Is(err, ErrNotMedia) {
		return false, nil // undecodable: made again losslessly
	}
	if err != nil {
		return false, fmt.Errorf("chunk %d: %w", c.Index, err)
	}
	return judgeChunk(ctx, tools, pixFmt, c, scan)
}

// judgeChunk looks for the source's pictures (c.source) in scan, c's file
// decoded; it reports whether they are all there, in order and as far
// apart in time as the source shows them (timedAs). With
// c.headLimit set, scan holds only that many pictures and the first
// headPictures of the chunk's own are looked for (c.Proven says how many);
// a head that does not match is decided on the whole chunk.
func judgeChunk(ctx context.Context, tools Tools, pixFmt string, c *Chunk, scan *pictureScan) (bool, error) {
	own := c.source
	if c.headLimit > 0 && len(scan.pictures) >= c.headLimit {
		head := own[:min(len(own), headPictures)]
		skip := scan.matchAt(head)
		if skip >= 0 && !scan.timedAs(skip, head, c.sourceTB) {
			return false, nil
		}
		if skip < 0 {
			whole := *c
			whole.headLimit = 0
			ok, err := proveChunk(ctx, tools, pixFmt, &whole)
			*c = whole
			return ok, err
		}
		c.Decoded, c.TrimStart, c.Proven = 0, int64(skip), int64(len(head))
		return true, nil
	}
	skip := scan.matchAt(own)
	if skip < 0 || !scan.timedAs(skip, own, c.sourceTB) {
		return false, nil
	}
	c.Decoded, c.TrimStart, c.Proven = int64(len(scan.pictures)), int64(skip), c.Frames
	return true, nil
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

// SplitStats summarises how Split cut a source, for the job's summary.
type SplitStats struct {
	Chunks int
	// Copied chunks are stream copies of the source's packets, Trimmed of
	// them carrying pictures of their neighbours; Lossless chunks are
	// lossless encodes, Fallback of them because their copy did not decode
	// to the source's pictures.
	Copied, Trimmed, Lossless, Fallback int
	// ExtraPictures are the pictures the trimmed chunks decode to beyond
	// their own (those before them, for a chunk proven by its head only):
	// decoded once more by the proof and once more by a worker. ExtraRatio
	// is their share of the source's pictures.
	ExtraPictures int64
	ExtraRatio    float64
	// HeadProven chunks were proven by their first pictures only; the
	// rest of each is compared with the pictures its worker decoded.
	// Reproven of them were decoded whole by the master after all: their
	// worker decoded other pictures, or gave none to compare.
	HeadProven, Reproven int
	// HeadOnly of the head-proven chunks were encoded by a simulated
	// encoder, which decodes nothing: only their heads were compared.
	HeadOnly int
	// Reused: the chunks are those of a previous run of the job, kept
	// for its resume; the figures are of that split. Live: they were cut
	// while the source was decoded (SplitLive).
	Reused, Live bool
	// Seconds is the wall time of the split, its proof included;
	// ProofSeconds the time spent decoding chunks to prove them.
	Seconds, ProofSeconds float64
}

// SummarizeSplit counts what chunks are made of.
func SummarizeSplit(chunks []Chunk) SplitStats {
	s := SplitStats{Chunks: len(chunks)}
	var frames int64
	for _, c := range chunks {
		frames += c.Frames
		if c.Proven < c.Frames {
			s.HeadProven++
		}
		switch {
		case c.Lossless:
			s.Lossless++
			if c.Fallback {
				s.Fallback++
			}
		default:
			s.Copied++
			if c.TrimStart > 0 || c.Decoded > c.Frames {
				s.Trimmed++
				s.ExtraPictures += max(c.Decoded-c.Frames, c.TrimStart)
			}
		}
	}
	if frames > 0 {
		s.ExtraRatio = float64(s.ExtraPictures) / float64(frames)
	}
	return s
}
