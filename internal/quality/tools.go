package quality

import (
	"context"
	"fmt"
	"io"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/proc"
)

// Tools names the programs MeasureQuality runs (see fftool.Tools).
type Tools = fftool.Tools

// ffmpegGlobal are the options every ffmpeg run starts with: no stdin, only
// errors logged. Not -xerror: a reference cut from a damaged source (a
// capture's dropped packets) decodes the way ffmpeg conceals it, as the
// encode's own input did, and a run that stops early or drops pictures is
// still caught, by the count of measured pictures (ErrFrameCountMismatch).
var ffmpegGlobal = []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}

// runFFmpegTo runs ffmpeg with the command line s builds, its standard
// output going to stdout (nil discards it).
func runFFmpegTo(ctx context.Context, tools Tools, s *ffmpeg.Stream, stdout io.Writer) error {
	args := append(append([]string(nil), ffmpegGlobal...), s.GetArgs()...)
	return fftool.Run(ctx, tools.FFmpegBin(), args, stdout)
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
	if err := fftool.Run(ctx, tools.FFmpegBin(), args, out); err != nil {
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
