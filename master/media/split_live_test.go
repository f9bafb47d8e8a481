package media_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// sameSplit fails t unless got cuts the source as want does.
func sameSplit(t *testing.T, got, want []media.Chunk) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d chunks, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		g.Path, w.Path = filepath.Base(g.Path), filepath.Base(w.Path)
		if g.Index != w.Index || g.FirstFrame != w.FirstFrame || g.Frames != w.Frames || g.TrimStart != w.TrimStart ||
			g.Decoded != w.Decoded || g.Lossless != w.Lossless || g.Fallback != w.Fallback || g.Proven != w.Proven ||
			g.Start != w.Start || g.Duration != w.Duration || g.Path != w.Path {
			t.Errorf("chunk %d:\n%+v\nwant\n%+v", i, g, w)
		}
	}
}

// liveSplit runs SplitLive and checks that every chunk was handed out
// once, as returned. It returns the chunks and whether the first batch
// was handed out while the source was still being decoded.
func liveSplit(t *testing.T, tools media.Tools, path string, segment float64, opts media.SplitOptions) ([]media.Chunk, bool) {
	t.Helper()
	chunks, early, err := liveSplitErr(t, tools, path, segment, opts)
	if err != nil {
		t.Fatal(err)
	}
	return chunks, early
}

// liveSplitErr is liveSplit, giving SplitLive's error back.
func liveSplitErr(t *testing.T, tools media.Tools, path string, segment float64, opts media.SplitOptions) ([]media.Chunk, bool, error) {
	t.Helper()
	ctx := context.Background()
	p, err := media.StartProbe(ctx, tools, path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var first, early bool
	emitted := map[int]media.Chunk{}
	next := 0 // the next chunk to plan
	chunks, _, err := media.SplitLive(ctx, tools, p, segment, t.TempDir(), opts, func(planned, ready []media.Chunk) error {
		mu.Lock()
		defer mu.Unlock()
		if !first && len(ready) > 0 {
			first, early = true, !p.Done()
		}
		for _, c := range planned {
			if c.Index != next {
				t.Errorf("chunk %d planned after %d", c.Index, next-1)
			}
			next = c.Index + 1
		}
		for _, c := range ready {
			if c.Index >= next {
				t.Errorf("chunk %d ready before it was planned", c.Index)
			}
			if _, dup := emitted[c.Index]; dup {
				t.Errorf("chunk %d handed out twice", c.Index)
			}
			if _, err := os.Stat(c.Path); err != nil {
				t.Errorf("chunk %d handed out without its file: %v", c.Index, err)
			}
			emitted[c.Index] = c
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if len(emitted) != len(chunks) || next != len(chunks) {
		t.Errorf("%d chunks handed out and %d planned of %d", len(emitted), next, len(chunks))
	}
	for _, c := range chunks {
		if e, ok := emitted[c.Index]; ok && (e.FirstFrame != c.FirstFrame || e.Frames != c.Frames || e.TrimStart != c.TrimStart ||
			e.Start != c.Start || e.Duration != c.Duration || e.Size != c.Size || e.Lossless != c.Lossless) {
			t.Errorf("chunk %d handed out as\n%+v\nreturned as\n%+v", c.Index, e, c)
		}
	}
	return chunks, early, nil
}

// TestSplitLive: the source's pictures decoded at its own pace (ffmpeg's
// -re), chunks are handed out long before the decode ends, and the split
// is Split's.
func TestSplitLive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=8", "-c:v", "libx264", "-preset", "veryfast",
		"-bf", "2", "-g", "24", "-keyint_min", "24", "-sc_threshold", "0", "-pix_fmt", "yuv420p", src)
	// The ground-truth decode (the one to a pipe) at the source's pace.
	slow := filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\ncase \"$*\" in *pipe:1*) exec ffmpeg -re \"$@\";; esac\nexec ffmpeg \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tools := mediaTools(t)
	tools.FFmpeg = slow
	for _, opts := range []media.SplitOptions{{}, {HeadProof: true}} {
		// The decode goes at the source's pace however loaded the machine:
		// the first chunks must come while it is still going.
		chunks, early := liveSplit(t, tools, src, 1, opts)
		if !early {
			t.Errorf("HeadProof %v: the first chunks were handed out only once the 8 s decode had ended", opts.HeadProof)
		}
		probed := mustProbe(t, src)
		want, _, err := media.Split(context.Background(), mediaTools(t), probed, 1, t.TempDir(), opts)
		if err != nil {
			t.Fatal(err)
		}
		sameSplit(t, chunks, want)
		if !opts.HeadProof { // checkChunks wants chunks decoded whole
			checkChunks(t, probed, chunks)
		}
	}
}
