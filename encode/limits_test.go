package encode_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/encode"
)

// The pixel limits against the committed 320x240 clip at 30000/1001
// frames/s with 90 pictures: one pixel, one pixel/s or one picture's worth
// less than the clip is refused before ffmpeg runs, with the measured and
// the allowed numbers and the config key; the clip's own numbers pass.
func TestFFmpeg_PixelLimits(t *testing.T) {
	const frame = 320 * 240           // 76800
	const rate = frame * 30000 / 1001 // 2301698 and a bit
	tests := []struct {
		name   string
		limits encode.PixelLimits
		refuse []string // nil: encoded
	}{
		{"no limits", encode.PixelLimits{}, nil},
		{"exactly the clip", encode.PixelLimits{FramePixels: frame, PixelsPerSecond: rate + 1, ChunkPixels: 90 * frame}, nil},
		{"frame", encode.PixelLimits{FramePixels: frame - 1},
			[]string{"pictures of 320x240 are 76800 pixels", "limits.max_frame_pixels is 76799"}},
		{"rate", encode.PixelLimits{PixelsPerSecond: rate},
			[]string{"320x240 at 29.970 frames/s is 2301698 pixels/s", "limits.max_pixels_per_second is 2301698"}},
		{"chunk", encode.PixelLimits{ChunkPixels: 90*frame - 1},
			[]string{"90 pictures of 320x240 are 6912000 pixels", "limits.max_chunk_pixels is 6911999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ran := filepath.Join(t.TempDir(), "ran")
			// An ffmpeg that only records that it ran: a refused
			// chunk must not get that far.
			fake := writeScript(t, "touch '"+ran+"'\nexit 1\n")
			tmp := t.TempDir()
			f := newFFmpeg(t, encode.FFmpegConfig{Binary: fake, Limits: tt.limits, TempDir: tmp})
			_, err := f.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), newFileOutput(t), encode.Options{})
			_, statErr := os.Stat(ran)
			if tt.refuse == nil {
				if errors.Is(err, encode.ErrTooManyPixels) || statErr != nil {
					t.Fatalf("err = %v (ffmpeg ran: %v), want ffmpeg run", err, statErr == nil)
				}
				return
			}
			if !errors.Is(err, encode.ErrTooManyPixels) {
				t.Fatalf("err = %v, want ErrTooManyPixels", err)
			}
			for _, want := range tt.refuse {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
			if statErr == nil {
				t.Errorf("ffmpeg ran for a refused chunk")
			}
			assertEmptyDir(t, tmp)
		})
	}
}

// makeClip runs ffmpeg with args (output options and file last) on a lavfi
// source and returns the output's path in dir.
func makeClip(t testing.TB, dir, source, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", source}, append(args, out)...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", cmd.Args, err, b)
	}
	return out
}

// A bitstream whose headers say 64x64 for its first 200 pictures and
// which then switches to 320x240 passes the probe; the decoder's own bound
// refuses the larger pictures, and the encode fails rather than store a
// shard without them.
func TestFFmpeg_PixelLimitsHoldWhenTheHeaderLies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "h264"}
	small := makeClip(t, dir, "color=c=gray:s=64x64:r=25:d=8", "small.h264", h264...)
	large := makeClip(t, dir, "color=c=gray:s=320x240:r=25:d=0.2", "large.h264", h264...)
	var both []byte
	for _, p := range []string{small, large} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		both = append(both, b...)
	}
	chunk := filepath.Join(dir, "switch.h264")
	if err := os.WriteFile(chunk, both, 0o644); err != nil {
		t.Fatal(err)
	}
	if v := firstStream(t, probeFile(t, chunk), "video"); v.Width != 64 || v.Height != 64 {
		t.Fatalf("the chunk's headers say %dx%d, want 64x64 (the test needs the lie)", v.Width, v.Height)
	}

	tmp := t.TempDir()
	f := newFFmpeg(t, encode.FFmpegConfig{Preset: "ultrafast", Limits: encode.PixelLimits{FramePixels: 10000}, TempDir: tmp})
	_, err := f.Encode(context.Background(), openFile(t, chunk), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrTooManyPixels) {
		t.Fatalf("err = %v, want ErrTooManyPixels", err)
	}
	for _, want := range []string{"a picture of 320x240", "limits.max_frame_pixels 10000", "while decoding the input"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	assertEmptyDir(t, tmp)

	// Without the frame bound the same chunk encodes.
	f = newFFmpeg(t, encode.FFmpegConfig{Preset: "ultrafast"})
	if _, err := f.Encode(context.Background(), openFile(t, chunk), newFileOutput(t), encode.Options{}); err != nil {
		t.Fatalf("without limits: %v", err)
	}
}

// Every decoder of the input gets the frame bound (with the decoder's row
// rounding), and the decoder gets the configured thread count as the
// encoder does.
func TestFFmpeg_ArgsBoundTheDecoder(t *testing.T) {
	f := newFFmpeg(t, encode.FFmpegConfig{Threads: 2, Limits: encode.PixelLimits{FramePixels: 6400}})
	args, err := encode.FFmpegArgs(f, "/in/chunk", "/out/shard", encode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	in, out, ok := strings.Cut(line, "-i file:/in/chunk")
	if !ok {
		t.Fatalf("args %q have no input", line)
	}
	for _, want := range []string{"-max_pixels 6500", "-threads 2"} {
		if !strings.Contains(in, want) {
			t.Errorf("input options %q lack %q", in, want)
		}
	}
	if !strings.Contains(out, "-threads 2") {
		t.Errorf("output options %q lack -threads 2", out)
	}
	f = newFFmpeg(t, encode.FFmpegConfig{})
	if args, _ := encode.FFmpegArgs(f, "/in/chunk", "/out/shard", encode.Options{}); strings.Contains(strings.Join(args, " "), "max_pixels") {
		t.Errorf("args %q: no limit, yet -max_pixels", args)
	}
}

func TestNewFFmpeg_BadPixelLimits(t *testing.T) {
	for _, l := range []encode.PixelLimits{
		{FramePixels: -1}, {FramePixels: 1 << 31}, {PixelsPerSecond: -1}, {ChunkPixels: -1},
	} {
		if _, err := encode.NewFFmpeg(encode.FFmpegConfig{Limits: l}); err == nil || !strings.Contains(err.Error(), "Limits.") {
			t.Errorf("NewFFmpeg(Limits %+v) = %v, want an error naming the field", l, err)
		}
	}
}
