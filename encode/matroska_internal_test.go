package encode

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ffmpegFile runs ffmpeg with args (the output path last) in dir and
// returns the output's path.
func ffmpegFile(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %q: %v\n%s", args, err, b)
	}
	return out
}

// lavfi is a short test picture and tone, as ffmpeg input arguments.
func lavfi(size, rate, seconds string) []string {
	return []string{
		"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=" + rate + ":duration=" + seconds,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + seconds,
	}
}

// readMatroska must report exactly what ffprobe does for every file
// ffmpeg writes for an encode: the allowlisted codecs, with and without
// audio, each common audio codec a chunk may carry (audio_codec copy), in
// Matroska and WebM.
func TestReadMatroskaIsFFprobe(t *testing.T) {
	dir := t.TempDir()
	src := lavfi("320x240", "30", "2")
	tests := []struct {
		name string
		args []string
	}{
		{"h264 aac", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-f", "matroska")},
		{"h264 from testdata mp4, audio copied", []string{"-i", filepath.Join("..", "testdata", "h264_aac_640x360_30fps_4s.mp4"),
			"-map", "0:v:0", "-map", "0:a?", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "copy", "-f", "matroska"}},
		{"h264 no audio", []string{"-i", filepath.Join("..", "testdata", "h264_noaudio_320x240_30000-1001_3s.mkv"),
			"-c:v", "libx264", "-preset", "ultrafast", "-an", "-f", "matroska"}},
		{"h264 b-frames, 30000/1001", append(lavfi("320x240", "30000/1001", "2"),
			"-c:v", "libx264", "-preset", "medium", "-bf", "3", "-c:a", "aac", "-f", "matroska")},
		{"hevc", append(src, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-an", "-f", "matroska")},
		{"vp9 opus webm", append(src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-f", "webm")},
		{"vp9 opus copied", []string{"-i", filepath.Join("..", "testdata", "vp9_opus_320x240_25fps_3s.webm"), "-c", "copy", "-f", "matroska"}},
		{"av1", append(lavfi("160x120", "30", "1"), "-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "40", "-an", "-f", "matroska")},
		{"svt-av1", append(lavfi("160x120", "30", "1"), "-c:v", "libsvtav1", "-preset", "12", "-an", "-f", "matroska")},
		{"mpeg4", append(src, "-c:v", "mpeg4", "-an", "-f", "matroska")},
		{"mp3", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libmp3lame", "-f", "matroska")},
		{"ac3", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "ac3", "-f", "matroska")},
		{"eac3", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "eac3", "-f", "matroska")},
		{"flac", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac", "-f", "matroska")},
		{"two audio tracks", append(src, "-map", "0:v", "-map", "1:a", "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-c:a:0", "aac", "-c:a:1", "libopus", "-f", "matroska")},
		{"one picture", append(lavfi("320x240", "30", "0.034"), "-frames:v", "1", "-c:v", "libx264", "-an", "-f", "matroska")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ffmpegFile(t, dir, "out"+string(rune('a'+i)), tt.args...)
			want, err := probe(context.Background(), "ffprobe", path, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readMatroska(path)
			if err != nil {
				t.Fatalf("readMatroska: %v (ffprobe reads %+v)", err, want)
			}
			if got.Duration != want.Duration || got.FormatName != want.FormatName || got.Size != want.Size {
				t.Errorf("format: duration %v, name %q, size %d; ffprobe: %v, %q, %d",
					got.Duration, got.FormatName, got.Size, want.Duration, want.FormatName, want.Size)
			}
			if len(got.Streams) != len(want.Streams) {
				t.Fatalf("streams: %+v; ffprobe: %+v", got.Streams, want.Streams)
			}
			for j, g := range got.Streams {
				w := want.Streams[j]
				if g.Index != w.Index || g.CodecType != w.CodecType || g.CodecName != w.CodecName ||
					g.Width != w.Width || g.Height != w.Height || g.Frames != w.Frames || g.Packets != w.Packets {
					t.Errorf("stream %d: %+v; ffprobe: %+v", j, g, w)
				}
			}
		})
	}
}

// A file readMatroska does not fully know is an error, never a guess:
// Encode then asks ffprobe.
func TestReadMatroskaRefusesWhatItDoesNotKnow(t *testing.T) {
	dir := t.TempDir()
	src := lavfi("160x120", "30", "1")
	good := ffmpegFile(t, dir, "good.mkv", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-f", "matroska")...)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	streamed := filepath.Join(dir, "streamed.mkv")
	cmd := exec.Command("sh", "-c", `ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i testsrc2=size=160x120:rate=30:duration=1 -c:v libx264 -preset ultrafast -f matroska pipe:1 > "$0"`, streamed)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("streamed matroska: %v\n%s", err, b)
	}
	tests := map[string]string{
		"mp4":          ffmpegFile(t, dir, "x.mp4", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-f", "mp4")...),
		"pcm audio":    ffmpegFile(t, dir, "pcm.mkv", append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-f", "matroska")...),
		"subtitles":    subtitleMatroska(t, dir, good),
		"audio only":   ffmpegFile(t, dir, "audio.mkv", append(src, "-map", "1:a", "-c:a", "aac", "-f", "matroska")...),
		"streamed":     streamed,
		"truncated":    write("truncated.mkv", data[:len(data)*2/3]),
		"no header":    write("garbage.mkv", data[100:]),
		"empty":        write("empty.mkv", nil),
		"not matroska": filepath.Join("..", "testdata", "not_video.txt"),
		"missing":      filepath.Join(dir, "missing.mkv"),
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			if info, err := readMatroska(path); err == nil {
				t.Fatalf("readMatroska = %+v, want an error", info)
			}
		})
	}
}

// subtitleMatroska is good with a subtitle track added.
func subtitleMatroska(t *testing.T, dir, good string) string {
	t.Helper()
	srt := filepath.Join(dir, "s.srt")
	if err := os.WriteFile(srt, []byte("1\n00:00:00,000 --> 00:00:00,500\nhello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return ffmpegFile(t, dir, "sub.mkv", "-i", good, "-i", srt, "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt", "-f", "matroska")
}

// readMatroska of any bytes returns, never panics, and a file it accepts
// has a video track with pictures.
func FuzzReadMatroska(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "seed.mkv")
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-f", "matroska", good)
	if b, err := cmd.CombinedOutput(); err != nil {
		f.Fatalf("seed: %v\n%s", err, b)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "in.mkv")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := readMatroska(path)
		if err != nil {
			return
		}
		if v, ok := info.FirstStream("video"); !ok || v.Frames < 1 || v.Width < 1 || v.Height < 1 || v.CodecName == "" {
			t.Fatalf("accepted %+v", info)
		}
	})
}
