package encode_test

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/videoshard/videoshard/encode"
)

// TestFFmpeg_KeepsPresentation: what ffmpeg 5.1 would lose on its own, the
// encoder keeps: an interlaced chunk stays interlaced through libx264, an
// HDR10 chunk keeps its mastering display and content light level through
// libx265.
func TestFFmpeg_KeepsPresentation(t *testing.T) {
	tests := []struct {
		name  string
		src   []string // ffmpeg arguments making the chunk, before its path
		codec string
		want  string // in the output's first frame, as firstFrame prints it
	}{
		{"interlaced x264", []string{"-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-top", "1"},
			"libx264", "interlaced_frame=1 top_field_first=1"},
		{"interlaced bff x264", []string{"-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-top", "0"},
			"libx264", "interlaced_frame=1 top_field_first=0"},
		{"HDR10 x265", []string{"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params",
			"log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:" +
				"master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"},
			"libx265", "color_transfer=smpte2084 Mastering display metadata red_x=34000/50000 Content light level metadata max_content=1000 max_average=400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			chunk := filepath.Join(t.TempDir(), "chunk.mkv")
			args := append([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.4"}, tt.src...)
			if out, err := exec.Command("ffmpeg", append(args, chunk)...).CombinedOutput(); err != nil {
				t.Fatalf("make chunk: %v\n%s", err, out)
			}
			enc := newFFmpeg(t, encode.FFmpegConfig{VideoCodec: tt.codec, Preset: "ultrafast"})
			out := newFileOutput(t)
			if _, err := enc.Encode(context.Background(), openFile(t, chunk), out, encode.Options{}); err != nil {
				t.Fatal(err)
			}
			got := firstFrame(t, out.f.Name())
			for _, w := range strings.Fields(tt.want) {
				if !strings.Contains(got, w) {
					t.Errorf("output's first frame lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// firstFrame prints the first video frame's properties and side data, one
// key=value (or side data type) per line.
func firstFrame(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_frames", "-of", "flat=s=_:h=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.ReplaceAll(string(out), `"`, "")
}

// logRecorder keeps the messages and "args" of the debug records it gets.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	msg  string
	args []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if s, ok := a.Value.Any().([]string); ok && a.Key == "args" {
			rec.args = s
		}
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	return nil
}

// starts returns the argv of every ffmpeg run, and how many shards were
// probed by ffprobe.
func (h *logRecorder) starts() (runs [][]string, probed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		switch r.msg {
		case "ffmpeg start":
			runs = append(runs, r.args)
		case "shard probed by ffprobe":
			probed++
		}
	}
	return runs, probed
}

// ffmpeg starts without waiting for the presentation probe: a progressive
// chunk is encoded by one run, an interlaced one by a second run with the
// options that keep it interlaced. A Matroska shard is read without
// ffprobe; another container is probed.
func TestFFmpeg_PresentationProbeBesideTheEncode(t *testing.T) {
	tests := []struct {
		name      string
		src       []string
		container string
		runs      int
		flags     bool // the last run passes -flags +ildct+ilme
		probed    int
	}{
		{"progressive", []string{"-c:v", "libx264", "-preset", "ultrafast"}, "matroska", 1, false, 0},
		{"interlaced", []string{"-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-top", "1"}, "matroska", 2, true, 0},
		{"mp4 shard", []string{"-c:v", "libx264", "-preset", "ultrafast"}, "mp4", 1, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			chunk := filepath.Join(t.TempDir(), "chunk.mkv")
			args := append([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.4"}, tt.src...)
			if out, err := exec.Command("ffmpeg", append(args, chunk)...).CombinedOutput(); err != nil {
				t.Fatalf("make chunk: %v\n%s", err, out)
			}
			rec := &logRecorder{}
			enc := newFFmpeg(t, encode.FFmpegConfig{Preset: "ultrafast", Container: tt.container, Logger: slog.New(rec)})
			res, err := enc.Encode(context.Background(), openFile(t, chunk), newFileOutput(t), encode.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.FrameCount != 10 || res.Width != 320 || res.Height != 240 || res.VideoCodec != "h264" {
				t.Errorf("result %+v, want 10 pictures of 320x240 h264", res)
			}
			runs, probed := rec.starts()
			if len(runs) != tt.runs {
				t.Fatalf("ffmpeg ran %d times, want %d: %q", len(runs), tt.runs, runs)
			}
			last := strings.Join(runs[len(runs)-1], " ")
			if got := strings.Contains(last, "-flags +ildct+ilme"); got != tt.flags {
				t.Errorf("last run %q: -flags +ildct+ilme %v, want %v", last, got, tt.flags)
			}
			if probed != tt.probed {
				t.Errorf("shards probed by ffprobe: %d, want %d", probed, tt.probed)
			}
		})
	}
}
