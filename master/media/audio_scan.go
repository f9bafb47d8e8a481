package media

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"
)

// audioTrack is how one audio stream plays.
type audioTrack struct {
	// Length is the sum of its packets' durations, which counts the
	// samples whatever their timestamps say; -1 when a packet's duration
	// is not known.
	Length float64
	// Span is the time from its first packet's timestamp to its last
	// packet's end; with Length it shows samples given the same time
	// (timestamps that restart or overlap): Length - Span. -1 when a
	// packet has no timestamp.
	Span float64

	first, end float64
	// last and lastDur are the previous packet's pts and duration (last is
	// NaN before the first): see roundingSlack.
	last, lastDur float64
}

// roundingSlack is how far a packet's duration may be from the time to the
// next packet and still be taken for that time: Matroska keeps both to
// the millisecond, each rounded on its own, so an AAC packet of 21.333 ms
// says 21 ms, and an hour of them would lose a minute of sound if the
// durations were summed as they are.
const roundingSlack = 0.001 + 1e-6

// audioTracks returns how each audio stream of the file at abs plays, in
// file order.
func audioTracks(ctx context.Context, tools Tools, abs string) ([]audioTrack, error) {
	var w audioLengthWriter
	if err := probeTo(ctx, tools, abs, ffmpeg.KwArgs{
		"select_streams": "a",
		"show_entries":   "packet=stream_index,pts_time,duration_time,flags",
		"of":             "csv=p=0",
	}, &w); err != nil {
		return nil, err
	}
	if len(w.line) > 0 {
		w.parse(w.line)
	}
	if w.err != nil {
		return nil, w.err
	}
	for i := range w.tracks {
		if t := &w.tracks[i]; t.Span >= 0 {
			t.Span = t.end - t.first
		}
	}
	return w.tracks, nil
}

// audioLengthWriter parses "1,0.021333,0.021333,K_" lines as they stream.
// Packets flagged discard ("D": before an MP4 edit list's start) are not
// played, and not counted.
type audioLengthWriter struct {
	line   []byte
	order  map[int]int // stream index → position in tracks
	tracks []audioTrack
	err    error
}

func (w *audioLengthWriter) Write(p []byte) (int, error) {
	splitLines(&w.line, p, w.parse)
	return len(p), nil
}

func (w *audioLengthWriter) parse(b []byte) {
	line := strings.TrimSpace(string(b))
	if line == "" || w.err != nil {
		return
	}
	f := strings.Split(strings.TrimSuffix(line, ","), ",")
	n, err := strconv.Atoi(f[0])
	if len(f) != 4 || err != nil {
		w.err = fmt.Errorf("ffprobe: unexpected packet line %q", line)
		return
	}
	if w.order == nil {
		w.order = map[int]int{}
	}
	i, seen := w.order[n]
	if !seen {
		i = len(w.tracks)
		w.order[n] = i
		w.tracks = append(w.tracks, audioTrack{first: math.Inf(1), end: math.Inf(-1), last: math.NaN()})
	}
	t := &w.tracks[i]
	if strings.Contains(f[3], "D") {
		return
	}
	pts, perr := strconv.ParseFloat(f[1], 64)
	d, derr := strconv.ParseFloat(f[2], 64)
	if derr != nil || d < 0 {
		t.Length = -1
	} else if t.Length >= 0 {
		if gap := pts - t.last; perr == nil && math.Abs(gap-t.lastDur) <= roundingSlack {
			t.Length += gap - t.lastDur // the previous packet lasted until this one
		}
		t.Length += d
	}
	if perr == nil && derr == nil {
		t.last, t.lastDur = pts, d
	} else {
		t.last = math.NaN()
	}
	if perr != nil || derr != nil || t.Span < 0 {
		t.Span = -1
		return
	}
	t.first, t.end = min(t.first, pts), max(t.end, pts+d)
}
