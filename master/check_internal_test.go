package master

import (
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// The chunks' field checks add up to one warning, naming the first picture
// coded otherwise; none when every picture is coded as the source's.
func TestFieldsWarning(t *testing.T) {
	q := &media.QualityStats{Frames: 50}
	state := &JobState{Chunks: []ChunkState{
		{Index: 0, Quality: q},
		{Index: 1, Quality: q, Fields: &media.FieldCheck{Differ: 5, First: 60, Source: "interlaced (top field first)", Output: "progressive"}},
		{Index: 2, Quality: q, Fields: &media.FieldCheck{Differ: 2, First: 140, Source: "progressive", Output: "interlaced (top field first)"}},
	}}
	want := "video field mode: 7 of the 150 pictures compared are coded otherwise than the source's (the first, picture 60, is interlaced (top field first) in the source, progressive in the output)"
	if got := fieldsWarning(state); len(got) != 1 || got[0] != want {
		t.Errorf("fieldsWarning = %q, want %q", got, want)
	}
	state.Chunks[1].Fields, state.Chunks[2].Fields = nil, nil
	if got := fieldsWarning(state); got != nil {
		t.Errorf("fieldsWarning = %q, want none", got)
	}
}
