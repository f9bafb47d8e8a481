package master

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/videoshard/videoshard/master/media"
)

// The chunk map's side of the split: chunks enter it as they are planned
// (a live split plans them in order, a batch at a time), and a resumed job
// checks the map against the split it makes again.

// mergePlanned adds the chunks of planned the map does not list, and
// refreshes how the split made those it lists but has not done (their
// files may have been made again). A chunk the map lists with other
// pictures is an error: the source splits otherwise than it did.
func (s *JobState) mergePlanned(planned []media.Chunk) error {
	for _, c := range planned {
		i, found := s.position(c.Index)
		if !found {
			s.Chunks = slices.Insert(s.Chunks, i, ChunkState{Index: c.Index, FirstFrame: c.FirstFrame, Frames: c.Frames})
		}
		cs := &s.Chunks[i]
		if cs.FirstFrame != c.FirstFrame || cs.Frames != c.Frames {
			return fmt.Errorf("chunk %d now holds pictures %d+%d, the saved job says %d+%d", c.Index, c.FirstFrame, c.Frames, cs.FirstFrame, cs.Frames)
		}
		if !cs.Done {
			cs.Size, cs.TrimStart, cs.Decoded, cs.Lossless = c.Size, c.TrimStart, c.Decoded, c.Lossless
			cs.Start, cs.Duration = c.Start, c.Duration
			s.markChanged(i)
		}
	}
	return nil
}

// mergeSplit is mergePlanned of a whole split: the map must then list
// exactly its chunks.
func (s *JobState) mergeSplit(chunks []media.Chunk) error {
	if err := s.mergePlanned(chunks); err != nil {
		return err
	}
	if n := len(s.Chunks); n != len(chunks) {
		return fmt.Errorf("the source now splits into %d chunks, the saved job has %d", len(chunks), n)
	}
	return nil
}

// position is where chunk index is in s.Chunks.
func (s *JobState) position(index int) (int, bool) {
	return slices.BinarySearchFunc(s.Chunks, index, func(cs ChunkState, idx int) int {
		return cmp.Compare(cs.Index, idx)
	})
}

// resetSplit forgets every chunk: the source is split again from scratch.
func (s *JobState) resetSplit() { s.Chunks = nil }
