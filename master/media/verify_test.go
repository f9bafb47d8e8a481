package media_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// verifyBroken joins shards (already broken by the caller) without checks
// and returns Verify's findings.
func verifyBroken(t *testing.T, src media.SourceInfo, shards []media.Shard, side bool, name string) media.Verification {
	t.Helper()
	ctx, tools := context.Background(), mediaTools(t)
	out := filepath.Join(t.TempDir(), name)
	var ss media.SideStreams
	if side {
		container, _ := media.ContainerFor(out)
		var err error
		if ss, err = media.PlanSideStreams(ctx, tools, src, container); err != nil {
			t.Fatal(err)
		}
	}
	if err := media.Join(ctx, tools, src, shards, ss, out); err != nil {
		t.Fatal(err)
	}
	v, err := media.Verify(ctx, tools, src, ss, out)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantProblem(t *testing.T, v media.Verification, text string) {
	t.Helper()
	if v.OK {
		t.Errorf("OK with %+v", v)
	}
	for _, p := range v.Problems {
		if strings.Contains(p, text) {
			return
		}
	}
	t.Errorf("Problems %q, want one mentioning %q", v.Problems, text)
}

func TestVerify_MissingChunk(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264AAC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	v := verifyBroken(t, src, shards[:3], true, "out.mkv")
	wantProblem(t, v, "90 video frames, the source 120")
	wantProblem(t, v, "lasts 3.000000s, the source's 4.000000s")
	if v.MaxDrift != -1 {
		t.Errorf("MaxDrift = %v, want -1 when frame counts differ", v.MaxDrift)
	}
}

// TestVerify_Drift: every frame is there but the shards are placed wrong.
func TestVerify_Drift(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264NTSC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	for i := range shards {
		shards[i].Duration += 0.05 // a gap after every shard
	}
	v := verifyBroken(t, src, shards, false, "out.mkv")
	wantProblem(t, v, "drift up to 0.100")
	wantProblem(t, v, "more than a frame")
	if v.OutputFrames != v.SourceFrames {
		t.Errorf("frames %d, want %d", v.OutputFrames, v.SourceFrames)
	}
}

func TestVerify_LostAudio(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264AAC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	v := verifyBroken(t, src, shards, false, "out.mp4")
	wantProblem(t, v, "0 audio streams, the source 1")
	if len(v.Problems) != 1 {
		t.Errorf("Problems %q, want only the audio", v.Problems)
	}
}

func TestVerify_NoVideo(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	out := filepath.Join(t.TempDir(), "audio.mka")
	ffmpegT(t, "-i", src.Path, "-map", "0:a", "-c", "copy", out)
	v, err := media.Verify(context.Background(), mediaTools(t), src, media.SideStreams{}, out)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, v, "no video stream")
}

func TestVerify_Errors(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	tools := mediaTools(t)
	_, err := media.Verify(context.Background(), tools, src, media.SideStreams{}, filepath.Join(t.TempDir(), "missing.mkv"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing output: err = %v, want fs.ErrNotExist", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.mkv")
	if err := os.WriteFile(junk, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := media.Verify(context.Background(), tools, src, media.SideStreams{}, junk); !errors.Is(err, media.ErrNotMedia) {
		t.Errorf("junk output: err = %v, want ErrNotMedia", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := media.Verify(ctx, tools, src, media.SideStreams{}, src.Path); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

// TestVerify_SourceAgainstItself: a file is its own perfect output.
func TestVerify_SourceAgainstItself(t *testing.T) {
	t.Parallel()
	for _, c := range []string{clipH264AAC, clipH264NTSC, clipVP9Opus} {
		src := mustProbe(t, clip(c))
		v := mustVerify(t, src, src.Path)
		if v.MaxDrift != 0 || v.OutputDuration != v.SourceDuration || v.AVOffsetOutput != v.AVOffsetSource {
			t.Errorf("%s: %+v, want identical", c, v)
		}
	}
}

// catTwice writes a 2 s transport stream of 160x120 H.264 in dir, with the
// inputs and options more (audio, say), and returns the file of it run
// together twice (cat a.ts a.ts): its timestamps restart midway.
func catTwice(t *testing.T, dir string, more ...string) string {
	t.Helper()
	part := filepath.Join(dir, "part.ts")
	args := append([]string{"-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2"}, more...)
	ffmpegT(t, append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "mpegts", part)...)
	data, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	twice := filepath.Join(dir, "twice.ts")
	if err := os.WriteFile(twice, append(data, data...), 0o644); err != nil {
		t.Fatal(err)
	}
	return twice
}

// TestVerify_AudioTimestampsRestart: a transport stream whose timestamps
// restart midway (two captures concatenated) gets its video retimed, but
// its audio keeps the restart: half its sound on the same seconds as the
// other half. Verification says so rather than OK.
func TestVerify_AudioTimestampsRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	twice := catTwice(t, dir, "-f", "lavfi", "-i", "sine=r=48000:d=2", "-c:a", "aac")
	srcPath := filepath.Join(dir, "restart.ts")
	ffmpegT(t, "-copyts", "-i", twice, "-map", "0", "-c", "copy", "-f", "mpegts", "-muxdelay", "0", srcPath)
	src := mustProbe(t, srcPath)
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	v := verifyBroken(t, src, shards, true, "out.mkv")
	wantProblem(t, v, "its timestamps overlap")
}

// TestVerify_TimestampsRestart: a source whose picture timestamps go back
// for good midway (transport streams run together) is timed as the split
// times it, the later pictures following on: an output that shows them so
// verifies, one that keeps the restart fails rather than passing
// uncompared.
func TestVerify_TimestampsRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srcPath := catTwice(t, dir)
	src := mustProbe(t, srcPath)
	if src.Video.Frames != 100 || src.Video.Duration != 4 || !slices.ContainsFunc(src.Warnings, func(w string) bool {
		return strings.Contains(w, "timestamps go back, or jump ahead more than 10s, at 1 point (first at picture 50, 2.000s)")
	}) {
		t.Fatalf("probe: %d frames for %vs, warnings %q; want 100 for 4s, the restart named", src.Video.Frames, src.Video.Duration, src.Warnings)
	}
	retimed := filepath.Join(dir, "retimed.mkv")
	ffmpegT(t, "-r", "25", "-i", srcPath, "-c:v", "libx264", "-preset", "ultrafast", retimed)
	if v := mustVerify(t, src, retimed); !v.OK || v.Untimed || v.SourceDuration != 4 || v.MaxDrift > 0.002 {
		t.Errorf("following on: %+v, want OK, timed, 4s, no drift", v)
	}
	kept := filepath.Join(dir, "kept.ts")
	ffmpegT(t, "-copyts", "-i", srcPath, "-c", "copy", "-f", "mpegts", "-muxdelay", "0", kept)
	v, err := media.Verify(context.Background(), mediaTools(t), src, media.SideStreams{}, kept)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, v, "the source's 4.000000s")
}

// TestProbe_TransportClockJumps: two transport-stream captures run
// together, where the second's clock restarts at another frame rate, or
// jumps 1000 s ahead. The video lasts as the two captures do, each at its
// own rate (the decoder's timestamps, not framehash's held ones), as
// ffmpeg plays it; neither half is retimed to the other's rate, and no
// frozen gap is left.
func TestProbe_TransportClockJumps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := filepath.Join(dir, "first.ts")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "mpegts", first)
	for _, tt := range []struct {
		name   string
		second []string // the second capture's ffmpeg output options
	}{
		{"restart at 50 fps", []string{"-r", "50"}},
		{"jump ahead", []string{"-output_ts_offset", "1000"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			second := filepath.Join(t.TempDir(), "second.ts")
			ffmpegT(t, append(append([]string{"-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2"}, tt.second...),
				"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "mpegts", second)...)
			a, err := os.ReadFile(first)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(second)
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(t.TempDir(), "joined.ts")
			if err := os.WriteFile(src, append(a, b...), 0o644); err != nil {
				t.Fatal(err)
			}
			info := mustProbe(t, src)
			if d := info.Video.Duration; d < 3.9 || d > 4.1 {
				t.Errorf("the video lasts %.3fs, want 4s (2s of each capture); warnings %q", d, info.Warnings)
			}
		})
	}
}

// TestVerify_AudioGapIntoMP4: a source whose audio drops out for a second
// (a capture's dropout), joined into MP4, which has no timestamp gaps: the
// muxer lengthens the sample before the gap, so the output's audio has
// more sound than the source's, as much as its gap. That verifies; the
// sound lost from a shorter output would not.
func TestVerify_AudioGapIntoMP4(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.mkv")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=4", "-f", "lavfi", "-i", "sine=d=4:r=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "pcm_s16le", "-frame_size", "1024", base)
	srcPath := filepath.Join(dir, "gap.mkv")
	ffmpegT(t, "-i", base, "-map", "0", "-c", "copy", "-bsf:a", `noise=drop=between(pts*tb\,1\,2)`, srcPath)
	src := mustProbe(t, srcPath)
	shards := encodeShards(t, mustSplit(t, src, 2), x264Args)
	if v := verifyBroken(t, src, shards, true, "out.mp4"); !v.OK {
		t.Errorf("the gap filled in MP4: %q, want OK", v.Problems)
	}
}

// TestVerify_AudioStart: the audio/video offset is measured to the first
// sample of the source's sound, not to the audio's first packet. AAC's
// priming (1024 samples) is hidden by an MP4's edit list; Matroska cannot
// mark it, so a copy there plays it and starts the video as much later:
// in sync, though the streams' start times differ by 21 ms at 48 kHz and
// 64 ms at 16 kHz, more than a frame at 60 fps. Audio truly moved is
// still found.
func TestVerify_AudioStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name     string
		rate     string // the source's audio sample rate
		output   string
		audioLag string // seconds the output's audio is moved after it is joined; "" for none
		problem  string // "" for none
	}{
		{"AAC at 48 kHz copied into Matroska", "48000", "out.mkv", "", ""},
		{"AAC at 16 kHz copied into Matroska", "16000", "out.mkv", "", ""},
		{"AAC copied into MP4", "48000", "out.mp4", "", ""},
		{"audio moved two frames late", "48000", "out.mkv", "0.034", "after its audio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srcPath := filepath.Join(t.TempDir(), "phone.mp4")
			ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=60:d=2", "-f", "lavfi", "-i", "sine=f=440:d=2:r="+tt.rate,
				"-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-c:a", "aac", srcPath)
			src := mustProbe(t, srcPath)
			shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
			ctx, tools := context.Background(), mediaTools(t)
			out := filepath.Join(t.TempDir(), tt.output)
			container, err := media.ContainerFor(out)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := media.PlanSideStreams(ctx, tools, src, container)
			if err != nil {
				t.Fatal(err)
			}
			if err := media.Join(ctx, tools, src, shards, plan, out); err != nil {
				t.Fatal(err)
			}
			if tt.audioLag != "" {
				moved := filepath.Join(dir, tt.name+tt.output)
				ffmpegT(t, "-i", out, "-itsoffset", tt.audioLag, "-i", out, "-map", "0:v", "-map", "1:a", "-c", "copy", moved)
				out = moved
			}
			v, err := media.Verify(ctx, tools, src, plan, out)
			if err != nil {
				t.Fatal(err)
			}
			if tt.problem != "" {
				wantProblem(t, v, tt.problem)
			} else if !v.OK {
				t.Errorf("problems %q (offsets: source %.4f, output %.4f)", v.Problems, v.AVOffsetSource, v.AVOffsetOutput)
			}
		})
	}
}
