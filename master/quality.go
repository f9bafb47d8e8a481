package master

// Picture quality: per-picture PSNR and SSIM of a distorted video (a shard)
// against a reference (its chunk), computed by ffmpeg's psnr and ssim
// filters in one decoding run of both files.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/proc"
)

// Errors of MeasureQuality, besides those of the media functions (a missing
// file wraps fs.ErrNotExist, one ffprobe cannot read ErrNotMedia, one
// without video ErrNoVideo).
var (
	// ErrFrameCountMismatch: the two ranges do not hold the same number of
	// pictures, or a range holds fewer pictures than its Frames asks for,
	// or ffmpeg decoded fewer pictures than the files have packets. It is a
	// finding about the inputs, not a failure of ffmpeg; when the two
	// counts are known the error is a *FrameCountError.
	ErrFrameCountMismatch = errors.New("picture counts differ")

	// ErrNoVMAF: QualityOptions.VMAF was set, but VMAF cannot be measured:
	// the ffmpeg has no libvmaf filter (Debian's ffmpeg 5.1 has none), or
	// it has one and MeasureQuality does not run it yet.
	ErrNoVMAF = errors.New("VMAF is not available")
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

// A QualityInput is a range of pictures of one file: Skip decoded pictures
// are dropped, then Frames are compared (Frames 0: all the rest). Pictures
// are counted in presentation order, by position, never by timestamp. The
// file's first video stream that is not a cover image is used.
type QualityInput struct {
	Path         string
	Skip, Frames int64
}

// FrameQuality is the quality of one distorted picture against its
// reference picture.
type FrameQuality struct {
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
	// 1 means identical; lower is worse. (SSIM of luma only would save
	// under 1% of a run's CPU time, so all the planes count.)
	SSIM float64
}

// QualityStats summarises a run of frames; the zero value for none.
type QualityStats struct {
	Frames  int
	MinPSNR float64
	// MeanPSNR is the PSNR of the mean MSE (each frame's MSE recovered
	// from its PSNR), the way ffmpeg's own "average" is computed, not the
	// mean of the frames' PSNRs: one bad frame weighs as it looks, and
	// identical frames (+Inf) do not make the mean infinite unless all
	// of them are identical.
	MeanPSNR float64
	MinSSIM  float64
	// MeanSSIM is the plain mean of the frames' SSIM.
	MeanSSIM float64
}

// QualityOptions tune MeasureQuality; the zero value compares every frame.
type QualityOptions struct {
	// Sample, when positive, compares only that many pictures spread evenly
	// over the range: the middle picture of each of Sample equal parts. 0,
	// or a Sample at least the range's length, compares every picture.
	Sample int
	// VMAF asks for VMAF scores; MeasureQuality then fails with ErrNoVMAF
	// (see there) before decoding anything.
	VMAF bool
}

// maxStatsLine bounds one line of the psnr and ssim filters' statistics;
// real ones are under 200 bytes.
const maxStatsLine = 1024

// MeasureQuality decodes the pictures of ref's and dist's ranges side by
// side and returns, for each pair (or each sampled pair), dist's PSNR and
// SSIM against ref, in order.
//
// Pictures are paired by position: each range is cut by picture count
// (trim by frame number) and renumbered (setpts=N/TB, settb=1), so
// Matroska's millisecond timestamps, or a shard whose timestamps start
// elsewhere, cannot pair the wrong pictures. Autorotation is off on both
// inputs, so rotated files compare their stored pictures. When dist's size
// or pixel format differs from ref's, dist is scaled and converted to ref's.
//
// First both files' video packets are counted with ffprobe (read, not
// decoded: a small fraction of the decoding's cost); the pictures in each
// range must agree, else the error wraps ErrFrameCountMismatch (a
// *FrameCountError naming both counts), before any decoding. The counts
// assume one picture per packet, as Verify does; a file that decodes to
// fewer pictures is caught after decoding, also as ErrFrameCountMismatch.
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
// short. Memory is bounded: the statistics are
// parsed from ffmpeg's output as it streams, a line at a time, into the
// result.
//
// Errors: a range with nothing in it; a missing file (fs.ErrNotExist); one
// ffprobe cannot read (ErrNotMedia) or without video (ErrNoVideo);
// ErrFrameCountMismatch as above; ErrNoVMAF; ffmpeg failing (the error
// carries its stderr); an ended ctx, which kills ffprobe or ffmpeg (the
// error wraps ctx.Err()).
func MeasureQuality(ctx context.Context, tools Tools, ref, dist QualityInput, opt QualityOptions) ([]FrameQuality, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("measure quality: %w", err)
	}
	for _, in := range []QualityInput{ref, dist} {
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

	refSrc, err := probeQualitySource(ctx, tools, ref.Path)
	if err != nil {
		return nil, fmt.Errorf("measure quality: reference %s: %w", ref.Path, err)
	}
	distSrc, err := probeQualitySource(ctx, tools, dist.Path)
	if err != nil {
		return nil, fmt.Errorf("measure quality: distorted %s: %w", dist.Path, err)
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

	stats := newQualityStats(want)
	cmd := qualityCommand(refSrc, ref, distSrc, dist, count, picks)
	if err := runFFmpegTo(ctx, tools, cmd, stats); err != nil {
		return nil, fmt.Errorf("measure quality of %s against %s: %w", dist.Path, ref.Path, err)
	}
	frames, err := stats.result()
	if err != nil {
		return nil, fmt.Errorf("measure quality of %s against %s: %w", dist.Path, ref.Path, err)
	}
	for i := range frames {
		if picks != nil {
			frames[i].Frame = picks[i]
		} else {
			frames[i].Frame = int64(i)
		}
	}
	return frames, nil
}

// Summarize returns the minimum and mean PSNR and SSIM of frames (see
// QualityStats); the zero QualityStats for none.
func Summarize(frames []FrameQuality) QualityStats {
	if len(frames) == 0 {
		return QualityStats{}
	}
	s := QualityStats{Frames: len(frames), MinPSNR: math.Inf(1), MinSSIM: math.Inf(1)}
	var mse, ssim float64 // mse: MSE relative to max², 0 for identical
	for _, f := range frames {
		s.MinPSNR = min(s.MinPSNR, f.PSNR)
		s.MinSSIM = min(s.MinSSIM, f.SSIM)
		mse += math.Pow(10, -f.PSNR/10)
		ssim += f.SSIM
	}
	n := float64(len(frames))
	s.MeanPSNR = -10 * math.Log10(mse/n) // +Inf when every frame is identical
	s.MeanSSIM = ssim / n
	return s
}

// The JSON forms: encoding/json cannot write +Inf, so an infinite PSNR
// (identical pictures) is written as null and read back as +Inf.

type frameQualityJSON struct {
	Frame int64    `json:"frame"`
	PSNR  *float64 `json:"psnr"`
	SSIM  float64  `json:"ssim"`
}

// MarshalJSON writes {"frame":..,"psnr":..,"ssim":..}, with null for an
// infinite PSNR.
func (f FrameQuality) MarshalJSON() ([]byte, error) {
	return json.Marshal(frameQualityJSON{Frame: f.Frame, PSNR: finiteOrNil(f.PSNR), SSIM: f.SSIM})
}

// UnmarshalJSON reads what MarshalJSON writes; a null or absent PSNR is
// +Inf.
func (f *FrameQuality) UnmarshalJSON(b []byte) error {
	var j frameQualityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = FrameQuality{Frame: j.Frame, PSNR: infIfNil(j.PSNR), SSIM: j.SSIM}
	return nil
}

type qualityStatsJSON struct {
	Frames   int      `json:"frames"`
	MinPSNR  *float64 `json:"min_psnr"`
	MeanPSNR *float64 `json:"mean_psnr"`
	MinSSIM  float64  `json:"min_ssim"`
	MeanSSIM float64  `json:"mean_ssim"`
}

// MarshalJSON writes snake_case fields, with null for an infinite PSNR.
func (s QualityStats) MarshalJSON() ([]byte, error) {
	return json.Marshal(qualityStatsJSON{
		Frames:   s.Frames,
		MinPSNR:  finiteOrNil(s.MinPSNR),
		MeanPSNR: finiteOrNil(s.MeanPSNR),
		MinSSIM:  s.MinSSIM,
		MeanSSIM: s.MeanSSIM,
	})
}

// UnmarshalJSON reads what MarshalJSON writes; a null or absent PSNR is
// +Inf.
func (s *QualityStats) UnmarshalJSON(b []byte) error {
	var j qualityStatsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = QualityStats{
		Frames:   j.Frames,
		MinPSNR:  infIfNil(j.MinPSNR),
		MeanPSNR: infIfNil(j.MeanPSNR),
		MinSSIM:  j.MinSSIM,
		MeanSSIM: j.MeanSSIM,
	}
	return nil
}

func finiteOrNil(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

func infIfNil(v *float64) float64 {
	if v == nil {
		return math.Inf(1)
	}
	return *v
}

// qualitySource is what MeasureQuality needs to know about one input.
type qualitySource struct {
	abs           string
	index         int // the video stream's index in the file
	width, height int
	pixFmt        string // "" when ffprobe does not know
	packets       int64
}

// probeQualitySource finds the first video stream of path that is not a
// cover image, and counts its packets (reading, not decoding, them).
func probeQualitySource(ctx context.Context, tools Tools, path string) (qualitySource, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return qualitySource{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return qualitySource{}, err
	}
	if !fi.Mode().IsRegular() {
		return qualitySource{}, fmt.Errorf("%w: not a regular file", ErrNotMedia)
	}
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(ffmpeg.KwArgs{
		"v":              "error",
		"hide_banner":    "",
		"select_streams": "v",
		"count_packets":  "",
		"show_entries":   "stream=index,width,height,pix_fmt,nb_read_packets:stream_disposition=attached_pic",
		"of":             "json",
	}), "file:"+abs)
	out := proc.NewLimitedBuffer(maxProbeReport)
	if err := runTool(ctx, tools.ffprobe(), args, out); err != nil {
		if isToolFailure(ctx, err) {
			return qualitySource{}, fmt.Errorf("%w: %w", ErrNotMedia, err)
		}
		return qualitySource{}, err
	}
	if out.Overflowed() {
		return qualitySource{}, fmt.Errorf("ffprobe: report larger than %d bytes", maxProbeReport)
	}
	var rep struct {
		Streams []struct {
			Index       int    `json:"index"`
			Width       int    `json:"width"`
			Height      int    `json:"height"`
			PixFmt      string `json:"pix_fmt"`
			Packets     string `json:"nb_read_packets"`
			Disposition struct {
				AttachedPic int `json:"attached_pic"`
			} `json:"disposition"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return qualitySource{}, fmt.Errorf("parse ffprobe report: %w", err)
	}
	for _, s := range rep.Streams {
		if s.Disposition.AttachedPic != 0 {
			continue
		}
		n, err := strconv.ParseInt(s.Packets, 10, 64)
		if err != nil {
			return qualitySource{}, fmt.Errorf("ffprobe: bad packet count %q", s.Packets)
		}
		if s.Width <= 0 || s.Height <= 0 {
			return qualitySource{}, fmt.Errorf("ffprobe: video stream %d has no size", s.Index)
		}
		return qualitySource{
			abs: abs, index: s.Index, width: s.Width, height: s.Height,
			pixFmt: s.PixFmt, packets: n,
		}, nil
	}
	return qualitySource{}, fmt.Errorf("%w: no video stream", ErrNoVideo)
}

// rangeCounts returns the pictures in both ranges, which must be equal and
// not zero.
func rangeCounts(refSrc qualitySource, ref QualityInput, distSrc qualitySource, dist QualityInput) (int64, error) {
	inRange := func(what string, src qualitySource, in QualityInput) (int64, error) {
		n := max(src.packets-in.Skip, 0)
		if in.Frames == 0 {
			return n, nil
		}
		if n < in.Frames {
			return 0, fmt.Errorf("%w: the %s has %d pictures, %d after skipping %d, fewer than the %d asked for",
				ErrFrameCountMismatch, what, src.packets, n, in.Skip, in.Frames)
		}
		return in.Frames, nil
	}
	nr, err := inRange("reference", refSrc, ref)
	if err != nil {
		return 0, err
	}
	nd, err := inRange("distorted input", distSrc, dist)
	if err != nil {
		return 0, err
	}
	if nr != nd {
		return 0, &FrameCountError{Reference: nr, Distorted: nd}
	}
	if nr == 0 {
		return 0, fmt.Errorf("nothing to compare: the reference has %d pictures, the distorted input %d, and the ranges skip %d and %d",
			refSrc.packets, distSrc.packets, ref.Skip, dist.Skip)
	}
	return nr, nil
}

// samplePicks returns the positions of n pictures spread evenly over count
// (0 < n < count): the middle picture of each of n equal parts,
// floor((2k+1)·count / 2n) for k = 0..n-1.
func samplePicks(count, n int64) []int64 {
	picks := make([]int64, n)
	for k := range n {
		picks[k] = (2*k + 1) * count / (2 * n)
	}
	return picks
}

// sampleExpr is a select filter expression true for exactly the pictures
// samplePicks(count, n) returns, with select's n the position in the range.
// Picture i is picked when a part's middle falls in [i, i+1), that is when
// the number of middles below i+1, ceil((2(i+1)n - count) / 2count),
// exceeds the number below i. Constant size, constant time per picture.
func sampleExpr(count, n int64) string {
	below := func(x string) string {
		return fmt.Sprintf("ceil((2*(%s)*%d-%d)/%d)", x, n, count, 2*count)
	}
	return fmt.Sprintf("gt(%s,%s)", below("n+1"), below("n"))
}

// qualityCommand builds the ffmpeg run: both ranges trimmed by picture
// count (and sampled), dist brought to ref's size and pixel format, both
// renumbered 0, 1, 2..., then psnr and ssim, in a chain, writing their
// per-picture statistics to standard output; the pictures themselves go to
// the null muxer.
func qualityCommand(refSrc qualitySource, ref QualityInput, distSrc qualitySource, dist QualityInput, count int64, picks []int64) *ffmpeg.Stream {
	end := count // pictures to decode in each range
	if picks != nil {
		end = picks[len(picks)-1] + 1
	}
	// side trims, samples and renumbers one input. The two inputs spell
	// "no autorotation" differently on purpose: ffmpeg-go merges nodes
	// with equal arguments, and comparing a file with itself would
	// otherwise make one input feeding both sides, which it cannot build.
	side := func(src qualitySource, in QualityInput, inKw ffmpeg.KwArgs, convert func(*ffmpeg.Stream) *ffmpeg.Stream) *ffmpeg.Stream {
		s := ffmpeg.Input("file:"+src.abs, inKw).Get(strconv.Itoa(src.index)).
			Trim(ffmpeg.KwArgs{
				"start_frame": strconv.FormatInt(in.Skip, 10),
				"end_frame":   strconv.FormatInt(in.Skip+end, 10),
			})
		if picks != nil {
			s = s.Filter("select", nil, ffmpeg.KwArgs{"expr": sampleExpr(count, int64(len(picks)))})
		}
		s = convert(s)
		return s.Filter("setpts", ffmpeg.Args{"N/TB"}).Filter("settb", nil, ffmpeg.KwArgs{"expr": "1"})
	}
	// Both sides are converted to the reference's size and pixel format,
	// always: with -reinit_filter 0 below, a stream whose format changes
	// midway (new in-band parameter sets) keeps this graph, and only scale
	// copes with frames that change under it. Rebuilding the graph instead
	// would restart trim's and the stats' picture counts.
	toRef := func(s *ffmpeg.Stream) *ffmpeg.Stream {
		s = s.Filter("scale", nil, ffmpeg.KwArgs{
			"w": strconv.Itoa(refSrc.width),
			"h": strconv.Itoa(refSrc.height),
		})
		if refSrc.pixFmt != "" {
			s = s.Filter("format", nil, ffmpeg.KwArgs{"pix_fmts": refSrc.pixFmt})
		}
		return s
	}
	r := side(refSrc, ref, ffmpeg.KwArgs{"autorotate": "0", "reinit_filter": "0"}, toRef).Split()
	d := side(distSrc, dist, ffmpeg.KwArgs{"noautorotate": "", "reinit_filter": "0"}, toRef)
	// shortest: a side that runs out ends the comparison, rather than its
	// last picture being compared again (the count check then fails).
	statsKw := ffmpeg.KwArgs{"stats_file": "-", "shortest": "1"}
	psnr := ffmpeg.Filter([]*ffmpeg.Stream{d, r.Get("0")}, "psnr", nil, statsKw)
	ssim := ffmpeg.Filter([]*ffmpeg.Stream{psnr, r.Get("1")}, "ssim", nil, statsKw)
	return ssim.Output("-", ffmpeg.KwArgs{"f": "null", "fps_mode": "passthrough"})
}

// qualityStats parses the psnr and ssim filters' statistics as ffmpeg
// writes them, one line per picture and filter, in any interleaving:
//
//	n:1 mse_avg:15.18 mse_y:15.15 ... psnr_avg:36.32 psnr_y:36.33 ...
//	n:1 Y:0.829717 U:0.845362 V:0.847573 All:0.835300 (7.833070)
//
// It holds the pictures reported so far (want at most) and one line; it
// never fails a write, so ffmpeg is never blocked, and keeps the first
// error for result.
type qualityStats struct {
	want   int64
	frames []FrameQuality
	seen   []uint8 // statPSNR | statSSIM per picture
	line   []byte
	err    error
}

const (
	statPSNR = 1 << iota
	statSSIM
)

func newQualityStats(want int64) *qualityStats {
	return &qualityStats{want: want}
}

func (q *qualityStats) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && q.err == nil {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if len(q.line)+len(part) > maxStatsLine {
			q.err = fmt.Errorf("ffmpeg: a statistics line longer than %d bytes", maxStatsLine)
			break
		}
		if i < 0 {
			q.line = append(q.line, part...)
			break
		}
		line := part
		if len(q.line) > 0 {
			line = append(q.line, part...)
			q.line = q.line[:0]
		}
		q.parseLine(string(line))
		p = p[i+1:]
	}
	return n, nil
}

func (q *qualityStats) parseLine(line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	num, ok := strings.CutPrefix(fields[0], "n:")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil {
		q.err = fmt.Errorf("ffmpeg: unexpected statistics line %q", line)
		return
	}
	if n < 1 || n > q.want {
		q.err = fmt.Errorf("ffmpeg: statistics for picture %d, expected %d pictures", n, q.want)
		return
	}
	for int64(len(q.frames)) < n {
		q.frames = append(q.frames, FrameQuality{})
		q.seen = append(q.seen, 0)
	}
	value := func(key string) (float64, bool) {
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(f, key); ok {
				x, err := strconv.ParseFloat(v, 64)
				return x, err == nil && !math.IsNaN(x)
			}
		}
		return 0, false
	}
	// Only PSNR may be infinite (identical pictures), and only +Inf.
	var (
		bit      uint8
		dst      *float64
		key      string
		infinite bool
	)
	switch {
	case strings.Contains(line, " psnr_avg:"):
		bit, dst, key, infinite = statPSNR, &q.frames[n-1].PSNR, "psnr_avg:", true
	case strings.Contains(line, " All:"):
		bit, dst, key = statSSIM, &q.frames[n-1].SSIM, "All:"
	default:
		q.err = fmt.Errorf("ffmpeg: unexpected statistics line %q", line)
		return
	}
	v, ok := value(key)
	if !ok || math.IsInf(v, -1) || (math.IsInf(v, 1) && !infinite) {
		q.err = fmt.Errorf("ffmpeg: unexpected statistics line %q", line)
		return
	}
	seen := &q.seen[n-1]
	if *seen&bit != 0 {
		q.err = fmt.Errorf("ffmpeg: picture %d measured twice", n)
		return
	}
	*seen |= bit
	*dst = v
}

// result returns the measured pictures; all the expected ones must be
// there, with both measures.
func (q *qualityStats) result() ([]FrameQuality, error) {
	if q.err == nil && len(q.line) > 0 {
		q.parseLine(string(q.line))
		q.line = q.line[:0]
	}
	if q.err != nil {
		return nil, q.err
	}
	done := int64(0)
	for done < int64(len(q.seen)) && q.seen[done] == statPSNR|statSSIM {
		done++
	}
	if done < q.want {
		return nil, fmt.Errorf("%w: ffmpeg compared %d pictures of the %d expected: an input decodes to fewer pictures than it has packets",
			ErrFrameCountMismatch, done, q.want)
	}
	return q.frames, nil
}

// vmafUnavailable says why VMAF cannot be measured, wrapping ErrNoVMAF.
func vmafUnavailable(ctx context.Context, tools Tools) error {
	has, err := hasFilter(ctx, tools, "libvmaf")
	switch {
	case err != nil:
		return fmt.Errorf("%w: list ffmpeg's filters: %w", ErrNoVMAF, err)
	case !has:
		return fmt.Errorf("%w: ffmpeg has no libvmaf filter", ErrNoVMAF)
	default:
		return fmt.Errorf("%w: ffmpeg has libvmaf, but MeasureQuality does not run it yet", ErrNoVMAF)
	}
}

// hasFilter reports whether ffmpeg lists the filter name.
func hasFilter(ctx context.Context, tools Tools, name string) (bool, error) {
	args := ffmpeg.ConvertKwargsToCmdLineArgs(ffmpeg.KwArgs{"hide_banner": "", "filters": ""})
	out := proc.NewLimitedBuffer(1 << 20)
	if err := runTool(ctx, tools.ffmpeg(), args, out); err != nil {
		return false, err
	}
	// Lines look like " TS. psnr   VV->V   Calculate the PSNR ...".
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == name {
			return true, nil
		}
	}
	return false, nil
}
