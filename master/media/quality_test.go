package media_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// The measuring itself is tested in internal/quality; this checks the
// master's names for it: its Tools, and its error values.
func TestMeasureQuality_MasterNames(t *testing.T) {
	t.Parallel()
	tools := mediaTools(t)
	dir := t.TempDir()
	ref, cut, notMedia := filepath.Join(dir, "ref.mkv"), filepath.Join(dir, "cut.mkv"), filepath.Join(dir, "notes.mkv")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", ref)
	ffmpegT(t, "-i", ref, "-vf", "trim=start_frame=5,setpts=PTS-STARTPTS", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", cut)
	if err := os.WriteFile(notMedia, []byte("not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		dist   string
		is     error
		counts *media.FrameCountError
	}{
		{name: "identical", dist: ref},
		{name: "not media", dist: notMedia, is: media.ErrNotMedia},
		{name: "fewer pictures", dist: cut, is: media.ErrFrameCountMismatch, counts: &media.FrameCountError{Reference: 25, Distorted: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, err := media.MeasureQuality(t.Context(), tools, media.QualityInput{Path: ref}, media.QualityInput{Path: tt.dist}, media.QualityOptions{})
			if tt.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				if s := media.Summarize(frames); s.Frames != 25 || !math.IsInf(s.MinPSNR, 1) || s.MinSSIM != 1 {
					t.Fatalf("Summarize = %+v, want 25 identical pictures", s)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want it to wrap %v", err, tt.is)
			}
			var fce *media.FrameCountError
			if tt.counts != nil && (!errors.As(err, &fce) || *fce != *tt.counts) {
				t.Errorf("err = %v, want a %+v", err, *tt.counts)
			}
		})
	}
}
