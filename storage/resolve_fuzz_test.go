package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// fuzzKey names a chunk.
type fuzzKey struct {
	video string
	chunk int
}

// FuzzResolveLocation feeds ResolveLocation arbitrary locations, relative
// or under the root, against a store holding a few committed chunks and
// traps: symlinks out of the root, a symlinked video directory, a sibling
// directory sharing the root's prefix, a dangling link and a symlink loop.
// An accepted location must name a committed chunk whose shard lies inside
// the root, and be that shard once cleaned and resolved; a refusal must wrap
// ErrInvalid or ErrNotFound; the canonical forms of committed chunks must be
// accepted.
func FuzzResolveLocation(f *testing.F) {
	parent := f.TempDir()
	s, err := storage.Open(storage.Options{Root: filepath.Join(parent, "store")})
	if err != nil {
		f.Fatal(err)
	}
	root := s.Root()
	committed := map[fuzzKey]bool{}
	for _, k := range []fuzzKey{{"v", 0}, {"example_video.mp4", 12}, {"a_chunk_1", 3}, {"v", 2147483647}} {
		p, err := s.Create(k.video, k.chunk)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := p.Write([]byte("shard " + k.video)); err != nil {
			f.Fatal(err)
		}
		if _, err := p.Commit(storage.Metadata{OriginalSize: 100}); err != nil {
			f.Fatal(err)
		}
		committed[k] = true
	}
	fuzzWrite(f, filepath.Join(parent, "outside", "chunk_0.shard"), "not ours")
	fuzzWrite(f, filepath.Join(root+"2", "v", "chunk_0.shard"), "not ours either")
	fuzzWrite(f, filepath.Join(root, "v", "chunk_5.shard"), "a shard without metadata")
	for link, target := range map[string]string{
		"v/chunk_7.shard":       filepath.Join(parent, "outside", "chunk_0.shard"), // a file out of the store
		"outlink":               filepath.Join(parent, "outside"),                  // a video dir out of the store
		"alias.mp4":             "v",                                               // a video dir inside the store
		"v/up":                  "..",                                              // back to the root
		"v/chunk_9.shard":       "chunk_0.shard",                                   // a shard name aliasing another
		"dangling":              filepath.Join(parent, "missing"),
		"loop":                  "loop",
		"example_video.mp4/abs": root,
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			f.Fatal(err)
		}
	}
	canonical := map[string]bool{}
	for k := range committed {
		rel := filepath.Join(k.video, "chunk_"+strconv.Itoa(k.chunk)+".shard")
		canonical[rel] = true
		canonical[filepath.Join(root, rel)] = true
		f.Add(rel, false)
		f.Add(rel, true)
	}
	for _, s := range []string{
		"", "\x00", "v/chunk_0.shard\x00", ".", "/", "..", "v", "v/", "v/chunk_0.shard/", "./v/./chunk_0.shard",
		"v//chunk_0.shard", "v/../v/chunk_0.shard", "../store/v/chunk_0.shard", "../store2/v/chunk_0.shard",
		"v/chunk_00.shard", "v/chunk_+0.shard", "v/chunk_-1.shard", "v/chunk_2147483648.shard", "v/chunk_0.shard.bak-x",
		"v/.chunk_0.shard.tmp-abc", "v/chunk_5.shard", "v/chunk_7.shard", "v/chunk_9.shard", "outlink/chunk_0.shard",
		"alias.mp4/chunk_0.shard", "v/up/v/chunk_0.shard", "v/up/../store/v/chunk_0.shard", "dangling/chunk_0.shard",
		"loop/chunk_0.shard", "metadata/v_chunk_0_metadata.json", ".tmp/x", "example_video.mp4/abs/v/chunk_0.shard",
		"example_video.mp4/abs/../outside/chunk_0.shard", "V/chunk_0.shard", "v/CHUNK_0.shard", "metadata/chunk_0.shard",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, loc string, underRoot bool) {
		if underRoot {
			loc = root + string(filepath.Separator) + loc
		}
		video, chunk, err := s.ResolveLocation(loc)
		if err != nil {
			if !errors.Is(err, storage.ErrInvalid) && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("ResolveLocation(%q) = %v, wrapping neither ErrInvalid nor ErrNotFound", loc, err)
			}
			if canonical[loc] {
				t.Fatalf("ResolveLocation(%q) refused the canonical location of a committed chunk: %v", loc, err)
			}
			return
		}
		if !committed[fuzzKey{video, chunk}] {
			t.Fatalf("ResolveLocation(%q) = (%q, %d), not a committed chunk", loc, video, chunk)
		}
		m, err := s.Lookup(video, chunk)
		if err != nil {
			t.Fatalf("ResolveLocation(%q) = (%q, %d) but Lookup: %v", loc, video, chunk, err)
		}
		shard := filepath.Join(root, video, "chunk_"+strconv.Itoa(chunk)+".shard")
		if m.ShardLocation != shard || filepath.Dir(filepath.Dir(shard)) != root {
			t.Fatalf("ResolveLocation(%q): shard %s (metadata %s) is not <root>/<video>/<file>", loc, shard, m.ShardLocation)
		}
		p := filepath.Clean(loc)
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if resolved, err := filepath.EvalSymlinks(p); err != nil || resolved != shard {
			t.Fatalf("ResolveLocation(%q) = (%q, %d), but the cleaned location resolves to %q (%v), not %s",
				loc, video, chunk, resolved, err, shard)
		}
	})
}

func fuzzWrite(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
