package encode_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/encode"
)

// trimClip writes a 4 s 25 fps 320x240 H.264 clip (100 pictures, a
// keyframe every 25, B-frames, so decode order differs from presentation
// order) with an AAC track, and returns its path.
func trimClip(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.mp4")
	gen := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4", "-f", "lavfi", "-i", "sine=d=4",
		"-c:v", "libx264", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
		"-c:a", "aac", "-shortest", path)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
	return path
}

// pictureHashes returns the murmur3 hash of each decoded picture of path's
// first video stream, in output order, and their timestamps.
func pictureHashes(t testing.TB, path string) (hashes []string, pts []string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-i", path, "-map", "0:v:0", "-f", "framehash", "-hash", "murmur3", "-").Output()
	if err != nil {
		t.Fatalf("framehash %s: %v", path, err)
	}
	// Lines: "stream, dts, pts, duration, size, hash".
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(strings.TrimSpace(line), ",")
		hashes = append(hashes, strings.TrimSpace(f[len(f)-1]))
		pts = append(pts, strings.TrimSpace(f[2]))
	}
	return hashes, pts
}

// A trim keeps exactly the pictures it names. The encode is lossless
// (libx264 at CRF 0), so the kept pictures hash like the source's.
func TestFFmpeg_TrimKeepsExactPictures(t *testing.T) {
	t.Parallel()
	clip := trimClip(t)
	src, _ := pictureHashes(t, clip)
	if len(src) != 100 {
		t.Fatalf("source decodes to %d pictures, want 100", len(src))
	}
	tests := []struct {
		name          string
		start, frames int64
	}{
		{"from the first keyframe", 0, 10},
		{"from the second keyframe", 25, 25},
		{"mid-GOP to mid-GOP", 37, 13},
		{"one picture", 60, 1},
		{"to the last picture", 90, 10},
		{"everything", 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp, AllowOverrides: encode.AnyOverride()})
			out := newFileOutput(t)
			trim := &encode.Trim{Start: tt.start, Frames: tt.frames}
			res, err := enc.Encode(context.Background(), openFile(t, clip), out,
				encode.Options{CRF: intPtr(0), Preset: "ultrafast", Trim: trim})
			if err != nil {
				t.Fatal(err)
			}
			got, pts := pictureHashes(t, out.f.Name())
			if want := src[tt.start : tt.start+tt.frames]; !slices.Equal(got, want) {
				t.Fatalf("kept pictures differ from source pictures %d..%d:\ngot  %v\nwant %v",
					tt.start, tt.start+tt.frames-1, got, want)
			}
			if pts[0] != "0" {
				t.Errorf("first kept picture's pts = %s, want 0", pts[0])
			}
			if res.FrameCount != tt.frames {
				t.Errorf("FrameCount = %d, want %d", res.FrameCount, tt.frames)
			}
			info := probeFile(t, out.f.Name())
			if a, ok := info.FirstStream("audio"); ok || res.AudioCodec != "" {
				t.Errorf("trimmed shard has audio %q (Result %q); a trimmed chunk is video only", a.CodecName, res.AudioCodec)
			}
			wantSettings := map[string]string{
				"codec": "libx264", "crf": "0", "preset": "ultrafast", "audio_codec": "none", "container": "matroska",
				encode.SettingTrimStart: strconv.FormatInt(tt.start, 10), encode.SettingTrimFrames: strconv.FormatInt(tt.frames, 10),
			}
			if !maps.Equal(res.Settings, wantSettings) {
				t.Errorf("Settings = %v, want %v", res.Settings, wantSettings)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

// A trim reaching past the chunk's last picture fails as bad input, saying
// what the chunk holds.
func TestFFmpeg_TrimPastTheEnd(t *testing.T) {
	t.Parallel()
	clip := trimClip(t)
	tests := []struct {
		name          string
		start, frames int64
		want          string
	}{
		{"runs past the end", 95, 10, "the chunk decodes to 100 pictures; the trim asks for pictures 95..104"},
		{"starts at the end", 100, 5, "the chunk decodes to at most 100 pictures, none kept; the trim asks for pictures 100..104"},
		{"starts far beyond", 5000, 1, "at most 5000 pictures, none kept; the trim asks for pictures 5000..5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			enc := newFFmpeg(t, encode.FFmpegConfig{TempDir: tmp, Preset: "ultrafast"})
			_, err := enc.Encode(context.Background(), openFile(t, clip), newFileOutput(t),
				encode.Options{Trim: &encode.Trim{Start: tt.start, Frames: tt.frames}})
			if !errors.Is(err, encode.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to say %q", err, tt.want)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

// Invalid trims are refused before anything runs, by both encoders alike,
// naming the field.
func TestTrim_Invalid(t *testing.T) {
	t.Parallel()
	ff := newFFmpeg(t, encode.FFmpegConfig{})
	sim, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		trim encode.Trim
		want string
	}{
		{"negative start", encode.Trim{Start: -1, Frames: 10}, "start_frame -1"},
		{"no frames", encode.Trim{Start: 0, Frames: 0}, "frame_count 0"},
		{"negative frames", encode.Trim{Start: 5, Frames: -3}, "frame_count -3"},
		{"end beyond 2^31", encode.Trim{Start: encode.MaxTrimEnd, Frames: 1}, "exceeds 2147483648"},
		{"sum overflows int64", encode.Trim{Start: math.MaxInt64, Frames: math.MaxInt64}, "exceeds"},
		{"huge frames", encode.Trim{Start: 1, Frames: math.MaxInt64}, "frame_count 9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := encode.Options{Trim: &tt.trim}
			for name, check := range map[string]func() error{
				"FFmpeg.Settings":    func() error { _, err := ff.Settings(opts); return err },
				"Simulated.Settings": func() error { _, err := sim.Settings(opts); return err },
				"FFmpeg.Encode": func() error {
					_, err := ff.Encode(context.Background(), strings.NewReader("x"), newFileOutput(t), opts)
					return err
				},
				"Simulated.Encode": func() error {
					_, err := sim.Encode(context.Background(), strings.NewReader("x"), newFileOutput(t), opts)
					return err
				},
			} {
				err := check()
				if !errors.Is(err, encode.ErrInvalidOptions) {
					t.Fatalf("%s: err = %v, want ErrInvalidOptions", name, err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: err = %q, want it to name %q", name, err, tt.want)
				}
			}
		})
	}
	// The boundary itself is accepted.
	edge := encode.Options{Trim: &encode.Trim{Start: encode.MaxTrimEnd - 1, Frames: 1}}
	if _, err := ff.Settings(edge); err != nil {
		t.Errorf("Settings(%+v): %v", *edge.Trim, err)
	}
}

// The settings tell trims apart, so a stored chunk answers only a retry
// trimmed alike; Encode records what Settings says.
func TestTrim_SettingsDistinguishTrims(t *testing.T) {
	t.Parallel()
	ff := newFFmpeg(t, encode.FFmpegConfig{})
	sim, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	trims := []*encode.Trim{nil, {Start: 0, Frames: 10}, {Start: 1, Frames: 10}, {Start: 0, Frames: 11}}
	for _, r := range []encode.SettingsResolver{ff, sim} {
		var seen []map[string]string
		for _, trim := range trims {
			m, err := r.Settings(encode.Options{Trim: trim})
			if err != nil {
				t.Fatal(err)
			}
			for _, prev := range seen {
				if maps.Equal(prev, m) {
					t.Errorf("%T: trims %v give the same settings %v", r, trims, m)
				}
			}
			seen = append(seen, m)
		}
		if m := seen[2]; m[encode.SettingTrimStart] != "1" || m[encode.SettingTrimFrames] != "10" {
			t.Errorf("%T: Settings = %v, want trim_start=1 trim_frames=10", r, m)
		}
		if _, ok := seen[0][encode.SettingTrimStart]; ok {
			t.Errorf("%T: untrimmed Settings = %v name a trim", r, seen[0])
		}
	}

	opts := encode.Options{Trim: &encode.Trim{Start: 3, Frames: 7}}
	want, _ := sim.Settings(opts)
	in := []byte("not media: the simulation cuts nothing")
	out := newFileOutput(t)
	res, err := sim.Encode(context.Background(), strings.NewReader(string(in)), out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(res.Settings, want) {
		t.Errorf("Simulated: Settings = %v, Encode recorded %v", want, res.Settings)
	}
	if got, wantOut := out.bytes(t), in[:len(in)/2]; string(got) != string(wantOut) {
		t.Errorf("Simulated output with a trim = %q, want the untrimmed %q", got, wantOut)
	}
}

func TestFFmpeg_ArgsWithTrim(t *testing.T) {
	f := newFFmpeg(t, encode.FFmpegConfig{})
	args, err := encode.FFmpegArgs(f, "/in/chunk", "/out/shard", encode.Options{Trim: &encode.Trim{Start: 12, Frames: 30}})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-vf trim=start_frame=12:end_frame=42,setpts=PTS-STARTPTS", "-fps_mode passthrough", "-an", "-map 0:v:0",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("args %q lack %q", line, want)
		}
	}
	for _, unwanted := range []string{"-c:a", "0:a?"} {
		if strings.Contains(line, unwanted) {
			t.Errorf("args %q: a trimmed chunk is video only, but they carry %q", line, unwanted)
		}
	}
}

func TestFrameTrimmer(t *testing.T) {
	sim, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []encode.Encoder{newFFmpeg(t, encode.FFmpegConfig{}), sim} {
		if ft, ok := e.(encode.FrameTrimmer); !ok || !ft.TrimsFrames() {
			t.Errorf("%s does not report that it trims frames", e.Name())
		}
	}
}

// TestFFmpeg_NoTrimWithOperatorFilter: operator output arguments that set a
// filter would replace the trim's, so such a worker neither claims to trim
// nor accepts a trim.
func TestFFmpeg_NoTrimWithOperatorFilter(t *testing.T) {
	for _, tt := range []struct {
		extra []string
		trims bool
	}{
		{nil, true},
		{[]string{"-tune", "film"}, true},
		{[]string{"-vf", "scale=640:-2"}, false},
		{[]string{"-filter:v", "hqdn3d"}, false},
		{[]string{"-filter_complex", "[0:v]null"}, false},
		{[]string{"-metadata", "comment=vf"}, true},
	} {
		f := newFFmpeg(t, encode.FFmpegConfig{ExtraOutputArgs: tt.extra})
		if got := f.TrimsFrames(); got != tt.trims {
			t.Errorf("extra %q: TrimsFrames() = %v, want %v", tt.extra, got, tt.trims)
		}
		_, err := f.Settings(encode.Options{Trim: &encode.Trim{Start: 1, Frames: 2}})
		if tt.trims != (err == nil) || !tt.trims && (!errors.Is(err, encode.ErrInvalidOptions) || !strings.Contains(err.Error(), "extra_output_args")) {
			t.Errorf("extra %q: Settings with a trim: %v", tt.extra, err)
		}
	}
}
