// Package fftool runs ffmpeg and ffprobe for the master's media functions
// and the quality measure: under a context (through internal/proc), with a
// failure carrying the program's stderr on one line.
package fftool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/videoshard/videoshard/internal/proc"
)

// Run runs bin with args, its standard output going to stdout (nil
// discards it); a failure carries the tail of its stderr on one line.
func Run(ctx context.Context, bin string, args []string, stdout io.Writer) error {
	return RunLogged(ctx, bin, args, stdout, nil)
}

// RunLogged is Run with each line of stderr handed to line as it comes;
// what line returns is kept for a failure's message (proc.Cmd.StderrLine).
// A nil line keeps all.
func RunLogged(ctx context.Context, bin string, args []string, stdout io.Writer, line func([]byte) []byte) error {
	stderr, err := proc.Run(ctx, proc.Cmd{Name: bin, Args: args, Stdout: stdout, StderrLine: line})
	if err != nil {
		if reason := OneLine(stderr); reason != "" {
			return fmt.Errorf("%w: %s", err, reason)
		}
		return err
	}
	return nil
}

// IsFailure reports whether err is a program that ran and failed, as
// opposed to one that could not start or was cut short by ctx.
func IsFailure(ctx context.Context, err error) bool {
	var se *proc.StartError
	return err != nil && !errors.As(err, &se) && ctx.Err() == nil
}

// OneLine joins the non-empty lines of s with "; ".
func OneLine(s string) string {
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
}

// Tools names the programs: a name looked up in PATH, or a path. Empty
// fields mean "ffmpeg" and "ffprobe".
type Tools struct {
	FFmpeg  string
	FFprobe string
}

// FFmpegBin is the ffmpeg to run.
func (t Tools) FFmpegBin() string {
	if t.FFmpeg == "" {
		return "ffmpeg"
	}
	return t.FFmpeg
}

// FFprobeBin is the ffprobe to run.
func (t Tools) FFprobeBin() string {
	if t.FFprobe == "" {
		return "ffprobe"
	}
	return t.FFprobe
}

// MaxProbeReport bounds the JSON ProbeJSON reads; real reports are a few
// KiB, so a larger one is refused rather than held in memory.
const MaxProbeReport = 4 << 20

// ProbeJSON runs the ffprobe bin with args (which ask for JSON) and
// decodes its report into v. A failure is Run's (IsFailure tells a file
// ffprobe refused from a program that could not run); a report over
// MaxProbeReport or that is not JSON is an error of its own.
func ProbeJSON(ctx context.Context, bin string, args []string, v any) error {
	out := proc.NewLimitedBuffer(MaxProbeReport)
	if err := Run(ctx, bin, args, out); err != nil {
		return err
	}
	if out.Overflowed() {
		return fmt.Errorf("ffprobe: report larger than %d bytes", MaxProbeReport)
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return fmt.Errorf("parse ffprobe report: %w", err)
	}
	return nil
}

// SplitLogLine splits a line ffmpeg logged with -loglevel level+...,
// "[h264 @ 0x55..] [error] msg" or "[warning] msg", into the component
// ("h264"; "" when none), the level and the message.
func SplitLogLine(b []byte) (component, level, msg string) {
	s := string(bytes.TrimSpace(b))
	if strings.HasPrefix(s, "[") {
		if end := strings.Index(s, "] ["); end > 0 {
			component, s = s[1:end], s[end+2:]
			if at := strings.Index(component, " @ "); at >= 0 {
				component = component[:at]
			}
		}
	}
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			return component, s[1:end], strings.TrimSpace(s[end+1:])
		}
	}
	return component, "", s
}

// MaxPixels is the -max_pixels that lets a decoder take pictures of
// width x height and none much bigger: libavcodec checks each picture's
// width rounded up to its row alignment (up to 64 bytes' worth of pixels)
// times its height, so a bound of exactly width*height refuses a
// 160x120 picture.
func MaxPixels(width, height int) int64 {
	return min(int64(width+63)/64*64*int64(height), math.MaxInt32)
}

// MaxPixelsOf is MaxPixels for pictures of any shape holding at most
// pixels: rounding each row up to 64 adds at most 1/64 for rows of 64 or
// more pixels.
func MaxPixelsOf(pixels int64) int64 {
	return min(pixels+pixels/64, math.MaxInt32)
}
