package encode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/encode"
)

func newFFmpeg(t testing.TB, cfg encode.FFmpegConfig) *encode.FFmpeg {
	t.Helper()
	if cfg.TempDir == "" {
		cfg.TempDir = t.TempDir()
	}
	f, err := encode.NewFFmpeg(cfg)
	if err != nil {
		t.Fatalf("NewFFmpeg: %v", err)
	}
	return f
}

func intPtr(n int) *int { return &n }

// probeFile probes path with the system ffprobe.
func probeFile(t testing.TB, path string) encode.ProbeInfo {
	t.Helper()
	info, err := encode.Probe(context.Background(), "", path)
	if err != nil {
		t.Fatalf("Probe(%s): %v", path, err)
	}
	return info
}

func firstStream(t testing.TB, info encode.ProbeInfo, codecType string) encode.StreamInfo {
	t.Helper()
	s, ok := info.FirstStream(codecType)
	if !ok {
		t.Fatalf("no %s stream in %+v", codecType, info)
	}
	return s
}

func TestFFmpeg_EncodeTestdataToH264Matroska(t *testing.T) {
	tests := []struct {
		clip  string
		audio string // audio codec kept by "copy"
	}{
		{"h264_aac_640x360_30fps_4s.mp4", "aac"},
		{"h264_noaudio_320x240_30000-1001_3s.mkv", ""},
		{"vp9_opus_320x240_25fps_3s.webm", "opus"},
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp})
			path := testdata(tt.clip)
			src := probeFile(t, path)
			srcVideo := firstStream(t, src, "video")
			out := newFileOutput(t)

			res, err := enc.Encode(context.Background(), openFile(t, path), out, encode.Options{})
			if err != nil {
				t.Fatal(err)
			}

			got := probeFile(t, out.f.Name())
			video := firstStream(t, got, "video")
			if !strings.Contains(got.FormatName, "matroska") {
				t.Errorf("output format = %q, want matroska", got.FormatName)
			}
			if video.CodecName != "h264" {
				t.Errorf("output codec = %q, want h264", video.CodecName)
			}
			if video.Frames != srcVideo.Frames || video.Frames == 0 {
				t.Errorf("output frames = %d, want the input's %d", video.Frames, srcVideo.Frames)
			}
			if video.Width != srcVideo.Width || video.Height != srcVideo.Height {
				t.Errorf("output %dx%d, want the input's %dx%d", video.Width, video.Height, srcVideo.Width, srcVideo.Height)
			}
			if audio, _ := got.FirstStream("audio"); audio.CodecName != tt.audio {
				t.Errorf("output audio = %q, want %q (copied)", audio.CodecName, tt.audio)
			}

			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			want := encode.Result{
				Encoder:    encode.NameFFmpeg,
				VideoCodec: "h264",
				AudioCodec: tt.audio,
				Container:  "matroska",
				FrameCount: srcVideo.Frames,
				Width:      srcVideo.Width,
				Height:     srcVideo.Height,
				InputSize:  st.Size(),
			}
			if res.Encoder != want.Encoder || res.VideoCodec != want.VideoCodec || res.AudioCodec != want.AudioCodec ||
				res.Container != want.Container || res.FrameCount != want.FrameCount || res.Width != want.Width ||
				res.Height != want.Height || res.InputSize != want.InputSize {
				t.Errorf("Result = %+v\nwant     %+v", res, want)
			}
			if res.DurationSeconds < src.Duration-0.2 || res.DurationSeconds > src.Duration+0.2 {
				t.Errorf("DurationSeconds = %v, want about %v", res.DurationSeconds, src.Duration)
			}
			if res.EncodeTime <= 0 {
				t.Errorf("EncodeTime = %v, want > 0", res.EncodeTime)
			}
			wantSettings := map[string]string{"codec": "libx264", "crf": "23", "preset": "medium", "audio_codec": "copy", "container": "matroska"}
			if fmt.Sprint(res.Settings) != fmt.Sprint(wantSettings) {
				t.Errorf("Settings = %v, want %v", res.Settings, wantSettings)
			}
			if n := out.writes.Load(); n != 0 {
				t.Errorf("FFmpeg called Output.Write %d times; it must only use Path", n)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func TestFFmpeg_OverrideVP9(t *testing.T) {
	t.Parallel()
	enc := newFFmpeg(t, encode.FFmpegConfig{AllowOverrides: encode.AnyOverride()})
	out := newFileOutput(t)
	res, err := enc.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), out,
		encode.Options{VideoCodec: "libvpx-vp9", CRF: intPtr(45)})
	if err != nil {
		t.Fatal(err)
	}
	if got := firstStream(t, probeFile(t, out.f.Name()), "video").CodecName; got != "vp9" {
		t.Errorf("output codec = %q, want vp9", got)
	}
	if res.VideoCodec != "vp9" || res.FrameCount != 90 {
		t.Errorf("Result codec %q frames %d, want vp9 and 90", res.VideoCodec, res.FrameCount)
	}
	want := map[string]string{"codec": "libvpx-vp9", "crf": "45", "audio_codec": "copy", "container": "matroska"}
	if fmt.Sprint(res.Settings) != fmt.Sprint(want) {
		t.Errorf("Settings = %v, want %v", res.Settings, want)
	}
}

func TestFFmpeg_ConfigVariants(t *testing.T) {
	tests := []struct {
		name      string
		cfg       encode.FFmpegConfig
		opts      encode.Options
		clip      string
		format    string // substring of the output's format name
		video     string
		audio     string
		frames    int64
		settingsK string // a Settings entry "key=value" that must be present
	}{
		{
			name: "mp4 without audio", cfg: encode.FFmpegConfig{Container: "mp4", AudioCodec: "none", Preset: "ultrafast"},
			clip: "h264_aac_640x360_30fps_4s.mp4", format: "mp4", video: "h264", audio: "", frames: 120, settingsK: "audio_codec=none",
		},
		{
			name: "audio re-encoded to aac", cfg: encode.FFmpegConfig{AudioCodec: "aac", Preset: "ultrafast", Threads: 1},
			clip: "vp9_opus_320x240_25fps_3s.webm", format: "matroska", video: "h264", audio: "aac", frames: 75, settingsK: "threads=1",
		},
		{
			name: "extra output args are applied", cfg: encode.FFmpegConfig{Preset: "ultrafast", ExtraOutputArgs: []string{"-frames:v", "10"}},
			clip: "h264_noaudio_320x240_30000-1001_3s.mkv", format: "matroska", video: "h264", frames: 10, settingsK: "preset=ultrafast",
		},
		{
			name: "request preset and crf", cfg: encode.FFmpegConfig{AllowOverrides: encode.AnyOverride()}, opts: encode.Options{Preset: "superfast", CRF: intPtr(0)},
			clip: "h264_noaudio_320x240_30000-1001_3s.mkv", format: "matroska", video: "h264", frames: 90, settingsK: "crf=0",
		},
		{
			name: "hevc", cfg: encode.FFmpegConfig{VideoCodec: "libx265", Preset: "ultrafast"},
			clip: "h264_noaudio_320x240_30000-1001_3s.mkv", format: "matroska", video: "hevc", frames: 90, settingsK: "crf=28",
		},
		{
			name: "mpeg4 takes no crf", cfg: encode.FFmpegConfig{VideoCodec: "mpeg4"},
			clip: "h264_noaudio_320x240_30000-1001_3s.mkv", format: "matroska", video: "mpeg4", frames: 90, settingsK: "codec=mpeg4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enc := newFFmpeg(t, tt.cfg)
			out := newFileOutput(t)
			res, err := enc.Encode(context.Background(), openFile(t, testdata(tt.clip)), out, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			info := probeFile(t, out.f.Name())
			if !strings.Contains(info.FormatName, tt.format) {
				t.Errorf("format = %q, want %q", info.FormatName, tt.format)
			}
			if got := firstStream(t, info, "video").CodecName; got != tt.video || res.VideoCodec != tt.video {
				t.Errorf("video codec = %q (Result %q), want %q", got, res.VideoCodec, tt.video)
			}
			if audio, _ := info.FirstStream("audio"); audio.CodecName != tt.audio || res.AudioCodec != tt.audio {
				t.Errorf("audio codec = %q (Result %q), want %q", audio.CodecName, res.AudioCodec, tt.audio)
			}
			if res.FrameCount != tt.frames {
				t.Errorf("FrameCount = %d, want %d", res.FrameCount, tt.frames)
			}
			k, v, _ := strings.Cut(tt.settingsK, "=")
			if got := res.Settings[k]; got != v {
				t.Errorf("Settings[%s] = %q, want %q (all: %v)", k, got, v, res.Settings)
			}
			if tt.cfg.VideoCodec == "mpeg4" {
				if _, ok := res.Settings["crf"]; ok {
					t.Errorf("Settings = %v: mpeg4 must not report a crf", res.Settings)
				}
			}
		})
	}
}

func TestFFmpeg_ErrInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		cfg  encode.FFmpegConfig
		opts encode.Options
		want string // must appear in the message
	}{
		{"codec not allowlisted", encode.FFmpegConfig{}, encode.Options{VideoCodec: "rm -rf"}, `"rm -rf"`},
		{"codec lookalike", encode.FFmpegConfig{}, encode.Options{VideoCodec: "libx264 -vf x"}, "allowed: "},
		{"crf too high", encode.FFmpegConfig{}, encode.Options{CRF: intPtr(99)}, "crf 99"},
		{"crf negative", encode.FFmpegConfig{}, encode.Options{CRF: intPtr(-1)}, "0-51"},
		{"crf above vp9 range", encode.FFmpegConfig{}, encode.Options{VideoCodec: "libvpx-vp9", CRF: intPtr(64)}, "0-63"},
		{"crf for mpeg4", encode.FFmpegConfig{}, encode.Options{VideoCodec: "mpeg4", CRF: intPtr(10)}, "takes no crf"},
		{"preset flag", encode.FFmpegConfig{}, encode.Options{Preset: "--help"}, `"--help"`},
		{"preset for vp9", encode.FFmpegConfig{}, encode.Options{VideoCodec: "libvpx-vp9", Preset: "fast"}, "takes no preset"},
		{"svtav1 preset range", encode.FFmpegConfig{}, encode.Options{VideoCodec: "libsvtav1", Preset: "14"}, `"14"`},
		{"x264 preset for svtav1", encode.FFmpegConfig{VideoCodec: "libsvtav1"}, encode.Options{Preset: "medium"}, "libsvtav1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			tt.cfg.TempDir = tmp
			enc := newFFmpeg(t, tt.cfg)
			_, err := enc.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), newFileOutput(t), tt.opts)
			if !errors.Is(err, encode.ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func TestFFmpeg_ErrInvalidInput_NotVideo(t *testing.T) {
	tmp := t.TempDir()
	enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp})
	_, err := enc.Encode(context.Background(), openFile(t, testdata("not_video.txt")), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "Invalid data found when processing input") {
		t.Errorf("err = %q, want ffmpeg's reason in it", msg)
	}
	if strings.Contains(err.Error(), tmp) {
		t.Errorf("err = %q names the spooled file", err)
	}
	assertEmptyDir(t, tmp)
}

func TestFFmpeg_ErrInvalidInput_Empty(t *testing.T) {
	tmp := t.TempDir()
	enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp})
	_, err := enc.Encode(context.Background(), bytes.NewReader(nil), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
	assertEmptyDir(t, tmp)
}

// TestFFmpeg_ErrInvalidInput_Unencodable: a 4:2:0 chunk of odd width,
// which libx264 refuses whatever is tried again, is invalid input, not an
// internal error a client would retry.
func TestFFmpeg_ErrInvalidInput_Unencodable(t *testing.T) {
	odd := filepath.Join(t.TempDir(), "odd.mkv")
	gen := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=s=33x17:r=25:d=0.2,format=yuv420p", "-c:v", "ffv1", odd)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make odd-sized clip: %v\n%s", err, out)
	}
	tmp := t.TempDir()
	enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp, VideoCodec: "libx264"})
	_, err := enc.Encode(context.Background(), openFile(t, odd), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrInvalidInput) || !strings.Contains(err.Error(), "not divisible by 2") {
		t.Fatalf("err = %v, want ErrInvalidInput with libx264's reason", err)
	}
	assertEmptyDir(t, tmp)
}

// TestFFmpeg_ErrInvalidInput_NoVideoStream feeds valid media without video.
func TestFFmpeg_ErrInvalidInput_NoVideoStream(t *testing.T) {
	audio := filepath.Join(t.TempDir(), "audio.ogg")
	gen := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "sine=duration=1:sample_rate=48000", "-c:a", "libopus", "-f", "ogg", audio)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make audio-only clip: %v\n%s", err, out)
	}
	enc := newFFmpeg(t, encode.FFmpegConfig{})
	_, err := enc.Encode(context.Background(), openFile(t, audio), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
}

// TestFFmpeg_ErrInvalidInput_FormatNotAllowed: a playlist is not a chunk,
// and ffmpeg must not follow it to other files.
func TestFFmpeg_ErrInvalidInput_FormatNotAllowed(t *testing.T) {
	playlist := "ffconcat version 1.0\nfile '" + mustAbs(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")) + "'\n"
	enc := newFFmpeg(t, encode.FFmpegConfig{})
	_, err := enc.Encode(context.Background(), strings.NewReader(playlist), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
}

func mustAbs(t testing.TB, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// writeScript writes an executable shell script standing in for ffmpeg.
func writeScript(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-ffmpeg")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// sleeperScript returns a fake ffmpeg that starts a child sleep, records
// "<own pid> <child pid>" in pidFile, and then sleeps itself.
func sleeperScript(t testing.TB, pidFile string) string {
	return writeScript(t, fmt.Sprintf(`sleep 300 &
echo "$$ $!" > '%[1]s.tmp'
mv '%[1]s.tmp' '%[1]s'
sleep 300
`, pidFile))
}

// waitPIDs waits for a sleeperScript to record its pids.
func waitPIDs(t testing.TB, pidFile string) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			var pids []int
			for _, f := range strings.Fields(string(b)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pid file %q: %v", b, err)
				}
				pids = append(pids, pid)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake ffmpeg did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs (absent, or a zombie
// waiting for a reaper that is not us).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func assertProcessesGone(t testing.TB, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d still running", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestFFmpeg_CancelKillsProcessGroup(t *testing.T) {
	tmp := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pids")
	enc := newFFmpeg(t, encode.FFmpegConfig{Binary: sleeperScript(t, pidFile), TempDir: tmp})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := enc.Encode(ctx, openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), newFileOutput(t), encode.Options{})
		errc <- err
	}()
	pids := waitPIDs(t, pidFile)
	if len(pids) != 2 {
		t.Fatalf("pids = %v, want the script's and its child's", pids)
	}
	cancel()

	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Encode did not return after cancel")
	}
	assertProcessesGone(t, pids)
	assertEmptyDir(t, tmp)
}

func TestFFmpeg_TimeoutIsDeadlineExceeded(t *testing.T) {
	tmp := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pids")
	enc := newFFmpeg(t, encode.FFmpegConfig{Binary: sleeperScript(t, pidFile), TempDir: tmp, Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := enc.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), newFileOutput(t), encode.Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Encode took %v with a 300ms timeout", d)
	}
	if b, rerr := os.ReadFile(pidFile); rerr == nil {
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
		assertProcessesGone(t, pids)
	}
	assertEmptyDir(t, tmp)
}

// TestFFmpeg_FailureClassification: when ffmpeg fails without a telling
// message, ffprobe decides whether the input is to blame.
func TestFFmpeg_FailureClassification(t *testing.T) {
	failing := writeScript(t, "echo 'something broke inside' >&2\nexit 1\n")
	tests := []struct {
		clip        string
		wantInvalid bool
	}{
		{"h264_noaudio_320x240_30000-1001_3s.mkv", false},
		{"not_video.txt", true},
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			tmp := t.TempDir()
			enc := newFFmpeg(t, encode.FFmpegConfig{Binary: failing, TempDir: tmp})
			_, err := enc.Encode(context.Background(), openFile(t, testdata(tt.clip)), newFileOutput(t), encode.Options{})
			if err == nil {
				t.Fatal("want error")
			}
			if got := errors.Is(err, encode.ErrInvalidInput); got != tt.wantInvalid {
				t.Errorf("errors.Is(%q, ErrInvalidInput) = %v, want %v", err, got, tt.wantInvalid)
			}
			if errors.Is(err, encode.ErrUnavailable) || errors.Is(err, encode.ErrInvalidOptions) {
				t.Errorf("err = %v: wrong class", err)
			}
			if !strings.Contains(err.Error(), "something broke inside") {
				t.Errorf("err = %q, want ffmpeg's stderr in it", err)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func TestFFmpeg_ErrUnavailable_EncodeWithoutBinaries(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, cfg := range []encode.FFmpegConfig{{Binary: missing}, {FFprobe: missing, Preset: "ultrafast"}} {
		tmp := t.TempDir()
		cfg.TempDir = tmp
		enc := newFFmpeg(t, cfg)
		_, err := enc.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), newFileOutput(t), encode.Options{})
		if !errors.Is(err, encode.ErrUnavailable) {
			t.Errorf("%+v: err = %v, want ErrUnavailable", cfg, err)
		}
		assertEmptyDir(t, tmp)
	}
}

func TestFFmpeg_Check(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	noEncoders := writeScript(t, `case "$*" in
*-encoders*) echo ' V....D mpeg4   MPEG-4 part 2' ;;
*-muxers*) echo '  E matroska        Matroska' ;;
*) echo 'ffmpeg version fake' ;;
esac
`)
	tests := []struct {
		name string
		cfg  encode.FFmpegConfig
		want string // "" means Check succeeds; else a substring of the error
	}{
		{"installed", encode.FFmpegConfig{}, ""},
		{"installed vp9 and opus", encode.FFmpegConfig{VideoCodec: "libvpx-vp9", AudioCodec: "libopus"}, ""},
		{"ffmpeg missing", encode.FFmpegConfig{Binary: missing}, "missing"},
		{"ffprobe missing", encode.FFmpegConfig{FFprobe: missing}, "missing"},
		{"video encoder missing", encode.FFmpegConfig{Binary: noEncoders}, "no libx264 encoder"},
		{"audio encoder missing", encode.FFmpegConfig{VideoCodec: "mpeg4", Binary: noEncoders, AudioCodec: "aac"}, "no aac encoder"},
		{"fake has what is needed", encode.FFmpegConfig{VideoCodec: "mpeg4", Binary: noEncoders}, ""},
		{"muxer missing", encode.FFmpegConfig{VideoCodec: "mpeg4", Binary: noEncoders, Container: "mp4"}, "no mp4 muxer"},
		{"real muxer missing", encode.FFmpegConfig{Container: "nonexistentmux"}, "no nonexistentmux muxer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newFFmpeg(t, tt.cfg).Check(context.Background())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, encode.ErrUnavailable) {
				t.Fatalf("Check = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewFFmpeg_Defaults(t *testing.T) {
	f, err := encode.NewFFmpeg(encode.FFmpegConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Config()
	if c.Binary != "ffmpeg" || c.FFprobe != "ffprobe" || c.VideoCodec != "libx264" || c.CRF != 23 ||
		c.Preset != "medium" || c.AudioCodec != "copy" || c.Container != "matroska" || c.TempDir != os.TempDir() ||
		c.Logger == nil || len(c.InputFormats) == 0 {
		t.Errorf("Config() = %+v, want the documented defaults", c)
	}
	if f.Name() != encode.NameFFmpeg {
		t.Errorf("Name() = %q", f.Name())
	}

	vp9, err := encode.NewFFmpeg(encode.FFmpegConfig{VideoCodec: "libvpx-vp9"})
	if err != nil {
		t.Fatal(err)
	}
	if c := vp9.Config(); c.CRF != 31 || c.Preset != "" {
		t.Errorf("vp9 Config() CRF %d preset %q, want 31 and none", c.CRF, c.Preset)
	}
	noCRF, err := encode.NewFFmpeg(encode.FFmpegConfig{CRF: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c := noCRF.Config(); c.CRF != -1 {
		t.Errorf("CRF -1 became %d", c.CRF)
	}
}

// DefaultFFmpegConfig is what a zero config gets, plus the bounds a zero
// config goes without: a timeout and DefaultPixelLimits.
func TestDefaultFFmpegConfig(t *testing.T) {
	def := encode.DefaultFFmpegConfig()
	zero, err := encode.NewFFmpeg(encode.FFmpegConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := encode.NewFFmpeg(def)
	if err != nil {
		t.Fatalf("NewFFmpeg(DefaultFFmpegConfig()): %v", err)
	}
	z, c := zero.Config(), f.Config()
	for _, tt := range []struct{ field, zero, def string }{
		{"Binary", z.Binary, c.Binary},
		{"FFprobe", z.FFprobe, c.FFprobe},
		{"VideoCodec", z.VideoCodec, c.VideoCodec},
		{"Preset", z.Preset, c.Preset},
		{"AudioCodec", z.AudioCodec, c.AudioCodec},
		{"Container", z.Container, c.Container},
		{"CRF", strconv.Itoa(z.CRF), strconv.Itoa(c.CRF)},
	} {
		if tt.zero != tt.def {
			t.Errorf("%s: zero config gets %q, DefaultFFmpegConfig %q", tt.field, tt.zero, tt.def)
		}
	}
	if z.Timeout != 0 || z.Limits != (encode.PixelLimits{}) {
		t.Errorf("zero config got Timeout %v and Limits %+v, want none", z.Timeout, z.Limits)
	}
	if c.Timeout != 10*time.Minute || c.Limits != encode.DefaultPixelLimits() {
		t.Errorf("DefaultFFmpegConfig has Timeout %v and Limits %+v", c.Timeout, c.Limits)
	}
	const dci4K = 4096 * 2160
	if got, want := encode.DefaultPixelLimits(), (encode.PixelLimits{FramePixels: dci4K,
		PixelsPerSecond: dci4K * 60, ChunkPixels: dci4K * 60 * 60}); got != want {
		t.Errorf("DefaultPixelLimits() = %+v, want %+v", got, want)
	}
}

func TestNewFFmpeg_BadConfig(t *testing.T) {
	tests := []struct {
		cfg   encode.FFmpegConfig
		field string
	}{
		{encode.FFmpegConfig{VideoCodec: "libx264rgb"}, "VideoCodec"},
		{encode.FFmpegConfig{CRF: 52}, "CRF"},
		{encode.FFmpegConfig{CRF: -2}, "CRF"},
		{encode.FFmpegConfig{VideoCodec: "libvpx-vp9", CRF: 64}, "CRF"},
		{encode.FFmpegConfig{VideoCodec: "mpeg4", CRF: 5}, "CRF"},
		{encode.FFmpegConfig{Preset: "turbo"}, "Preset"},
		{encode.FFmpegConfig{VideoCodec: "libaom-av1", Preset: "medium"}, "Preset"},
		{encode.FFmpegConfig{Container: "mp4 -i x"}, "Container"},
		{encode.FFmpegConfig{Container: "Matroska"}, "Container"},
		{encode.FFmpegConfig{AudioCodec: "aac;ls"}, "AudioCodec"},
		{encode.FFmpegConfig{Threads: -1}, "Threads"},
		{encode.FFmpegConfig{Timeout: -time.Second}, "Timeout"},
		{encode.FFmpegConfig{InputFormats: []string{"mov", "concat,hls"}}, "InputFormats"},
		{encode.FFmpegConfig{InputFormats: []string{}}, "InputFormats"},
	}
	for _, tt := range tests {
		_, err := encode.NewFFmpeg(tt.cfg)
		if err == nil {
			t.Errorf("NewFFmpeg(%+v): want error", tt.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("NewFFmpeg(%+v) = %v, want the error to name %s", tt.cfg, err, tt.field)
		}
	}
}

func TestFFmpeg_ConfigIsACopy(t *testing.T) {
	extra := []string{"-metadata", "title=x"}
	f := newFFmpeg(t, encode.FFmpegConfig{ExtraOutputArgs: extra})
	extra[0] = "-changed"
	c := f.Config()
	c.ExtraOutputArgs[1] = "changed"
	if got := f.Config().ExtraOutputArgs; got[0] != "-metadata" || got[1] != "title=x" {
		t.Fatalf("ExtraOutputArgs = %v: config shares memory with callers", got)
	}
}

func TestFFmpeg_Args(t *testing.T) {
	f := newFFmpeg(t, encode.FFmpegConfig{ExtraOutputArgs: []string{"-metadata", "title=x"}, AllowOverrides: encode.AnyOverride()})
	args, err := encode.FFmpegArgs(f, "/in/chunk", "/out/shard", encode.Options{VideoCodec: "libvpx-vp9", CRF: intPtr(33)})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-nostdin", "-hide_banner", "-loglevel error", "-protocol_whitelist file", "-format_whitelist mov,",
		"-i file:/in/chunk", "-f matroska", "-c:v libvpx-vp9", "-crf 33", "-b:v 0", "-c:a copy",
		"-map 0:v:0 -map 0:a?", "-fps_mode passthrough", "-metadata title=x file:/out/shard", "-y",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("args %q lack %q", line, want)
		}
	}
	if strings.Contains(line, "-preset") {
		t.Errorf("args %q: vp9 takes no preset", line)
	}
}

// BenchmarkFFmpegDirectVsEncoder compares the Encoder (spool, run, probe)
// with the same ffmpeg command line run directly, on a 10 s 1280x720 clip.
// The ultrafast preset keeps the encode short so the wrapper's overhead
// shows; compare the two ns/op.
func BenchmarkFFmpegDirectVsEncoder(b *testing.B) {
	dir := b.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	gen := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip)
	if out, err := gen.CombinedOutput(); err != nil {
		b.Fatalf("make clip: %v\n%s", err, out)
	}
	st, err := os.Stat(clip)
	if err != nil {
		b.Fatal(err)
	}
	enc := newFFmpeg(b, encode.FFmpegConfig{Preset: "ultrafast", TempDir: dir})
	outPath := filepath.Join(dir, "out")
	args, err := encode.FFmpegArgs(enc, clip, outPath, encode.Options{})
	if err != nil {
		b.Fatal(err)
	}

	b.Run("direct", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if out, err := exec.Command(enc.Config().Binary, args...).CombinedOutput(); err != nil {
				b.Fatalf("ffmpeg: %v\n%s", err, out)
			}
		}
	})
	b.Run("encoder", func(b *testing.B) {
		b.SetBytes(st.Size())
		out := newFileOutput(b)
		for b.Loop() {
			f, err := os.Open(clip)
			if err != nil {
				b.Fatal(err)
			}
			_, err = enc.Encode(context.Background(), f, out, encode.Options{})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
