package master_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/media"
	"github.com/videoshard/videoshard/storage"
)

// TestEncode_RefusedSourceLeavesNothing: a source whose picture size
// changes midway can never be encoded; the job is refused, what its
// workers stored of it is deleted and unpinned, and no chunk map is kept
// to resume.
func TestEncode_RefusedSourceLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	ffmpeg := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
	}
	// Two raw H.264 captures of other sizes run together, the first long
	// enough for chunks to be sent while the source is still being decoded.
	raw := filepath.Join(dir, "ab.h264")
	var joined []byte
	for i, part := range []struct{ size, seconds string }{{"320x240", "30"}, {"480x270", "2"}} {
		path := filepath.Join(dir, string(rune('a'+i))+".h264")
		ffmpeg("-f", "lavfi", "-i", "testsrc2=s="+part.size+":r=25:d="+part.seconds,
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0", "-f", "h264", path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	if err := os.WriteFile(raw, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "size_change.mkv")
	ffmpeg("-framerate", "25", "-f", "h264", "-i", raw, "-c", "copy", src)

	w := startWorker(t, workerOpts{MaxTasks: 2})
	cfg := master.JobConfig{
		Input: src, Output: filepath.Join(dir, "out.mkv"), VideoID: "sizes", SegmentSeconds: 0.5,
		StateDir: filepath.Join(dir, "state"), Tools: media.Tools{FFmpeg: "ffmpeg", FFprobe: "ffprobe"},
		Dispatch: fastConfig(t, w.Addr), Logger: testLogger(t),
	}
	_, err := master.Encode(context.Background(), cfg)
	if !errors.Is(err, media.ErrSizeChange) {
		t.Fatalf("Encode = %v, want ErrSizeChange", err)
	}
	calls, _ := w.Calls()
	t.Logf("%d chunk calls reached the worker before the refusal", calls)
	// The delete waits out the chunks the worker was still writing.
	if w.Store.Pinned("sizes") {
		t.Error("the refused job's video is still pinned")
	}
	if videos, err := w.Store.List("sizes"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the worker keeps the refused job's chunks: %+v, %v", videos, err)
	}
	if _, err := os.Stat(cfg.StateDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the state directory is left: %v", err)
	}
	if _, err := os.Stat(cfg.Output); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an output was written: %v", err)
	}
}
