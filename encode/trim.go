package encode

import (
	"fmt"
	"strconv"
)

// MaxTrimEnd is the largest Trim.Start+Trim.Frames accepted.
const MaxTrimEnd = 1 << 31

// Settings keys under which a trim is recorded in Result.Settings, so a
// stored chunk is the result of a retry only if it was trimmed alike.
const (
	SettingTrimStart  = "trim_start"
	SettingTrimFrames = "trim_frames"
)

// Trim keeps only some of a chunk's pictures: Frames pictures from picture
// Start on, counted from 0 in decode output (presentation) order as ffmpeg
// decodes the chunk. The shard then holds exactly Frames pictures, its
// timestamps starting at the first kept one, and no audio. A chunk that
// decodes to fewer than Start+Frames pictures is ErrInvalidInput.
//
// On the wire these are FrameTrim.start_frame and FrameTrim.frame_count,
// the names validation errors use.
type Trim struct {
	// Start is the number of pictures dropped first; 0 or more.
	Start int64
	// Frames is the number of pictures kept; 1 or more, and Start+Frames
	// at most MaxTrimEnd.
	Frames int64
}

// End is the index of the first picture after the kept ones.
func (t Trim) End() int64 { return t.Start + t.Frames }

// checkTrim validates a trim; nil (no trim) is valid. Errors wrap
// ErrInvalidOptions and name the wire field.
func checkTrim(t *Trim) error {
	if t == nil {
		return nil
	}
	switch {
	case t.Start < 0:
		return fmt.Errorf("%w: trim start_frame %d must not be negative", ErrInvalidOptions, t.Start)
	case t.Frames < 1:
		return fmt.Errorf("%w: trim frame_count %d must be at least 1", ErrInvalidOptions, t.Frames)
	case t.Start > MaxTrimEnd-t.Frames:
		return fmt.Errorf("%w: trim start_frame %d + frame_count %d exceeds %d", ErrInvalidOptions, t.Start, t.Frames, int64(MaxTrimEnd))
	}
	return nil
}

// addTrimSettings records t (if any) in settings m.
func addTrimSettings(m map[string]string, t *Trim) {
	if t == nil {
		return
	}
	m[SettingTrimStart] = strconv.FormatInt(t.Start, 10)
	m[SettingTrimFrames] = strconv.FormatInt(t.Frames, 10)
}

// filter is the ffmpeg video filter that keeps t's pictures and restarts
// their timestamps at 0. The scale, to the first picture's size and a
// no-op otherwise, copes with a chunk whose size changes midway: the
// encode keeps one filter graph (-reinit_filter 0, so trim counts its
// pictures once), and only scale adapts to frames that change under it.
func (t Trim) filter() string {
	return fmt.Sprintf("trim=start_frame=%d:end_frame=%d,setpts=PTS-STARTPTS,scale=iw:ih", t.Start, t.End())
}

// miscount is the error for a trimmed encode that kept kept pictures
// instead of t.Frames. Fewer is ErrInvalidInput: the trim filter passes
// pictures until the chunk runs out, so when some were kept the chunk
// decoded to exactly Start+kept, and when none were, to Start at most. More
// is not the input's fault (an operator's extra output arguments changed
// the pictures) and wraps nothing.
func (t Trim) miscount(kept int64) error {
	asks := fmt.Sprintf("the trim asks for pictures %d..%d", t.Start, t.End()-1)
	switch {
	case kept <= 0:
		return fmt.Errorf("%w: the chunk decodes to at most %d pictures, none kept; %s", ErrInvalidInput, t.Start, asks)
	case kept < t.Frames:
		return fmt.Errorf("%w: the chunk decodes to %d pictures; %s", ErrInvalidInput, t.Start+kept, asks)
	default:
		return fmt.Errorf("trimmed encode: the shard holds %d pictures; %s", kept, asks)
	}
}
