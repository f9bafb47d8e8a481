package media

import (
	"cmp"
	"slices"
)

// A picture's field mode, as showinfo's "i:" gives it.
const (
	progressive byte = 'P'
	topFirst    byte = 'T' // interlaced, top field first
	bottomFirst byte = 'B' // interlaced, bottom field first
)

// fieldRun is a run of the source's pictures of one field mode, from the
// picture at index on. An encode codes all of a chunk's pictures as its
// first (libx264 codes a whole stream interlaced or progressive), so the
// split cuts where a lasting run begins (fieldCuts) and makes every
// lossless chunk in its pictures' mode.
type fieldRun struct {
	fields byte
	index  int
}

// minFieldRun is, as a share of the segment length, how long a run of
// pictures of another field mode must last to be cut into chunks of its
// own. Shorter runs (some broadcast encoders switch for a few pictures)
// are coded as the pictures before them: a chunk each would cost more
// than it keeps.
const minFieldRun = 0.25

// appendField adds picture index, of mode, to runs.
func appendField(runs []fieldRun, mode byte, index int) []fieldRun {
	if n := len(runs); n > 0 && runs[n-1].fields == mode {
		return runs
	}
	return append(runs, fieldRun{mode, index})
}

// fieldAt is picture i's field mode: progressive when runs is empty.
func fieldAt(runs []fieldRun, i int) byte {
	j, found := slices.BinarySearchFunc(runs, i, func(r fieldRun, i int) int { return cmp.Compare(r.index, i) })
	if !found {
		j--
	}
	if j < 0 {
		return progressive
	}
	return runs[j].fields
}

// fieldCuts are the pictures where the split must cut so that each chunk
// holds pictures of one field mode: where a run of another mode than the
// chunk's begins and lasts at least minFieldRun of a segment (to the next
// run, or to the last of pics, whose times are in ticks of tb). A shorter
// run belongs to the chunk it falls in. Increasing, each in (0, len(pics)).
func fieldCuts(runs []fieldRun, pics []picture, tb rational, segment float64) []int {
	if len(runs) < 2 {
		return nil
	}
	n := len(pics)
	minTicks := minFieldRun * segment * float64(tb.den) / float64(tb.num)
	var cuts []int
	mode := runs[0].fields
	for i := 1; i < len(runs); i++ {
		r := runs[i]
		if r.index <= 0 || r.index >= n || r.fields == mode {
			continue
		}
		end := pics[n-1].pts
		if i+1 < len(runs) && runs[i+1].index < n {
			end = pics[runs[i+1].index].pts
		}
		if float64(end-pics[r.index].pts) < minTicks {
			continue
		}
		cuts = append(cuts, r.index)
		mode = r.fields
	}
	return cuts
}

// FieldCheck is how measured pictures of the output are coded against the
// source's: Differ of them in another field mode, the first of those the
// source's picture First, Source there and Output in the output (in
// words).
type FieldCheck struct {
	Differ int64  `json:"differ"`
	First  int64  `json:"first"`
	Source string `json:"source"`
	Output string `json:"output"`
}

// fieldWords names a field mode.
func fieldWords(mode byte) string {
	switch mode {
	case topFirst:
		return "interlaced (top field first)"
	case bottomFirst:
		return "interlaced (bottom field first)"
	}
	return "progressive"
}

// checkFields compares each of frames, measured pictures of the output
// that are the source's pictures from first on (by their Frame), with the
// source picture's field mode in runs: nil when every one known agrees, or
// runs is empty (not known).
func checkFields(runs []fieldRun, first int64, frames []FrameQuality) *FieldCheck {
	if len(runs) == 0 {
		return nil
	}
	var c *FieldCheck
	for _, f := range frames {
		i := first + f.Frame
		want := fieldAt(runs, int(i))
		if f.Fields == 0 || f.Fields == want {
			continue
		}
		if c == nil {
			c = &FieldCheck{First: i, Source: fieldWords(want), Output: fieldWords(f.Fields)}
		}
		c.Differ++
	}
	return c
}

// CheckFields compares each of frames, measured pictures of the output
// that are the source's pictures from first on (by their Frame), with the
// source picture's field mode: nil when every one agrees, or the source's
// are not known (s did not come from Probe).
func (s SourceInfo) CheckFields(first int64, frames []FrameQuality) *FieldCheck {
	if s.pictures == nil {
		return nil
	}
	return checkFields(s.pictures.log.fields, first, frames)
}

// CheckFields is SourceInfo.CheckFields of the pictures decoded so far:
// those of every chunk SplitLive handed out.
func (p *Probing) CheckFields(first int64, frames []FrameQuality) *FieldCheck {
	p.mu.Lock()
	defer p.mu.Unlock()
	return checkFields(p.fields, first, frames)
}
