package media_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// sizeChangeSource writes a file whose pictures change size midway (two
// H.264 streams of other sizes run together, as two captures are), in the
// container ext.
func sizeChangeSource(t *testing.T, ext string) string {
	t.Helper()
	dir := t.TempDir()
	a, b, both := filepath.Join(dir, "a.h264"), filepath.Join(dir, "b.h264"), filepath.Join(dir, "ab.h264")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "h264", a)
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=480x270:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "h264", b)
	joined := append(readFile(t, a), readFile(t, b)...)
	if err := os.WriteFile(both, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "size_change."+ext)
	ffmpegT(t, "-framerate", "25", "-f", "h264", "-i", both, "-c", "copy", out)
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A source whose pictures change size is refused with both sizes: its
// encode would show the later pictures out of shape.
func TestProbe_SizeChangeRefused(t *testing.T) {
	for _, ext := range []string{"mp4", "mkv"} {
		t.Run(ext, func(t *testing.T) {
			_, err := media.Probe(context.Background(), mediaTools(t), sizeChangeSource(t, ext))
			if !errors.Is(err, media.ErrSizeChange) {
				t.Fatalf("Probe: %v, want ErrSizeChange", err)
			}
			if !strings.Contains(err.Error(), "(320x240, then 480x270)") {
				t.Errorf("the error does not name the sizes: %v", err)
			}
		})
	}
}

// A transport stream with packets lost inside a GOP (a capture's dropped
// packets) is probed as ffmpeg plays it, concealed, and the damage is
// named in a warning.
func TestProbe_DamagedCaptureWarns(t *testing.T) {
	src := damagedCapture(t)
	info, err := media.Probe(context.Background(), mediaTools(t), src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(info.Warnings, "\n"), "damaged source: ") {
		t.Errorf("warnings %q do not name the damage", info.Warnings)
	}
	// An undamaged source warns of nothing.
	if clean := mustProbe(t, clip(clipH264AAC)); len(clean.Warnings) > 0 {
		t.Errorf("a clean clip warns %q", clean.Warnings)
	}
}

// damagedCapture writes an MPEG-TS whose video loses 40 packets mid-GOP.
func damagedCapture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	full := filepath.Join(dir, "full.ts")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=6", "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "50", "-f", "mpegts", full)
	data := readFile(t, full)
	const pkt = 188
	n := len(data) / pkt
	cut := append(append([]byte(nil), data[:n/2*pkt]...), data[(n/2+40)*pkt:]...)
	out := filepath.Join(dir, "damaged.ts")
	if err := os.WriteFile(out, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
