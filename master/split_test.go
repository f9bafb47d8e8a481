package master_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/master"
)

// mustSplit splits a probed clip into a new directory.
func mustSplit(t testing.TB, src master.SourceInfo, seconds float64) []master.Chunk {
	t.Helper()
	chunks, err := master.Split(context.Background(), mediaTools(t), src, seconds, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

// firstPacketFlags returns the flags of the first packet in path ("K_" for
// a keyframe).
func firstPacketFlags(t testing.TB, path string) string {
	return ffprobeT(t, "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "packet=flags", "-of", "csv=p=0", path)
}

// checkChunks checks what every Split result must satisfy.
func checkChunks(t *testing.T, src master.SourceInfo, chunks []master.Chunk) {
	t.Helper()
	var frames int64
	var covered float64
	for i, c := range chunks {
		if c.Index != i {
			t.Errorf("chunk %d: Index %d", i, c.Index)
		}
		if !filepath.IsAbs(c.Path) || filepath.Base(c.Path) != fmt.Sprintf("chunk_%06d.mkv", i) {
			t.Errorf("chunk %d: Path %q", i, c.Path)
		}
		if got := firstPacketFlags(t, c.Path); !strings.HasPrefix(got, "K") {
			t.Errorf("chunk %d: first packet flags %q, want a keyframe", i, got)
		}
		// Only a video stream, in Matroska, with Frames packets.
		got := ffprobeT(t, "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets:format=format_name", "-of", "csv=p=0", c.Path)
		if want := "video," + strconv.FormatInt(c.Frames, 10) + "\n\"matroska,webm\""; got != want {
			t.Errorf("chunk %d: ffprobe reports %q, want %q", i, got, want)
		}
		fi, err := os.Stat(c.Path)
		if err != nil || fi.Size() != c.Size {
			t.Errorf("chunk %d: Size %d, file %v %v", i, c.Size, fi, err)
		}
		if !near(c.Start, covered, 1e-9) {
			t.Errorf("chunk %d: Start %v, want the previous chunks' total %v", i, c.Start, covered)
		}
		if c.Duration <= 0 {
			t.Errorf("chunk %d: Duration %v", i, c.Duration)
		}
		frames += c.Frames
		covered += c.Duration
	}
	if frames != src.Video.Frames {
		t.Errorf("chunks hold %d frames, the source %d", frames, src.Video.Frames)
	}
	if !near(covered, src.Video.Duration, 1e-6) {
		t.Errorf("chunks cover %vs, the source's video lasts %vs", covered, src.Video.Duration)
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		clip      string
		seconds   float64
		frames    []int64
		durations []float64
	}{
		{clipH264AAC, 1, []int64{30, 30, 30, 30}, []float64{1, 1, 1, 1}},
		{clipH264NTSC, 1, []int64{30, 30, 30}, []float64{1.001, 1.001, 1.001}},
		{clipVP9Opus, 1, []int64{25, 25, 25}, []float64{1, 1, 1}},
		// Cuts happen only at keyframes, one a second in these clips.
		{clipH264AAC, 0.3, []int64{30, 30, 30, 30}, []float64{1, 1, 1, 1}},
		{clipH264AAC, 2, []int64{60, 60}, []float64{2, 2}},
		{clipH264AAC, 10, []int64{120}, []float64{4}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%gs", tt.clip, tt.seconds), func(t *testing.T) {
			src := mustProbe(t, clip(tt.clip))
			chunks := mustSplit(t, src, tt.seconds)
			checkChunks(t, src, chunks)
			if len(chunks) != len(tt.frames) {
				t.Fatalf("%d chunks, want %d", len(chunks), len(tt.frames))
			}
			for i, c := range chunks {
				if c.Frames != tt.frames[i] || !near(c.Duration, tt.durations[i], 1e-6) {
					t.Errorf("chunk %d: %d frames, %vs; want %d, %vs", i, c.Frames, c.Duration, tt.frames[i], tt.durations[i])
				}
			}
		})
	}
}

// TestSplit_WithoutProbe: a SourceInfo that did not come from Probe makes
// Split find the keyframes itself, with the same result.
func TestSplit_WithoutProbe(t *testing.T) {
	t.Parallel()
	probed := mustProbe(t, clip(clipH264NTSC))
	src := master.SourceInfo{Path: probed.Path, Video: probed.Video}
	chunks := mustSplit(t, src, 1)
	checkChunks(t, probed, chunks)
	want := mustSplit(t, probed, 1)
	if len(chunks) != len(want) {
		t.Fatalf("%d chunks, with Probe's SourceInfo %d", len(chunks), len(want))
	}
	for i := range chunks {
		if chunks[i].Frames != want[i].Frames || chunks[i].Start != want[i].Start || chunks[i].Duration != want[i].Duration {
			t.Errorf("chunk %d: %+v, with Probe's SourceInfo %+v", i, chunks[i], want[i])
		}
	}
}

func TestSplit_Cancelled(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := master.Split(ctx, mediaTools(t), src, 1, dir)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertDirEntries(t, dir)
}

// TestSplit_CancelledWhileRunning: ffmpeg is killed and what it wrote is
// removed.
func TestSplit_CancelledWhileRunning(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	dir := t.TempDir()
	started := filepath.Join(t.TempDir(), "started")
	// A stand-in ffmpeg: writes a first chunk, says so, and hangs.
	fake := writeScript(t, fmt.Sprintf("echo partial > '%s/chunk_000000.mkv'\ntouch '%s'\nexec sleep 300\n", dir, started))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := master.Split(ctx, master.Tools{FFmpeg: fake}, src, 1, dir)
		errc <- err
	}()
	waitForFile(t, started)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertDirEntries(t, dir)
}

// TestSplit_ErrSplitMismatch: chunks that do not add up to the source are
// refused and removed.
func TestSplit_ErrSplitMismatch(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	dir := t.TempDir()
	// ffmpeg, then lose the last chunk.
	fake := writeScript(t, fmt.Sprintf("ffmpeg \"$@\" || exit 1\nrm '%s/chunk_000003.mkv'\n", dir))
	_, err := master.Split(context.Background(), master.Tools{FFmpeg: fake}, src, 1, dir)
	if !errors.Is(err, master.ErrSplitMismatch) {
		t.Fatalf("err = %v, want ErrSplitMismatch", err)
	}
	if !strings.Contains(err.Error(), "90 frames, the source 120") {
		t.Errorf("err = %q, want both frame counts", err)
	}
	assertDirEntries(t, dir)
}

func TestSplit_BadArguments(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	tools := mediaTools(t)
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "chunk_000000.mkv"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     master.SourceInfo
		seconds float64
		dir     string
		text    string
	}{
		{"zero length", src, 0, t.TempDir(), "positive"},
		{"negative length", src, -1, t.TempDir(), "positive"},
		{"no path", master.SourceInfo{}, 1, t.TempDir(), "no path"},
		{"missing dir", src, 1, filepath.Join(full, "missing"), "no such file"},
		{"dir holds chunks", src, 1, full, "already holds 1 chunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := master.Split(context.Background(), tools, tt.src, tt.seconds, tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.text)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(full, "chunk_000000.mkv")); err != nil || string(b) != "old" {
		t.Errorf("a refused Split touched the existing chunk: %q, %v", b, err)
	}
}

// writeScript writes an executable shell script standing in for a program.
func writeScript(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitForFile waits until path exists.
func waitForFile(t testing.TB, path string) {
	t.Helper()
	for i := 0; ; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if i == 1000 {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertDirEntries fails unless dir holds exactly the names given.
func assertDirEntries(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// TestSplit_VideoNotFirst: the video is found and cut wherever it is among
// the streams, and a cover image is not taken for it.
func TestSplit_VideoNotFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	png := filepath.Join(dir, "cover.png")
	ffmpegT(t, "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", png)
	srcPath := filepath.Join(dir, "src.mp4")
	ffmpegT(t, "-i", png, "-f", "lavfi", "-i", "sine=d=2", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2",
		"-map", "0", "-map", "1", "-map", "2", "-c:v:0", "png", "-disposition:v:0", "attached_pic",
		"-c:v:1", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac", srcPath)
	src := mustProbe(t, srcPath)
	// MP4 puts the audio first and the cover image last.
	if src.Video.Index != 1 || src.Video.Frames != 50 {
		t.Fatalf("Video = stream %d with %d frames, want stream 1 with 50", src.Video.Index, src.Video.Frames)
	}
	chunks := mustSplit(t, src, 0.4)
	checkChunks(t, src, chunks)
	out := filepath.Join(t.TempDir(), "out.mkv")
	side := joinTo(t, src, encodeShards(t, chunks, x264Args), out)
	if len(side.Dropped) != 1 || !strings.Contains(side.Dropped[0], "stream 2 (video png)") {
		t.Errorf("Dropped = %q, want the cover image", side.Dropped)
	}
	mustVerify(t, src, out)
}
