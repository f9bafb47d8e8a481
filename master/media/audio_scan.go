package media

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"
)

// audioTrack is how one audio stream plays.
type audioTrack struct {
	// Index is the stream's index in its file.
	Index int
	// FirstPacket is its first packet's timestamp, in file order, played
	// or not; Start its first played packet's (not the earliest: where a
	// capture's timestamps restart, the earliest may come later). Start -
	// FirstPacket is the priming the file marks as not to be played
	// (packets flagged discard: an MP4 edit list's). NaN when the packet
	// has no timestamp.
	FirstPacket, Start float64
	// Packets counts its packets, played or not; lead is the first
	// leadPackets of them, in file order (see copyStart).
	Packets int
	lead    []leadPacket
	played  bool // a packet not flagged discard was seen
	// Recut: a packet flagged discard comes after one played. An MP4 or
	// MOV edit list with a cut in the middle gives the next edit's
	// pre-roll so, its timestamps going back: a copy would keep them,
	// a decode drops them.
	Recut bool
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

// leadPackets bounds the packets an audioTrack keeps of its start: over a
// minute of AAC at 48 kHz, more than any edit list's pre-roll.
const leadPackets = 4096

// leadPacket is one packet of an audio track's start.
type leadPacket struct {
	pts     float64 // NaN when it has none
	size    int
	discard bool
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
		"show_entries":   "packet=stream_index,pts_time,duration_time,size,flags",
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

// audioTrackOf is the track of tracks for stream index, false if none
// (a stream without packets).
func audioTrackOf(tracks []audioTrack, index int) (audioTrack, bool) {
	for _, t := range tracks {
		if t.Index == index {
			return t, true
		}
	}
	return audioTrack{}, false
}

// copyStart is when src's sound begins in out, a stream copy of src,
// whatever out marks of its priming (Matroska cannot mark AAC's, and plays
// it: the video starts as much later). out holds src's packets less some
// at the start (Join drops an edit list's pre-roll), so out's first is
// src's packet src.Packets-out.Packets, which the sizes of the first few
// confirm; src's first played packet is as many places on in out. False
// when the packets do not line up (out is not a copy, or lost packets
// midway).
func copyStart(src, out audioTrack) (float64, bool) {
	first := slices.IndexFunc(src.lead, func(p leadPacket) bool { return !p.discard }) // src's first played packet
	shift := src.Packets - out.Packets
	if first < 0 || shift < 0 || shift > first || first-shift >= len(out.lead) {
		return 0, false
	}
	const confirm = 8
	for k := 0; k < confirm && k < len(out.lead) && shift+k < len(src.lead); k++ {
		if out.lead[k].size != src.lead[shift+k].size {
			return 0, false
		}
	}
	start := out.lead[first-shift].pts
	return start, !math.IsNaN(start)
}

// audioLengthWriter parses "1,0.021333,0.021333,371,K_" lines as they stream.
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
	if len(f) != 5 || err != nil {
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
		w.tracks = append(w.tracks, audioTrack{Index: n, FirstPacket: math.NaN(), Start: math.NaN(),
			first: math.Inf(1), end: math.Inf(-1), last: math.NaN()})
	}
	t := &w.tracks[i]
	pts, perr := strconv.ParseFloat(f[1], 64)
	discard := strings.Contains(f[4], "D")
	t.Packets++
	if len(t.lead) < leadPackets {
		p := leadPacket{pts: math.NaN(), discard: discard}
		if perr == nil {
			p.pts = pts
		}
		p.size, _ = strconv.Atoi(f[3])
		t.lead = append(t.lead, p)
	}
	if t.Packets == 1 && perr == nil {
		t.FirstPacket = pts
	}
	if discard {
		t.Recut = t.Recut || t.played
		return
	}
	if !t.played && perr == nil {
		t.Start = pts
	}
	t.played = true
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
