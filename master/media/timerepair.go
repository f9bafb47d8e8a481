package media

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// nudgeWindow is how many pictures past one whose timestamp does not
// follow the one before repairTimes looks for one that does: found, and
// the pictures between spread evenly up to it about a frame apart, so
// they are (a timestamp repeated or lost); otherwise the timestamps went
// back for good (captures run together) and the later pictures follow on
// from the earlier ones.
const nudgeWindow = 8

// jumpSeconds is how far forward a timestamp may jump in a container
// whose clock may jump (transport and program streams, FLV) before the
// jump is taken for a discontinuity, not a pause: ffmpeg's own
// dts_delta_threshold.
const jumpSeconds = 10

// discontinuousFormats are the demuxers (ffprobe's format names) whose
// clock may jump or restart, as ffmpeg's AVFMT_TS_DISCONT says.
var discontinuousFormats = []string{"mpegts", "mpegtsraw", "mpeg", "flv", "hls"}

// jumpLimit is repairTimes' jump for a source of format formatName in
// time base tb: jumpSeconds where the format's clock may jump, 0 (none)
// elsewhere, where a long gap is the source's own.
func jumpLimit(formatName string, tb rational) int64 {
	for _, f := range strings.Split(formatName, ",") {
		if slices.Contains(discontinuousFormats, f) && tb.num > 0 {
			return jumpSeconds * tb.den / tb.num
		}
	}
	return 0
}

// maxRepairs bounds how many pictures repairTimes mends: a hundredth of
// the pictures, at least 16 and at most 256 (each is a term of the filter
// that times a lossless chunk). Beyond it the timestamps are not the
// source's timing but noise, and the pictures are shown one frame apart.
func maxRepairs(pictures int) int { return min(256, max(16, pictures/100)) }

// timeRepair is how a stream's picture timestamps were made to increase.
type timeRepair struct {
	// pictures are the scan's, with increasing timestamps.
	pictures []picture
	// nudged are the pictures given a time between their neighbours', and
	// restarts the first pictures of runs whose timestamps went back for
	// good, by index in order.
	nudged, restarts []int
	// placed is how many pictures at the start had no timestamp in the
	// file (the decoder made theirs up, counting from 0) and were placed
	// a frame apart before the first that had one.
	placed int
	// spans say how each picture's time is had from what a decode gives
	// it, in order of their first picture; one, a shift of 0, when
	// nothing was mended.
	spans []timeSpan
}

// A timeSpan times the pictures from its first to the next span's: by the
// decoder's timestamp plus base (the source's own timing, shifted), or,
// linear, base plus step for each picture past the first (pictures spread
// between their neighbours, or following on where the timestamps went
// back: what the decoder gives those is not known here, see repairTimes).
type timeSpan struct {
	first      int
	linear     bool
	base, step int64
}

// seconds is how long the repaired pictures last, in time base tb: from
// the first one's timestamp to the end of the last (pictureScan.endTicks).
func (r timeRepair) seconds(tb rational, fps float64) float64 {
	mended := &pictureScan{timeBase: tb, pictures: r.pictures}
	return tb.seconds(mended.endTicks(fps) - r.pictures[0].pts)
}

// repaired reports whether any picture's timestamp was mended.
func (r timeRepair) repaired() bool { return len(r.nudged)+len(r.restarts) > 0 || r.placed > 0 }

// mended are the pictures whose timestamps are not the decoder's: those
// placed and those nudged, in order.
func (r timeRepair) mended() []int {
	var m []int
	for i := range r.placed {
		m = append(m, i)
	}
	return append(m, r.nudged...)
}

// leadSlack is how far, in pictures, the first backward step may be from
// the end of the leading packets without timestamps for the pictures
// before it to be theirs: a decoder shows a few pictures in another order
// than it reads their packets.
const leadSlack = 3

// leadingUntimed counts the packets at the start of pts (in file order)
// that have no timestamp.
func leadingUntimed(pts []int64) int {
	n := 0
	for n < len(pts) && pts[n] == noPTS {
		n++
	}
	return n
}

// repair is repairTimes of the source's pictures pics, with the source's
// jump limit and its leading packets without timestamps.
func (s SourceInfo) repair(pics *pictureScan) (timeRepair, bool) {
	lead := 0
	if s.packets != nil {
		lead = leadingUntimed(s.packets.pts)
	}
	return repairTimes(pics.pictures, jumpLimit(s.FormatName, pics.timeBase), lead)
}

// repairTimes gives pics (in presentation order) increasing timestamps,
// the way a player shows them: a picture whose timestamp repeats or goes
// back a little from the one before is spread between its neighbours; where
// the timestamps go back for good, or jump forward more than jump ticks
// (jump > 0, see jumpLimit), the later pictures follow on one typical
// frame apart from the last good one. ok is false when a picture
// has no timestamp, no two pictures are apart, or more than maxRepairs
// need mending. Pictures that already increase come back as they are.
//
// lead is how many packets at the start of the stream have no timestamp
// (a Matroska file written with negative timestamps, as ffmpeg 5.1 reads
// it): a decoder numbers their pictures from 0 on, and where the file's
// own timestamps begin they seem to go back. When the first step back
// comes there (within leadSlack), the pictures before it are placed a
// frame apart before the first with a timestamp of its own (placed),
// which keeps the rest at the source's time against the audio; counting
// them among the mended would make the rest follow on from them, late.
//
// The decodes the master hashes pictures with hold a timestamp that goes
// back at the one before (ffmpeg's muxer does), so a restart arrives here
// as a run of equal timestamps, whatever the decoder gave: its pictures
// are timed by their place in the run (a linear span) until the
// timestamps rise again.
func repairTimes(pics []picture, jump int64, lead int) (r timeRepair, ok bool) {
	n := len(pics)
	if n == 0 || slices.ContainsFunc(pics, func(p picture) bool { return p.pts == noPTS }) {
		return timeRepair{}, false
	}
	jumped := func(i int) bool { return jump > 0 && pics[i].pts-pics[i-1].pts > jump }
	clean := timedFrom(pics, 0)
	for i := 1; clean && jump > 0 && i < n; i++ {
		clean = !jumped(i)
	}
	if clean {
		return timeRepair{pictures: pics, spans: []timeSpan{{}}}, true
	}
	var steps []int64
	for i := 1; i < n; i++ {
		if d := pics[i].pts - pics[i-1].pts; d > 0 {
			steps = append(steps, d)
		}
	}
	if len(steps) == 0 {
		return timeRepair{}, false
	}
	slices.Sort(steps)
	frame := steps[len(steps)/2] // the typical spacing
	r.pictures = slices.Clone(pics)
	out := r.pictures
	r.spans = []timeSpan{{}}
	// extend carries the last span on to picture i, or starts another.
	extend := func(i int, linear bool, base, step int64) {
		l := r.spans[len(r.spans)-1]
		if l.linear == linear && l.step == step && (linear && l.base+int64(i-l.first)*step == base || !linear && l.base == base) {
			return
		}
		r.spans = append(r.spans, timeSpan{first: i, linear: linear, base: base, step: step})
	}
	var offset int64   // what the source's own timestamps are shifted by
	restarted := false // picture i-1 followed on where the timestamps went back
	start := 1
	if k := firstStepBack(pics); lead > 0 && k > 0 && k >= lead-leadSlack && k <= lead+leadSlack {
		r.placed = k
		base := pics[k].pts - int64(k)*frame
		for i := range k {
			out[i].pts = base + int64(i)*frame
		}
		r.spans = []timeSpan{{first: 0, linear: true, base: base, step: frame}, {first: k}}
		start = k + 1
	}
	for i := start; i < n; {
		if t := pics[i].pts + offset; t > out[i-1].pts && !jumped(i) {
			out[i].pts = t
			extend(i, false, offset, 0)
			restarted = false
			i++
			continue
		}
		next := -1 // the first picture after i with room for those between, about a frame each
		for j := i + 1; j < min(n, i+1+nudgeWindow) && !restarted; j++ {
			if gap := pics[j].pts + offset - out[i-1].pts; gap > int64(j-i) {
				if step := gap / int64(j-i+1); 4*step >= frame && step <= 4*frame {
					next = j
				}
				break
			}
		}
		if next < 0 {
			if !restarted {
				r.restarts = append(r.restarts, i)
			}
			restarted = true
			out[i].pts = out[i-1].pts + frame
			offset = out[i].pts - pics[i].pts
			extend(i, true, out[i].pts, frame)
			i++
			continue
		}
		restarted = false
		from, to := out[i-1].pts, pics[next].pts+offset
		step := (to - from) / int64(next-i+1)
		for k := i; k < next; k++ {
			out[k].pts = from + step*int64(k-i+1)
			r.nudged = append(r.nudged, k)
		}
		extend(i, true, out[i].pts, step)
		i = next
	}
	if len(r.nudged)+len(r.restarts) > maxRepairs(n) {
		return timeRepair{}, false
	}
	return r, true
}

// firstStepBack is the first picture whose timestamp is not after the one
// before; 0 if there is none.
func firstStepBack(pics []picture) int {
	for i := 1; i < len(pics); i++ {
		if pics[i].pts <= pics[i-1].pts {
			return i
		}
	}
	return 0
}

// warnings say what the repair changed, in the stream's time base tb.
func (r timeRepair) warnings(tb rational) []string {
	var w []string
	at := func(i int) string {
		return fmt.Sprintf("picture %d, %.3fs", i, tb.seconds(r.pictures[i].pts-r.pictures[0].pts))
	}
	if r.placed > 0 {
		w = append(w, fmt.Sprintf("the video's first %d pictures have no timestamps in the file: they are shown one frame apart before the first that has one (%s)",
			r.placed, at(r.placed)))
	}
	if n := len(r.restarts); n > 0 {
		points := "1 point"
		if n > 1 {
			points = strconv.Itoa(n) + " points"
		}
		w = append(w, fmt.Sprintf("the video's timestamps go back, or jump ahead more than %ds, at %s (first at %s): the later pictures are shown following on from the earlier ones", jumpSeconds, points, at(r.restarts[0])))
	}
	if n := len(r.nudged); n > 0 {
		w = append(w, fmt.Sprintf("%d of the video's pictures: a timestamp that repeats or goes back (first at %s); each is shown between its neighbours", n, at(r.nudged[0])))
	}
	return w
}

// retimeExpr is a setpts expression that gives the decoded pictures the
// repaired times of spans (in the stream's time base), by their index N:
// a choice between spans, nested as a balanced tree (ffmpeg's parser
// refuses a long flat one). N must count every decoded picture, so the
// filters must not be rebuilt midway.
func retimeExpr(spans []timeSpan) string {
	var b strings.Builder
	var pick func(ss []timeSpan)
	pick = func(ss []timeSpan) {
		if len(ss) == 1 {
			if s := ss[0]; s.linear {
				fmt.Fprintf(&b, "%d+(N-%d)*%d", s.base, s.first, s.step)
			} else {
				fmt.Fprintf(&b, "PTS+%d", s.base)
			}
			return
		}
		m := len(ss) / 2
		fmt.Fprintf(&b, "if(lt(N,%d),", ss[m].first)
		pick(ss[:m])
		b.WriteString(",")
		pick(ss[m:])
		b.WriteString(")")
	}
	pick(spans)
	return b.String()
}

// untimedExpr is the setpts expression that shows pictures one frame apart
// at fps, counted from the first decoded.
func untimedExpr(fps float64) string {
	return "N/(" + strconv.FormatFloat(fps, 'f', -1, 64) + "*TB)"
}
