package quality

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/proc"
)

// Tools names the programs MeasureQuality runs (see fftool.Tools).
type Tools = fftool.Tools

// ffmpegGlobal are the options every ffmpeg run starts with: no stdin;
// errors logged as -v error would, and warnings and information besides
// (showinfo's, see command), each tagged with its level, for damageLog. Not -xerror: a reference cut from a damaged
// source (a capture's dropped packets) decodes the way ffmpeg conceals it,
// as the encode's own input did. The distorted input must decode cleanly,
// though: damageLog fails the run when ffmpeg reports damage in it, and a
// run that stops early or drops pictures is caught by the count of
// measured pictures (ErrFrameCountMismatch).
var ffmpegGlobal = []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info", "-y"}

// runFFmpegTo runs ffmpeg with the command line s builds, its standard
// output going to stdout (nil discards it); log reads its log (nil keeps
// the errors).
func runFFmpegTo(ctx context.Context, tools Tools, s *ffmpeg.Stream, stdout io.Writer, log *damageLog) error {
	args := append(append([]string(nil), ffmpegGlobal...), s.GetArgs()...)
	if log == nil {
		log = &damageLog{}
	}
	log.inputs(args)
	return fftool.RunLogged(ctx, tools.FFmpegBin(), args, stdout, log.line)
}

// damageLog reads the log of a run (ffmpegGlobal) for damage ffmpeg
// reports in one input, url, and concealed: a corrupt packet or picture,
// or a packet it could not decode at all. It keeps errors for a failure's
// message.
type damageLog struct {
	url    string // the input watched, as on the command line
	index  string // "#N:" of that input, once inputs has seen the arguments
	damage string // the first report, "" for none
	// fields are the field modes of the distorted pictures measured, in
	// order, as showinfo logs them (see Frame.Fields); times their and the
	// reference pictures' times, NaN for none (Frame.PTS, RefPTS).
	fields              []byte
	distTimes, refTimes []float64
}

// inputs finds the watched input's number in args.
func (l *damageLog) inputs(args []string) {
	n := 0
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "-i" {
			continue
		}
		if args[i+1] == l.url && l.url != "" {
			l.index = "#" + strconv.Itoa(n) + ":"
			return
		}
		n++
	}
}

func (l *damageLog) line(b []byte) []byte {
	component, level, msg := fftool.SplitLogLine(b)
	if l.url != "" && l.damage == "" {
		switch {
		case strings.HasPrefix(msg, l.url+": corrupt decoded frame"), strings.HasPrefix(msg, l.url+": corrupt input packet"):
			l.damage = msg
		case l.index != "" && strings.HasPrefix(msg, "Error while decoding stream "+l.index):
			l.damage = msg
		}
	}
	switch level {
	case "info":
		if !strings.HasPrefix(msg, "n:") {
			break
		}
		t, ok := fftool.ShownTime(msg)
		if !ok {
			t = math.NaN()
		}
		switch component {
		case "showinfo@" + distSide:
			l.fields = append(l.fields, fftool.ShownFieldMode(msg))
			l.distTimes = append(l.distTimes, t)
		case "showinfo@" + refSide:
			l.refTimes = append(l.refTimes, t)
		}
	case "error", "fatal", "panic":
		if component != "" { // as -v error prints it
			return []byte("[" + component + "] " + msg)
		}
		return []byte(msg)
	}
	return nil
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
