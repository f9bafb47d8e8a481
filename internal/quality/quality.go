// Package quality measures per-picture PSNR and SSIM of an encode against its source, for the master and the worker alike.
package quality

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/videoshard/videoshard/internal/fftool"
)

// Errors of MeasureQuality. They come wrapped with the file they are
// about; test them with errors.Is. A missing file wraps fs.ErrNotExist.
var (
	// ErrFrameCountMismatch: the two ranges do not hold the same number of
	// pictures, or a range holds fewer pictures than its Frames asks for,
	// or ffmpeg decoded fewer pictures than the files have packets. It is a
	// finding about the inputs, not a failure of ffmpeg; when the two
	// counts are known the error is a *FrameCountError.
	ErrFrameCountMismatch = errors.New("picture counts differ")

	// ErrDamaged: the distorted input does not decode cleanly: ffmpeg
	// reported a corrupt picture or packet in it, or a packet it could not
	// decode, and concealed it. Like ErrFrameCountMismatch it is a finding
	// about the input (a broken shard), not a failure of ffmpeg.
	ErrDamaged = errors.New("does not decode cleanly")

	// ErrNoVMAF: Options.VMAF was set, but VMAF cannot be measured: the
	// ffmpeg has no libvmaf filter (Debian's ffmpeg 5.1 has none), or it
	// has one and MeasureQuality does not run it yet.
	ErrNoVMAF = errors.New("VMAF is not available")

	// ErrPictureSize: with Options.SameSize, the distorted input's
	// pictures are not the reference's size. Like ErrDamaged, a finding
	// about the input.
	ErrPictureSize = errors.New("pictures not of the reference's size")

	// ErrTimesDiffer: with Options.SameTimes, the distorted pictures are
	// not shown at the reference's times: a player, and a join that
	// copies them, would show them elsewhere, or refuse them. Like
	// ErrDamaged, a finding about the input.
	ErrTimesDiffer = errors.New("pictures shown at other times")

	// ErrNotMedia: ffprobe cannot read a file as media at all (or, with
	// Input.Formats, not with those demuxers). The message carries
	// ffprobe's reason.
	ErrNotMedia = errors.New("not a media file")

	// ErrNoVideo: a file is media but has no video stream that is not a
	// cover image.
	ErrNoVideo = errors.New("not a video")
)

// FrameCountError reports two ranges with different picture counts. It
// unwraps to ErrFrameCountMismatch.
type FrameCountError struct {
	// Reference and Distorted are the pictures in each range.
	Reference, Distorted int64
}

func (e *FrameCountError) Error() string {
	return fmt.Sprintf("%v: the distorted input has %d pictures in range, the reference %d",
		ErrFrameCountMismatch, e.Distorted, e.Reference)
}

func (e *FrameCountError) Unwrap() error { return ErrFrameCountMismatch }

// An Input is a range of pictures of one file: Skip decoded pictures are
// dropped, then Frames are compared (Frames 0: all the rest). Pictures are
// counted in presentation order, by position, never by timestamp. The
// file's first video stream that is not a cover image is used.
type Input struct {
	Path         string
	Skip, Frames int64
	// Pictures, when positive, is how many pictures the file must hold in
	// all, whatever range is compared: a shard of a chunk holds exactly
	// the chunk's, none more at its end (ErrFrameCountMismatch).
	Pictures int64
	// Formats, when not empty, are the only demuxers ffprobe and ffmpeg may
	// read the file with (their -format_whitelist), and only local files
	// may be opened (-protocol_whitelist file): for a file that came from
	// elsewhere, such as the chunk a worker was sent. A file no listed
	// demuxer reads is ErrNotMedia. Empty: any demuxer, as for the
	// master's own files.
	Formats []string
}

// Frame is the quality of one distorted picture against its reference
// picture.
type Frame struct {
	// Frame is the picture's position in the range, from 0 (the picture
	// after the Skip ones); in sample mode the positions have gaps.
	Frame int64
	// PSNR is ffmpeg's psnr_avg in dB, to 0.01 dB: 10·log10(max²/MSE)
	// with the MSE averaged over all the samples of all the planes (for
	// 4:2:0, Y weighs 4/6, U and V 1/6 each). Identical pictures give
	// +Inf; see MarshalJSON.
	PSNR float64
	// SSIM is ffmpeg's ssim "All", to 1e-6: the SSIM of each plane (8x8
	// windows on 4x4 steps), averaged weighted by plane size like PSNR.
	// 1 means identical; lower is worse; NaN when a plane is smaller than
	// the window, so SSIM measures nothing. (SSIM of luma only would save
	// under 1% of a run's CPU time, so all the planes count.)
	SSIM float64
	// Fields is how the distorted picture is coded, as ffmpeg decodes it:
	// 'P' progressive, 'T' or 'B' interlaced with the top or bottom field
	// first; 0 when not known. (Not in the JSON form.)
	Fields byte
	// PTS and RefPTS are the distorted and the reference picture's
	// presentation times, in seconds on their files' timelines, as
	// decoded; NaN when a picture has none or they are not known. (Not
	// in the JSON form.)
	PTS, RefPTS float64
}

// Stats summarises a run of frames; the zero value for none.
type Stats struct {
	Frames  int
	MinPSNR float64
	// MeanPSNR is the PSNR of the mean MSE (each frame's MSE recovered
	// from its PSNR), the way ffmpeg's own "average" is computed, not the
	// mean of the frames' PSNRs: one bad frame weighs as it looks, and
	// identical frames (+Inf) do not make the mean infinite unless all
	// of them are identical.
	MeanPSNR float64
	MinSSIM  float64
	// MeanSSIM is the plain mean of the frames' SSIM. Both are NaN when
	// no frame's SSIM was measured.
	MeanSSIM float64
}

// Options tune MeasureQuality; the zero value compares every frame.
type Options struct {
	// Sample, when positive, compares only that many pictures spread evenly
	// over the range: the middle picture of each of Sample equal parts. 0,
	// or a Sample at least the range's length, compares every picture.
	Sample int
	// VMAF asks for VMAF scores; MeasureQuality then fails with ErrNoVMAF
	// (see there) before decoding anything.
	VMAF bool
	// SameSize holds dist to ref's picture size: a dist whose stream says
	// otherwise is ErrPictureSize before any of it is decoded, and its
	// decoders (ffprobe's too) refuse pictures of more pixels than ref's
	// (-max_pixels), met midway, as damage (ErrDamaged). For a dist from
	// elsewhere: a few kilobytes of H.264 can hold pictures of gigabytes.
	SameSize bool
	// SameTimes holds dist to ref's timing: each distorted picture
	// compared must be shown as long after the first one compared as its
	// reference picture is after the reference's first, to within
	// timeSlack, else ErrTimesDiffer. Where each range starts on its
	// timeline does not matter.
	SameTimes bool
}

// timeSlack is how far apart SameTimes lets two pictures' times be:
// Matroska keeps milliseconds, and each file's times are rounded on their
// own.
const timeSlack = 0.001 + 1e-6

// MeasureQuality decodes the pictures of ref's and dist's ranges side by
// side and returns, for each pair (or each sampled pair), dist's PSNR and
// SSIM against ref, in order.
//
// Pictures are paired by position: each range is cut by picture count
// (trim by frame number) and renumbered (setpts=N/TB, settb=1), so
// Matroska's millisecond timestamps, or a shard whose timestamps start
// elsewhere, cannot pair the wrong pictures. Autorotation is off on both
// inputs, so rotated files compare their stored pictures. Both sides are
// scaled and converted to ref's size and pixel format (a no-op for ref,
// and for dist when they already match), and -reinit_filter 0 keeps one
// filter graph when a stream's format changes midway, so the picture
// counts never restart.
//
// First both files' video packets are counted with ffprobe (read, not
// decoded: a small fraction of the decoding's cost); the pictures in each
// range must agree, else the error wraps ErrFrameCountMismatch (a
// *FrameCountError naming both counts), before any decoding. The counts
// assume one picture per packet; a file that decodes to fewer pictures is
// caught after decoding, also as ErrFrameCountMismatch.
//
// Cost: one ffmpeg run decodes both files from their first picture to the
// end of their range (skipped pictures are decoded too: for a chunk of a
// long source, pass the chunk file, not the source with a Skip). Decoding
// is nearly all of it: PSNR and SSIM take about 1 ms of CPU per 720p
// picture pair, decoding the two H.264 pictures about 35 ms, and a full
// run costs 1.03 to 1.08 times the CPU time of a plain decode of both
// files, as long in wall time (BenchmarkMeasureQuality, 2 cores). Sample
// mode saves the measuring and the decoding after the last sampled
// picture, not the decoding before it, so it costs nearly what a full run
// does (0.96 to 1.02 times the decode); it is meant for chunks, which are
// short. Memory is bounded: the statistics are parsed from ffmpeg's output
// as it streams, a line at a time, into the result.
//
// Errors: a range with nothing in it; a missing file (fs.ErrNotExist); one
// ffprobe cannot read (ErrNotMedia) or without video (ErrNoVideo);
// ErrFrameCountMismatch as above; ErrNoVMAF; ffmpeg failing (the error
// carries its stderr); an ended ctx, which kills ffprobe or ffmpeg (the
// error wraps ctx.Err()).
func MeasureQuality(ctx context.Context, tools Tools, ref, dist Input, opt Options) ([]Frame, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("measure quality: %w", err)
	}
	for _, in := range []Input{ref, dist} {
		if in.Path == "" || in.Skip < 0 || in.Frames < 0 {
			return nil, fmt.Errorf("measure quality: bad input %+v: want a path, Skip >= 0 and Frames >= 0", in)
		}
	}
	if opt.Sample < 0 {
		return nil, fmt.Errorf("measure quality: Sample %d is negative", opt.Sample)
	}
	if opt.VMAF {
		return nil, fmt.Errorf("measure quality: %w", vmafUnavailable(ctx, tools))
	}

	refSrc, err := probeSource(ctx, tools, ref, 0)
	if err != nil {
		return nil, fmt.Errorf("measure quality: reference %s: %w", ref.Path, err)
	}
	var maxPixels int64
	if opt.SameSize {
		maxPixels = fftool.MaxPixels(refSrc.width, refSrc.height)
	}
	distSrc, err := probeSource(ctx, tools, dist, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("measure quality: distorted %s: %w", dist.Path, err)
	}
	if opt.SameSize && (distSrc.width != refSrc.width || distSrc.height != refSrc.height) {
		return nil, fmt.Errorf("measure quality: %w: the distorted input's are %dx%d, the reference's %dx%d",
			ErrPictureSize, distSrc.width, distSrc.height, refSrc.width, refSrc.height)
	}
	count, err := rangeCounts(refSrc, ref, distSrc, dist)
	if err != nil {
		return nil, fmt.Errorf("measure quality: %w", err)
	}
	var picks []int64
	if opt.Sample > 0 && int64(opt.Sample) < count {
		picks = samplePicks(count, int64(opt.Sample))
	}
	want := count
	if picks != nil {
		want = int64(len(picks))
	}

	stats := newStatsParser(want)
	cmd := command(refSrc, ref, distSrc, dist, count, picks, maxPixels)
	damage := &damageLog{url: "file:" + distSrc.abs}
	if distSrc.abs == refSrc.abs {
		damage.url = "" // a file against itself: its damage is the reference's too
	}
	if err := runFFmpegTo(ctx, tools, cmd, stats, damage); err != nil {
		return nil, fmt.Errorf("measure quality of %s against %s: %w", dist.Path, ref.Path, err)
	}
	if damage.damage != "" {
		return nil, fmt.Errorf("measure quality of %s against %s: %w: %s", dist.Path, ref.Path, ErrDamaged, damage.damage)
	}
	frames, err := stats.result()
	if err != nil {
		return nil, fmt.Errorf("measure quality of %s against %s: %w", dist.Path, ref.Path, err)
	}
	timed := len(damage.distTimes) == len(frames) && len(damage.refTimes) == len(frames)
	for i := range frames {
		if len(damage.fields) == len(frames) {
			frames[i].Fields = damage.fields[i]
		}
		frames[i].PTS, frames[i].RefPTS = math.NaN(), math.NaN()
		if timed {
			frames[i].PTS, frames[i].RefPTS = damage.distTimes[i], damage.refTimes[i]
		}
		if picks != nil {
			frames[i].Frame = picks[i]
		} else {
			frames[i].Frame = int64(i)
		}
	}
	if opt.SameTimes {
		if err := sameTimes(frames, timed); err != nil {
			return nil, fmt.Errorf("measure quality of %s against %s: %w", dist.Path, ref.Path, err)
		}
	}
	return frames, nil
}

// sameTimes checks Options.SameTimes of the frames measured; timed is
// false when showinfo's log did not give every picture's time.
func sameTimes(frames []Frame, timed bool) error {
	if !timed {
		return fmt.Errorf("%w: the pictures' times are not known", ErrTimesDiffer)
	}
	for _, f := range frames {
		d, r := f.PTS-frames[0].PTS, f.RefPTS-frames[0].RefPTS
		if math.IsNaN(r) {
			continue // the reference's own has no time: nothing to hold dist to
		}
		if math.IsNaN(d) || math.Abs(d-r) > timeSlack {
			return fmt.Errorf("%w: picture %d is shown %.6fs after the first compared, the reference's %.6fs",
				ErrTimesDiffer, f.Frame, d, r)
		}
	}
	return nil
}

// IsFinding reports whether err, from MeasureQuality, is a finding about
// the distorted input (its pictures do not pair with the reference's, do
// not decode cleanly, are too big, or are shown at other times) rather
// than a failure to measure.
func IsFinding(err error) bool {
	return errors.Is(err, ErrFrameCountMismatch) || errors.Is(err, ErrDamaged) || errors.Is(err, ErrPictureSize) ||
		errors.Is(err, ErrTimesDiffer)
}

// Summarize returns the minimum and mean PSNR and SSIM of frames (see
// Stats); the zero Stats for none.
func Summarize(frames []Frame) Stats {
	if len(frames) == 0 {
		return Stats{}
	}
	s := Stats{Frames: len(frames), MinPSNR: math.Inf(1), MinSSIM: math.Inf(1)}
	var mse, ssim float64 // mse: MSE relative to max², 0 for identical
	ssims := 0            // the frames SSIM measured
	for _, f := range frames {
		s.MinPSNR = min(s.MinPSNR, f.PSNR)
		mse += math.Pow(10, -f.PSNR/10)
		if !math.IsNaN(f.SSIM) {
			s.MinSSIM = min(s.MinSSIM, f.SSIM)
			ssim += f.SSIM
			ssims++
		}
	}
	n := float64(len(frames))
	s.MeanPSNR = -10 * math.Log10(mse/n) // +Inf when every frame is identical
	s.MeanSSIM = ssim / float64(ssims)
	if ssims == 0 {
		s.MinSSIM, s.MeanSSIM = math.NaN(), math.NaN()
	}
	return s
}
