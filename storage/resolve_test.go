package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

func TestResolveLocation(t *testing.T) {
	parent := t.TempDir()
	s, _ := openStore(t, filepath.Join(parent, "store"), nil)
	root := s.Root()
	m := commit(t, s, "v", 0, payload(1, 10))
	commit(t, s, "example_video.mp4", 12, payload(2, 10))

	// A sibling directory whose name shares the root's prefix.
	sibling := root + "2"
	writeFile(t, filepath.Join(sibling, "v", "chunk_0.shard"), []byte("not ours"))
	outside := filepath.Join(parent, "outside")
	writeFile(t, filepath.Join(outside, "chunk_0.shard"), []byte("not ours"))
	symlink := func(target, link string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	symlink(filepath.Join(outside, "chunk_0.shard"), "v/chunk_7.shard")                    // file out of the store
	symlink(outside, "evil")                                                               // directory out of the store
	symlink(filepath.Join(root, "metadata", "v_chunk_0_metadata.json"), "v/chunk_8.shard") // to a metadata file
	symlink(filepath.Join(root, "metadata"), "meta")                                       // to the metadata directory
	symlink(filepath.Join(root, "v", "missing"), "v/chunk_9.shard")                        // dangling
	if err := os.Symlink(root, filepath.Join(parent, "alias")); err != nil {
		t.Fatal(err)
	}
	p, err := s.Create("v", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()

	const (
		ok = iota
		invalid
		notFound
	)
	tests := []struct {
		location string
		want     int
		video    string
		chunk    int
	}{
		{m.ShardLocation, ok, "v", 0},
		{"v/chunk_0.shard", ok, "v", 0},
		{"./v/chunk_0.shard", ok, "v", 0},
		{"v//chunk_0.shard", ok, "v", 0},
		{"v/../v/chunk_0.shard", ok, "v", 0},
		{filepath.Join(parent, "alias", "v", "chunk_0.shard"), ok, "v", 0},
		{root + "/example_video.mp4/chunk_12.shard", ok, "example_video.mp4", 12},
		{"example_video.mp4/chunk_12.shard", ok, "example_video.mp4", 12},

		{"v/chunk_1.shard", notFound, "", 0},
		{"other/chunk_0.shard", notFound, "", 0},
		{filepath.Join(parent, "alias", "v", "chunk_3.shard"), notFound, "", 0},
		{"v/chunk_2147483647.shard", notFound, "", 0},

		{"", invalid, "", 0},
		{"v/chunk_0.shard\x00", invalid, "", 0},
		{"\x00", invalid, "", 0},
		{root, invalid, "", 0},
		{".", invalid, "", 0},
		{"v", invalid, "", 0},
		{"chunk_0.shard", invalid, "", 0},
		{"/etc/passwd", invalid, "", 0},
		{"/", invalid, "", 0},
		{sibling + "/v/chunk_0.shard", invalid, "", 0},
		{"../store2/v/chunk_0.shard", invalid, "", 0},
		{"../outside/chunk_0.shard", invalid, "", 0},
		{root + "/v/../../outside/chunk_0.shard", invalid, "", 0},
		{"v/../../store2/v/chunk_0.shard", invalid, "", 0},
		{"v/chunk_7.shard", invalid, "", 0},
		{"evil/chunk_0.shard", invalid, "", 0},
		{"v/chunk_8.shard", invalid, "", 0},
		{"meta/v_chunk_0_metadata.json", invalid, "", 0},
		{"v/chunk_9.shard", invalid, "", 0},
		{"metadata/v_chunk_0_metadata.json", invalid, "", 0},
		{root + "/metadata/v_chunk_0_metadata.json", invalid, "", 0},
		{"metadata/chunk_0.shard", invalid, "", 0},
		{p.TempPath(), invalid, "", 0},
		{"v/" + filepath.Base(p.TempPath()), invalid, "", 0},
		{".tmp/chunk_0.shard", invalid, "", 0},
		{"v/chunk_01.shard", invalid, "", 0},
		{"v/chunk_-1.shard", invalid, "", 0},
		{"v/chunk_+1.shard", invalid, "", 0},
		{"v/chunk_ 1.shard", invalid, "", 0},
		{"v/chunk_1e3.shard", invalid, "", 0},
		{"v/chunk_2147483648.shard", invalid, "", 0},
		{"v/chunk_99999999999.shard", invalid, "", 0},
		{"v/chunk_.shard", invalid, "", 0},
		{"v/chunk_0.shard.json", invalid, "", 0},
		{"v/chunk_0", invalid, "", 0},
		{"v/chunk_0.shard/x", invalid, "", 0},
		{"v/sub/chunk_0.shard", invalid, "", 0},
		{"a b/chunk_0.shard", invalid, "", 0},
	}
	for _, tt := range tests {
		video, chunk, err := s.ResolveLocation(tt.location)
		switch tt.want {
		case ok:
			if err != nil || video != tt.video || chunk != tt.chunk {
				t.Errorf("ResolveLocation(%q) = %q, %d, %v; want %q, %d", tt.location, video, chunk, err, tt.video, tt.chunk)
			}
		case invalid:
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("ResolveLocation(%q) = %q, %d, %v; want ErrInvalid", tt.location, video, chunk, err)
			}
		case notFound:
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ResolveLocation(%q) = %q, %d, %v; want ErrNotFound", tt.location, video, chunk, err)
			}
		}
	}
}
