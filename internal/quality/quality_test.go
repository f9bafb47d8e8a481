package quality_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/quality"
)

// qualityClipFrames is the length of the test clips: 2 s at 25 fps.
const qualityClipFrames = 50

// qualityClips are test fixtures for MeasureQuality, all of the same
// 320x240 noisy testsrc2 clip unless said otherwise.
type qualityClips struct {
	ref      string // lossless H.264 (the reference)
	copy     string // ref, stream-copied into another file
	lossy    string // ref, encoded with libx264 crf 23
	cut10    string // ref without its first 10 pictures, lossless
	other    string // a different video (mandelbrot), as many pictures
	rotated  string // ref, stream-copied into MP4 with a 90° rotation
	small444 string // ref at 160x120, yuv444p, lossless
	slow     string // ref's pictures, each shown twice as long, lossless
}

// makeQualityClips writes the fixtures to a fresh directory.
func makeQualityClips(t *testing.T) qualityClips {
	t.Helper()
	mediaTools(t)
	dir := t.TempDir()
	c := qualityClips{
		ref:      filepath.Join(dir, "ref.mkv"),
		copy:     filepath.Join(dir, "copy.mkv"),
		lossy:    filepath.Join(dir, "lossy.mkv"),
		cut10:    filepath.Join(dir, "cut10.mkv"),
		other:    filepath.Join(dir, "other.mkv"),
		rotated:  filepath.Join(dir, "rotated.mp4"),
		small444: filepath.Join(dir, "small444.mkv"),
		slow:     filepath.Join(dir, "slow.mkv"),
	}
	lossless := []string{"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"}
	ffmpegT(t, append([]string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
		"-vf", "noise=alls=8:allf=t,format=yuv420p"}, append(lossless, c.ref)...)...)
	ffmpegT(t, "-i", c.ref, "-c", "copy", c.copy)
	ffmpegT(t, "-i", c.ref, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", c.lossy)
	ffmpegT(t, append([]string{"-i", c.ref, "-vf", "trim=start_frame=10,setpts=PTS-STARTPTS"}, append(lossless, c.cut10)...)...)
	ffmpegT(t, append([]string{"-f", "lavfi", "-i", "mandelbrot=size=320x240:rate=25", "-frames:v", "50",
		"-vf", "format=yuv420p"}, append(lossless, c.other)...)...)
	ffmpegT(t, "-i", c.ref, "-c", "copy", "-metadata:s:v:0", "rotate=90", c.rotated)
	ffmpegT(t, append([]string{"-i", c.ref, "-vf", "scale=160:120,format=yuv444p"}, append(lossless, c.small444)...)...)
	ffmpegT(t, append([]string{"-i", c.ref, "-vf", "setpts=2*PTS", "-fps_mode", "passthrough"}, append(lossless, c.slow)...)...)
	if got := ffprobeT(t, "-select_streams", "v", "-show_entries", "stream_side_data=rotation", "-of", "csv=p=0", c.rotated); got != "90" {
		t.Fatalf("rotated fixture: rotation %q, want 90", got)
	}
	return c
}

func TestMeasureQuality(t *testing.T) {
	t.Parallel()
	c := makeQualityClips(t)
	identical := func(t *testing.T, frames []quality.Frame) {
		t.Helper()
		for _, f := range frames {
			if !math.IsInf(f.PSNR, 1) || f.SSIM != 1 {
				t.Fatalf("frame %+v, want PSNR +Inf and SSIM 1 for identical pictures", f)
			}
		}
	}
	tests := []struct {
		name       string
		ref, dist  quality.Input
		wantFrames int
		check      func(t *testing.T, frames []quality.Frame)
	}{
		{
			name: "identical files", wantFrames: qualityClipFrames, check: identical,
			ref: quality.Input{Path: c.ref}, dist: quality.Input{Path: c.copy},
		},
		{
			name: "one file against itself", wantFrames: qualityClipFrames, check: identical,
			ref: quality.Input{Path: c.ref}, dist: quality.Input{Path: c.ref},
		},
		{
			name: "lossy encode", wantFrames: qualityClipFrames,
			ref: quality.Input{Path: c.ref}, dist: quality.Input{Path: c.lossy},
			check: func(t *testing.T, frames []quality.Frame) {
				for _, f := range frames {
					if f.PSNR < 30 || f.PSNR > 60 || f.SSIM < 0.7 || f.SSIM >= 1 {
						t.Fatalf("frame %+v, want PSNR in 30..60 dB and SSIM in 0.7..1", f)
					}
				}
			},
		},
		{
			name: "another video", wantFrames: qualityClipFrames,
			ref: quality.Input{Path: c.ref}, dist: quality.Input{Path: c.other},
			check: func(t *testing.T, frames []quality.Frame) {
				for _, f := range frames {
					if f.PSNR >= 20 || f.SSIM > 0.5 {
						t.Fatalf("frame %+v, want PSNR < 20 dB and SSIM < 0.5", f)
					}
				}
			},
		},
		{
			// Pairing by timestamp would pair ref's picture 10 (at 0.4 s)
			// with cut10's picture 0 (at 0 s) only by luck.
			name: "skip pairs by position", wantFrames: qualityClipFrames - 10, check: identical,
			ref: quality.Input{Path: c.ref, Skip: 10}, dist: quality.Input{Path: c.cut10},
		},
		{
			name: "skip and frames on both sides", wantFrames: 20, check: identical,
			ref:  quality.Input{Path: c.ref, Skip: 15, Frames: 20},
			dist: quality.Input{Path: c.cut10, Skip: 5, Frames: 20},
		},
		{
			name: "a skip one picture off", wantFrames: 30,
			ref:  quality.Input{Path: c.ref, Skip: 9, Frames: 30},
			dist: quality.Input{Path: c.cut10, Frames: 30},
			check: func(t *testing.T, frames []quality.Frame) {
				for _, f := range frames {
					if math.IsInf(f.PSNR, 1) || f.SSIM == 1 {
						t.Fatalf("frame %+v is identical to the picture before it", f)
					}
				}
			},
		},
		{
			name: "rotation ignored", wantFrames: qualityClipFrames, check: identical,
			ref: quality.Input{Path: c.ref}, dist: quality.Input{Path: c.rotated},
		},
		{
			name: "rotated reference", wantFrames: qualityClipFrames, check: identical,
			ref: quality.Input{Path: c.rotated}, dist: quality.Input{Path: c.ref},
		},
		{
			name: "other size and pixel format", wantFrames: qualityClipFrames,
			ref: quality.Input{Path: c.ref}, dist: quality.Input{Path: c.small444},
			check: func(t *testing.T, frames []quality.Frame) {
				for _, f := range frames {
					if f.PSNR < 15 || f.PSNR > 40 || f.SSIM < 0.3 || f.SSIM >= 1 {
						t.Fatalf("frame %+v, want PSNR in 15..40 dB, SSIM in 0.3..1 for a 2x upscale", f)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Every one of these shows its pictures at the reference's
			// times, from wherever its range starts.
			frames, err := quality.MeasureQuality(t.Context(), quality.Tools{}, tt.ref, tt.dist, quality.Options{SameTimes: true})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(frames), tt.wantFrames; got != want {
				t.Fatalf("%d frames, want %d", got, want)
			}
			for i, f := range frames {
				if f.Frame != int64(i) {
					t.Fatalf("frames[%d].Frame = %d", i, f.Frame)
				}
				if math.IsNaN(f.PTS) || math.IsNaN(f.RefPTS) {
					t.Fatalf("frames[%d] = %+v: no times", i, f)
				}
			}
			t.Logf("%+v", quality.Summarize(frames))
			tt.check(t, frames)
		})
	}
}

func TestMeasureQuality_Sample(t *testing.T) {
	t.Parallel()
	c := makeQualityClips(t)
	ctx, tools := t.Context(), quality.Tools{}
	ref, dist := quality.Input{Path: c.ref, Skip: 3}, quality.Input{Path: c.lossy, Frames: 47}
	full, err := quality.MeasureQuality(ctx, tools, ref, dist, quality.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sample int
		want   []int64 // positions: the middle of each of sample parts of 47
	}{
		{sample: 1, want: []int64{23}},
		{sample: 2, want: []int64{11, 35}},
		{sample: 7, want: []int64{3, 10, 16, 23, 30, 36, 43}},
		{sample: 46, want: nil}, // every position but one; checked by count
		{sample: 47, want: nil}, // as many as there are: all
		{sample: 1000, want: nil},
	}
	for _, tt := range tests {
		frames, err := quality.MeasureQuality(ctx, tools, ref, dist, quality.Options{Sample: tt.sample})
		if err != nil {
			t.Fatalf("Sample %d: %v", tt.sample, err)
		}
		if got, want := len(frames), min(tt.sample, len(full)); got != want {
			t.Fatalf("Sample %d: %d frames, want %d", tt.sample, got, want)
		}
		for i, f := range frames {
			if tt.want != nil && f.Frame != tt.want[i] {
				t.Errorf("Sample %d: frames[%d].Frame = %d, want %d", tt.sample, i, f.Frame, tt.want[i])
			}
			// The sampled picture is the one a full run measures there.
			if f != full[f.Frame] {
				t.Errorf("Sample %d: %+v, the full run has %+v", tt.sample, f, full[f.Frame])
			}
			if i > 0 && f.Frame <= frames[i-1].Frame {
				t.Errorf("Sample %d: positions not increasing: %d after %d", tt.sample, f.Frame, frames[i-1].Frame)
			}
		}
	}
}

func TestMeasureQuality_Errors(t *testing.T) {
	t.Parallel()
	c := makeQualityClips(t)
	notMedia := filepath.Join(t.TempDir(), "notes.mkv")
	if err := os.WriteFile(notMedia, []byte("not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		ref, dist quality.Input
		opt       quality.Options
		is        error
		counts    *quality.FrameCountError // want errors.As to find these
		text      string
	}{
		{
			name: "fewer distorted pictures",
			ref:  quality.Input{Path: c.ref}, dist: quality.Input{Path: c.cut10},
			is: quality.ErrFrameCountMismatch, counts: &quality.FrameCountError{Reference: 50, Distorted: 40},
			text: "the distorted input has 40 pictures in range, the reference 50",
		},
		{
			name: "fewer reference pictures",
			ref:  quality.Input{Path: c.cut10}, dist: quality.Input{Path: c.ref, Skip: 5},
			is: quality.ErrFrameCountMismatch, counts: &quality.FrameCountError{Reference: 40, Distorted: 45},
		},
		{
			name: "range beyond the end",
			ref:  quality.Input{Path: c.ref, Skip: 20, Frames: 40}, dist: quality.Input{Path: c.cut10, Skip: 10, Frames: 40},
			is:   quality.ErrFrameCountMismatch,
			text: "the reference has 50 pictures, 30 after skipping 20, fewer than the 40 asked for",
		},
		{
			// The first 40 pictures match, but the file has more than its
			// chunk (a shard with a picture added at its end).
			name: "more pictures than the file must hold",
			ref:  quality.Input{Path: c.ref, Frames: 40}, dist: quality.Input{Path: c.ref, Frames: 40, Pictures: 49},
			is:   quality.ErrFrameCountMismatch,
			text: "the distorted input has 50 pictures, not 49",
		},
		{
			name: "empty ranges",
			ref:  quality.Input{Path: c.ref, Skip: 50}, dist: quality.Input{Path: c.cut10, Skip: 60},
			text: "nothing to compare",
		},
		{
			name: "missing distorted file",
			ref:  quality.Input{Path: c.ref}, dist: quality.Input{Path: c.ref + ".missing"},
			is: fs.ErrNotExist,
		},
		{
			name: "not media",
			ref:  quality.Input{Path: notMedia}, dist: quality.Input{Path: c.ref},
			is: quality.ErrNotMedia,
		},
		{
			name: "negative skip",
			ref:  quality.Input{Path: c.ref, Skip: -1}, dist: quality.Input{Path: c.ref},
			text: "Skip >= 0",
		},
		{
			name: "negative sample",
			ref:  quality.Input{Path: c.ref}, dist: quality.Input{Path: c.ref},
			opt:  quality.Options{Sample: -1},
			text: "negative",
		},
		{
			// The right pictures at twice their times: a join would
			// place them over the next shard's.
			name: "pictures at other times",
			ref:  quality.Input{Path: c.ref}, dist: quality.Input{Path: c.slow},
			opt:  quality.Options{SameTimes: true},
			is:   quality.ErrTimesDiffer,
			text: "picture 1 is shown 0.080000s after the first compared, the reference's 0.040000s",
		},
		{
			name: "pictures at other times, sampled",
			ref:  quality.Input{Path: c.ref, Skip: 10}, dist: quality.Input{Path: c.slow, Skip: 10},
			opt: quality.Options{SameTimes: true, Sample: 4},
			is:  quality.ErrTimesDiffer,
		},
		{
			name: "VMAF",
			ref:  quality.Input{Path: c.ref}, dist: quality.Input{Path: c.ref},
			opt: quality.Options{VMAF: true},
			is:  quality.ErrNoVMAF,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frames, err := quality.MeasureQuality(t.Context(), quality.Tools{}, tt.ref, tt.dist, tt.opt)
			if err == nil {
				t.Fatalf("no error, %d frames", len(frames))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.is)
			}
			if tt.is != quality.ErrFrameCountMismatch && errors.Is(err, quality.ErrFrameCountMismatch) {
				t.Errorf("err = %v, which is not a count mismatch", err)
			}
			if tt.counts != nil {
				var fce *quality.FrameCountError
				if !errors.As(err, &fce) || *fce != *tt.counts {
					t.Errorf("err = %v, want a %+v", err, *tt.counts)
				}
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to mention %q", err, tt.text)
			}
		})
	}
}

// Input.Formats restricts the demuxers that may read a file, for input from
// elsewhere: a file only another demuxer reads is not media, and a playlist
// (which could pull other local files in) is refused.
func TestMeasureQuality_Formats(t *testing.T) {
	t.Parallel()
	c := makeQualityClips(t)
	playlist := filepath.Join(t.TempDir(), "list.m3u8")
	body := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n" + c.ref + "\n#EXT-X-ENDLIST\n"
	if err := os.WriteFile(playlist, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	chunkFormats := []string{"mov", "matroska", "mpegts"}
	tests := []struct {
		name    string
		ref     quality.Input
		wantErr error // nil: measured
	}{
		{name: "allowed demuxer", ref: quality.Input{Path: c.ref, Formats: chunkFormats}},
		{name: "any demuxer", ref: quality.Input{Path: c.ref}},
		{name: "demuxer not listed", ref: quality.Input{Path: c.ref, Formats: []string{"mov"}}, wantErr: quality.ErrNotMedia},
		{name: "playlist refused", ref: quality.Input{Path: playlist, Formats: chunkFormats}, wantErr: quality.ErrNotMedia},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frames, err := quality.MeasureQuality(t.Context(), quality.Tools{}, tt.ref, quality.Input{Path: c.copy}, quality.Options{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want it to wrap %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != qualityClipFrames {
				t.Fatalf("%d frames, want %d", len(frames), qualityClipFrames)
			}
		})
	}
}

func TestMeasureQuality_Cancelled(t *testing.T) {
	t.Parallel()
	c := makeQualityClips(t)
	ref, dist := quality.Input{Path: c.ref}, quality.Input{Path: c.lossy}

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := quality.MeasureQuality(ctx, quality.Tools{}, ref, dist, quality.Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("while ffmpeg runs", func(t *testing.T) {
		// An "ffmpeg" that never ends: MeasureQuality must kill it.
		hang := filepath.Join(t.TempDir(), "ffmpeg")
		if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := quality.MeasureQuality(ctx, quality.Tools{FFmpeg: hang}, ref, dist, quality.Options{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("returned after %v", d)
		}
	})
}

func TestSummarize(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		frames []quality.Frame
		want   quality.Stats
	}{
		{name: "none", want: quality.Stats{}},
		{
			name:   "one",
			frames: []quality.Frame{{PSNR: 40, SSIM: 0.9}},
			want:   quality.Stats{Frames: 1, MinPSNR: 40, MeanPSNR: 40, MinSSIM: 0.9, MeanSSIM: 0.9},
		},
		{
			// MSE 1e-4 and 1e-2 (of max²): mean 5.05e-3, 22.97 dB, not the
			// 30 dB mean of the PSNRs.
			name:   "mean of MSE",
			frames: []quality.Frame{{PSNR: 40, SSIM: 1}, {PSNR: 20, SSIM: 0.5}},
			want:   quality.Stats{Frames: 2, MinPSNR: 20, MeanPSNR: -10 * math.Log10(5.05e-3), MinSSIM: 0.5, MeanSSIM: 0.75},
		},
		{
			name:   "identical and not",
			frames: []quality.Frame{{PSNR: inf, SSIM: 1}, {PSNR: 30, SSIM: 0.8}},
			want:   quality.Stats{Frames: 2, MinPSNR: 30, MeanPSNR: 30 + 10*math.Log10(2), MinSSIM: 0.8, MeanSSIM: 0.9},
		},
		{
			name:   "all identical",
			frames: []quality.Frame{{PSNR: inf, SSIM: 1}, {PSNR: inf, SSIM: 1}},
			want:   quality.Stats{Frames: 2, MinPSNR: inf, MeanPSNR: inf, MinSSIM: 1, MeanSSIM: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quality.Summarize(tt.frames)
			if got.Frames != tt.want.Frames ||
				!nearOrInf(got.MinPSNR, tt.want.MinPSNR) || !nearOrInf(got.MeanPSNR, tt.want.MeanPSNR) ||
				!nearOrInf(got.MinSSIM, tt.want.MinSSIM) || !nearOrInf(got.MeanSSIM, tt.want.MeanSSIM) {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func nearOrInf(a, b float64) bool {
	return a == b || near(a, b, 1e-9)
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		json string
	}{
		{
			name: "frame",
			v:    quality.Frame{Frame: 3, PSNR: 41.5, SSIM: 0.98},
			json: `{"frame":3,"psnr":41.5,"ssim":0.98}`,
		},
		{
			name: "identical frame",
			v:    quality.Frame{Frame: 4, PSNR: math.Inf(1), SSIM: 1},
			json: `{"frame":4,"psnr":null,"ssim":1}`,
		},
		{
			name: "stats",
			v:    quality.Stats{Frames: 2, MinPSNR: 30, MeanPSNR: math.Inf(1), MinSSIM: 0.8, MeanSSIM: 0.9},
			json: `{"frames":2,"min_psnr":30,"mean_psnr":null,"min_ssim":0.8,"mean_ssim":0.9}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tt.json {
				t.Fatalf("Marshal = %s, want %s", got, tt.json)
			}
			var back any
			switch tt.v.(type) {
			case quality.Frame:
				var f quality.Frame
				err, back = json.Unmarshal(b, &f), f
			case quality.Stats:
				var s quality.Stats
				err, back = json.Unmarshal(b, &s), s
			}
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.v {
				t.Errorf("round trip: %+v, want %+v", back, tt.v)
			}
		})
	}
}

// BenchmarkMeasureQuality compares, on a 10 s 1280x720 25 fps clip (noisy
// testsrc2 encoded with libx264 crf 12 as the reference, a crf 23
// re-encode of it as the distorted input), MeasureQuality in full and in
// sample mode with a plain decode of both files, interleaved so that load
// from elsewhere hits all three alike. It reports wall and CPU seconds
// (ffmpeg's user+system time, from the children's rusage) per run of each,
// and the ratios to the decode.
//
//	go test ./internal/quality/ -run '^$' -bench MeasureQuality -benchtime 3x
func BenchmarkMeasureQuality(b *testing.B) {
	tools := mediaTools(b)
	dir := b.TempDir()
	ref, dist := filepath.Join(dir, "ref.mkv"), filepath.Join(dir, "dist.mkv")
	ffmpegT(b, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=10",
		"-vf", "noise=alls=8:allf=t,format=yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-crf", "12", ref)
	ffmpegT(b, "-i", ref, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", dist)

	ctx := context.Background()
	in := func(p string) quality.Input { return quality.Input{Path: p} }
	runs := []struct {
		name string
		run  func() error
	}{
		{"decode", func() error {
			ffmpegT(b, "-i", ref, "-i", dist, "-map", "0:v", "-map", "1:v", "-f", "null", "-")
			return nil
		}},
		{"full", func() error {
			_, err := quality.MeasureQuality(ctx, tools, in(ref), in(dist), quality.Options{})
			return err
		}},
		{"sample10", func() error {
			_, err := quality.MeasureQuality(ctx, tools, in(ref), in(dist), quality.Options{Sample: 10})
			return err
		}},
	}
	wall := make([]time.Duration, len(runs))
	cpu := make([]time.Duration, len(runs))
	n := 0
	for b.Loop() {
		n++
		for i, r := range runs {
			c0, t0 := childCPU(b), time.Now()
			if err := r.run(); err != nil {
				b.Fatalf("%s: %v", r.name, err)
			}
			wall[i] += time.Since(t0)
			cpu[i] += childCPU(b) - c0
		}
	}
	for i, r := range runs {
		b.ReportMetric(wall[i].Seconds()/float64(n), r.name+"-wall-s/op")
		b.ReportMetric(cpu[i].Seconds()/float64(n), r.name+"-cpu-s/op")
		if i > 0 {
			b.ReportMetric(wall[i].Seconds()/wall[0].Seconds(), r.name+"/decode-wall")
			b.ReportMetric(cpu[i].Seconds()/cpu[0].Seconds(), r.name+"/decode-cpu")
		}
	}
}

// childCPU is the user+system time of the reaped children so far.
func childCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestMeasureQuality_SameSize: a distorted input from elsewhere is held to
// the reference's picture size, by what its stream says and by what its
// pictures turn out to be midway (a few kilobytes of H.264 can hold
// pictures of gigabytes), before its decoder allocates them.
func TestMeasureQuality_SameSize(t *testing.T) {
	t.Parallel()
	c := makeQualityClips(t)
	dir := t.TempDir()
	big := "color=black:size=4096x4096:rate=25"
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "5", "-f", "h264"}
	ffmpegT(t, append([]string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "30"}, append(x264, filepath.Join(dir, "a.h264"))...)...)
	ffmpegT(t, append([]string{"-f", "lavfi", "-i", big, "-frames:v", "5"}, append(x264, filepath.Join(dir, "b.h264"))...)...)
	a, err := os.ReadFile(filepath.Join(dir, "a.h264"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "b.h264"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ab.h264"), append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	grows := filepath.Join(dir, "grows.mkv") // says 320x240; its pictures 31 to 35 are 4096x4096
	ffmpegT(t, "-r", "25", "-i", filepath.Join(dir, "ab.h264"), "-c", "copy", grows)
	huge := filepath.Join(dir, "huge.mkv")
	ffmpegT(t, "-r", "25", "-i", filepath.Join(dir, "b.h264"), "-c", "copy", huge)
	// libavcodec bounds a picture's width rounded up to 64 times its
	// height: a bound of exactly 200x150 would refuse 200x150 pictures.
	odd := filepath.Join(dir, "odd.mkv")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=size=200x150:rate=25", "-frames:v", "10", "-c:v", "ffv1", odd)
	oddEncoded := filepath.Join(dir, "odd_x264.mkv")
	ffmpegT(t, "-i", odd, "-c:v", "libx264", "-preset", "ultrafast", oddEncoded)

	tests := []struct {
		name   string
		ref    string // c.ref when empty
		dist   quality.Input
		frames int64
		want   error // nil: measured
	}{
		{"the same size, not a multiple of 64", odd, quality.Input{Path: oddEncoded}, 10, nil},
		{"another size", "", quality.Input{Path: c.small444}, 0, quality.ErrPictureSize},
		{"huge pictures", "", quality.Input{Path: huge}, 5, quality.ErrPictureSize},
		{"pictures that grow midway", "", quality.Input{Path: grows}, 35, quality.ErrDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref := quality.Input{Path: cmp.Or(tt.ref, c.ref), Frames: tt.frames}
			tt.dist.Frames = tt.frames
			_, err := quality.MeasureQuality(t.Context(), quality.Tools{}, ref, tt.dist, quality.Options{SameSize: true})
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("err = %v, want a measure", err)
			case tt.want != nil && (!errors.Is(err, tt.want) || !quality.IsFinding(err)):
				t.Fatalf("err = %v, want %v, a finding", err, tt.want)
			}
			// Without SameSize the pictures are scaled to the reference's.
			if _, err := quality.MeasureQuality(t.Context(), quality.Tools{}, ref, tt.dist, quality.Options{}); err != nil {
				t.Fatalf("without SameSize: %v", err)
			}
		})
	}
}

// Each measured picture says how the distorted input codes it: here
// progressive, then interlaced with the top field first, from a sample
// too.
func TestMeasureQuality_Fields(t *testing.T) {
	tools := mediaTools(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.mkv")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2", "-c:v", "ffv1", ref)
	dist := filepath.Join(dir, "dist.mkv")
	ffmpegT(t, "-i", ref, "-vf", "setfield=tff", "-c:v", "libx264", "-preset", "ultrafast",
		"-flags", "+ildct+ilme", "-top", "1", dist)
	for _, sample := range []int{0, 5} {
		frames, err := quality.MeasureQuality(context.Background(), tools, quality.Input{Path: dist}, quality.Input{Path: ref}, quality.Options{Sample: sample})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			if f.Fields != 'P' {
				t.Fatalf("sample %d: ffv1 picture %d is coded %q, want 'P'", sample, f.Frame, f.Fields)
			}
		}
		frames, err = quality.MeasureQuality(context.Background(), tools, quality.Input{Path: ref}, quality.Input{Path: dist}, quality.Options{Sample: sample})
		if err != nil {
			t.Fatal(err)
		}
		if len(frames) == 0 {
			t.Fatal("no frames measured")
		}
		for _, f := range frames {
			if f.Fields != 'T' {
				t.Fatalf("sample %d: interlaced picture %d is coded %q, want 'T'", sample, f.Frame, f.Fields)
			}
		}
	}
}
