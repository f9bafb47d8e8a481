package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/framehash"
)

// A picture is one decoded picture of a video stream: its presentation
// timestamp (noPTS when the decoder gave none) and duration in the scan's
// time base, and a hash of its pixels.
type picture struct {
	pts, dur int64
	hash     framehash.Hash
}

// pictureScan is the result of decoding a video stream from start to end:
// its pictures in presentation (decoder output) order.
type pictureScan struct {
	timeBase rational
	pictures []picture
	line     []byte
	err      error
	// log is what the decode logged, when it came from one.
	log decodeLog
}

// decodeInput are the input options of every decode whose pictures are
// compared: timestamps kept as the demuxer gives them, and pictures as
// coded (a display matrix is carried as metadata, not applied). Where the
// container has none (AVI, MPEG-PS, raw streams), the pictures are shown
// when the decoder places them, as ffmpeg and players do: +genpts would
// guess them in file order before the decoder's reordering is known, one
// or two frames off for H.264 with B-frames in AVI.
func decodeInput() ffmpeg.KwArgs {
	return ffmpeg.KwArgs{"copyts": "", "autorotate": "0"}
}

// scanPictures decodes stream index of the local file at abs with ffmpeg
// and hashes every picture (murmur3 over the decoded pixels, in the
// decoder's pixel format), in output order, with timestamps in the stream's
// own time base. It is the ground truth the master compares chunks with:
// a chunk is right when it decodes to the same hashes.
//
// The hashes are of pictures in one pixel format: pixFmt, or, when it is
// empty, the first picture's. A stream whose format changes midway (new
// in-band parameter sets) has its later pictures converted to it, so a
// chunk of such a stream is compared in the source's format (pixFmt set to
// it), through the same conversion.
//
// Decoding errors ffmpeg conceals are not errors here: the pictures are
// what ffmpeg would show. A file ffmpeg cannot decode at all wraps
// ErrNotMedia with ffmpeg's reason.
func scanPictures(ctx context.Context, tools Tools, abs string, index int, pixFmt string) (*pictureScan, error) {
	return decodePictures(ctx, tools, abs, index, pixFmt, 0, nil)
}

// firstPictureTime is when the first picture ffmpeg can decode from stream
// index of abs is shown, in seconds on the file's own timeline: where a
// player starts the video (ffprobe's start_time is the first packet's, or
// 0 when the video's first packet lies beyond what it probes). ok is false
// when the picture has no timestamp. bound are input options that restrict
// how abs is read (encodedBound), nil for none.
func firstPictureTime(ctx context.Context, tools Tools, abs string, index int, bound ffmpeg.KwArgs) (t float64, ok bool, err error) {
	s, err := decodePictures(ctx, tools, abs, index, "", 1, bound)
	if err != nil || len(s.pictures) == 0 || s.pictures[0].pts == noPTS {
		return 0, false, err
	}
	return s.timeBase.seconds(s.pictures[0].pts), true, nil
}

// oneThread are the input options of a decode on one thread (see
// SourceInfo.OneThread).
var oneThread = ffmpeg.KwArgs{"threads": "1"}

// decodePictures is scanPictures, stopping after limit pictures when
// limit is positive, with the input options in besides decodeInput's.
func decodePictures(ctx context.Context, tools Tools, abs string, index int, pixFmt string, limit int, in ffmpeg.KwArgs) (*pictureScan, error) {
	s := &pictureScan{}
	if err := decodePicturesTo(ctx, tools, abs, index, pixFmt, limit, in, s, &s.log); err != nil {
		return nil, err
	}
	return s, s.finish()
}

// decodePicturesTo runs decodePictures' ffmpeg with its framehash output
// going to w as it comes, and its log read into log; with the input
// options extra besides decodeInput's (oneThread's, encodedBound's).
// Pictures that change size midway end the decode as soon as it sees them:
// ErrSizeChange.
func decodePicturesTo(ctx context.Context, tools Tools, abs string, index int, pixFmt string, limit int, extra ffmpeg.KwArgs,
	w io.Writer, log *decodeLog) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	log.onSizeChange = stop
	in := ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{decodeInput(), extra})
	// showinfo logs every picture as the decoder gave it (decodeLog.pts,
	// decodeLog.formats): framehash's timestamps are held at the last
	// where they go back, and repairTimes needs the decoder's own; the
	// filter graph is not set up anew for a change of pixel aspect or
	// colour alone, so only the pictures tell of one.
	out := ffmpeg.Input("file:"+abs, in).Get(strconv.Itoa(index)).
		Filter("showinfo", nil, ffmpeg.KwArgs{"checksum": "0"}).
		Output("pipe:1", pictureHashArgs(pixFmt, limit))
	args := append(slices.Clone(decodeLogArgs), out.GetArgs()...)
	err := fftool.RunLogged(ctx, tools.FFmpegBin(), args, w, log.line)
	if err := log.sizeChange(); err != nil {
		return err
	}
	if err != nil {
		if fftool.IsFailure(ctx, err) {
			return fmt.Errorf("%w: %w", ErrNotMedia, err)
		}
		return err
	}
	return nil
}

// pictureHashArgs are the output options of a decode to picture hashes:
// every picture as decoded (no frame rate conversion), in pixFmt when set,
// the first limit when positive.
func pictureHashArgs(pixFmt string, limit int) ffmpeg.KwArgs {
	kw := ffmpeg.KwArgs{
		"fps_mode":      "passthrough",
		"enc_time_base": "-1",
		"f":             "framehash",
		"hash":          "murmur3",
	}
	if pixFmt != "" {
		kw["pix_fmt"] = pixFmt
	}
	if limit > 0 {
		kw["frames:v"] = strconv.Itoa(limit)
	}
	return kw
}

// parsePictures reads a whole framehash output.
func parsePictures(data []byte) (*pictureScan, error) {
	s := &pictureScan{}
	_, _ = s.Write(data)
	return s, s.finish()
}

// finish parses a last line without its newline, reports what went
// wrong in the output, and gives the pictures the timestamps the decoder
// gave them where framehash's differ (see decodeLog.pts): in a new slice,
// since the old one may be shared (Probing.pictures).
func (s *pictureScan) finish() error {
	if len(s.line) > 0 && s.err == nil {
		s.parseLine(s.line)
		s.line = s.line[:0]
	}
	if s.err != nil {
		return s.err
	}
	if len(s.pictures) > 0 && s.timeBase.den == 0 {
		return errors.New("framehash: no time base")
	}
	if pts := s.log.pts; len(pts) == len(s.pictures) {
		cloned := false
		for i, t := range pts {
			if s.pictures[i].pts == t {
				continue
			}
			if !cloned {
				s.pictures, cloned = slices.Clone(s.pictures), true
			}
			s.pictures[i].pts = t
		}
	}
	return nil
}

// Write parses framehash output line by line; like packetScan.Write it
// never fails, so ffmpeg is never blocked.
func (s *pictureScan) Write(p []byte) (int, error) {
	splitLines(&s.line, p, func(line []byte) {
		if s.err == nil {
			s.parseLine(line)
		}
	})
	return len(p), nil
}

// parseLine reads one line of framehash output.
func (s *pictureScan) parseLine(line []byte) {
	l, err := framehash.Parse(line)
	switch {
	case err != nil:
		s.err = err
	case l.Kind == framehash.TimeBase:
		s.timeBase = rational{l.TimeBase[0], l.TimeBase[1]}
	case l.Kind == framehash.Picture:
		s.pictures = append(s.pictures, picture{pts: l.PTS, dur: l.Duration, hash: l.Hash})
	}
}

// untimedFPS is the frame rate pictures without usable timestamps are
// shown at, one frame apart: the stream's stated rate, or 25. The split
// times its chunks by it and Verify expects the output to keep it.
func untimedFPS(fps float64) float64 {
	if fps > 0 {
		return fps
	}
	return 25
}

// timedFrom says whether pics[from:] have timestamps, each above the one
// before it (pics[from-1]'s included).
func timedFrom(pics []picture, from int) bool {
	for i := from; i < len(pics); i++ {
		if p := pics[i]; p.pts == noPTS || i > 0 && p.pts <= pics[i-1].pts {
			return false
		}
	}
	return true
}

// endTicks is where the last picture ends: its pts plus its duration, or
// plus the previous picture's spacing, or one frame at fps.
func (s *pictureScan) endTicks(fps float64) int64 {
	n := len(s.pictures)
	last := s.pictures[n-1]
	switch {
	case last.dur > 0:
		return last.pts + last.dur
	case n > 1:
		return last.pts + (last.pts - s.pictures[n-2].pts)
	case fps > 0:
		return last.pts + int64(float64(s.timeBase.den)/(float64(s.timeBase.num)*fps))
	}
	return last.pts
}

// matchAt finds where want (a run of the source's pictures) appears in the
// scan's pictures, searching from the first position: the number of the
// scan's pictures before it, or -1. Equal runs at several positions are
// equal pictures, so the first is as good as any.
func (s *pictureScan) matchAt(want []picture) int {
	if len(want) == 0 {
		return -1
	}
	for skip := 0; skip+len(want) <= len(s.pictures); skip++ {
		if s.pictures[skip].hash != want[0].hash {
			continue
		}
		ok := true
		for i := range want {
			if s.pictures[skip+i].hash != want[i].hash {
				ok = false
				break
			}
		}
		if ok {
			return skip
		}
	}
	return -1
}

// timedAs reports whether the pictures of s from skip on are shown as far
// apart as want, whose times are in ticks of tb: each one as long after
// the first as want's is, within a quarter of their shortest spacing (at
// least timeSlack, for a chunk's container rounding them). A copy whose
// packets carry timestamps the demuxer made up (H.264 in AVI has none, and
// +genpts guesses them in file order) decodes to the right pictures at the
// wrong times.
func (s *pictureScan) timedAs(skip int, want []picture, tb rational) bool {
	if skip+len(want) > len(s.pictures) {
		return false
	}
	got := s.pictures[skip : skip+len(want)]
	tol := math.Inf(1)
	for i := 1; i < len(want); i++ {
		tol = min(tol, tb.seconds(want[i].pts-want[i-1].pts)/4)
	}
	tol = max(tol, timeSlack)
	for i := range want {
		if got[i].pts == noPTS || want[i].pts == noPTS {
			return false
		}
		d := s.timeBase.seconds(got[i].pts-got[0].pts) - tb.seconds(want[i].pts-want[0].pts)
		if math.Abs(d) > tol {
			return false
		}
	}
	return true
}

// timeSlack is how far a chunk's picture times may stray from the
// source's by rounding: Matroska keeps milliseconds, so the time between
// two pictures may be up to one off.
const timeSlack = 0.0015
