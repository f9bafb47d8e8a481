package encode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/proc"
)

// PixelLimits bound what a chunk may decode to, against decompression
// bombs: a few hundred KB of H.264 can hold pictures of 8192x8192 (67 Mpx,
// 100 MB each decoded) or millions of pictures. Zero fields mean no limit.
//
// Before an encode starts, Encode probes the spooled input (ffprobe, with
// the encode's protocol and format whitelists, reading every packet of the
// first video stream and decoding at most what ffprobe needs to know the
// stream's parameters) and refuses it with ErrTooManyPixels when its first
// video stream, the one encoded, exceeds a limit. A container can lie about
// the frame rate and a bitstream can change its picture size after the
// first picture, so the probe is not the only guard: FramePixels is also
// given to every decoder of the input (ffmpeg's -max_pixels), which then
// refuses any larger picture whatever the headers said, and an encode whose
// decoder refused one fails with ErrTooManyPixels rather than store a shard
// with pictures missing.
type PixelLimits struct {
	// FramePixels bounds width × height of every picture. At most
	// math.MaxInt32 (ffmpeg's own bound for -max_pixels).
	FramePixels int64
	// PixelsPerSecond bounds width × height × frame rate, the frame rate
	// being the stream's average (ffprobe's avg_frame_rate, or
	// r_frame_rate when the average is unknown); a stream whose rate is
	// unknown is bounded by ChunkPixels only.
	PixelsPerSecond int64
	// ChunkPixels bounds width × height × pictures, the pictures being the
	// stream's packets as ffprobe counts them by reading them (or the
	// container's frame count, if higher): the whole decode, whatever the
	// container says its duration or frame rate is.
	ChunkPixels int64
}

// defaultFramePixels is 4096x2160 (DCI 4K), the largest picture a worker
// decodes by default; the other default limits derive from it. An encode's
// memory grows with its pictures' size: x264 at its default preset holds
// about 200 bytes per pixel of one picture (1.9 GB at 4096x2160, 6.2 GB at
// 8192x4320, from chunks of 28 and 106 KB), so 8K is for operators who size
// their machines for it.
const defaultFramePixels int64 = 4096 * 2160

// DefaultPixelLimits are the limits a worker runs with unless told
// otherwise (DefaultFFmpegConfig): pictures up to 4096x2160 (DCI 4K; UHD 4K
// and everything smaller fit), at up to 60 frames/s, for up to a minute
// (six times the master's default segment) at that rate.
func DefaultPixelLimits() PixelLimits {
	return PixelLimits{
		FramePixels:     defaultFramePixels,
		PixelsPerSecond: defaultFramePixels * 60,
		ChunkPixels:     defaultFramePixels * 60 * 60,
	}
}

// Config keys that set the limits, for messages.
const (
	keyMaxFramePixels     = "limits.max_frame_pixels"
	keyMaxPixelsPerSecond = "limits.max_pixels_per_second"
	keyMaxChunkPixels     = "limits.max_chunk_pixels"
)

func (l PixelLimits) validate() error {
	switch {
	case l.FramePixels < 0 || l.FramePixels > math.MaxInt32:
		return fmt.Errorf("ffmpeg config: Limits.FramePixels (%s) %d: want 0 (no limit) to %d",
			keyMaxFramePixels, l.FramePixels, math.MaxInt32)
	case l.PixelsPerSecond < 0:
		return fmt.Errorf("ffmpeg config: Limits.PixelsPerSecond (%s) %d must not be negative (0: no limit)",
			keyMaxPixelsPerSecond, l.PixelsPerSecond)
	case l.ChunkPixels < 0:
		return fmt.Errorf("ffmpeg config: Limits.ChunkPixels (%s) %d must not be negative (0: no limit)",
			keyMaxChunkPixels, l.ChunkPixels)
	}
	return nil
}

func (l PixelLimits) any() bool {
	return l.FramePixels > 0 || l.PixelsPerSecond > 0 || l.ChunkPixels > 0
}

// decoderMaxPixels is the -max_pixels given to decoders for FramePixels, 0
// for none: a picture the probe found within FramePixels decodes, one
// beyond it by more than libavcodec's row rounding does not.
func (l PixelLimits) decoderMaxPixels() int64 {
	if l.FramePixels <= 0 {
		return 0
	}
	return fftool.MaxPixelsOf(l.FramePixels)
}

// maxPixelsMessage is what libavcodec logs when a picture exceeds
// -max_pixels: "Picture size 8192x8192 exceeds specified max pixel count
// 35941376, see the documentation if you wish to increase it".
var maxPixelsMessage = regexp.MustCompile(`Picture size (\d+)x(\d+) exceeds specified max pixel count`)

// refusedPicture returns the ErrTooManyPixels error for ffmpeg or ffprobe
// output (stderr) in which a decoder refused a picture for FramePixels, or
// nil when none did. during says what was running.
func (l PixelLimits) refusedPicture(stderr, during string) error {
	m := maxPixelsMessage.FindStringSubmatch(stderr)
	if m == nil {
		return nil
	}
	w, _ := strconv.ParseInt(m[1], 10, 64)
	h, _ := strconv.ParseInt(m[2], 10, 64)
	return fmt.Errorf("%w: a picture of %sx%s (%d pixels, width rounded up as the decoder does) exceeds %s %d, found %s",
		ErrTooManyPixels, m[1], m[2], w*h, keyMaxFramePixels, l.FramePixels, during)
}

// checkPixels probes the input at inPath and refuses it with
// ErrTooManyPixels when its first video stream exceeds a limit. A probe
// that fails for another reason checks nothing: ffmpeg, which reads the
// input with the same demuxers and whitelists, then fails on it with its
// own reason, and its decoders still refuse pictures beyond FramePixels. It
// returns ErrUnavailable when ffprobe cannot be started, and the context's
// error when ctx ends.
func (f *FFmpeg) checkPixels(ctx, callerCtx context.Context, inPath string) error {
	l := f.cfg.Limits
	if !l.any() {
		return nil
	}
	kw := ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{f.inputOptions(), {
		"v":              "error",
		"hide_banner":    "",
		"select_streams": "v:0", // the stream the encode maps; the report stays small
		"count_packets":  "",
		"show_entries": "format=format_name,duration:" +
			"stream=index,codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,nb_read_packets",
		"of": "json",
	}})
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(kw), "file:"+inPath)
	stdout := proc.NewLimitedBuffer(fftool.MaxProbeReport)
	stderr, err := proc.Run(ctx, proc.Cmd{Name: f.cfg.FFprobe, Args: args, Stdout: stdout})
	if rerr := l.refusedPicture(stderr, "while probing the input"); rerr != nil {
		return rerr
	}
	var se *proc.StartError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: probe input: %w", ErrUnavailable, err)
	case err != nil && ctx.Err() != nil:
		return f.timeout(callerCtx, ctx, fmt.Errorf("probe input: %w", err))
	case err != nil:
		f.log.Debug("probe input for pixel limits", "err", err, "stderr", tidyReason(stderr, inPath))
		return nil
	case stdout.Overflowed():
		f.log.Debug("probe input for pixel limits: report too large")
		return nil
	}
	info, err := parseProbe(stdout.Bytes())
	if err != nil {
		f.log.Debug("probe input for pixel limits", "err", err)
		return nil
	}
	video, ok := info.FirstStream("video")
	if !ok {
		return nil // nothing to encode: ffmpeg says so
	}
	return l.check(video)
}

// check refuses a video stream beyond the limits; the message has the
// measured and the allowed numbers and the config key.
func (l PixelLimits) check(v StreamInfo) error {
	frame := int64(v.Width) * int64(v.Height)
	size := fmt.Sprintf("%dx%d", v.Width, v.Height)
	if l.FramePixels > 0 && frame > l.FramePixels {
		return fmt.Errorf("%w: pictures of %s are %d pixels; %s is %d",
			ErrTooManyPixels, size, frame, keyMaxFramePixels, l.FramePixels)
	}
	if rate, text, ok := v.frameRate(); l.PixelsPerSecond > 0 && ok {
		perSecond := new(big.Rat).Mul(new(big.Rat).SetInt64(frame), rate)
		if perSecond.Cmp(new(big.Rat).SetInt64(l.PixelsPerSecond)) > 0 {
			return fmt.Errorf("%w: %s at %s frames/s is %s pixels/s; %s is %d",
				ErrTooManyPixels, size, text, perSecond.FloatString(0), keyMaxPixelsPerSecond, l.PixelsPerSecond)
		}
	}
	pictures := max(v.Frames, v.Packets)
	if l.ChunkPixels > 0 && pictures > 0 && frame > 0 {
		// frame × pictures can exceed int64 only far beyond any limit.
		if pictures > l.ChunkPixels/frame {
			total := new(big.Int).Mul(big.NewInt(frame), big.NewInt(pictures))
			return fmt.Errorf("%w: %d pictures of %s are %s pixels; %s is %d",
				ErrTooManyPixels, pictures, size, total, keyMaxChunkPixels, l.ChunkPixels)
		}
	}
	return nil
}

// frameRate returns the stream's average frame rate (or r_frame_rate when
// the average is unknown) and its text; ok is false when neither is known.
func (s StreamInfo) frameRate() (rate *big.Rat, text string, ok bool) {
	for _, t := range []string{s.AvgFrameRate, s.RFrameRate} {
		r, ok := new(big.Rat).SetString(t)
		if ok && r.Sign() > 0 {
			return r, r.FloatString(3), true
		}
	}
	return nil, "", false
}
