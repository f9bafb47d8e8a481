package media

import (
	"math"
	"strconv"
)

// minGridStep is the finest grid, in seconds, that Join puts the pictures
// back on: a time the shards' Matroska rounded to the millisecond is then
// nearer its own point than any other.
const minGridStep = 0.002

// timeGrid is the lattice a source's pictures are shown on: offset + k*step,
// in ticks of 1/scale s, measured from the source's start as the output's
// times are.
type timeGrid struct{ scale, step, offset int64 }

// pictureGrid returns the grid src's pictures lie on, as the split times
// them, when the shards' millisecond times have lost it: its step or its
// offset is not a whole number of milliseconds (NTSC's 30000/1001, a
// transport stream's 1/90000 ticks), and the step is at least minGridStep.
// ok is false when src carries no pictures (it did not come from Probe) or
// its pictures lie on no such grid (a variable frame rate's own times).
func pictureGrid(src SourceInfo) (g timeGrid, ok bool) {
	pics := src.pictures
	if pics == nil || len(pics.pictures) < 2 {
		return timeGrid{}, false
	}
	repair, timed := src.repair(pics)
	if timed {
		first := repair.pictures[0].pts
		var step int64
		for _, p := range repair.pictures[1:] {
			step = gcd(step, p.pts-first)
		}
		g = timeGrid{scale: pics.timeBase.den, step: step * pics.timeBase.num}
	} else {
		// One frame apart at the stated rate, as the split shows them.
		rate, ok := statedRate(src.Video)
		if !ok {
			return timeGrid{}, false
		}
		g = timeGrid{scale: rate.num, step: rate.den}
	}
	if g.step <= 0 || g.scale <= 0 || g.scale > math.MaxInt32 || float64(g.step) < minGridStep*float64(g.scale) {
		return timeGrid{}, false
	}
	g.offset = int64(math.Round(startOffset(src, src.Video.StartTime) * float64(g.scale)))
	if g.step*1000%g.scale == 0 && g.offset*1000%g.scale == 0 {
		return timeGrid{}, false // whole milliseconds: Matroska kept them
	}
	return g, true
}

// statedRate is the rate untimed pictures are shown at (untimedFPS) as a
// fraction, when the stream states one.
func statedRate(v VideoStream) (rational, bool) {
	for _, s := range []string{v.AvgFrameRate, v.FrameRate} {
		if r, ok := parseRational(s); ok && r.num > 0 && float64(r.num)/float64(r.den) == untimedFPS(v.FPS) {
			return r, true
		}
	}
	return rational{}, false
}

// setts is the setts bitstream filter that moves each packet's timestamps
// to the nearest point of g, in a stream whose time base is 1/g.scale. The
// commas are escaped for an -bsf list.
func (g timeGrid) setts() string {
	o, s := strconv.FormatInt(g.offset, 10), strconv.FormatInt(g.step, 10)
	snap := func(v string) string { return o + "+round((" + v + "-" + o + ")/" + s + ")*" + s }
	return "setts=pts=" + snap("PTS") + ":dts=" + snap("DTS") + `:duration=max(1\,round(DURATION/` + s + "))*" + s
}

func gcd(a, b int64) int64 {
	if a < 0 {
		a = -a
	}
	if b < 0 {
		b = -b
	}
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
