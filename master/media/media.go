package media

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/quality"
)

// Errors of the media functions. They come wrapped with the file they are
// about; test them with errors.Is. A missing file wraps fs.ErrNotExist.
var (
	// ErrNotMedia: ffprobe cannot read the file as media at all. The
	// message carries ffprobe's reason. It is quality.ErrNotMedia, so that
	// MeasureQuality's errors match it too.
	ErrNotMedia = quality.ErrNotMedia

	// ErrNoVideo: the file is media but not a video: no video stream (audio
	// only, or only a cover image), a video stream without frames, or a
	// still image (one frame read by an image demuxer, such as a PNG). It
	// is quality.ErrNoVideo.
	ErrNoVideo = quality.ErrNoVideo

	// ErrSplitMismatch: the chunks Split wrote do not add up to the source:
	// their frame counts differ from the source's, or a chunk does not start
	// on one of the source's keyframes.
	ErrSplitMismatch = errors.New("chunks do not match the source")

	// ErrIncompatible: the output file's container cannot be written (an
	// unknown extension) or cannot carry the encoded video codec.
	ErrIncompatible = errors.New("incompatible output")
)

// Tools names the programs the media functions run (see fftool.Tools).
type Tools = fftool.Tools

// SourceInfo is what Probe learnt about a source video. Times are seconds.
type SourceInfo struct {
	// Path is the file's absolute path.
	Path string
	// FormatName is the demuxer's name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
	FormatName string
	// StartTime is the earliest start of any stream, the origin ffmpeg
	// measures from; it may be negative (Opus pre-skip).
	StartTime float64
	// Duration is the container's duration; 0 when unknown.
	Duration float64
	// Size is the file size in bytes.
	Size int64
	// Video is the video stream a player shows: the default-flagged one,
	// else the largest, never a cover image.
	Video VideoStream
	// Audio lists the audio streams in file order.
	Audio []StreamInfo
	// Other lists subtitle, data and attachment streams, and further video
	// streams (cover images included), in file order. Only subtitles are
	// carried into the output.
	Other []StreamInfo
	// Warnings say what the decode found that the output cannot show as
	// the source does (a pixel format or aspect that changes midway), and
	// the damage ffmpeg concealed.
	Warnings []string
	// OneThread: the video is damaged, so its pictures were decoded, and
	// are decoded wherever they are compared, on one thread: a
	// frame-threaded decoder conceals damage differently from run to run.
	OneThread bool

	// packets are the video's packets in file order (timestamps and
	// keyframes) and pictures its decoded pictures, for Split and Verify;
	// nil when the SourceInfo was not made by Probe (they scan again).
	packets  *packetScan
	pictures *pictureScan
}

// StreamInfo describes one stream of a source.
type StreamInfo struct {
	// Index is the stream's index in the file (ffmpeg's 0:Index).
	Index int
	// Type is ffprobe's codec_type: "video", "audio", "subtitle", "data",
	// "attachment".
	Type string
	// Codec is ffprobe's codec_name, e.g. "aac"; "" when unknown.
	Codec string
	// StartTime is the stream's first timestamp; 0 when unknown.
	StartTime float64
	// Channels and SampleRate are set for audio streams.
	Channels   int
	SampleRate int
	// Language is the stream's language tag, "" when none.
	Language string
	// Program is the id of the programme the stream belongs to (a
	// broadcast transport stream's); 0 when the file has none.
	Program int
	// Timecode is the stream's timecode tag: a timecode track's start
	// (MOV tmcd); "" when none.
	Timecode string
}

// VideoStream describes the video stream Probe picked.
type VideoStream struct {
	StreamInfo
	Width, Height int
	// FrameRate is ffprobe's r_frame_rate, e.g. "30000/1001";
	// AvgFrameRate its avg_frame_rate.
	FrameRate    string
	AvgFrameRate string
	// FPS is AvgFrameRate as a number, or FrameRate when the average is
	// unknown; 0 when neither is known.
	FPS float64
	// TimeBase is the stream's time base, e.g. "1/15360".
	TimeBase string
	// PixFmt is the decoded pixel format, e.g. "yuv420p".
	PixFmt string
	// Frames is the number of pictures, counted by decoding the stream
	// from start to end as ffmpeg plays it (not the container's count,
	// which AVI and MPEG-PS files often lack or get wrong).
	Frames int64
	// Packets is the number of video packets; Keyframes of them are
	// flagged as keyframes.
	Packets   int64
	Keyframes int
	// Duration runs from the first picture's start to the last picture's
	// end, from the decoded timestamps (the container's duration is not
	// trusted); 0 when they are missing.
	Duration float64
}

// FrameDuration returns 1/FPS in seconds, or 0 when the rate is unknown.
func (v VideoStream) FrameDuration() float64 {
	if v.FPS <= 0 {
		return 0
	}
	return 1 / v.FPS
}

// Probe reads the source at path with ffprobe: its container, streams, and,
// by reading every video packet (without decoding), the exact frame and
// keyframe counts.
//
// Errors: a missing file wraps fs.ErrNotExist; a file ffprobe cannot read,
// or no regular file at all, wraps ErrNotMedia with ffprobe's reason; a file without a usable video
// stream (audio only, a cover image only, a still image such as a PNG or
// JPEG, or a video stream without frames) wraps ErrNoVideo. ffprobe that
// cannot be started gives a *proc.StartError; an ended ctx an error wrapping
// ctx.Err().
func Probe(ctx context.Context, tools Tools, path string) (SourceInfo, error) {
	p, err := StartProbe(ctx, tools, path)
	if err != nil {
		return SourceInfo{}, err
	}
	return p.Wait(ctx)
}

// StartProbe is Probe in two steps: it reads the file's streams and the
// video's packets (ffprobe, reading: quick), and starts decoding the
// video's pictures, the ground truth, in the background. Wait gives what
// Probe gives; SplitLive cuts the source while its pictures arrive. The
// decode runs under ctx.
func StartProbe(ctx context.Context, tools Tools, path string) (*Probing, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("probe %s: %w: not a regular file", path, ErrNotMedia)
	}
	rep, err := probeReport(ctx, tools, abs, nil)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	info, err := rep.sourceInfo(abs)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	info.Size = fi.Size()

	scan, err := scanPackets(ctx, tools, abs, info.Video.Index, scanKeys|scanPTS)
	if err != nil {
		return nil, fmt.Errorf("probe %s: read video packets: %w", path, err)
	}
	if scan.packets == 0 {
		return nil, fmt.Errorf("probe %s: %w: the video stream has no frames", path, ErrNoVideo)
	}
	info.packets = scan
	p := &Probing{path: path, info: info, grew: make(chan struct{}), done: make(chan struct{})}
	go p.decode(ctx, tools)
	return p, nil
}

// finish completes info (its packets scanned) with its decoded pictures,
// or says why the video cannot be encoded.
func finish(path string, info SourceInfo, pics *pictureScan, err error) (SourceInfo, error) {
	scan := info.packets
	v := &info.Video
	if errors.Is(err, ErrNotMedia) { // ffprobe read it: the pictures are what fails
		return SourceInfo{}, fmt.Errorf("probe %s: %w: the %s video stream has %d packets but no picture ffmpeg can decode (%s)",
			path, ErrNoVideo, v.Codec, scan.packets, strings.TrimPrefix(err.Error(), ErrNotMedia.Error()+": "))
	}
	if errors.Is(err, ErrSizeChange) {
		return SourceInfo{}, fmt.Errorf("probe %s: %w", path, err)
	}
	if err != nil {
		return SourceInfo{}, fmt.Errorf("probe %s: decode the video: %w", path, err)
	}
	switch len(pics.pictures) {
	case 0:
		return SourceInfo{}, fmt.Errorf("probe %s: %w: the %s video stream has %d packets but no picture ffmpeg can decode", path, ErrNoVideo, v.Codec, scan.packets)
	case 1:
		if stillImage(info.FormatName) {
			return SourceInfo{}, fmt.Errorf("probe %s: %w: a still image (%s, one frame)", path, ErrNoVideo, v.Codec)
		}
	}
	v.Frames = int64(len(pics.pictures))
	v.Packets = scan.packets
	v.Keyframes = scan.keyframes
	info.Warnings = pics.log.warnings()
	if repair, ok := info.repair(pics); ok {
		// The first picture a decoder shows, not ffprobe's first packet
		// (a capture cut mid-GOP starts with packets nothing can decode,
		// an open GOP with leading pictures before its keyframe), where
		// the repair placed it: what the video is placed by against the
		// audio.
		v.StartTime = pics.timeBase.seconds(repair.pictures[0].pts)
		v.Duration = repair.seconds(pics.timeBase, v.FPS)
		info.Warnings = append(info.Warnings, repair.warnings(pics.timeBase)...)
		if v.FPS <= 0 && v.Duration > 0 {
			v.FPS = float64(v.Frames) / v.Duration
		}
	} else {
		// Shown one frame apart: what the split and Verify give it.
		v.Duration = float64(v.Frames) / untimedFPS(v.FPS)
		if !slices.ContainsFunc(pics.pictures, func(p picture) bool { return p.pts == noPTS }) {
			info.Warnings = append(info.Warnings, fmt.Sprintf(
				"the video's timestamps repeat or go back at more than %d pictures: they are not used, and the pictures are shown one frame apart at %g fps (%.3fs)",
				maxRepairs(len(pics.pictures)), untimedFPS(v.FPS), v.Duration))
		}
	}
	info.pictures = pics
	return info, nil
}

// ffprobe's JSON report, the subset used. ffprobe prints most numbers as
// strings and omits what it does not know.
type ffprobeReport struct {
	Format struct {
		FormatName string `json:"format_name"`
		StartTime  string `json:"start_time"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Streams  []ffprobeStream `json:"streams"`
	Programs []struct {
		ProgramID int `json:"program_id"`
		Streams   []struct {
			Index int `json:"index"`
		} `json:"streams"`
	} `json:"programs"`
}

type ffprobeStream struct {
	Index        int    `json:"index"`
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	RFrameRate   string `json:"r_frame_rate"`
	AvgFrameRate string `json:"avg_frame_rate"`
	TimeBase     string `json:"time_base"`
	PixFmt       string `json:"pix_fmt"`
	StartTime    string `json:"start_time"`
	Channels     int    `json:"channels"`
	SampleRate   string `json:"sample_rate"`
	Disposition  struct {
		AttachedPic int `json:"attached_pic"`
		Default     int `json:"default"`
	} `json:"disposition"`
	CodecTag string `json:"codec_tag_string"`
	Tags     struct {
		Language string `json:"language"`
		Timecode string `json:"timecode"`
	} `json:"tags"`
}

// probeReport runs ffprobe for the container and stream headers of the
// local file at abs, read with the input options bound (encodedBound for
// a file made of shards; nil for none). A run that fails (as opposed to one
// that cannot start or is cancelled) wraps ErrNotMedia.
func probeReport(ctx context.Context, tools Tools, abs string, bound ffmpeg.KwArgs) (ffprobeReport, error) {
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{bound, {
		"v":             "error",
		"hide_banner":   "",
		"show_format":   "",
		"show_streams":  "",
		"show_programs": "",
		"of":            "json",
	}})), "file:"+abs)
	var rep ffprobeReport
	if err := fftool.ProbeJSON(ctx, tools.FFprobeBin(), args, &rep); err != nil {
		if fftool.IsFailure(ctx, err) {
			return ffprobeReport{}, fmt.Errorf("%w: %w", ErrNotMedia, err)
		}
		return ffprobeReport{}, err
	}
	if rep.Format.FormatName == "" {
		return ffprobeReport{}, fmt.Errorf("%w: ffprobe found no format", ErrNotMedia)
	}
	return rep, nil
}

// sourceInfo sorts the report's streams; it fails with ErrNoVideo when there
// is no video stream other than cover images.
// shownVideo is the video stream a player shows, of n streams that at
// describes (a video stream not a cover, its default disposition, its
// pixels): flagged default if any is, the largest among those, the first
// among equals; -1 for none. The video encoded and the one whose
// presentation is kept.
func shownVideo(n int, at func(i int) (video bool, isDefault, pixels int)) int {
	pick, pickDefault, pickPixels := -1, 0, 0
	for i := range n {
		video, isDefault, pixels := at(i)
		if video && (pick < 0 || isDefault > pickDefault || isDefault == pickDefault && pixels > pickPixels) {
			pick, pickDefault, pickPixels = i, isDefault, pixels
		}
	}
	return pick
}

// fourCC is a stream's codec tag (ffprobe's codec_tag_string) when it is
// four letters or digits, as "tmcd" is: the name of a stream no decoder
// knows; "" otherwise.
func fourCC(tag string) string {
	if len(tag) != 4 || strings.IndexFunc(tag, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return ""
	}
	return tag
}

func (r ffprobeReport) sourceInfo(abs string) (SourceInfo, error) {
	info := SourceInfo{
		Path:       abs,
		FormatName: r.Format.FormatName,
		StartTime:  parseSeconds(r.Format.StartTime),
		Duration:   parseSeconds(r.Format.Duration),
	}
	program := map[int]int{} // stream index → programme id, the first that lists it
	for _, p := range r.Programs {
		for _, s := range p.Streams {
			if _, ok := program[s.Index]; !ok {
				program[s.Index] = p.ProgramID
			}
		}
	}
	pick := shownVideo(len(r.Streams), func(i int) (bool, int, int) {
		s := r.Streams[i]
		return s.CodecType == "video" && s.Disposition.AttachedPic == 0, s.Disposition.Default, s.Width * s.Height
	})
	found := false
	for i, s := range r.Streams {
		si := StreamInfo{
			Index:     s.Index,
			Type:      s.CodecType,
			Codec:     cmp.Or(s.CodecName, fourCC(s.CodecTag)),
			StartTime: parseSeconds(s.StartTime),
			Channels:  s.Channels,
			Language:  s.Tags.Language,
			Program:   program[s.Index],
			Timecode:  s.Tags.Timecode,
		}
		si.SampleRate, _ = strconv.Atoi(s.SampleRate)
		switch {
		case i == pick:
			found = true
			info.Video = VideoStream{
				StreamInfo:   si,
				Width:        s.Width,
				Height:       s.Height,
				FrameRate:    s.RFrameRate,
				AvgFrameRate: s.AvgFrameRate,
				TimeBase:     s.TimeBase,
				PixFmt:       s.PixFmt,
			}
			fps := parseRate(s.AvgFrameRate)
			if fps <= 0 {
				fps = parseRate(s.RFrameRate)
			}
			info.Video.FPS = fps
		case s.CodecType == "audio":
			info.Audio = append(info.Audio, si)
		default:
			info.Other = append(info.Other, si)
		}
	}
	if !found {
		if len(info.Audio) > 0 {
			return SourceInfo{}, fmt.Errorf("%w: no video stream (audio only)", ErrNoVideo)
		}
		return SourceInfo{}, fmt.Errorf("%w: no video stream", ErrNoVideo)
	}
	return info, nil
}

// ContainerFor returns the ffmpeg muxer for an output file, by extension:
// .mkv gives "matroska", .mp4 and .m4v "mp4", .mov "mov", .webm "webm".
// Any other extension wraps ErrIncompatible.
func ContainerFor(outPath string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(outPath)); ext {
	case ".mkv":
		return "matroska", nil
	case ".mp4", ".m4v":
		return "mp4", nil
	case ".mov":
		return "mov", nil
	case ".webm":
		return "webm", nil
	default:
		return "", fmt.Errorf("%w: output %s: unknown extension %q (want .mkv, .mp4, .m4v, .mov or .webm)", ErrIncompatible, outPath, ext)
	}
}

// videoCodecsFor lists the video codecs each container takes, by ffprobe
// codec name. Matroska takes any.
var videoCodecsFor = map[string][]string{
	"mp4":  {"h264", "hevc", "av1", "vp9", "mpeg4"},
	"mov":  {"h264", "hevc", "mpeg4"},
	"webm": {"vp8", "vp9", "av1"},
}

// CheckCompatible reports whether container (as ContainerFor returns it)
// can carry video in videoCodec, a codec name ("h264", "vp9") or a worker
// encoder name ("libx264", "libvpx-vp9"). WebM takes only VP8, VP9 and AV1;
// MOV neither VP9 nor AV1; Matroska anything. Call it before encoding: an
// incompatible pair wraps ErrIncompatible. Audio and subtitles never make
// an output incompatible, since ExtractSideStreams plans to convert or drop
// what the container cannot carry.
func CheckCompatible(container, videoCodec string) error {
	codec := videoCodec
	if e, ok := fftool.LookupVideoEncoder(videoCodec); ok {
		codec = e.Codec
	}
	if container == "matroska" {
		return nil
	}
	allowed, ok := videoCodecsFor[container]
	if !ok {
		return fmt.Errorf("%w: unknown container %q", ErrIncompatible, container)
	}
	for _, c := range allowed {
		if c == codec {
			return nil
		}
	}
	return fmt.Errorf("%w: %s cannot carry %s video (it takes %s)", ErrIncompatible, container, videoCodec, strings.Join(allowed, ", "))
}

// sourceGlobal are the options every ffmpeg run starts with: no stdin, no
// banner, errors only, overwrite the (always fresh, temporary) output. As
// they are, for the runs whose output is compared picture by picture: the
// cuts of the source and their proofs (the truth decode's are
// decodeLogArgs). A damaged source (a capture's dropped packets, two
// transport streams run together) then decodes the way ffmpeg conceals it,
// in the truth decode as in the chunks, and what a run drops or decodes
// otherwise fails that comparison.
var sourceGlobal = []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}

// ffmpegGlobal are sourceGlobal and -xerror, for the runs on files of the
// job's own (the join of the shards): without it ffmpeg logs an input it
// cannot read (a broken shard in a concat list) as an error, treats it as
// the end of input, and exits 0 with a truncated output.
var ffmpegGlobal = append(slices.Clone(sourceGlobal), "-xerror")

// runFFmpeg runs ffmpeg with the command line s builds (ffmpegGlobal).
func runFFmpeg(ctx context.Context, tools Tools, s *ffmpeg.Stream) error {
	return fftool.Run(ctx, tools.FFmpegBin(), append(slices.Clone(ffmpegGlobal), s.GetArgs()...), nil)
}

// runSourceFFmpeg runs ffmpeg on a command line whose output is compared
// with pictures (sourceGlobal).
func runSourceFFmpeg(ctx context.Context, tools Tools, s *ffmpeg.Stream) error {
	return fftool.Run(ctx, tools.FFmpegBin(), append(slices.Clone(sourceGlobal), s.GetArgs()...), nil)
}

// parseSeconds reads an ffprobe time; absent or "N/A" gives 0.
func parseSeconds(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// parseRate reads a rate such as "30000/1001"; unknown ("0/0") gives 0.
func parseRate(s string) float64 {
	r, ok := parseRational(s)
	if !ok || r.num <= 0 {
		return 0
	}
	return float64(r.num) / float64(r.den)
}

// rational is a time base or rate, num/den with den > 0.
type rational struct{ num, den int64 }

func parseRational(s string) (rational, bool) {
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return rational{}, false
	}
	num, err1 := strconv.ParseInt(n, 10, 64)
	den, err2 := strconv.ParseInt(d, 10, 64)
	if err1 != nil || err2 != nil || den <= 0 {
		return rational{}, false
	}
	return rational{num, den}, true
}

// seconds converts ticks of time base r to seconds.
func (r rational) seconds(ticks int64) float64 {
	return float64(ticks) * float64(r.num) / float64(r.den)
}

// micros converts ticks of time base r to whole microseconds, rounded to
// the nearest, exactly (no floating point).
func (r rational) micros(ticks int64) int64 {
	n := new(big.Int).Mul(big.NewInt(ticks), big.NewInt(r.num))
	n.Mul(n, big.NewInt(1_000_000))
	d := big.NewInt(r.den)
	// Round half away from zero: (2n + sign*d) / 2d, truncated.
	n.Mul(n, big.NewInt(2))
	if n.Sign() >= 0 {
		n.Add(n, d)
	} else {
		n.Sub(n, d)
	}
	n.Quo(n, d.Mul(d, big.NewInt(2)))
	return n.Int64()
}

// stillImage reports whether formatName, a demuxer's name list, is one of
// ffmpeg's image readers (image2, png_pipe, jpeg_pipe, ...): a picture, not
// a video, when it holds one frame. A video container holding one picture
// (a cover shown over an audio track, a one-frame clip) is a video.
func stillImage(formatName string) bool {
	for name := range strings.SplitSeq(formatName, ",") {
		if name == "image2" || strings.HasSuffix(name, "_pipe") {
			return true
		}
	}
	return false
}
