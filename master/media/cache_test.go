package media_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/framehash"
	"github.com/videoshard/videoshard/master/media"
)

// What a job keeps for its resume reads back as it was, and is refused
// once the source, the split's settings or a chunk file changed.
func TestCache_SourceAndSplit(t *testing.T) {
	src := mustProbe(t, clip(clipH264AAC))
	dir := t.TempDir()
	key, err := media.KeyOf(src.Path)
	if err != nil {
		t.Fatal(err)
	}
	srcFile := filepath.Join(dir, "source.gob")
	if err := media.SaveSource(srcFile, key, src); err != nil {
		t.Fatal(err)
	}
	got, err := media.LoadSource(srcFile, key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Video, src.Video) || !reflect.DeepEqual(got.Audio, src.Audio) || got.Path != src.Path {
		t.Errorf("loaded %+v, saved %+v", got, src)
	}
	other := key
	other.ModTime = other.ModTime.Add(time.Second)
	if _, err := media.LoadSource(srcFile, other); !errors.Is(err, media.ErrStale) {
		t.Errorf("LoadSource of a changed source: %v, want ErrStale", err)
	}
	if _, err := media.LoadSource(filepath.Join(dir, "none.gob"), key); !errors.Is(err, media.ErrStale) {
		t.Errorf("LoadSource of no file: %v, want ErrStale", err)
	}

	// A split of the loaded source is the split of the probed one: its
	// ground truth came back whole.
	ctx := context.Background()
	opts := media.SplitOptions{HeadProof: true}
	chunks, _, err := media.Split(ctx, mediaTools(t), got, 2, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := mustSplit(t, src, 2)
	if len(chunks) != len(want) {
		t.Fatalf("split of the loaded source: %d chunks, of the probed one %d", len(chunks), len(want))
	}

	splitFile := filepath.Join(dir, "split.gob")
	skey := media.SplitKey{Source: key, SegmentSeconds: 2, HeadProof: true}
	if err := media.SaveSplit(splitFile, skey, chunks); err != nil {
		t.Fatal(err)
	}
	loaded, err := media.LoadSplit(splitFile, skey)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, chunks) {
		t.Errorf("loaded split differs:\n%+v\nsaved\n%+v", loaded, chunks)
	}
	for i, c := range loaded { // the source's pictures came back: a worker's decode still proves them
		if !c.ProvenBy(decodeHashes(t, c.Path)) {
			t.Errorf("loaded chunk %d is not proven by its own pictures", i)
		}
		if c.ProvenBy(make([]byte, (c.TrimStart+c.Frames)*framehash.Size)) {
			t.Errorf("loaded chunk %d is proven by pictures of zeros", i)
		}
	}
	for name, k := range map[string]media.SplitKey{
		"segment":    {Source: key, SegmentSeconds: 3, HeadProof: true},
		"head proof": {Source: key, SegmentSeconds: 2},
		"source":     {Source: other, SegmentSeconds: 2, HeadProof: true},
	} {
		if _, err := media.LoadSplit(splitFile, k); !errors.Is(err, media.ErrStale) {
			t.Errorf("LoadSplit with another %s: %v, want ErrStale", name, err)
		}
	}
	if err := os.WriteFile(chunks[1].Path, []byte("not the chunk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := media.LoadSplit(splitFile, skey); !errors.Is(err, media.ErrStale) {
		t.Errorf("LoadSplit with a chunk file changed: %v, want ErrStale", err)
	}
}
