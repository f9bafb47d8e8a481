package quality_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/internal/quality"
)

// damagedCopy writes a copy of src with bytes flipped in a few places of
// its second half (inside its pictures, past the headers).
func damagedCopy(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(data) * 5 / 10, len(data) * 6 / 10, len(data) * 7 / 10, len(data) * 8 / 10} {
		for j := range 4 {
			data[at+j] ^= 0xff
		}
	}
	out := filepath.Join(t.TempDir(), "damaged"+filepath.Ext(src))
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// A distorted input ffmpeg decodes only by concealing damage (a broken
// shard, with all its pictures there) is ErrDamaged, whatever its PSNR;
// the same file as the reference (a cut of a damaged source) is measured.
func TestMeasureQuality_Damaged(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.mp4")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4", "-c:v", "libx264", "-preset", "veryfast",
		"-g", "100", "-bf", "0", clean)
	damaged := damagedCopy(t, clean)
	ctx := context.Background()
	_, err := quality.MeasureQuality(ctx, mediaTools(t), quality.Input{Path: clean}, quality.Input{Path: damaged}, quality.Options{})
	if !errors.Is(err, quality.ErrDamaged) {
		t.Fatalf("a damaged distorted input: %v, want ErrDamaged", err)
	}
	if _, err := quality.MeasureQuality(ctx, mediaTools(t), quality.Input{Path: damaged}, quality.Input{Path: clean}, quality.Options{}); err != nil {
		t.Fatalf("a damaged reference: %v, want it measured", err)
	}
}
