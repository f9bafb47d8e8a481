package main

// End-to-end tests of issue 8 item 4, CPU amplification: a request whose
// encoding options multiply an encode's cost, and a chunk of a few hundred
// KB that decodes to gigabytes of pictures, against the real worker.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// childCPU returns the CPU time the worker's finished children (ffmpeg,
// ffprobe) have used so far: cutime + cstime from /proc, in clock ticks
// of 10 ms. A child's time is counted once the worker has reaped it, which
// it does before it answers the call that ran it.
func childCPU(t *testing.T, w *worker) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command: state is field 3, cutime
	// and cstime fields 16 and 17.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, i := range []int{16 - 3, 17 - 3} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			t.Fatalf("/proc stat field %d: %q", i+3, f[i])
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// sendBoth sends data as one ProcessChunk and as a streamed UploadChunk
// (to chunk index+1) and returns the two errors.
func sendBoth(ctx context.Context, w *worker, video string, index int32, data []byte, enc *pb.EncodingOptions) map[string]error {
	_, unary := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: video, ChunkIndex: index, ChunkData: data, Encoding: enc})
	_, streamed := upload(ctx, w.Client, &pb.UploadHeader{VideoId: video, ChunkIndex: index + 1,
		TotalSize: int64(len(data)), Encoding: enc}, data, 16<<10)
	return map[string]error{"ProcessChunk": unary, "UploadChunk": streamed}
}

// wantRefused fails unless every error has code and a message with each of
// want.
func wantRefused(t *testing.T, errs map[string]error, code codes.Code, want ...string) {
	t.Helper()
	for rpc, err := range errs {
		st := status.Convert(err)
		if st.Code() != code {
			t.Errorf("%s: %v, want %v", rpc, err, code)
			continue
		}
		for _, s := range want {
			if !strings.Contains(st.Message(), s) {
				t.Errorf("%s: message %q does not say %q", rpc, st.Message(), s)
			}
		}
	}
}

// The attack: libx265, preset placebo, CRF 0 on the 57 KB clip ran
// over 60 s of CPU, 70 times the configured encode, for any caller. By
// default a worker lets requests name only its configured codec, preset
// and CRF; anything else is refused PermissionDenied, naming the option,
// what is allowed and the config key, before any ffmpeg runs.
func TestE2EOverridesAreTheOperators(t *testing.T) {
	src := readFile(t, testdataPath("h264_noaudio_320x240_30000-1001_3s.mkv")) // 57 KB, 90 pictures
	crf := func(n int32) *int32 { return &n }
	w := startWorker(t, "", "encoder: ffmpeg\nffmpeg: {preset: ultrafast}\n")
	before := treeDigest(t, w.Root)
	cpu := childCPU(t, w)
	tests := []struct {
		name string
		enc  *pb.EncodingOptions
		want []string
	}{
		{"libx265 placebo crf 0", &pb.EncodingOptions{VideoCodec: "libx265", Preset: "placebo", Crf: crf(0)},
			[]string{`video_codec "libx265"`, "libx264 (ffmpeg.video_codec)", "ffmpeg.allow_overrides.video_codecs"}},
		{"placebo", &pb.EncodingOptions{Preset: "placebo"},
			[]string{`preset "placebo"`, "ultrafast (ffmpeg.preset)", "ffmpeg.allow_overrides.presets"}},
		{"crf 0", &pb.EncodingOptions{Crf: crf(0)},
			[]string{"crf 0", "crf 23 (ffmpeg.crf)", "ffmpeg.allow_overrides.crf"}},
		{"another codec at its defaults", &pb.EncodingOptions{VideoCodec: "libaom-av1"},
			[]string{`video_codec "libaom-av1"`, "ffmpeg.allow_overrides.video_codecs"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			wantRefused(t, sendBoth(ctx, w, "attack", int32(2*i), src, tt.enc), codes.PermissionDenied, tt.want...)
		})
	}
	used := childCPU(t, w) - cpu
	t.Logf("ffmpeg CPU for %d refused requests: %v", 2*len(tests), used)
	if used > time.Second {
		t.Errorf("refused requests used %v of ffmpeg CPU", used)
	}
	if d := diffTrees(before, treeDigest(t, w.Root)); len(d) > 0 {
		t.Errorf("refused requests changed the store: %v", d)
	}

	// Honest traffic: no options, or exactly the configured ones (as the
	// master sends when told the workers' own settings).
	for i, enc := range []*pb.EncodingOptions{nil, {VideoCodec: "libx264", Preset: "ultrafast", Crf: crf(23)}} {
		resp, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{VideoId: "honest", ChunkIndex: int32(i), ChunkData: src, Encoding: enc})
		if err != nil {
			t.Fatalf("honest request %v: %v", enc, err)
		}
		if s := resp.GetMetadata().GetEncoderSettings(); s["codec"] != "libx264" || s["preset"] != "ultrafast" || s["crf"] != "23" {
			t.Errorf("honest request %v: settings %v", enc, s)
		}
	}
}

// An operator who lets requests choose gets exactly what they allowed.
func TestE2EOverridesTheOperatorAllows(t *testing.T) {
	src := readFile(t, testdataPath("h264_noaudio_320x240_30000-1001_3s.mkv"))
	crf := func(n int32) *int32 { return &n }
	w := startWorker(t, "", "encoder: ffmpeg\nffmpeg:\n  preset: ultrafast\n  allow_overrides:\n"+
		"    video_codecs: [libx265]\n    presets: [superfast]\n    crf: 20-30\n")
	resp, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{VideoId: "ok", ChunkIndex: 0, ChunkData: src,
		Encoding: &pb.EncodingOptions{VideoCodec: "libx265", Preset: "superfast", Crf: crf(26)}})
	if err != nil {
		t.Fatalf("allowed override: %v", err)
	}
	if m := resp.GetMetadata(); m.GetVideoCodec() != "hevc" || m.GetEncoderSettings()["preset"] != "superfast" || m.GetEncoderSettings()["crf"] != "26" {
		t.Fatalf("allowed override gave %s with %v", m.GetVideoCodec(), m.GetEncoderSettings())
	}
	tests := []struct {
		name string
		enc  *pb.EncodingOptions
		want []string
	}{
		{"unlisted preset", &pb.EncodingOptions{VideoCodec: "libx265", Preset: "placebo", Crf: crf(26)},
			[]string{`preset "placebo"`, "superfast (ffmpeg.allow_overrides.presets)"}},
		{"crf below the range", &pb.EncodingOptions{VideoCodec: "libx265", Preset: "superfast", Crf: crf(0)},
			[]string{"crf 0", "20-30 (ffmpeg.allow_overrides.crf)"}},
		{"the codec's default preset", &pb.EncodingOptions{VideoCodec: "libx265", Crf: crf(26)},
			[]string{`preset "medium" (the default of libx265)`}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefused(t, sendBoth(ctxT(t), w, "refused", int32(2*i), src, tt.enc), codes.PermissionDenied, tt.want...)
		})
	}
	// Outside the static allowlist it stays InvalidArgument.
	wantRefused(t, sendBoth(ctxT(t), w, "invalid", 0, src, &pb.EncodingOptions{Preset: "--help"}), codes.InvalidArgument, `"--help"`)
}

// ffmpegGen runs ffmpeg to make a test input in dir.
func ffmpegGen(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-hide_banner", "-loglevel", "error"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
	return out
}

// The decompression bomb: a stream of 8192x8192 pictures, a few
// hundred KB that decode to 100 MB a picture, ran ffmpeg to 2.2 GB of RSS.
// Under the default limits the probe refuses it before any encode, and a
// stream whose headers say 64x64 and which then switches to 8192x8192 is
// refused by the decoder's own bound, whatever the header said.
func TestE2EDecompressionBomb(t *testing.T) {
	dir := t.TempDir()
	h264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "h264"}
	big := ffmpegGen(t, dir, "big.h264", append([]string{"-f", "lavfi", "-i", "color=c=gray:s=8192x8192:r=25:d=0.04"}, h264...)...)
	small := ffmpegGen(t, dir, "small.h264", append([]string{"-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=8"}, h264...)...)
	bomb := readFile(t, ffmpegGen(t, dir, "bomb.mkv", "-i", big, "-c", "copy", "-f", "matroska"))
	lying := append(readFile(t, small), readFile(t, big)...)
	if len(bomb) > 400<<10 {
		t.Fatalf("the bomb is %d bytes; it should be a few hundred KB", len(bomb))
	}

	w := startWorker(t, "", "encoder: ffmpeg\n") // every limit at its default
	before := treeDigest(t, w.Root)
	cpu := childCPU(t, w)
	wantRefused(t, sendBoth(ctxT(t), w, "bomb", 0, bomb, nil), codes.InvalidArgument,
		"8192x8192", "67108864 pixels", "limits.max_frame_pixels 8847360", "while probing")
	wantRefused(t, sendBoth(ctxT(t), w, "lying", 0, lying, nil), codes.InvalidArgument,
		"a picture of 8192x8192", "limits.max_frame_pixels 8847360", "while decoding")
	used := childCPU(t, w) - cpu
	t.Logf("ffmpeg and ffprobe CPU for 4 refused bombs: %v", used)
	if used > 3*time.Second {
		t.Errorf("refusing the bombs used %v of ffmpeg CPU", used)
	}
	if d := diffTrees(before, treeDigest(t, w.Root)); len(d) > 0 {
		t.Errorf("refused chunks changed the store: %v", d)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.Root, ".tmp")); len(entries) != 0 {
		t.Errorf("refused chunks left %v in .tmp", entries)
	}
	// The same worker still encodes honest chunks.
	if _, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{VideoId: "honest", ChunkIndex: 0,
		ChunkData: readFile(t, testdataPath("h264_noaudio_320x240_30000-1001_3s.mkv"))}); err != nil {
		t.Fatalf("honest chunk after the bombs: %v", err)
	}
}

// The pixel rate and the chunk's total are limits of their own: a chunk
// declaring 1 frame/s passes the rate and is still refused for the pixels
// it decodes to in all. The limits are set low here to use small clips.
func TestE2EPixelRateAndChunkLimits(t *testing.T) {
	clip := readFile(t, testdataPath("h264_noaudio_320x240_30000-1001_3s.mkv")) // 90 pictures of 320x240 at 29.97/s
	slow := readFile(t, ffmpegGen(t, t.TempDir(), "slow.mkv", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=1:d=90",
		"-c:v", "libx264", "-preset", "ultrafast", "-f", "matroska")) // 90 pictures at 1/s
	tests := []struct {
		name, limits string
		chunk        []byte
		want         []string // nil: encoded
	}{
		{"frame", "{max_frame_pixels: 76799}", clip,
			[]string{"pictures of 320x240 are 76800 pixels", "limits.max_frame_pixels is 76799"}},
		{"rate", "{max_pixels_per_second: 2000000}", clip,
			[]string{"320x240 at 29.970 frames/s is 2301698 pixels/s", "limits.max_pixels_per_second is 2000000"}},
		{"slow stream passes the rate", "{max_pixels_per_second: 2000000}", slow, nil},
		{"chunk", "{max_pixels_per_second: 2000000, max_chunk_pixels: 5000000}", slow,
			[]string{"90 pictures of 320x240 are 6912000 pixels", "limits.max_chunk_pixels is 5000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorker(t, "", "encoder: ffmpeg\nffmpeg: {preset: ultrafast}\nlimits: "+tt.limits+"\n")
			errs := sendBoth(ctxT(t), w, "v", 0, tt.chunk, nil)
			if tt.want == nil {
				for rpc, err := range errs {
					if err != nil {
						t.Errorf("%s: %v", rpc, err)
					}
				}
				return
			}
			wantRefused(t, errs, codes.InvalidArgument, tt.want...)
		})
	}
}
