package encode_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/encode"
)

func TestProbe_Testdata(t *testing.T) {
	tests := []struct {
		clip          string
		format        string
		video, audio  string
		width, height int
		frames        int64
		rate          string
		duration      float64
	}{
		{"h264_aac_640x360_30fps_4s.mp4", "mp4", "h264", "aac", 640, 360, 120, "30/1", 4},
		{"h264_noaudio_320x240_30000-1001_3s.mkv", "matroska", "h264", "", 320, 240, 90, "30000/1001", 3},
		{"vp9_opus_320x240_25fps_3s.webm", "webm", "vp9", "opus", 320, 240, 75, "25/1", 3},
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			t.Parallel()
			info, err := encode.Probe(context.Background(), "ffprobe", testdata(tt.clip))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(info.FormatName, tt.format) {
				t.Errorf("FormatName = %q, want %q", info.FormatName, tt.format)
			}
			if info.Size <= 0 || info.Duration < tt.duration-0.1 || info.Duration > tt.duration+0.1 {
				t.Errorf("Size %d Duration %v, want > 0 and about %v", info.Size, info.Duration, tt.duration)
			}
			v := firstStream(t, info, "video")
			if v.CodecName != tt.video || v.Width != tt.width || v.Height != tt.height || v.Frames != tt.frames || v.AvgFrameRate != tt.rate {
				t.Errorf("video = %+v, want %s %dx%d %d frames at %s", v, tt.video, tt.width, tt.height, tt.frames, tt.rate)
			}
			a, _ := info.FirstStream("audio")
			if a.CodecName != tt.audio {
				t.Errorf("audio = %q, want %q", a.CodecName, tt.audio)
			}
		})
	}
}

func TestProbe_NotVideo(t *testing.T) {
	_, err := encode.Probe(context.Background(), "", testdata("not_video.txt"))
	if err == nil || !strings.Contains(err.Error(), "Invalid data found") {
		t.Fatalf("err = %v, want ffprobe's reason", err)
	}
}

func TestProbe_MissingBinary(t *testing.T) {
	_, err := encode.Probe(context.Background(), filepath.Join(t.TempDir(), "ffprobe"), testdata("not_video.txt"))
	if err == nil {
		t.Fatal("want error")
	}
}

func TestProbe_Cancelled(t *testing.T) {
	script := writeScript(t, "sleep 300\n")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := encode.Probe(ctx, script, testdata("not_video.txt"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}
