package media_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/framehash"
	"github.com/videoshard/videoshard/master/media"
)

// mustSplit splits a probed clip into a new directory.
func mustSplit(t testing.TB, src media.SourceInfo, seconds float64) []media.Chunk {
	t.Helper()
	chunks, _, err := media.Split(context.Background(), mediaTools(t), src, seconds, t.TempDir(), media.SplitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

// firstPacketFlags returns the flags of the first packet in path ("K_" for
// a keyframe).
func firstPacketFlags(t testing.TB, path string) string {
	return ffprobeT(t, "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "packet=flags", "-of", "csv=p=0", path)
}

// checkChunks checks what every Split result must satisfy, and proves it
// independently of Split: each chunk, decoded on its own and trimmed as the
// worker trims it, gives exactly the source's pictures for its range.
func checkChunks(t *testing.T, src media.SourceInfo, chunks []media.Chunk) {
	t.Helper()
	want := pictureHashes(t, src.Path, src.Video.Index, "", "")
	if int64(len(want)) != src.Video.Frames {
		t.Fatalf("the source decodes to %d pictures, Probe says %d", len(want), src.Video.Frames)
	}
	var next int64
	var covered float64
	for i, c := range chunks {
		if c.Index != i {
			t.Errorf("chunk %d: Index %d", i, c.Index)
		}
		if !filepath.IsAbs(c.Path) || filepath.Base(c.Path) != fmt.Sprintf("chunk_%06d.mkv", i) {
			t.Errorf("chunk %d: Path %q", i, c.Path)
		}
		if got := firstPacketFlags(t, c.Path); !strings.HasPrefix(got, "K") {
			t.Errorf("chunk %d: first packet flags %q, want a keyframe", i, got)
		}
		// Only a video stream, in Matroska.
		got := ffprobeT(t, "-show_entries", "stream=codec_type:format=format_name", "-of", "csv=p=0", c.Path)
		if !strings.HasPrefix(got, "video") || strings.Count(got, "video") != 1 || !strings.HasSuffix(got, "\n\"matroska,webm\"") {
			t.Errorf("chunk %d: ffprobe reports %q, want one video stream in Matroska", i, got)
		}
		fi, err := os.Stat(c.Path)
		if err != nil || fi.Size() != c.Size {
			t.Errorf("chunk %d: Size %d, file %v %v", i, c.Size, fi, err)
		}
		if c.FirstFrame != next || c.Frames <= 0 {
			t.Errorf("chunk %d: pictures %d+%d, want to start at %d", i, c.FirstFrame, c.Frames, next)
		}
		if c.Decoded < c.TrimStart+c.Frames || c.NeedsTrim() != (c.TrimStart > 0 || c.Decoded != c.Frames) {
			t.Errorf("chunk %d: decodes to %d, trim %d+%d", i, c.Decoded, c.TrimStart, c.Frames)
		}
		trim := ""
		if c.NeedsTrim() {
			trim = fmt.Sprintf("trim=start_frame=%d:end_frame=%d", c.TrimStart, c.TrimStart+c.Frames)
		}
		got2 := pictureHashes(t, c.Path, 0, trim, src.Video.PixFmt)
		if end := c.FirstFrame + c.Frames; end <= int64(len(want)) && !slices.Equal(got2, want[c.FirstFrame:end]) {
			t.Errorf("chunk %d: its %d pictures are not the source's %d..%d", i, len(got2), c.FirstFrame, end-1)
		}
		if !near(c.Start, covered, 1e-9) {
			t.Errorf("chunk %d: Start %v, want the previous chunks' total %v", i, c.Start, covered)
		}
		if c.Duration <= 0 {
			t.Errorf("chunk %d: Duration %v", i, c.Duration)
		}
		next += c.Frames
		covered += c.Duration
	}
	if next != src.Video.Frames {
		t.Errorf("chunks hold %d frames, the source %d", next, src.Video.Frames)
	}
	if !near(covered, src.Video.Duration, 1e-6) {
		t.Errorf("chunks cover %vs, the source's video lasts %vs", covered, src.Video.Duration)
	}
}

// pictureHashes decodes stream index of path, through filter when not
// empty, and returns a hash of each picture, in pixFmt when not empty.
func pictureHashes(t testing.TB, path string, index int, filter, pixFmt string) []string {
	t.Helper()
	// On one thread: a damaged source's concealment is then the same on
	// every run (see SourceInfo.OneThread).
	args := []string{"-nostdin", "-v", "error", "-fflags", "+genpts", "-copyts", "-autorotate", "0", "-threads", "1", "-i", path,
		"-map", fmt.Sprintf("0:%d", index), "-fps_mode", "passthrough"}
	if filter != "" {
		args = append(args, "-vf", filter)
	}
	if pixFmt != "" {
		args = append(args, "-pix_fmt", pixFmt)
	}
	out, err := exec.Command("ffmpeg", append(args, "-f", "framemd5", "-")...).Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var hashes []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Split(strings.TrimSpace(line), ","); len(f) == 6 && !strings.HasPrefix(line, "#") {
			hashes = append(hashes, strings.TrimSpace(f[5]))
		}
	}
	return hashes
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		clip      string
		seconds   float64
		frames    []int64
		durations []float64
	}{
		{clipH264AAC, 1, []int64{30, 30, 30, 30}, []float64{1, 1, 1, 1}},
		{clipH264NTSC, 1, []int64{30, 30, 30}, []float64{1.001, 1.001, 1.001}},
		{clipVP9Opus, 1, []int64{25, 25, 25}, []float64{1, 1, 1}},
		// Keyframes a second apart: 0.5 s chunks start between them.
		{clipH264AAC, 0.5, []int64{15, 15, 15, 15, 15, 15, 15, 15}, []float64{0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5}},
		{clipH264AAC, 2, []int64{60, 60}, []float64{2, 2}},
		{clipH264AAC, 10, []int64{120}, []float64{4}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%gs", tt.clip, tt.seconds), func(t *testing.T) {
			src := mustProbe(t, clip(tt.clip))
			chunks := mustSplit(t, src, tt.seconds)
			checkChunks(t, src, chunks)
			if len(chunks) != len(tt.frames) {
				t.Fatalf("%d chunks, want %d", len(chunks), len(tt.frames))
			}
			for i, c := range chunks {
				if c.Frames != tt.frames[i] || !near(c.Duration, tt.durations[i], 1e-6) {
					t.Errorf("chunk %d: %d frames, %vs; want %d, %vs", i, c.Frames, c.Duration, tt.frames[i], tt.durations[i])
				}
			}
		})
	}
}

// TestSplit_Corpus cuts every hard shape of scripts/make-corpus.sh (open
// GOP, AVI without timestamps or duration, MPEG-PS, a GOP longer than the
// file, VFR with gaps, 10-bit HEVC, interlaced TS, odd sizes, in-band
// parameter sets the container does not have) and proves every chunk.
func TestSplit_Corpus(t *testing.T) {
	t.Parallel()
	dir := corpus(t)
	for _, entry := range corpusList(t, dir) {
		t.Run(entry.name, func(t *testing.T) {
			t.Parallel()
			src := mustProbe(t, filepath.Join(dir, entry.name))
			chunks := mustSplit(t, src, entry.seconds)
			checkChunks(t, src, chunks)
			// A split cut live hands its chunks out before the whole
			// source is decoded: it must cut as Split does, or, where the
			// whole source shows it cannot (timestamps that go back: no
			// copies; damage: decoded again on one thread), say so.
			live, _, err := liveSplitErr(t, mediaTools(t), src.Path, entry.seconds, media.SplitOptions{})
			replan := src.OneThread || slices.ContainsFunc(src.Warnings, func(w string) bool { return strings.Contains(w, "timestamps go back") })
			switch {
			case err == nil:
				sameSplit(t, live, chunks)
			case !replan || !errors.Is(err, media.ErrReplan):
				t.Errorf("live split: %v", err)
			}
			var lossless, fallback, trimmed int
			for _, c := range chunks {
				if c.Lossless {
					lossless++
				}
				if c.Fallback {
					fallback++
				}
				if c.NeedsTrim() {
					trimmed++
				}
			}
			t.Logf("%d pictures, %d keyframes: %d chunks, %d trimmed, %d lossless (%d after a failed proof)",
				src.Video.Frames, src.Video.Keyframes, len(chunks), trimmed, lossless, fallback)
			switch entry.name {
			case "long_gop.mp4":
				if want := int(src.Video.Duration/entry.seconds) - 1; len(chunks) < want {
					t.Errorf("%d chunks from a single-keyframe source, want at least %d", len(chunks), want)
				}
			case "inband_sps_444.mp4":
				if fallback == 0 {
					t.Errorf("no chunk fell back to lossless: the copies lost the in-band parameter sets, yet passed?")
				}
			}
		})
	}
}

// corpusEntry is a line of the corpus list: a file and the segment length
// to cut it with.
type corpusEntry struct {
	name    string
	seconds float64
}

var corpusOnce struct {
	sync.Once
	dir string
	err error
}

// corpus generates the hard-shapes corpus once per test binary.
func corpus(t testing.TB) string {
	t.Helper()
	corpusOnce.Do(func() {
		dir, err := os.MkdirTemp("", "videoshard-corpus-")
		if err != nil {
			corpusOnce.err = err
			return
		}
		corpusOnce.dir = dir
		if out, err := exec.Command("bash", filepath.Join("..", "..", "scripts", "make-corpus.sh"), dir).CombinedOutput(); err != nil {
			corpusOnce.err = fmt.Errorf("make-corpus.sh: %v\n%s", err, out)
		}
	})
	if corpusOnce.err != nil {
		t.Fatal(corpusOnce.err)
	}
	return corpusOnce.dir
}

func corpusList(t testing.TB, dir string) []corpusEntry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var list []corpusEntry
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Fatalf("corpus.txt: %q", line)
		}
		name := fields[0]
		f, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			t.Fatalf("corpus.txt: %q", line)
		}
		list = append(list, corpusEntry{name, f})
	}
	return list
}

// TestSplit_WithoutProbe: a SourceInfo that did not come from Probe makes
// Split find the keyframes itself, with the same result.
func TestSplit_WithoutProbe(t *testing.T) {
	t.Parallel()
	probed := mustProbe(t, clip(clipH264NTSC))
	src := media.SourceInfo{Path: probed.Path, Video: probed.Video}
	chunks := mustSplit(t, src, 1)
	checkChunks(t, probed, chunks)
	want := mustSplit(t, probed, 1)
	if len(chunks) != len(want) {
		t.Fatalf("%d chunks, with Probe's SourceInfo %d", len(chunks), len(want))
	}
	for i := range chunks {
		if chunks[i].Frames != want[i].Frames || chunks[i].Start != want[i].Start || chunks[i].Duration != want[i].Duration {
			t.Errorf("chunk %d: %+v, with Probe's SourceInfo %+v", i, chunks[i], want[i])
		}
	}
}

func TestSplit_Cancelled(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, _, err := media.Split(ctx, mediaTools(t), src, 1, dir, media.SplitOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertDirEntries(t, dir)
}

// TestSplit_CancelledWhileRunning: ffmpeg is killed and what it wrote is
// removed.
func TestSplit_CancelledWhileRunning(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	dir := t.TempDir()
	started := filepath.Join(t.TempDir(), "started")
	// A stand-in ffmpeg: writes a first chunk, says so, and hangs.
	fake := writeScript(t, fmt.Sprintf("echo partial > '%s/chunk_000000.mkv'\ntouch '%s'\nexec sleep 300\n", dir, started))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, _, err := media.Split(ctx, media.Tools{FFmpeg: fake}, src, 1, dir, media.SplitOptions{})
		errc <- err
	}()
	waitForFile(t, started)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertDirEntries(t, dir)
}

// TestSplit_WrongPictures: a chunk that decodes to other pictures with the
// right count (here: the same clip played backwards) is caught before
// dispatch and made again losslessly; if even that does not match, Split
// fails naming the chunk and removes what it wrote.
func TestSplit_WrongPictures(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	other := filepath.Join(t.TempDir(), "reversed.mkv")
	ffmpegT(t, "-i", src.Path, "-map", "0:v", "-vf", "reverse", "-c:v", "libx264", "-g", "30", "-an", other)
	for _, tt := range []struct {
		name, when string // which ffmpeg runs the fake spoils chunk 2 after
		wantErr    bool
	}{
		{"copy spoiled", "noise=drop", false},
		{"lossless spoiled too", "noise=drop|select=", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fake := writeScript(t, fmt.Sprintf(`ffmpeg "$@" || exit 1
case "$*" in *noise=drop*|*select=*) ;; *) exit 0;; esac
for pat in $(echo '%s' | tr '|' ' '); do
  case "$*" in *"$pat"*)
    case "$pat" in select=) cp '%s' '%s/lossless_000000.mkv';; *) cp '%s' '%s/chunk_000002.mkv';; esac;;
  esac
done
`, tt.when, other, dir, other, dir))
			chunks, _, err := media.Split(context.Background(), media.Tools{FFmpeg: fake}, src, 1, dir, media.SplitOptions{})
			if tt.wantErr {
				if !errors.Is(err, media.ErrSplitMismatch) || !strings.Contains(err.Error(), "chunk 2 (pictures 60 to 89)") {
					t.Fatalf("err = %v, want ErrSplitMismatch naming chunk 2", err)
				}
				assertDirEntries(t, dir)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !chunks[2].Lossless || !chunks[2].Fallback {
				t.Errorf("chunk 2 = %+v, want made again losslessly", chunks[2])
			}
			checkChunks(t, src, chunks)
		})
	}
}

func TestSplit_BadArguments(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	tools := mediaTools(t)
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "chunk_000000.mkv"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     media.SourceInfo
		seconds float64
		dir     string
		text    string
	}{
		{"zero length", src, 0, t.TempDir(), "positive"},
		{"negative length", src, -1, t.TempDir(), "positive"},
		{"no path", media.SourceInfo{}, 1, t.TempDir(), "no path"},
		{"missing dir", src, 1, filepath.Join(full, "missing"), "no such file"},
		{"dir holds chunks", src, 1, full, "already holds 1 chunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := media.Split(context.Background(), tools, tt.src, tt.seconds, tt.dir, media.SplitOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.text)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(full, "chunk_000000.mkv")); err != nil || string(b) != "old" {
		t.Errorf("a refused Split touched the existing chunk: %q, %v", b, err)
	}
}

// writeScript writes an executable shell script standing in for a program.
func writeScript(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitForFile waits until path exists.
func waitForFile(t testing.TB, path string) {
	t.Helper()
	for i := 0; ; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if i == 1000 {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertDirEntries fails unless dir holds exactly the names given.
func assertDirEntries(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// TestSplit_VideoNotFirst: the video is found and cut wherever it is among
// the streams, and a cover image is not taken for it.
func TestSplit_VideoNotFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	png := filepath.Join(dir, "cover.png")
	ffmpegT(t, "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", png)
	srcPath := filepath.Join(dir, "src.mp4")
	ffmpegT(t, "-i", png, "-f", "lavfi", "-i", "sine=d=2", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2",
		"-map", "0", "-map", "1", "-map", "2", "-c:v:0", "png", "-disposition:v:0", "attached_pic",
		"-c:v:1", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac", srcPath)
	src := mustProbe(t, srcPath)
	// MP4 puts the audio first and the cover image last.
	if src.Video.Index != 1 || src.Video.Frames != 50 {
		t.Fatalf("Video = stream %d with %d frames, want stream 1 with 50", src.Video.Index, src.Video.Frames)
	}
	chunks := mustSplit(t, src, 0.4)
	checkChunks(t, src, chunks)
	out := filepath.Join(t.TempDir(), "out.mkv")
	side := joinTo(t, src, encodeShards(t, chunks, x264Args), out)
	if len(side.Dropped) != 1 || !strings.Contains(side.Dropped[0], "stream 2 (video png)") {
		t.Errorf("Dropped = %q, want the cover image", side.Dropped)
	}
	mustVerify(t, src, out)
}

// decodeHashes returns the framehash murmur3 hashes of every picture path
// decodes to, as a worker returns them.
func decodeHashes(t testing.TB, path string) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
		"-fps_mode", "passthrough", "-f", "framehash", "-hash", "murmur3", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var c framehash.Collector
	c.Write(out)
	h, err := c.Hashes()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSplit_HeadProof: with HeadProof, Split proves each chunk by its
// first pictures only, and the rest must be proven by a worker's decode
// (ProvenBy): the chunk's own pictures prove it; its neighbour's, or all
// but its last, do not. A chunk whose head is right and whose tail is not
// fails ProvenBy, and Reprove makes it again losslessly while it proves
// the others whole.
func TestSplit_HeadProof(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	ctx := context.Background()
	chunks, stats, err := media.Split(ctx, mediaTools(t), src, 2, t.TempDir(), media.SplitOptions{HeadProof: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.HeadProven != len(chunks) || len(chunks) < 2 {
		t.Fatalf("stats %+v for %d chunks, want every chunk proven by its head", stats, len(chunks))
	}
	var all []int
	for i, c := range chunks {
		all = append(all, i)
		if c.Proven >= c.Frames || c.Decoded != 0 || !c.NeedsTrim() {
			t.Errorf("chunk %d: Proven %d of %d, Decoded %d, NeedsTrim %v; want a head proof and a trim", i, c.Proven, c.Frames, c.Decoded, c.NeedsTrim())
		}
		own := decodeHashes(t, c.Path)
		if !c.ProvenBy(own) {
			t.Errorf("chunk %d is not proven by its own pictures", i)
		}
		if c.ProvenBy(own[:len(own)-framehash.Size]) {
			t.Errorf("chunk %d is proven without its last picture", i)
		}
		if i > 0 && c.ProvenBy(decodeHashes(t, chunks[i-1].Path)) {
			t.Errorf("chunk %d is proven by chunk %d's pictures", i, i-1)
		}
	}

	// Chunk 1's pictures from the 20th on negated, losslessly: its head
	// still hashes like the source's.
	spoiled := filepath.Join(t.TempDir(), "spoiled.mkv")
	ffmpegT(t, "-i", chunks[1].Path, "-vf", "negate=enable='gte(n,20)'", "-c:v", "libx264", "-qp", "0",
		"-preset", "ultrafast", "-fps_mode", "passthrough", spoiled)
	if err := os.Rename(spoiled, chunks[1].Path); err != nil {
		t.Fatal(err)
	}
	if chunks[1].ProvenBy(decodeHashes(t, chunks[1].Path)) {
		t.Fatal("a chunk with a spoiled tail is proven")
	}
	remade, err := media.Reprove(ctx, mediaTools(t), src, chunks, all)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(remade, []int{1}) || !chunks[1].Lossless || !chunks[1].Fallback {
		t.Fatalf("Reprove remade %v, chunk 1 %+v; want chunk 1 made again losslessly", remade, chunks[1])
	}
	for i, c := range chunks {
		if c.Proven != c.Frames {
			t.Errorf("chunk %d: Proven %d of %d after Reprove", i, c.Proven, c.Frames)
		}
	}
	checkChunks(t, src, chunks)
}

// TestSplit_ManyLosslessChunks: hundreds of lossless chunks apart from
// each other (1 s chunks of a source with a keyframe every 4 s: two of
// every four chunks too far from a keyframe to copy, 150 runs of two) are
// made in one decode; a flat sum of their ranges was more than ffmpeg's
// expression parser takes.
func TestSplit_ManyLosslessChunks(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src.mp4")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=600", "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "96", "-keyint_min", "96", "-sc_threshold", "0", "-pix_fmt", "yuv420p", src)
	probed := mustProbe(t, src)
	chunks, stats, err := media.Split(context.Background(), mediaTools(t), probed, 1, t.TempDir(), media.SplitOptions{HeadProof: true})
	if err != nil {
		t.Fatal(err)
	}
	var frames int64
	for _, c := range chunks {
		frames += c.Frames
	}
	if len(chunks) != 600 || stats.Lossless != 300 || frames != probed.Video.Frames {
		t.Fatalf("%d chunks (%d lossless) holding %d pictures; want 600, 300 lossless, %d pictures", len(chunks), stats.Lossless, frames, probed.Video.Frames)
	}
}
