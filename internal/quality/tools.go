package quality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/proc"
)

// Tools names the programs MeasureQuality runs: a name looked up in PATH,
// or a path. Empty fields mean "ffmpeg" and "ffprobe".
type Tools struct {
	FFmpeg  string
	FFprobe string
}

func (t Tools) ffmpeg() string {
	if t.FFmpeg == "" {
		return "ffmpeg"
	}
	return t.FFmpeg
}

func (t Tools) ffprobe() string {
	if t.FFprobe == "" {
		return "ffprobe"
	}
	return t.FFprobe
}

// ffmpegGlobal are the options every ffmpeg run starts with: no stdin, only
// errors logged, and the first decoding error fails the run.
var ffmpegGlobal = []string{"-nostdin", "-hide_banner", "-v", "error", "-xerror", "-y"}

// runFFmpegTo runs ffmpeg with the command line s builds, its standard
// output going to stdout (nil discards it).
func runFFmpegTo(ctx context.Context, tools Tools, s *ffmpeg.Stream, stdout io.Writer) error {
	args := append(append([]string(nil), ffmpegGlobal...), s.GetArgs()...)
	return runTool(ctx, tools.ffmpeg(), args, stdout)
}

// runTool runs a program through proc.Run; a failure carries the tail of
// its stderr on one line.
func runTool(ctx context.Context, bin string, args []string, stdout io.Writer) error {
	stderr, err := proc.Run(ctx, proc.Cmd{Name: bin, Args: args, Stdout: stdout})
	if err != nil {
		if reason := oneLine(stderr); reason != "" {
			return fmt.Errorf("%w: %s", err, reason)
		}
		return err
	}
	return nil
}

// isToolFailure reports whether err is a program that ran and failed, as
// opposed to one that could not start or was cut short by ctx.
func isToolFailure(ctx context.Context, err error) bool {
	var se *proc.StartError
	return err != nil && !errors.As(err, &se) && ctx.Err() == nil
}

// oneLine joins the non-empty lines of s with "; ".
func oneLine(s string) string {
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
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
