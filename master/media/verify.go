package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
)

// durationSlack is added to the one-frame duration tolerance: Matroska
// stores times in whole milliseconds.
const durationSlack = 0.001

// Verification compares an output with its source. Durations and offsets
// are seconds; video durations run from the first frame's start to the last
// frame's end, from the packet timestamps.
type Verification struct {
	SourceFrames, OutputFrames     int64
	SourceDuration, OutputDuration float64
	// FrameDuration is one source frame (1/FPS): the tolerance for the
	// duration and the audio/video offset.
	FrameDuration float64
	// MaxDrift is the largest difference between a source frame's
	// presentation time and the output frame's at the same place, both
	// measured from their first frame; -1 when the frame counts differ or
	// timestamps are missing. More than half a frame is a problem.
	MaxDrift float64
	// AVOffsetSource and AVOffsetOutput are how much later the video starts
	// than the first audio stream; 0 without audio.
	AVOffsetSource, AVOffsetOutput         float64
	AudioStreamsSource, AudioStreamsOutput int
	// AudioSource and AudioOutput are how each audio stream plays: its
	// samples' length and the time they are given.
	AudioSource, AudioOutput []audioTrack
	// AudioStartsSource and AudioStartsOutput are when each audio
	// stream's first sample of the source's sound plays, by stream index,
	// on its file's timeline (see audioStarts); what the audio/video
	// offset is measured with.
	AudioStartsSource, AudioStartsOutput map[int]float64
	// Untimed: the source's pictures carry no usable timestamps (none, or
	// too many that repeat or go back to mend, see repairTimes), so the
	// output's were compared with the pictures shown one frame apart at
	// the source's stated rate, as the split times them.
	Untimed bool
	// OutputVideoStart is when the output's first picture is shown, on its
	// own timeline (what the audio offset and the presentation's track
	// offsets are measured from).
	OutputVideoStart float64
	// OK is true when Problems is empty.
	OK bool
	// Problems says, in words, each way the output falls short: another
	// frame count, a duration more than a frame (plus a millisecond) off,
	// drifting timestamps, a lost audio stream, a moved audio/video offset,
	// no video at all.
	Problems []string
}

// Verify reads every video packet of the output at outPath and compares
// them with the source's pictures (as Probe decoded them; decoded again
// when src did not come from Probe): the frame counts
// must be equal, the video durations within one frame, every frame's
// timestamp within half a frame of the source's, as many audio streams as
// the source's, and the video's offset from the first audio stream within
// one frame of the source's. plan is how Join carried the audio (what
// PlanSideStreams gave it): each output stream is paired with the source
// stream it carries, and its start found as a copy's or a conversion's
// (audioStarts); an empty plan takes the output's audio for copies of the
// source's, in order.
//
// A mismatch is not an error: it is reported in Problems, with OK false.
// The error is for what prevents the comparison: a missing output (wraps
// fs.ErrNotExist), an output ffprobe cannot read (ErrNotMedia), ffprobe not
// starting, an ended ctx (wraps ctx.Err()).
func Verify(ctx context.Context, tools Tools, src SourceInfo, plan SideStreams, outPath string) (Verification, error) {
	if err := ctx.Err(); err != nil {
		return Verification{}, err
	}
	abs, err := filepath.Abs(outPath)
	if err != nil {
		return Verification{}, fmt.Errorf("verify: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return Verification{}, fmt.Errorf("verify: %w", err)
	}
	v := Verification{
		SourceFrames:       src.Video.Frames,
		FrameDuration:      src.Video.FrameDuration(),
		MaxDrift:           -1,
		AudioStreamsSource: len(src.Audio),
	}
	pics := src.pictures
	if pics == nil {
		if pics, err = scanPictures(ctx, tools, src.Path, src.Video.Index, ""); err != nil {
			return Verification{}, fmt.Errorf("verify: decode source %s: %w", src.Path, err)
		}
	}
	v.SourceFrames = int64(len(pics.pictures))
	srcTimes := make([]float64, len(pics.pictures)) // the source pictures' times from the first
	repair, timed := src.repair(pics)
	v.Untimed = !timed
	if v.Untimed {
		// The output must show them as the split made them: one frame
		// apart.
		fps := untimedFPS(src.Video.FPS)
		v.FrameDuration = 1 / fps
		v.SourceDuration = float64(len(srcTimes)) / fps
		for i := range srcTimes {
			srcTimes[i] = float64(i) / fps
		}
	} else {
		// As the split times them: mended where they repeat or go back.
		first := repair.pictures[0].pts
		v.SourceDuration = repair.seconds(pics.timeBase, src.Video.FPS)
		for i, p := range repair.pictures {
			srcTimes[i] = pics.timeBase.seconds(p.pts - first)
		}
	}
	if v.FrameDuration <= 0 && v.SourceFrames > 0 {
		v.FrameDuration = v.SourceDuration / float64(v.SourceFrames)
	}

	// The output is made of the workers' shards: read as one (in any
	// demuxer for a file Join does not write, a test's own).
	bound, _ := encodedBound(src.Video.Width, src.Video.Height)
	if _, err := ContainerFor(abs); err != nil {
		delete(bound, "format_whitelist")
	}
	rep, err := probeReport(ctx, tools, abs, bound)
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: %w", outPath, err)
	}
	out, err := rep.sourceInfo(abs)
	if errors.Is(err, ErrNoVideo) {
		v.Problems = append(v.Problems, "the output has no video stream")
		return v, nil
	}
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: %w", outPath, err)
	}
	v.AudioStreamsOutput = len(out.Audio)
	if t, ok, err := firstPictureTime(ctx, tools, abs, out.Video.Index, bound); err != nil {
		return Verification{}, fmt.Errorf("verify %s: decode its first picture: %w", outPath, err)
	} else if ok {
		out.Video.StartTime = t // as Probe places the source's video
	}
	v.OutputVideoStart = out.Video.StartTime
	// The audio's lengths, read side by side with the video's packets.
	var outScan *packetScan
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if outScan, err = scanPackets(gctx, tools, abs, out.Video.Index, scanPTS); err != nil {
			return fmt.Errorf("verify %s: read video packets: %w", outPath, err)
		}
		return nil
	})
	if len(src.Audio) > 0 && len(out.Audio) > 0 {
		g.Go(func() (err error) {
			if v.AudioSource, err = audioTracks(gctx, tools, src.Path); err != nil {
				return fmt.Errorf("verify: read the source's audio packets: %w", err)
			}
			return nil
		})
		g.Go(func() (err error) {
			if v.AudioOutput, err = audioTracks(gctx, tools, abs); err != nil {
				return fmt.Errorf("verify %s: read audio packets: %w", outPath, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Verification{}, err
	}
	pairs := pairAudio(src, out, v.AudioSource, v.AudioOutput, plan)
	v.AudioStartsSource, v.AudioStartsOutput = audioStarts(pairs)
	if len(src.Audio) > 0 {
		a := src.Audio[0]
		v.AVOffsetSource = src.Video.StartTime - startOr(v.AudioStartsSource, a)
	}
	if len(out.Audio) > 0 {
		a := out.Audio[0]
		v.AVOffsetOutput = out.Video.StartTime - startOr(v.AudioStartsOutput, a)
	}
	v.OutputFrames = outScan.packets
	fps := out.Video.FPS
	if fps <= 0 {
		fps = src.Video.FPS
	}
	v.OutputDuration = outScan.duration(fps)
	misplaced := -1 // a picture out of its own place, see misplacedPicture
	var outTimes []float64
	if v.OutputFrames == v.SourceFrames && outScan.withPTS == outScan.packets {
		outTimes = outScan.sortedPTS()
		v.MaxDrift = maxDrift(srcTimes, outTimes)
		misplaced = misplacedPicture(srcTimes, outTimes)
	}

	problem := func(format string, args ...any) {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
	if v.OutputFrames != v.SourceFrames {
		problem("the output has %d video frames, the source %d", v.OutputFrames, v.SourceFrames)
	}
	if d := math.Abs(v.OutputDuration - v.SourceDuration); d > v.FrameDuration+durationSlack {
		problem("the output's video lasts %.6fs, the source's %.6fs: %.6fs apart, more than a frame (%.6fs)",
			v.OutputDuration, v.SourceDuration, d, v.FrameDuration)
	}
	if v.MaxDrift > v.FrameDuration/2 {
		problem("the output's frame times drift up to %.6fs from the source's, more than half a frame", v.MaxDrift)
	} else if misplaced >= 0 {
		problem("the output's picture %d is shown at %.6fs from the first, the source's at %.6fs: closer to another picture's time than to its own",
			misplaced, outTimes[misplaced], srcTimes[misplaced])
	}
	if v.AudioStreamsOutput != v.AudioStreamsSource {
		problem("the output has %d audio streams, the source %d", v.AudioStreamsOutput, v.AudioStreamsSource)
	}
	for i, p := range pairs {
		s, o := p.src, p.out
		if !p.paired {
			continue
		}
		// A gap in the source's sound may come out filled: a container
		// without timestamp gaps (MP4) lengthens the sample before it. So
		// the output may have as much more sound as the source has gaps.
		most := max(s.Length, s.Span)
		if s.Length >= 0 && o.Length >= 0 && (o.Length < s.Length-audioSlack(s.Length) || o.Length > most+audioSlack(most)) {
			problem("the output's audio stream %d has %.3fs of sound, the source's %.3fs (%.3fs with its gaps)", i+1, o.Length, s.Length, most)
		}
		if o.Length >= 0 && o.Span >= 0 && o.Length-o.Span > audioSlack(o.Length) {
			problem("the output's audio stream %d gives %.3fs of sound %.3fs of time: its timestamps overlap (the source's restart or overlap: %.3fs in %.3fs)",
				i+1, o.Length, o.Span, s.Length, s.Span)
		}
	}
	if v.AudioStreamsSource > 0 && v.AudioStreamsOutput > 0 {
		if d := math.Abs(v.AVOffsetOutput - v.AVOffsetSource); d > v.FrameDuration+durationSlack {
			problem("the output's video starts %.6fs after its audio, the source's %.6fs: more than a frame apart",
				v.AVOffsetOutput, v.AVOffsetSource)
		}
	}
	v.OK = len(v.Problems) == 0
	return v, nil
}

// audioPair is an output's audio stream and the source's it carries.
type audioPair struct {
	src, out audioTrack
	side     SideStream // how Join carried it: a copy unless planned otherwise
	rate     int        // the output's sample rate
	paired   bool       // false when either has no packets
}

// pairAudio pairs the output's audio streams, in order, with the
// source's each carries: the plan's audio streams, in order, or without a
// plan src's own (a file not joined by Join); tracks are each file's
// audioTracks.
func pairAudio(src, out SourceInfo, srcTracks, outTracks []audioTrack, plan SideStreams) []audioPair {
	var planned []SideStream
	for _, s := range plan.Streams {
		if s.Type == "audio" {
			planned = append(planned, s)
		}
	}
	if len(planned) == 0 {
		for _, a := range src.Audio {
			planned = append(planned, SideStream{SourceIndex: a.Index, Type: "audio", Codec: a.Codec})
		}
	}
	var pairs []audioPair
	for k, o := range out.Audio[:min(len(out.Audio), len(planned))] {
		p := audioPair{side: planned[k], rate: o.SampleRate}
		var srcOK, outOK bool
		p.src, srcOK = audioTrackOf(srcTracks, p.side.SourceIndex)
		p.out, outOK = audioTrackOf(outTracks, o.Index)
		p.paired = srcOK && outOK
		pairs = append(pairs, p)
	}
	return pairs
}

// audioStarts is when each paired stream's first sample of the source's
// sound plays, by stream index, on its own file's timeline: in the source
// its first played packet; in the output where SideStream.audioStart
// finds that packet, else its own first played packet. A stream without
// timestamps has none.
func audioStarts(pairs []audioPair) (srcStarts, outStarts map[int]float64) {
	srcStarts, outStarts = map[int]float64{}, map[int]float64{}
	for _, p := range pairs {
		if !p.paired {
			continue
		}
		if !math.IsNaN(p.src.Start) {
			srcStarts[p.src.Index] = p.src.Start
		}
		if t, ok := p.side.audioStart(p.src, p.out, p.rate); ok {
			outStarts[p.out.Index] = t
		} else if !math.IsNaN(p.out.Start) {
			outStarts[p.out.Index] = p.out.Start
		}
	}
	return srcStarts, outStarts
}

// startOr is a's start in starts, or the stream's own start time.
func startOr(starts map[int]float64, a StreamInfo) float64 {
	if t, ok := starts[a.Index]; ok {
		return t
	}
	return a.StartTime
}

// audioSlack is how far an audio stream's length may move: an encoder's
// priming and padding (AAC's 1024 samples, MP3's 1152 and more), a
// conversion's resampling, a frame or two of rounding.
func audioSlack(length float64) float64 { return 0.25 + length/100 }

// misplacedPicture returns the first picture whose output time (out) is
// more than half the gap to a neighbour away from its source time (src),
// beyond the timestamps' rounding (durationSlack): so a variable frame
// rate's fast stretch cannot hide in the average frame's tolerance, nor
// two pictures share a time the source gives them apart; -1 if none.
// Pictures the source itself shows at once are not judged.
func misplacedPicture(src, out []float64) int {
	for i := range src {
		gap := math.Inf(1)
		if i > 0 {
			gap = src[i] - src[i-1]
		}
		if i+1 < len(src) {
			gap = min(gap, src[i+1]-src[i])
		}
		if gap > 2*durationSlack && !math.IsInf(gap, 1) && math.Abs(out[i]-src[i]) > gap/2+durationSlack {
			return i
		}
	}
	return -1
}

// maxDrift is the largest difference between two equally long lists of
// times.
func maxDrift(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}
