package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// probeVideo returns the first video stream's codec, decoded frame count
// and size, as ffprobe sees them.
func probeVideo(t *testing.T, path string) (codec string, frames, width, height int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,nb_read_frames,width,height", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "codec_name":
			codec = v
		case "nb_read_frames":
			frames = n
		case "width":
			width = n
		case "height":
			height = n
		}
	}
	return codec, frames, width, height
}

func hasAudio(t *testing.T, path string) bool {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.TrimSpace(string(out)) != ""
}

var clips = []string{
	"h264_aac_640x360_30fps_4s.mp4",
	"h264_noaudio_320x240_30000-1001_3s.mkv",
	"vp9_opus_320x240_25fps_3s.webm",
}

func TestE2EFFmpegEncodesClips(t *testing.T) {
	w := startWorker(t, "", "encoder: ffmpeg\nffmpeg: {preset: veryfast}\nlimits: {max_concurrent_tasks: 2}\n")
	ctx := ctxT(t)
	h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil || !h.GetIsHealthy() || h.GetEncoder() != "ffmpeg" {
		t.Fatalf("CheckHealth = %v, %v", h, err)
	}
	for i, clip := range clips {
		t.Run(clip, func(t *testing.T) {
			src := readFile(t, testdataPath(clip))
			_, wantFrames, wantW, wantH := probeVideo(t, testdataPath(clip))
			resp, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "clips", ChunkIndex: int32(i), ChunkData: src})
			if err != nil {
				t.Fatalf("ProcessChunk: %v", err)
			}
			shard := resp.GetShardLocation()
			codec, frames, width, height := probeVideo(t, shard)
			if codec != "h264" || frames != wantFrames || width != wantW || height != wantH {
				t.Fatalf("shard is %s %d frames %dx%d; want h264 %d frames %dx%d", codec, frames, width, height, wantFrames, wantW, wantH)
			}
			if got, want := hasAudio(t, shard), hasAudio(t, testdataPath(clip)); got != want {
				t.Errorf("shard has audio %v, source %v (audio_codec copy)", got, want)
			}
			m := resp.GetMetadata()
			data := readFile(t, shard)
			ratio := float64(len(data)) / float64(len(src))
			if m.GetEncoder() != "ffmpeg" || m.GetVideoCodec() != "h264" || m.GetContainer() != "matroska" ||
				m.GetFrameCount() != int64(wantFrames) || int(m.GetWidth()) != wantW || int(m.GetHeight()) != wantH ||
				m.GetDurationSeconds() <= 0 || m.GetEncodeTimeSeconds() <= 0 ||
				m.GetEncodedSize() != int64(len(data)) || m.GetOriginalSize() != int64(len(src)) ||
				float64(m.GetCompressionRatio()) < ratio-1e-4 || float64(m.GetCompressionRatio()) > ratio+1e-4 {
				t.Fatalf("metadata %v; shard %d bytes, source %d", m, len(data), len(src))
			}
			if m.GetEncoderSettings()["crf"] != "23" || m.GetEncoderSettings()["preset"] != "veryfast" {
				t.Errorf("encoder settings %v", m.GetEncoderSettings())
			}
			checkMetadataFile(t, w.Root, "clips", int32(i), len(src), data)
		})
	}
}

func TestE2EFFmpegOverridesAndBadMedia(t *testing.T) {
	w := startWorker(t, "", "encoder: ffmpeg\nffmpeg: {preset: ultrafast, audio_codec: none,"+
		" allow_overrides: {video_codecs: [libvpx-vp9], crf: 0-63}}\n")
	ctx := ctxT(t)
	src := readFile(t, testdataPath("h264_noaudio_320x240_30000-1001_3s.mkv"))

	crf := int32(40)
	resp, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "vp9", ChunkIndex: 0, ChunkData: src,
		Encoding: &pb.EncodingOptions{VideoCodec: "libvpx-vp9", Crf: &crf}})
	if err != nil {
		t.Fatalf("vp9 override: %v", err)
	}
	if codec, _, _, _ := probeVideo(t, resp.GetShardLocation()); codec != "vp9" || resp.GetMetadata().GetVideoCodec() != "vp9" {
		t.Fatalf("override produced %s (metadata %s), want vp9", codec, resp.GetMetadata().GetVideoCodec())
	}

	before := treeDigest(t, w.Root)
	badCRF, badPreset := int32(99), "--help"
	tests := []struct {
		name    string
		data    []byte
		opts    *pb.EncodingOptions
		wantMsg string
	}{
		{"codec outside allowlist", src, &pb.EncodingOptions{VideoCodec: "rm -rf /"}, "rm -rf /"},
		{"crf out of range", src, &pb.EncodingOptions{Crf: &badCRF}, "99"},
		{"preset outside allowlist", src, &pb.EncodingOptions{Preset: badPreset}, "--help"},
		{"not video", readFile(t, testdataPath("not_video.txt")), nil, "Invalid data"},
		{"truncated video", src[:len(src)/20], nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "bad", ChunkIndex: 0, ChunkData: tt.data, Encoding: tt.opts})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.wantMsg) {
				t.Fatalf("got %v, want InvalidArgument mentioning %q", err, tt.wantMsg)
			}
		})
	}
	if d := diffTrees(before, treeDigest(t, w.Root)); len(d) > 0 {
		t.Fatalf("refused input changed the store: %v", d)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.Root, ".tmp")); len(entries) != 0 {
		t.Fatalf("temp files left: %v", entries)
	}
}

func TestE2EFFmpegMissingIsUnhealthy(t *testing.T) {
	w := startWorker(t, "", "encoder: ffmpeg\nffmpeg: {binary: /nonexistent/ffmpeg}\n")
	ctx := ctxT(t)
	h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.GetIsHealthy() || !strings.Contains(h.GetMessage(), "/nonexistent/ffmpeg") {
		t.Fatalf("CheckHealth = %v, want unhealthy naming the missing binary", h)
	}
	_, err = w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: readFile(t, testdataPath(clips[0]))})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ProcessChunk without ffmpeg: %v, want Unavailable", err)
	}
}

func TestE2EFFmpegCancelKillsEncode(t *testing.T) {
	// A 'ffmpeg' that never finishes: cancelling the RPC must kill it and
	// leave nothing behind.
	dir := t.TempDir()
	fake := filepath.Join(dir, "ffmpeg")
	pidFile := filepath.Join(dir, "pid")
	script := "#!/bin/sh\ncase \"$*\" in *file:*) ;; *) exec ffmpeg \"$@\";; esac\necho $$ > " + pidFile + "\nexec sleep 600\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "", "encoder: ffmpeg\nffmpeg: {binary: "+fake+"}\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: readFile(t, testdataPath(clips[0]))})
		done <- err
	}()
	var pid int
	waitFor(t, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled ProcessChunk: %v", err)
	}
	waitFor(t, func() bool { return !processAlive(pid) })
	waitFor(t, func() bool {
		entries, _ := os.ReadDir(filepath.Join(w.Root, ".tmp"))
		return len(entries) == 0
	})
	list, err := w.Client.ListShards(ctxT(t), &pb.ListShardsRequest{})
	if err != nil || len(list.GetVideos()) != 0 {
		t.Fatalf("ListShards after cancel = %v, %v", list, err)
	}
}
