package quality

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
)

// source is what MeasureQuality needs to know about one input.
type source struct {
	abs           string
	index         int // the video stream's index in the file
	width, height int
	pixFmt        string // "" when ffprobe does not know
	packets       int64
}

// inputOptions are the ffprobe and ffmpeg options that restrict how in is
// read (see Input.Formats; maxPixels, when not 0, bounds the pictures its
// decoder takes), merged over base.
func inputOptions(in Input, maxPixels int64, base ffmpeg.KwArgs) ffmpeg.KwArgs {
	kw := maps.Clone(base)
	if len(in.Formats) > 0 {
		kw["protocol_whitelist"] = "file"
		kw["format_whitelist"] = strings.Join(in.Formats, ",")
	}
	if maxPixels > 0 {
		kw["max_pixels"] = strconv.FormatInt(maxPixels, 10)
	}
	return kw
}

// probeSource finds the first video stream of in's file that is not a
// cover image, and counts its packets (reading, not decoding, them; but
// ffprobe decodes a picture or two to learn the stream's format, which
// maxPixels, when not 0, bounds: bigger ones are ErrPictureSize).
func probeSource(ctx context.Context, tools Tools, in Input, maxPixels int64) (source, error) {
	abs, err := filepath.Abs(in.Path)
	if err != nil {
		return source{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return source{}, err
	}
	if !fi.Mode().IsRegular() {
		return source{}, fmt.Errorf("%w: not a regular file", ErrNotMedia)
	}
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(inputOptions(in, maxPixels, ffmpeg.KwArgs{
		"v":              "error",
		"hide_banner":    "",
		"select_streams": "v",
		"count_packets":  "",
		"show_entries":   "stream=index,width,height,pix_fmt,nb_read_packets:stream_disposition=attached_pic",
		"of":             "json",
	})), "file:"+abs)
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
	if err := fftool.ProbeJSON(ctx, tools.FFprobeBin(), args, &rep); err != nil {
		if maxPixels > 0 && fftool.IsFailure(ctx, err) && strings.Contains(err.Error(), "exceeds specified max pixel count") {
			return source{}, fmt.Errorf("%w: they have more than %d pixels", ErrPictureSize, maxPixels)
		}
		if fftool.IsFailure(ctx, err) {
			return source{}, fmt.Errorf("%w: %w", ErrNotMedia, err)
		}
		return source{}, err
	}
	for _, s := range rep.Streams {
		if s.Disposition.AttachedPic != 0 {
			continue
		}
		n, err := strconv.ParseInt(s.Packets, 10, 64)
		if err != nil {
			return source{}, fmt.Errorf("ffprobe: bad packet count %q", s.Packets)
		}
		if s.Width <= 0 || s.Height <= 0 {
			return source{}, fmt.Errorf("ffprobe: video stream %d has no size", s.Index)
		}
		return source{
			abs: abs, index: s.Index, width: s.Width, height: s.Height,
			pixFmt: s.PixFmt, packets: n,
		}, nil
	}
	return source{}, fmt.Errorf("%w: no video stream", ErrNoVideo)
}

// rangeCounts returns the pictures in both ranges, which must be equal and
// not zero.
func rangeCounts(refSrc source, ref Input, distSrc source, dist Input) (int64, error) {
	inRange := func(what string, src source, in Input) (int64, error) {
		if in.Pictures > 0 && src.packets != in.Pictures {
			return 0, fmt.Errorf("%w: the %s has %d pictures, not %d", ErrFrameCountMismatch, what, src.packets, in.Pictures)
		}
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
