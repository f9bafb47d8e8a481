package media_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// Worker stand-ins: how encodeShards encodes a chunk.
var (
	x264Args = []string{"-c:v", "libx264", "-preset", "ultrafast", "-crf", "30"}
	vp9Args  = []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "40"}
)

// encodeShards does what the workers do: encode each chunk, every frame
// passed through (or the chunk's trim of them), into a Matroska shard. Each
// shard carries its chunk's Duration.
func encodeShards(t testing.TB, chunks []media.Chunk, codec []string) []media.Shard {
	t.Helper()
	dir := t.TempDir()
	shards := make([]media.Shard, len(chunks))
	for i, c := range chunks {
		path := filepath.Join(dir, fmt.Sprintf("shard_%d.mkv", i))
		args := append([]string{"-i", c.Path}, codec...)
		if c.NeedsTrim() {
			args = append(args, "-vf", fmt.Sprintf("trim=start_frame=%d:end_frame=%d,setpts=PTS-STARTPTS", c.TrimStart, c.TrimStart+c.Frames))
		}
		args = append(args, "-fps_mode", "passthrough", "-an", "-f", "matroska", path)
		ffmpegT(t, args...)
		shards[i] = media.Shard{Path: path, Duration: c.Duration}
	}
	return shards
}

// joinTo extracts the side streams for outPath's container into a new
// directory and joins shards with them.
func joinTo(t testing.TB, src media.SourceInfo, shards []media.Shard, outPath string) media.SideStreams {
	t.Helper()
	ctx, tools := context.Background(), mediaTools(t)
	container, err := media.ContainerFor(outPath)
	if err != nil {
		t.Fatal(err)
	}
	side, err := media.PlanSideStreams(context.Background(), mediaTools(t), src, container)
	if err != nil {
		t.Fatal(err)
	}
	if err := media.Join(ctx, tools, src, shards, side, outPath); err != nil {
		t.Fatal(err)
	}
	return side
}

// mustVerify verifies out against src and fails on any problem.
func mustVerify(t testing.TB, src media.SourceInfo, out string) media.Verification {
	t.Helper()
	v, err := media.Verify(context.Background(), mediaTools(t), src, media.SideStreams{}, out)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || len(v.Problems) > 0 {
		t.Errorf("%s: Verify not OK: %q\n%+v", filepath.Base(out), v.Problems, v)
	}
	return v
}

// streamCodecs lists out's streams as "type:codec,...", and its format.
func streamCodecs(t testing.TB, out string) (streams, format string) {
	t.Helper()
	s := ffprobeT(t, "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0:nk=1", out)
	var list []string
	for line := range strings.Lines(s) {
		name, typ, _ := strings.Cut(strings.TrimSpace(line), ",")
		list = append(list, typ+":"+name)
	}
	return strings.Join(list, ","), ffprobeT(t, "-show_entries", "format=format_name", "-of", "csv=p=0", out)
}

// TestPipeline runs the whole media path on each sample clip: probe, split
// into one-second chunks, encode them as workers would, join them with the
// side streams into each output container, verify.
func TestPipeline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		clip    string
		codec   []string
		outputs map[string]string // output name: its streams, as streamCodecs lists them
	}{
		{clipH264AAC, x264Args, map[string]string{
			"out.mkv": "video:h264,audio:aac",
			"out.mp4": "video:h264,audio:aac",
			"out.mov": "video:h264,audio:aac",
		}},
		{clipH264NTSC, x264Args, map[string]string{
			"out.mkv": "video:h264",
			"out.mp4": "video:h264",
		}},
		{clipVP9Opus, x264Args, map[string]string{
			"out.mkv": "video:h264,audio:opus",
			"out.mp4": "video:h264,audio:opus",
			"out.mov": "video:h264,audio:aac", // MOV cannot carry Opus
		}},
		{clipVP9Opus, vp9Args, map[string]string{
			"out.webm": "video:vp9,audio:opus",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.clip+"/"+tt.codec[1], func(t *testing.T) {
			src := mustProbe(t, clip(tt.clip))
			chunks := mustSplit(t, src, 1)
			if len(chunks) < 3 {
				t.Fatalf("%d chunks, want several", len(chunks))
			}
			shards := encodeShards(t, chunks, tt.codec)
			for name, wantStreams := range tt.outputs {
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					out := filepath.Join(dir, name)
					joinTo(t, src, shards, out)
					assertDirEntries(t, dir, name) // no temporary file left
					v := mustVerify(t, src, out)
					if v.OutputFrames != src.Video.Frames || v.AudioStreamsOutput != len(src.Audio) {
						t.Errorf("frames %d audio streams %d, want %d %d", v.OutputFrames, v.AudioStreamsOutput, src.Video.Frames, len(src.Audio))
					}
					if v.MaxDrift < 0 || v.MaxDrift > 0.0015 {
						t.Errorf("MaxDrift = %v, want within Matroska's millisecond", v.MaxDrift)
					}
					streams, _ := streamCodecs(t, out)
					if streams != wantStreams {
						t.Errorf("streams %q, want %q", streams, wantStreams)
					}
					fi, err := os.Stat(out)
					if err != nil || fi.Mode().Perm() != 0o644 {
						t.Errorf("output %v %v, want mode 0644", fi, err)
					}
					t.Logf("frames %d/%d, duration %.6f/%.6f, drift %.6f, A/V offset %.6f/%.6f",
						v.OutputFrames, v.SourceFrames, v.OutputDuration, v.SourceDuration, v.MaxDrift, v.AVOffsetOutput, v.AVOffsetSource)
				})
			}
		})
	}
}

// TestPipeline_ConvertsSideStreams: Vorbis audio and SubRip subtitles in a
// Matroska source become AAC and mov_text in MP4, and stay as they are in
// Matroska.
func TestPipeline_ConvertsSideStreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srt := filepath.Join(dir, "subs.srt")
	if err := os.WriteFile(srt, []byte("1\n00:00:00,500 --> 00:00:01,500\nhello\n\n2\n00:00:02,000 --> 00:00:02,800\nworld\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcPath := filepath.Join(dir, "src.mkv")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=24:d=3", "-f", "lavfi", "-i", "sine=f=300:r=44100:d=3", "-i", srt,
		"-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "12",
		"-c:a", "libvorbis", "-ac", "2", "-c:s", "srt", "-metadata:s:a:0", "language=fra", srcPath)
	src := mustProbe(t, srcPath)
	if got := len(src.Other); got != 1 || src.Other[0].Type != "subtitle" || src.Other[0].Codec != "subrip" {
		t.Fatalf("Other = %+v, want one subrip stream", src.Other)
	}
	shards := encodeShards(t, mustSplit(t, src, 0.5), x264Args)

	tests := []struct {
		name    string
		streams string
		plan    []media.SideStream
	}{
		{"out.mp4", "video:h264,audio:aac,subtitle:mov_text", []media.SideStream{
			{SourceIndex: 1, Type: "audio", Codec: "vorbis", Encoder: "aac", Bitrate: "160k"},
			{SourceIndex: 2, Type: "subtitle", Codec: "subrip", Encoder: "mov_text"},
		}},
		{"out.mkv", "video:h264,audio:vorbis,subtitle:subrip", []media.SideStream{
			{SourceIndex: 1, Type: "audio", Codec: "vorbis"},
			{SourceIndex: 2, Type: "subtitle", Codec: "subrip"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), tt.name)
			side := joinTo(t, src, shards, out)
			planned := slices.Clone(side.Streams)
			for i, s := range planned {
				// Vorbis's first sound comes a few milliseconds late:
				// the conversion is told so (TestPlanSideStreams_DecodeDelay).
				if s.DecodeDelay < 0 || s.DecodeDelay > 0.05 || s.DecodeDelay > 0 && s.Encoder == "" {
					t.Errorf("stream %d: decode delay %v", s.SourceIndex, s.DecodeDelay)
				}
				planned[i].DecodeDelay = 0
			}
			if fmt.Sprint(planned) != fmt.Sprint(tt.plan) || len(side.Dropped) != 0 {
				t.Errorf("plan %+v dropped %q, want %+v", side.Streams, side.Dropped, tt.plan)
			}
			mustVerify(t, src, out)
			if streams, _ := streamCodecs(t, out); streams != tt.streams {
				t.Errorf("streams %q, want %q", streams, tt.streams)
			}
			if lang := ffprobeT(t, "-select_streams", "a:0", "-show_entries", "stream_tags=language", "-of", "csv=p=0", out); lang != "fra" {
				t.Errorf("audio language %q, want fra", lang)
			}
			// mov_text fills the gaps between events with empty samples.
			subs := ffprobeT(t, "-select_streams", "s:0", "-show_entries", "packet=size", "-of", "csv=p=0", out)
			var events int
			for line := range strings.Lines(subs) {
				if size := strings.TrimSpace(line); size != "0" && size != "2" { // mov_text: a 2-byte length
					events++
				}
			}
			if events != 2 {
				t.Errorf("%d subtitle events (packet sizes %q), want 2", events, subs)
			}
		})
	}
}

// TestPipeline_NTSCManyChunks: 29.97 fps with B-frames, in an MP4 whose
// time base (1/30000) Matroska cannot represent, cut into many chunks.
// Placing each shard by its chunk's Duration keeps every frame within
// Matroska's millisecond of the source; the shards' own (rounded) durations
// would drift a little more with every chunk.
// TestPipeline_NTSCManyChunks: a 29.97 fps source, its video starting
// 21.7 ms after its audio, cut into many chunks. Matroska keeps the frame
// times to the millisecond; MP4 and MOV keep the source's, and its offset,
// exactly.
func TestPipeline_NTSCManyChunks(t *testing.T) {
	t.Parallel()
	srcPath := filepath.Join(t.TempDir(), "ntsc.mp4")
	ffmpegT(t, "-itsoffset", "0.0217", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=30000/1001:d=6", "-f", "lavfi", "-i", "sine=r=48000:d=6",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "7", "-keyint_min", "7", "-sc_threshold", "0",
		"-c:a", "aac", "-shortest", srcPath)
	src := mustProbe(t, srcPath)
	chunks := mustSplit(t, src, 0.2)
	if len(chunks) < 25 {
		t.Fatalf("%d chunks, want many", len(chunks))
	}
	shards := encodeShards(t, chunks, x264Args)
	for _, name := range []string{"out.mp4", "out.mov", "out.mkv"} {
		out := filepath.Join(t.TempDir(), name)
		joinTo(t, src, shards, out)
		v := mustVerify(t, src, out)
		if name == "out.mkv" {
			if v.MaxDrift > 0.0015 {
				t.Errorf("%s: MaxDrift = %v, want within a millisecond or so", name, v.MaxDrift)
			}
		} else {
			if v.MaxDrift > 1e-6 {
				t.Errorf("%s: MaxDrift = %v, want the source's times exactly", name, v.MaxDrift)
			}
			if d := math.Abs(v.AVOffsetOutput - v.AVOffsetSource); d > 1.0/30000 {
				t.Errorf("%s: the video starts %.6fs after the audio, the source's %.6fs", name, v.AVOffsetOutput, v.AVOffsetSource)
			}
			if tb := ffprobeT(t, "-select_streams", "v:0", "-show_entries", "stream=time_base", "-of", "csv=p=0", out); tb != "1/30000" {
				t.Errorf("%s: video time base %s, want the source's 1/30000", name, tb)
			}
		}

		// The same without durations: ffmpeg takes each shard's own.
		plain := make([]media.Shard, len(shards))
		for i, s := range shards {
			plain[i] = media.Shard{Path: s.Path}
		}
		out = filepath.Join(t.TempDir(), name)
		joinTo(t, src, plain, out)
		pv, err := media.Verify(context.Background(), mediaTools(t), src, media.SideStreams{}, out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, %d chunks: drift %.6fs with chunk durations, %.6fs with the shards' own; duration %.6f / %.6f, source %.6f",
			name, len(chunks), v.MaxDrift, pv.MaxDrift, v.OutputDuration, pv.OutputDuration, v.SourceDuration)
	}
}

// TestJoin_FailureLeavesNothing: a shard ffmpeg cannot read fails the join;
// the old output is untouched and no temporary file is left.
func TestJoin_FailureLeavesNothing(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264AAC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	bad := filepath.Join(t.TempDir(), "bad.mkv")
	if err := os.WriteFile(bad, []byte("not a shard"), 0o644); err != nil {
		t.Fatal(err)
	}
	shards[2].Path = bad

	for _, name := range []string{"out.mkv", "out.mp4"} {
		dir := t.TempDir()
		out := filepath.Join(dir, name)
		if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		container, _ := media.ContainerFor(out)
		side, err := media.PlanSideStreams(context.Background(), mediaTools(t), src, container)
		if err != nil {
			t.Fatal(err)
		}
		err = media.Join(context.Background(), mediaTools(t), src, shards, side, out)
		if err == nil {
			t.Fatalf("%s: Join with a bad shard succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		if b, err := os.ReadFile(out); err != nil || string(b) != "old" {
			t.Errorf("%s: output now %q, %v; want it untouched", name, b, err)
		}
		assertDirEntries(t, dir, name)
	}
}

func TestJoin_Cancelled(t *testing.T) {
	src := mustProbe(t, clip(clipH264NTSC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := media.Join(ctx, mediaTools(t), src, shards, media.SideStreams{}, filepath.Join(dir, "out.mkv"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	// Cancelled while ffmpeg runs: a stand-in that hangs.
	started := filepath.Join(t.TempDir(), "started")
	fake := writeScript(t, fmt.Sprintf("touch '%s'\nexec sleep 300\n", started))
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- media.Join(ctx, media.Tools{FFmpeg: fake}, src, shards, media.SideStreams{}, filepath.Join(dir, "out.mkv"))
	}()
	waitForFile(t, started)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertDirEntries(t, dir)
}

func TestJoin_ErrIncompatible(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipVP9Opus))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	dir := t.TempDir()
	for _, name := range []string{"out.webm", "out.avi"} {
		err := media.Join(context.Background(), mediaTools(t), src, shards, media.SideStreams{}, filepath.Join(dir, name))
		if !errors.Is(err, media.ErrIncompatible) {
			t.Errorf("%s: err = %v, want ErrIncompatible", name, err)
		}
	}
	assertDirEntries(t, dir)
}

func TestJoin_BadArguments(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264NTSC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	mkvSide, err := media.PlanSideStreams(context.Background(), mediaTools(t), mustProbe(t, clip(clipH264AAC)), "matroska")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name   string
		shards []media.Shard
		side   media.SideStreams
		out    string
		text   string
	}{
		{"no shards", nil, media.SideStreams{}, "out.mkv", "no shards"},
		{"missing shard", []media.Shard{shards[0], {Path: filepath.Join(dir, "gone.mkv")}}, media.SideStreams{}, "out.mkv", "shard 1"},
		{"line break", []media.Shard{{Path: shards[0].Path + "\nfile x"}}, media.SideStreams{}, "out.mkv", "line break"},
		{"negative duration", []media.Shard{{Path: shards[0].Path, Duration: -1}}, media.SideStreams{}, "out.mkv", "bad duration"},
		{"side for another container", shards, mkvSide, "out.mp4", "planned for matroska"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := media.Join(context.Background(), mediaTools(t), src, tt.shards, tt.side, filepath.Join(dir, tt.out))
			if err == nil || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.text)
			}
		})
	}
	assertDirEntries(t, dir)
}

// TestJoin_QuotedPaths: shard and output names with quotes and spaces
// survive the concat list.
func TestJoin_QuotedPaths(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264NTSC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	odd := filepath.Join(t.TempDir(), `it's a "dir" #1`)
	if err := os.Mkdir(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range shards {
		p := filepath.Join(odd, fmt.Sprintf(`shard '%d' \.mkv`, i))
		if err := os.Rename(shards[i].Path, p); err != nil {
			t.Fatal(err)
		}
		shards[i].Path = p
	}
	out := filepath.Join(odd, "out put's.mkv")
	joinTo(t, src, shards, out)
	mustVerify(t, src, out)
}

func TestPlanSideStreams_None(t *testing.T) {
	src := mustProbe(t, clip(clipH264NTSC))
	side, err := media.PlanSideStreams(context.Background(), mediaTools(t), src, "mp4")
	if err != nil {
		t.Fatal(err)
	}
	if side.Path != "" || len(side.Streams) != 0 || side.Container != "mp4" {
		t.Errorf("side = %+v, want no file and no streams", side)
	}
}

// TestPlanSideStreams_DecodeDelay: WMA's decoder gives its first sound two
// packets after the first packet's time. A conversion (MP4) is told so,
// for Verify to place its start; a copy (Matroska) plays as the source.
func TestPlanSideStreams_DecodeDelay(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "wma.wmv")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2", "-f", "lavfi", "-i", "sine=r=44100:d=2",
		"-c:v", "wmv2", "-c:a", "wmav2", "-shortest", path)
	src := mustProbe(t, path)
	for _, tt := range []struct {
		container, encoder string
		delay              float64
	}{
		{"mp4", "aac", 2 * 2048.0 / 44100},
		{"matroska", "", 0},
	} {
		side, err := media.PlanSideStreams(context.Background(), mediaTools(t), src, tt.container)
		if err != nil {
			t.Fatal(err)
		}
		if len(side.Streams) != 1 {
			t.Fatalf("%s: side = %+v, want the WMA stream", tt.container, side)
		}
		if s := side.Streams[0]; s.Encoder != tt.encoder || !near(s.DecodeDelay, tt.delay, 0.002) {
			t.Errorf("%s: encoder %q, decode delay %.4fs; want %q, %.4fs", tt.container, s.Encoder, s.DecodeDelay, tt.encoder, tt.delay)
		}
	}
}

// TestPlanSideStreams_FromSource: the side streams are read from the
// source itself, and a container the plan does not know is refused.
func TestPlanSideStreams_FromSource(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	side, err := media.PlanSideStreams(context.Background(), mediaTools(t), src, "matroska")
	if err != nil {
		t.Fatal(err)
	}
	if side.Path != src.Path || len(side.Streams) != 1 || side.Streams[0].Codec != "aac" {
		t.Errorf("side = %+v, want the source's AAC stream", side)
	}
	if _, err := media.PlanSideStreams(context.Background(), mediaTools(t), src, "avi"); !errors.Is(err, media.ErrIncompatible) {
		t.Errorf("avi: err = %v, want ErrIncompatible", err)
	}
	if _, err := media.PlanSideStreams(context.Background(), mediaTools(t), media.SourceInfo{Audio: src.Audio}, "matroska"); err == nil {
		t.Error("a source without a path: no error")
	}
}

// TestJoin_ShardFormats: a shard must be Matroska, WebM or MP4/MOV. A concat
// script posing as a shard could otherwise pull any local file into the
// output.
func TestJoin_ShardFormats(t *testing.T) {
	t.Parallel()
	src := mustProbe(t, clip(clipH264NTSC))
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	dir := t.TempDir()

	script := filepath.Join(dir, "script.mkv")
	if err := os.WriteFile(script, []byte("ffconcat version 1.0\nfile '"+shards[1].Path+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := filepath.Join(dir, "shard.ts")
	ffmpegT(t, "-i", shards[1].Path, "-c", "copy", "-f", "mpegts", ts)
	for _, bad := range []string{script, ts} {
		in := []media.Shard{shards[0], {Path: bad, Duration: shards[1].Duration}, shards[2]}
		outDir := t.TempDir()
		err := media.Join(context.Background(), mediaTools(t), src, in, media.SideStreams{}, filepath.Join(outDir, "out.mkv"))
		if err == nil || !strings.Contains(err.Error(), "whitelist") {
			t.Errorf("%s: err = %v, want the format refused", filepath.Base(bad), err)
		}
		assertDirEntries(t, outDir)
	}

	// MP4 shards are fine, as long as all are alike: the concat demuxer
	// takes every file's time base to be the first's.
	mp4s := make([]media.Shard, len(shards))
	for i, s := range shards {
		mp4s[i] = media.Shard{Path: filepath.Join(dir, fmt.Sprintf("shard_%d.mp4", i)), Duration: s.Duration}
		ffmpegT(t, "-i", s.Path, "-c", "copy", "-f", "mp4", mp4s[i].Path)
	}
	out := filepath.Join(t.TempDir(), "out.mkv")
	if err := media.Join(context.Background(), mediaTools(t), src, mp4s, media.SideStreams{}, out); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, src, out)
}

// TestSameShardPackets: the join's output is its shards, packet for packet
// — even where the concat demuxer put parameter sets in front of every
// IDR picture inside a shard (x264 puts one every 250 frames by default) —
// and shards in the wrong order are caught.
func TestSameShardPackets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var shards []media.Shard
	for i, src := range []string{"testsrc2", "rgbtestsrc"} {
		path := filepath.Join(dir, fmt.Sprintf("shard_%d.mkv", i))
		ffmpegT(t, "-f", "lavfi", "-i", src+"=s=96x64:r=30:d=4", "-c:v", "libx264", "-preset", "ultrafast",
			"-x264-params", "keyint=40:min-keyint=40", "-f", "matroska", path)
		shards = append(shards, media.Shard{Path: path, Duration: 4})
	}
	src := mustProbe(t, clip(clipH264NTSC)) // for its presentation only
	out := filepath.Join(dir, "out.mkv")
	if err := media.Join(context.Background(), mediaTools(t), src, shards, media.SideStreams{}, out); err != nil {
		t.Fatal(err)
	}
	ctx, tools := context.Background(), mediaTools(t)
	if err := media.SameShardPackets(ctx, tools, out, []string{shards[0].Path, shards[1].Path}); err != nil {
		t.Errorf("the join's own output: %v", err)
	}
	if err := media.SameShardPackets(ctx, tools, out, []string{shards[1].Path, shards[0].Path}); err == nil {
		t.Error("shards in the wrong order passed")
	}
	if err := media.SameShardPackets(ctx, tools, out, []string{shards[0].Path}); err == nil {
		t.Error("a missing shard passed")
	}
}
