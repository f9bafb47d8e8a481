package media_test

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// The media tests run the real ffmpeg and ffprobe. They fail, never skip,
// when those are missing: CI installs them, and a skip would hide that.

// Sample clips in testdata/ (see testdata/README.md).
const (
	clipH264AAC  = "h264_aac_640x360_30fps_4s.mp4"
	clipH264NTSC = "h264_noaudio_320x240_30000-1001_3s.mkv"
	clipVP9Opus  = "vp9_opus_320x240_25fps_3s.webm"
)

// mediaTools checks that ffmpeg and ffprobe are installed and returns the
// defaults.
func mediaTools(t testing.TB) media.Tools {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the media tests need %s in PATH (they fail rather than skip): %v", bin, err)
		}
	}
	return media.Tools{}
}

// clip returns the path of a committed sample clip.
func clip(name string) string {
	return filepath.Join("..", "..", "testdata", name)
}

// ffmpegT runs ffmpeg with args (after -nostdin -v error -y) to make a test
// fixture.
func ffmpegT(t testing.TB, args ...string) {
	t.Helper()
	full := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)
	if out, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ffprobeT runs ffprobe -v error with args and returns its trimmed output.
func ffprobeT(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-v", "error"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// mustProbe probes a file that must be a video.
func mustProbe(t testing.TB, path string) media.SourceInfo {
	t.Helper()
	src, err := media.Probe(context.Background(), mediaTools(t), path)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestProbe(t *testing.T) {
	tests := []struct {
		clip          string
		format        string
		codec         string
		width, height int
		frameRate     string
		fps           float64
		frames        int64
		keyframes     int
		duration      float64 // video, first frame start to last frame end
		audio         []string
	}{
		{clipH264AAC, "mov,mp4,m4a,3gp,3g2,mj2", "h264", 640, 360, "30/1", 30, 120, 4, 4, []string{"aac"}},
		{clipH264NTSC, "matroska,webm", "h264", 320, 240, "30000/1001", 30000.0 / 1001, 90, 3, 3.003, nil},
		{clipVP9Opus, "matroska,webm", "vp9", 320, 240, "25/1", 25, 75, 3, 3, []string{"opus"}},
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			src := mustProbe(t, clip(tt.clip))
			v := src.Video
			if !filepath.IsAbs(src.Path) {
				t.Errorf("Path = %q, want absolute", src.Path)
			}
			if got, want := src.FormatName, tt.format; got != want {
				t.Errorf("FormatName = %q, want %q", got, want)
			}
			if v.Index != 0 || v.Type != "video" || v.Codec != tt.codec {
				t.Errorf("Video = index %d type %q codec %q, want 0 video %q", v.Index, v.Type, v.Codec, tt.codec)
			}
			if v.Width != tt.width || v.Height != tt.height {
				t.Errorf("size = %dx%d, want %dx%d", v.Width, v.Height, tt.width, tt.height)
			}
			if v.FrameRate != tt.frameRate || !near(v.FPS, tt.fps, 1e-9) {
				t.Errorf("FrameRate %q FPS %v, want %q %v", v.FrameRate, v.FPS, tt.frameRate, tt.fps)
			}
			if v.Frames != tt.frames {
				t.Errorf("Frames = %d, want %d", v.Frames, tt.frames)
			}
			if v.Keyframes != tt.keyframes {
				t.Errorf("Keyframes = %d, want %d", v.Keyframes, tt.keyframes)
			}
			if !near(v.Duration, tt.duration, 0.0015) {
				t.Errorf("video Duration = %v, want %v", v.Duration, tt.duration)
			}
			if v.TimeBase == "" || src.Duration <= 0 || src.Size <= 0 {
				t.Errorf("TimeBase %q Duration %v Size %d: want all set", v.TimeBase, src.Duration, src.Size)
			}
			var audio []string
			for _, a := range src.Audio {
				audio = append(audio, a.Codec)
				if a.Channels != 1 || a.SampleRate != 48000 {
					t.Errorf("audio %d: %d channels at %d Hz, want mono 48000", a.Index, a.Channels, a.SampleRate)
				}
			}
			if strings.Join(audio, ",") != strings.Join(tt.audio, ",") {
				t.Errorf("audio = %v, want %v", audio, tt.audio)
			}
			if len(src.Other) != 0 {
				t.Errorf("Other = %+v, want none", src.Other)
			}
		})
	}
}

// TestProbe_StartTimes: the VP9/Opus clip's audio starts before its video
// (Opus pre-skip), which Join has to keep.
func TestProbe_StartTimes(t *testing.T) {
	src := mustProbe(t, clip(clipVP9Opus))
	if got, want := src.StartTime, -0.007; !near(got, want, 1e-9) {
		t.Errorf("StartTime = %v, want %v", got, want)
	}
	if got, want := src.Video.StartTime, 0.007; !near(got, want, 1e-9) {
		t.Errorf("Video.StartTime = %v, want %v", got, want)
	}
	if got, want := src.Audio[0].StartTime, -0.007; !near(got, want, 1e-9) {
		t.Errorf("Audio[0].StartTime = %v, want %v", got, want)
	}
}

func TestProbe_Errors(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "still.png")
	ffmpegT(t, "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", png)
	jpg := filepath.Join(dir, "still.jpg")
	ffmpegT(t, "-f", "lavfi", "-i", "color=c=blue:s=64x48", "-frames:v", "1", jpg)
	audio := filepath.Join(dir, "audio.m4a")
	ffmpegT(t, "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", audio)
	// An MP3 with a cover image: its only video stream is an attached picture.
	cover := filepath.Join(dir, "cover.mp3")
	ffmpegT(t, "-f", "lavfi", "-i", "sine=d=1", "-i", png, "-map", "0", "-map", "1",
		"-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic", cover)
	empty := filepath.Join(dir, "empty.mp4")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Packets without a single picture in them: every slice removed.
	noSlices := filepath.Join(dir, "noslices.mkv")
	ffmpegT(t, "-i", clip(clipH264NTSC), "-c", "copy", "-bsf:v", "filter_units=remove_types=1|5", noSlices)

	tests := []struct {
		name string
		path string
		want error
		text string // in the message
	}{
		{"text file", clip("not_video.txt"), media.ErrNotMedia, "Invalid data"},
		{"missing", filepath.Join(dir, "missing.mp4"), fs.ErrNotExist, "missing.mp4"},
		{"empty", empty, media.ErrNotMedia, "empty.mp4"},
		{"directory", dir, media.ErrNotMedia, "not a regular file"},
		{"png", png, media.ErrNoVideo, "still image"},
		{"jpeg", jpg, media.ErrNoVideo, "still image"},
		{"audio only", audio, media.ErrNoVideo, "no video stream"},
		{"cover image", cover, media.ErrNoVideo, "no video stream"},
		{"undecodable video", noSlices, media.ErrNoVideo, "but no picture ffmpeg can decode (ffmpeg: exit status 1: "},
	}
	tools := mediaTools(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := media.Probe(context.Background(), tools, tt.path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to mention %q", err, tt.text)
			}
		})
	}
}

// TestProbe_OnePicture: one picture in a video container is a video (a
// cover shown over a song), not the still image a PNG is.
func TestProbe_OnePicture(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"one.mp4", "one.mkv"} {
		path := filepath.Join(dir, name)
		ffmpegT(t, "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", "-c:v", "libx264", path)
		src, err := media.Probe(context.Background(), mediaTools(t), path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if src.Video.Frames != 1 {
			t.Errorf("%s: Frames = %d, want 1", name, src.Video.Frames)
		}
	}
}

func TestProbe_MissingFFprobe(t *testing.T) {
	tools := media.Tools{FFprobe: filepath.Join(t.TempDir(), "ffprobe")}
	_, err := media.Probe(context.Background(), tools, clip(clipH264AAC))
	if err == nil || errors.Is(err, media.ErrNotMedia) {
		t.Fatalf("err = %v, want a start error, not ErrNotMedia", err)
	}
}

func TestProbe_Cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := media.Probe(ctx, mediaTools(t), clip(clipH264AAC))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestContainerFor(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{"out.mkv", "matroska"},
		{"/x/OUT.MP4", "mp4"},
		{"a.b.m4v", "mp4"},
		{"clip.mov", "mov"},
		{"clip.webm", "webm"},
	}
	for _, tt := range tests {
		got, err := media.ContainerFor(tt.path)
		if err != nil || got != tt.want {
			t.Errorf("ContainerFor(%q) = %q, %v, want %q", tt.path, got, err, tt.want)
		}
	}
	for _, bad := range []string{"out.avi", "out", "out.ts"} {
		if _, err := media.ContainerFor(bad); !errors.Is(err, media.ErrIncompatible) {
			t.Errorf("ContainerFor(%q) err = %v, want ErrIncompatible", bad, err)
		}
	}
}

func TestCheckCompatible(t *testing.T) {
	tests := []struct {
		container, codec string
		ok               bool
	}{
		{"matroska", "h264", true},
		{"matroska", "anything", true},
		{"mp4", "h264", true},
		{"mp4", "libx265", true},
		{"mp4", "vp9", true},
		{"mp4", "av1", true},
		{"mov", "h264", true},
		{"mov", "libvpx-vp9", false},
		{"webm", "vp9", true},
		{"webm", "libaom-av1", true},
		{"webm", "libsvtav1", true},
		{"webm", "h264", false},
		{"webm", "libx264", false},
		{"webm", "mpeg4", false},
		{"avi", "h264", false},
	}
	for _, tt := range tests {
		err := media.CheckCompatible(tt.container, tt.codec)
		if tt.ok && err != nil {
			t.Errorf("CheckCompatible(%q, %q) = %v, want nil", tt.container, tt.codec, err)
		}
		if !tt.ok && !errors.Is(err, media.ErrIncompatible) {
			t.Errorf("CheckCompatible(%q, %q) = %v, want ErrIncompatible", tt.container, tt.codec, err)
		}
	}
}

// TestProbe_PicksTheShownVideo: of two video streams the one flagged
// default is encoded, else the larger, as a player would show it.
func TestProbe_PicksTheShownVideo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		disp []string // dispositions of v:0, v:1
		want int
	}{
		{"second is default", []string{"0", "default"}, 1},
		{"first is default", []string{"default", "0"}, 0},
		{"none default: the larger", []string{"0", "0"}, 1},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".mkv")
		ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=1", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1",
			"-map", "0", "-map", "1", "-c:v", "libx264", "-preset", "ultrafast",
			"-disposition:v:0", tt.disp[0], "-disposition:v:1", tt.disp[1], path)
		if got := mustProbe(t, path).Video.Index; got != tt.want {
			t.Errorf("%s: Video is stream %d, want %d", tt.name, got, tt.want)
		}
	}
}
