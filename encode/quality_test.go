package encode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/videoshard/videoshard/encode"
)

// With MeasureQuality, Encode measures the shard against the pictures it
// was encoded from: all of them, or the trim's. A lossless encode (libx264
// at CRF 0) is identical to them (+Inf dB), which a trim paired with the
// wrong input pictures would not be.
func TestFFmpeg_MeasureQuality(t *testing.T) {
	t.Parallel()
	clip := trimClip(t) // 100 pictures
	lossless := &encode.Options{CRF: intPtr(0), Preset: "ultrafast"}
	lossy := &encode.Options{Preset: "ultrafast"} // CRF 23
	tests := []struct {
		name       string
		measure    bool
		opts       *encode.Options
		trim       *encode.Trim
		wantFrames int  // 0: Quality nil
		identical  bool // else lossy: PSNR 25..60 dB, SSIM 0.7..1
	}{
		{name: "off", opts: lossy},
		{name: "lossy", measure: true, opts: lossy, wantFrames: 100},
		{name: "lossless", measure: true, opts: lossless, wantFrames: 100, identical: true},
		{name: "lossy trim", measure: true, opts: lossy, trim: &encode.Trim{Start: 37, Frames: 13}, wantFrames: 13},
		{name: "lossless trim mid-GOP", measure: true, opts: lossless, trim: &encode.Trim{Start: 37, Frames: 13}, wantFrames: 13, identical: true},
		{name: "lossless trim to the end", measure: true, opts: lossless, trim: &encode.Trim{Start: 90, Frames: 10}, wantFrames: 10, identical: true},
		{name: "off with a trim", opts: lossless, trim: &encode.Trim{Start: 25, Frames: 25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp, MeasureQuality: tt.measure, AllowOverrides: encode.AnyOverride()})
			opts := *tt.opts
			opts.Trim = tt.trim
			res, err := enc.Encode(context.Background(), openFile(t, clip), newFileOutput(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			assertEmptyDir(t, tmp)
			q := res.Quality
			if tt.wantFrames == 0 {
				if q != nil {
					t.Fatalf("Quality = %+v, want nil (not measured)", *q)
				}
				return
			}
			if q == nil {
				t.Fatal("Quality = nil, want it measured")
			}
			t.Logf("%+v", *q)
			if q.Frames != tt.wantFrames || int64(q.Frames) != res.FrameCount {
				t.Errorf("Quality.Frames = %d (FrameCount %d), want %d", q.Frames, res.FrameCount, tt.wantFrames)
			}
			switch {
			case tt.identical:
				if !math.IsInf(q.MinPSNR, 1) || !math.IsInf(q.MeanPSNR, 1) || q.MinSSIM != 1 || q.MeanSSIM != 1 {
					t.Errorf("Quality = %+v, want PSNR +Inf and SSIM 1 for a lossless encode", *q)
				}
			case q.MinPSNR < 25 || q.MeanPSNR > 60 || q.MinPSNR > q.MeanPSNR || q.MinSSIM < 0.7 || q.MeanSSIM >= 1 || q.MinSSIM > q.MeanSSIM:
				t.Errorf("Quality = %+v, want PSNR in 25..60 dB and SSIM in 0.7..1 for a lossy encode", *q)
			}
		})
	}
}

// A measuring that fails leaves the encode successful, with no quality and
// a warning; it does not fail the chunk.
func TestFFmpeg_MeasureQualityFailureIsNotAnEncodeFailure(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	enc := newFFmpeg(t, encode.FFmpegConfig{
		MeasureQuality: true,
		Preset:         "ultrafast",
		// The shard then holds half the input's pictures: they cannot
		// be paired.
		ExtraOutputArgs: []string{"-frames:v", "50"},
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
	})
	res, err := enc.Encode(context.Background(), openFile(t, trimClip(t)), newFileOutput(t), encode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.FrameCount != 50 || res.Quality != nil {
		t.Errorf("FrameCount %d, Quality %+v; want 50 and nil", res.FrameCount, res.Quality)
	}
	if got := logs.String(); !strings.Contains(got, "quality not measured") || !strings.Contains(got, "picture counts differ") {
		t.Errorf("log %q does not say why the quality was not measured", got)
	}
}

// Cancelling while the quality is measured fails the encode as cancelling
// the encode does, and kills the measuring ffmpeg.
func TestFFmpeg_MeasureQualityCancelled(t *testing.T) {
	t.Parallel()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	// The real ffmpeg encodes; the measuring run (the one with psnr)
	// hangs, with a child, until killed.
	script := writeScript(t, fmt.Sprintf(`case "$*" in
*psnr*)
	sleep 300 &
	echo "$$ $!" > '%[1]s.tmp'
	mv '%[1]s.tmp' '%[1]s'
	sleep 300;;
esac
exec '%[2]s' "$@"
`, pidFile, real))
	tmp := t.TempDir()
	enc := newFFmpeg(t, encode.FFmpegConfig{Binary: script, TempDir: tmp, Preset: "ultrafast", MeasureQuality: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := enc.Encode(ctx, openFile(t, trimClip(t)), newFileOutput(t), encode.Options{})
		done <- err
	}()
	pids := waitPIDs(t, pidFile)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertProcessesGone(t, pids)
	assertEmptyDir(t, tmp)
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
