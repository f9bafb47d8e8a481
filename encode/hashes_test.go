package encode_test

import (
	"context"
	"encoding/hex"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/internal/framehash"
)

// With HashPictures, the encode returns the hashes of every picture the
// input decodes to, before the trim, as a separate ffmpeg decode of the
// input gives them; without it, none. The settings do not change.
func TestFFmpeg_PictureHashes(t *testing.T) {
	t.Parallel()
	clip := trimClip(t)
	src, _ := pictureHashes(t, clip)
	tests := []struct {
		name string
		opts encode.Options
	}{
		{"not asked", encode.Options{Preset: "ultrafast"}},
		{"whole chunk", encode.Options{Preset: "ultrafast", HashPictures: true}},
		{"trimmed", encode.Options{Preset: "ultrafast", HashPictures: true, Trim: &encode.Trim{Start: 30, Frames: 20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp, AllowOverrides: encode.AnyOverride()})
			res, err := enc.Encode(context.Background(), openFile(t, clip), newFileOutput(t), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.opts.HashPictures {
				if res.PictureHashes != nil {
					t.Fatalf("PictureHashes = %d bytes, not asked for", len(res.PictureHashes))
				}
				return
			}
			var got []string
			for h := range slices.Chunk(res.PictureHashes, framehash.Size) {
				got = append(got, hex.EncodeToString(h))
			}
			if !slices.Equal(got, src) {
				t.Fatalf("PictureHashes (%d) differ from the input's pictures (%d):\ngot  %v\nwant %v", len(got), len(src), got, src)
			}
			want, err := enc.Settings(encode.Options{Preset: "ultrafast", Trim: tt.opts.Trim})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(res.Settings, want) {
				t.Errorf("Settings = %v, want %v (hashing is not a setting)", res.Settings, want)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

// BenchmarkFFmpegPictureHashesCost measures what HashPictures adds to an
// encode (the hashes come from the encode's own decode, so only hashing
// and a second output): a 10 s 720p chunk with film grain, libx264 preset
// medium as the master benchmark's workers encode, with and without it in
// interleaved rounds. Reported: the median wall ratio (hashed / plain).
func BenchmarkFFmpegPictureHashesCost(b *testing.B) {
	dir := b.TempDir()
	clip := filepath.Join(dir, "clip.mkv")
	gen := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10", "-vf", "noise=alls=12:allf=t",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p", clip)
	if out, err := gen.CombinedOutput(); err != nil {
		b.Fatalf("make clip: %v\n%s", err, out)
	}
	enc := newFFmpeg(b, encode.FFmpegConfig{Preset: "medium", TempDir: dir})
	out := newFileOutput(b)
	run := func(hash bool) time.Duration {
		f, err := os.Open(clip)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		res, err := enc.Encode(context.Background(), f, out, encode.Options{HashPictures: hash})
		if err != nil {
			b.Fatal(err)
		}
		if hash && len(res.PictureHashes) != 300*framehash.Size {
			b.Fatalf("%d bytes of hashes, want 300 pictures'", len(res.PictureHashes))
		}
		return time.Since(start)
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("VIDEOSHARD_BENCH_HASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	for b.Loop() {
		var ratios []float64
		for r := range rounds {
			var plain, hashed time.Duration
			if r%2 == 0 {
				plain, hashed = run(false), run(true)
			} else { // the other order too
				hashed, plain = run(true), run(false)
			}
			ratios = append(ratios, hashed.Seconds()/plain.Seconds())
			b.Logf("round %d: plain %.2f s, hashed %.2f s (%.3f)", r, plain.Seconds(), hashed.Seconds(), ratios[r])
		}
		slices.Sort(ratios)
		b.Logf("median hashed/plain %.3f", ratios[len(ratios)/2])
		b.ReportMetric(ratios[len(ratios)/2], "hashed/plain")
	}
}
