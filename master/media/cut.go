package media

import (
	"math"
	"slices"
)

// A cut is one planned chunk: the source's pictures [first, end), in
// presentation order, and how it is sent. A copy cut is the source's
// packets [startPacket, endPacket] (file order) stream-copied: they start
// at a keyframe at or before picture first and run on until every picture
// before end can be decoded, so the worker drops the pictures before first
// and after end-1 (a frame trim). A cut that is not copy is sent as a
// lossless encode of exactly its pictures.
type cut struct {
	first, end             int
	copy                   bool
	startPacket, endPacket int64
	// lead is how many of the source's pictures lie from the copy's
	// keyframe to first.
	lead int
}

// maxLeadRatio bounds a copy cut's lead, the time from its keyframe to its
// first picture, as a share of the segment length. Beyond it, decoding the
// lead on the worker (and once more to prove the chunk) costs more than a
// lossless intermediate of just the chunk.
const maxLeadRatio = 1.0

// keyTolerance is how far, as a share of the segment length, a cut may
// move from its target time to land on a keyframe (no lead at all).
const keyTolerance = 0.25

// packetTimeline is what planCuts needs of the source's packets, in file
// (decode) order: each packet's pts (noPTS when none) and the keyframes.
type packetTimeline struct {
	pts  []int64
	keys []keyframe
	// pos is where every packet starts in the file, when that is known
	// for each and increases (nil otherwise): a copy can then select its
	// packets by position, so it need not read the source from its start.
	pos []int64
	// mended are the pictures whose timestamps were mended (repairTimes),
	// in order: no copy holds one, as it would carry the source's.
	mended []int
}

// mendedIn reports whether a picture from first to end-1 was mended.
func (p packetTimeline) mendedIn(first, end int) bool {
	i, _ := slices.BinarySearch(p.mended, first)
	return i < len(p.mended) && p.mended[i] < end
}

// increasing returns pos when every one is known and they strictly
// increase, nil otherwise.
func increasing(pos []int64) []int64 {
	for i, p := range pos {
		if p < 0 || i > 0 && p <= pos[i-1] {
			return nil
		}
	}
	return pos
}

// planCuts cuts pics (the source's pictures in presentation order, with
// increasing timestamps in ticks of tb) into chunks of about segment
// seconds. A cut lands on a keyframe when one is within keyTolerance of a
// segment's target time, and at the target's picture otherwise, so chunk
// lengths do not depend on where the source's keyframes are. Without a
// packet timeline (pkts.pts empty) every cut is lossless. The chunks hold
// pictures of one field mode (fieldCuts), and a copy is only made where
// the picture its decode starts at (a worker codes the chunk as that
// one) is of its chunk's mode.
func planCuts(pics []picture, tb rational, pkts packetTimeline, fields []fieldRun, segment float64) []cut {
	n := len(pics)
	if n == 0 {
		return nil
	}
	// Pictures that are keyframes, and the packet each starts at.
	keyPic := make([]int, 0, len(pkts.keys))
	keyPacket := map[int]int64{}
	for _, k := range pkts.keys {
		if k.pts == noPTS {
			continue
		}
		i, found := slices.BinarySearchFunc(pics, k.pts, func(p picture, t int64) int { return cmp64(p.pts, t) })
		if !found {
			continue
		}
		if _, seen := keyPacket[i]; !seen {
			keyPacket[i] = k.packet
			keyPic = append(keyPic, i)
		}
	}
	slices.Sort(keyPic)

	bounds := cutBounds(pics, tb, keyPic, segment, fieldCuts(fields, pics, tb, segment))
	lastNeeded := lastPacketBefore(pics, pkts.pts)

	cuts := make([]cut, len(bounds)-1)
	for c := range cuts {
		first, end := bounds[c], bounds[c+1]
		cuts[c] = cut{first: first, end: end}
		if len(pkts.pts) == 0 {
			continue
		}
		k, found := slices.BinarySearch(keyPic, first)
		if !found {
			k-- // the last keyframe before first
		}
		if k < 0 {
			continue
		}
		if float64(pics[first].pts-pics[keyPic[k]].pts) > maxLeadRatio*segment*float64(tb.den)/float64(tb.num) {
			continue
		}
		start, stop := keyPacket[keyPic[k]], lastNeeded[end-1]
		if stop < start || pkts.mendedIn(keyPic[k], end) || fieldAt(fields, keyPic[k]) != fieldAt(fields, first) {
			continue
		}
		cuts[c] = cut{first: first, end: end, copy: true, startPacket: start, endPacket: stop, lead: first - keyPic[k]}
	}
	return cuts
}

// cutBounds returns the chunk boundaries, picture indexes from 0 to
// len(pics), strictly increasing, every one of forced among them: each
// stretch between two forced boundaries (and the ends) is cut into
// segments of its own, and a last chunk of a stretch shorter than a
// quarter segment is merged into the one before.
func cutBounds(pics []picture, tb rational, keyPic []int, segment float64, forced []int) []int {
	bounds := []int{0}
	for _, b := range append(slices.Clone(forced), len(pics)) {
		if b <= bounds[len(bounds)-1] || b > len(pics) {
			continue
		}
		bounds = appendStretchBounds(bounds, pics, bounds[len(bounds)-1], b, tb, keyPic, segment)
		bounds = append(bounds, b)
	}
	return bounds
}

// appendStretchBounds appends to bounds those that cut pics[a:b] into
// segments: targets a segment apart from pics[a], each moved to the
// keyframe nearest it within keyTolerance, if any; no target within a
// quarter segment of pics[b-1].
func appendStretchBounds(bounds []int, pics []picture, a, b int, tb rational, keyPic []int, segment float64) []int {
	seg := segment * float64(tb.den) / float64(tb.num) // ticks
	tol := keyTolerance * seg
	stretch := pics[a:b]
	t0, end := float64(pics[a].pts), float64(pics[b-1].pts)
	last := a
	for k := 1; ; k++ {
		target := t0 + float64(k)*seg
		if target > end-seg/4 || math.IsInf(target, 0) {
			break
		}
		f, _ := slices.BinarySearchFunc(stretch, target, func(p picture, t float64) int {
			switch {
			case float64(p.pts) < t:
				return -1
			case float64(p.pts) > t:
				return 1
			}
			return 0
		})
		f += a
		cut := f
		// The keyframe nearest the target within tolerance, if any.
		best, bestDist := -1, math.Inf(1)
		j, _ := slices.BinarySearch(keyPic, f)
		for _, cand := range []int{j - 1, j} {
			if cand < 0 || cand >= len(keyPic) {
				continue
			}
			d := math.Abs(float64(pics[keyPic[cand]].pts) - target)
			if d <= tol && d < bestDist {
				best, bestDist = keyPic[cand], d
			}
		}
		if best >= 0 {
			cut = best
		}
		if cut <= last || cut >= b {
			continue
		}
		bounds = append(bounds, cut)
		last = cut
	}
	return bounds
}

// lastPacketBefore returns, for every picture index f, the last packet (in
// file order) a decoder needs to output pictures 0..f: the largest packet
// index whose picture is at or before f. A packet whose pts matches no
// picture counts for the picture before its time; one without pts for the
// packet before it. With pts empty the result is nil.
func lastPacketBefore(pics []picture, pts []int64) []int64 {
	if len(pts) == 0 {
		return nil
	}
	last := make([]int64, len(pics))
	for i := range last {
		last[i] = -1
	}
	rank := 0
	for j, p := range pts {
		if p != noPTS {
			i, found := slices.BinarySearchFunc(pics, p, func(q picture, t int64) int { return cmp64(q.pts, t) })
			if !found {
				i--
			}
			rank = max(i, 0)
		}
		last[rank] = max(last[rank], int64(j))
	}
	for i := 1; i < len(last); i++ {
		last[i] = max(last[i], last[i-1])
	}
	return last
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
