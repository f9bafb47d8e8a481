package storage_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

func TestCommit_LookupListOpen(t *testing.T) {
	s := newStore(t)
	data := payload(1, 1000)
	m := commit(t, s, "example_video.mp4", 0, data)

	want := storage.Metadata{
		VideoID:          "example_video.mp4",
		ChunkIndex:       0,
		OriginalSize:     2000,
		EncodedSize:      1000,
		CompressionRatio: 0.5,
		WorkerID:         "localhost:50061",
		ShardLocation:    filepath.Join(s.Root(), "example_video.mp4", "chunk_0.shard"),
		Timestamp:        "2023-04-25T14:30:45.123456Z",
		ChecksumSHA256:   sum(data),
		ChecksumCRC32C:   crc32c(data),
		Encoder:          "simulated",
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Commit returned\n%+v\nwant\n%+v", m, want)
	}
	got, err := s.Lookup("example_video.mp4", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Lookup = %+v, want %+v", got, want)
	}
	videos, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	if wantList := []storage.Video{{ID: "example_video.mp4", Chunks: []storage.Metadata{want}}}; !reflect.DeepEqual(videos, wantList) {
		t.Fatalf("List = %+v, want %+v", videos, wantList)
	}
	shard, om := readShard(t, s, "example_video.mp4", 0)
	if !bytes.Equal(shard, data) || !reflect.DeepEqual(om, want) {
		t.Fatalf("OpenShard = %d bytes, %+v", len(shard), om)
	}
	if _, err := os.Stat(m.ShardLocation); err != nil {
		t.Fatalf("shard not at its location: %v", err)
	}
	assertNotFound(t, s, "example_video.mp4", 1)
	assertNotFound(t, s, "other", 0)
	if _, err := s.List("other"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("List(other) = %v, want ErrNotFound", err)
	}
	if _, err := s.VideoMetadata("other"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("VideoMetadata(other) = %v, want ErrNotFound", err)
	}
	assertNoScratch(t, s.Root())
}

// The metadata file is the seed's JSON: its name, 2-space indent, the
// seed's field names, an absolute shard_location and a UTC timestamp with
// microseconds.
func TestCommit_MetadataFile(t *testing.T) {
	s := newStore(t)
	m := commit(t, s, "example_video.mp4", 7, payload(2, 300))
	path := filepath.Join(s.Root(), "metadata", "example_video.mp4_chunk_7_metadata.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("{\n  \"video_id\": \"example_video.mp4\",\n  \"chunk_index\": 7,\n")) {
		t.Fatalf("metadata is not 2-space indented JSON in seed order:\n%s", raw)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"video_id":          "example_video.mp4",
		"chunk_index":       7.0,
		"original_size":     600.0,
		"encoded_size":      300.0,
		"compression_ratio": 0.5,
		"worker_id":         "localhost:50061",
		"shard_location":    filepath.Join(s.Root(), "example_video.mp4", "chunk_7.shard"),
		"timestamp":         "2023-04-25T14:30:45.123456Z",
		"checksum_sha256":   m.ChecksumSHA256,
		"crc32c":            crc32c(payload(2, 300)),
	} {
		if got := fields[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if !filepath.IsAbs(fields["shard_location"].(string)) {
		t.Errorf("shard_location is not absolute")
	}
}

func TestCommit_CompressionRatioZeroOriginal(t *testing.T) {
	s := newStore(t)
	p, err := s.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("abc"))
	m, err := p.Commit(storage.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if m.CompressionRatio != 0 {
		t.Fatalf("CompressionRatio = %v, want 0", m.CompressionRatio)
	}
}

func TestCommit_LongestNames(t *testing.T) {
	s := newStore(t)
	id := strings.Repeat("v", storage.MaxVideoIDLen)
	data := payload(3, 10)
	commit(t, s, id, math.MaxInt32, data)
	commit(t, s, id, math.MaxInt32, data) // a replace makes backup names too
	assertCommitted(t, s, id, math.MaxInt32, data)
	assertNoScratch(t, s.Root())
}

// An external writer (ffmpeg) writes Path; Commit hashes the file.
func TestCommit_ExternalWriter(t *testing.T) {
	s := newStore(t)
	p, err := s.Create("v", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if !filepath.IsAbs(p.TempPath()) || filepath.Dir(p.TempPath()) != s.TempDir() {
		t.Fatalf("the pending shard is %s, want a file in the store's TempDir", p.TempPath())
	}
	if name := filepath.Base(p.TempPath()); !strings.HasPrefix(name, ".chunk_3.shard.tmp-") {
		t.Fatalf("temporary name = %s", name)
	}
	data := payload(4, 5000)
	if err := os.WriteFile(p.Path(), data, 0o644); err != nil { // O_TRUNC, like ffmpeg -y
		t.Fatal(err)
	}
	if _, err := s.Lookup("v", 3); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("uncommitted chunk visible: %v", err)
	}
	m, err := p.Commit(storage.Metadata{OriginalSize: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if m.EncodedSize != 5000 || m.ChecksumSHA256 != sum(data) {
		t.Fatalf("metadata = %+v", m)
	}
	assertCommitted(t, s, "v", 3, data)
	assertNoScratch(t, s.Root())
}

func TestCommit_WriterMisuse(t *testing.T) {
	tests := []struct {
		name  string
		abuse func(t *testing.T, p *storage.Pending)
	}{
		{"Write and Path", func(t *testing.T, p *storage.Pending) {
			p.Write([]byte("abc"))
			writeFile(t, p.Path(), []byte("something longer"))
		}},
		{"file replaced", func(t *testing.T, p *storage.Pending) {
			os.Remove(p.TempPath())
			writeFile(t, p.TempPath(), []byte("new inode"))
		}},
		{"file removed", func(t *testing.T, p *storage.Pending) {
			os.Remove(p.TempPath())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			old := payload(5, 100)
			commit(t, s, "v", 0, old)
			p, err := s.Create("v", 0)
			if err != nil {
				t.Fatal(err)
			}
			tt.abuse(t, p)
			if _, err := p.Commit(storage.Metadata{}); err == nil {
				t.Fatal("Commit succeeded")
			}
			assertCommitted(t, s, "v", 0, old)
			assertNoScratch(t, s.Root())
		})
	}
}

func TestPending_AbortAndReuse(t *testing.T) {
	s := newStore(t)
	p, err := s.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("abc"))
	for range 2 {
		if err := p.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
	}
	if _, err := os.Stat(p.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file still there: %v", err)
	}
	if _, err := p.Commit(storage.Metadata{}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Commit after Abort = %v, want os.ErrClosed", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Abort = %v, want os.ErrClosed", err)
	}
	assertNotFound(t, s, "v", 0)

	p, err = s.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("abc"))
	if _, err := p.Commit(storage.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Abort(); err != nil {
		t.Fatalf("Abort after Commit = %v, want nil", err)
	}
	if _, err := p.Commit(storage.Metadata{}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Commit = %v, want os.ErrClosed", err)
	}
	assertCommitted(t, s, "v", 0, []byte("abc"))
}

func TestCommit_Replace(t *testing.T) {
	s := newStore(t)
	commit(t, s, "v", 0, payload(1, 100))
	data := payload(2, 50)
	commit(t, s, "v", 0, data)
	assertCommitted(t, s, "v", 0, data)
	chunks, err := s.VideoMetadata("v")
	if err != nil || len(chunks) != 1 {
		t.Fatalf("VideoMetadata = %v, %v", chunks, err)
	}
	assertNoScratch(t, s.Root())
}

func TestList_Sorted(t *testing.T) {
	s := newStore(t)
	for _, v := range []string{"b", "a"} {
		for _, n := range []int{10, 2, 1} {
			commit(t, s, v, n, payload(byte(n), n))
		}
	}
	videos, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range videos {
		for _, c := range v.Chunks {
			if c.VideoID != v.ID {
				t.Errorf("video %s lists a chunk of %s", v.ID, c.VideoID)
			}
			got = append(got, v.ID+"/"+filepath.Base(c.ShardLocation))
		}
	}
	want := []string{"a/chunk_1.shard", "a/chunk_2.shard", "a/chunk_10.shard", "b/chunk_1.shard", "b/chunk_2.shard", "b/chunk_10.shard"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List order = %v, want %v", got, want)
	}
	one, err := s.List("b")
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || one[0].ID != "b" || len(one[0].Chunks) != 3 || one[0].Chunks[2].ChunkIndex != 10 {
		t.Fatalf("List(b) = %+v", one)
	}
}

// GetVideoMetadata in the original matched file-name prefixes, so video "a"
// picked up chunks of "a_chunk_1".
func TestVideoMetadata_NoPrefixMixing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	commit(t, s, "a", 0, payload(1, 10))
	commit(t, s, "a_chunk_1", 2, payload(2, 20))
	commit(t, s, "a_chunk_1_chunk_2", 0, payload(3, 30))
	for range 2 { // before and after a reopen
		for video, wantChunks := range map[string]int{"a": 1, "a_chunk_1": 1, "a_chunk_1_chunk_2": 1} {
			chunks, err := s.VideoMetadata(video)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) != wantChunks {
				t.Fatalf("VideoMetadata(%s) = %d chunks, want %d", video, len(chunks), wantChunks)
			}
			for _, c := range chunks {
				if c.VideoID != video {
					t.Fatalf("VideoMetadata(%s) includes a chunk of %s", video, c.VideoID)
				}
			}
		}
		s, _ = openStore(t, root, nil)
	}
}

// The index hands out copies: changing a returned map does not change it.
func TestLookup_ReturnsCopies(t *testing.T) {
	s := newStore(t)
	p, _ := s.Create("v", 0)
	p.Write([]byte("x"))
	m, err := p.Commit(storage.Metadata{EncoderSettings: map[string]string{"crf": "23"}})
	if err != nil {
		t.Fatal(err)
	}
	m.EncoderSettings["crf"] = "0"
	got, _ := s.Lookup("v", 0)
	got.EncoderSettings["crf"] = "1"
	again, _ := s.Lookup("v", 0)
	if again.EncoderSettings["crf"] != "23" {
		t.Fatalf("index changed through a returned map: %v", again.EncoderSettings)
	}
}

func TestOpen_RebuildsIndex(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	for i, v := range []string{"x", "y.mp4", "z-1"} {
		for n := range 3 {
			commit(t, s, v, n, payload(byte(i+n), 100*(n+1)))
		}
	}
	p, _ := s.Create("x", 0)
	p.Commit(storage.Metadata{EncoderSettings: map[string]string{"preset": "fast"}, VideoCodec: "h264", Width: 640})
	before, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, root, nil)
	after, err := s2.List("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("index after reopen differs:\n%+v\n%+v", before, after)
	}
}

// The store may be moved (or reached through a symlink): locations are
// re-derived from the current root.
func TestOpen_MovedAndSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, filepath.Join(dir, "a"), nil)
	data := payload(1, 64)
	commit(t, s, "v", 0, data)
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "b"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, filepath.Join(dir, "link"), nil)
	root, _ := filepath.EvalSymlinks(filepath.Join(dir, "b"))
	if s.Root() != root {
		t.Fatalf("Root = %s, want %s", s.Root(), root)
	}
	m, err := s.Lookup("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "v", "chunk_0.shard"); m.ShardLocation != want {
		t.Fatalf("ShardLocation = %s, want %s", m.ShardLocation, want)
	}
	assertCommitted(t, s, "v", 0, data)
}

func TestOpen_RemovesLeftoverTempFiles(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	data := payload(1, 100)
	commit(t, s, "v", 0, data)
	leftovers := []string{
		".tmp/ffmpeg-input-123",
		".tmp/sub/dir/file",
		"v/.chunk_0.shard.tmp-0123456789abcdef",
		"v/.chunk_5.shard.tmp-1",
		"v/.chunk_0.shard.bak-0123456789abcdef", // backup that matches nothing to restore
		"w/.chunk_1.shard.bak-1",
		"metadata/.v_chunk_0_metadata.json.tmp-0123456789abcdef",
		"metadata/.v_chunk_0_metadata.json.bak-0123456789abcdef",
	}
	for _, name := range leftovers {
		writeFile(t, filepath.Join(root, name), []byte("partial"))
	}
	keep := filepath.Join(root, "v", ".keep") // not ours to delete
	writeFile(t, keep, nil)
	p, err := s.Create("v", 9) // an uncommitted write of a "crashed" process
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("in flight"))

	s, _ = openStore(t, root, nil)
	for _, name := range leftovers {
		if _, err := os.Lstat(filepath.Join(root, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", name, err)
		}
	}
	if _, err := os.Stat(p.TempPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("uncommitted temporary shard survived Open")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Open removed an unrelated file: %v", err)
	}
	assertNoScratch(t, root)
	assertCommitted(t, s, "v", 0, data)
	assertNotFound(t, s, "v", 9)
}

// What Open refuses to index, says why, and quarantines.
func TestOpen_SkipsInconsistentChunks(t *testing.T) {
	good := payload(1, 100)
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) // after chunk v/0 was committed
		video string
		chunk int
		log   string
	}{
		{
			name: "shard without metadata",
			setup: func(t *testing.T, root string) {
				writeFile(t, filepath.Join(root, "w", "chunk_0.shard"), good)
			},
			video: "w", log: "shard has no metadata",
		},
		{
			name: "metadata without shard",
			setup: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "v", "chunk_0.shard"))
			},
			video: "v", log: "metadata without shard",
		},
		{
			name: "shard size differs",
			setup: func(t *testing.T, root string) {
				writeFile(t, filepath.Join(root, "v", "chunk_0.shard"), append(good, 'x'))
			},
			video: "v", log: "shard size differs",
		},
		{
			name: "metadata under another video's name",
			setup: func(t *testing.T, root string) {
				raw, _ := os.ReadFile(filepath.Join(root, "metadata", "v_chunk_0_metadata.json"))
				os.Remove(filepath.Join(root, "metadata", "v_chunk_0_metadata.json"))
				writeFile(t, filepath.Join(root, "metadata", "w_chunk_0_metadata.json"), raw)
				writeFile(t, filepath.Join(root, "w", "chunk_0.shard"), good)
			},
			video: "w", log: "does not match its video_id",
		},
		{
			name: "ambiguous name with other content",
			setup: func(t *testing.T, root string) {
				// "a_chunk_1_chunk_2_metadata.json" is video a_chunk_1 chunk 2, not video v.
				raw, _ := os.ReadFile(filepath.Join(root, "metadata", "v_chunk_0_metadata.json"))
				writeFile(t, filepath.Join(root, "metadata", "a_chunk_1_chunk_2_metadata.json"), raw)
				writeFile(t, filepath.Join(root, "a_chunk_1", "chunk_2.shard"), good)
			},
			video: "a_chunk_1", chunk: 2, log: "does not match its video_id",
		},
		{
			name: "unparsable metadata",
			setup: func(t *testing.T, root string) {
				writeFile(t, filepath.Join(root, "metadata", "v_chunk_0_metadata.json"), []byte(`{"video_id": "v",`))
			},
			video: "v", log: "unreadable metadata",
		},
		{
			name: "invalid id in metadata",
			setup: func(t *testing.T, root string) {
				writeFile(t, filepath.Join(root, "metadata", "x_chunk_0_metadata.json"),
					[]byte(`{"video_id": "../x", "chunk_index": 0, "encoded_size": 100}`))
			},
			video: "x", log: "invalid chunk",
		},
		{
			name: "shard is a symlink",
			setup: func(t *testing.T, root string) {
				outside := filepath.Join(filepath.Dir(root), "outside")
				writeFile(t, outside, good)
				os.Remove(filepath.Join(root, "v", "chunk_0.shard"))
				if err := os.Symlink(outside, filepath.Join(root, "v", "chunk_0.shard")); err != nil {
					t.Fatal(err)
				}
			},
			video: "v", log: "not a regular file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			s, _ := openStore(t, root, nil)
			commit(t, s, "v", 0, good)
			tt.setup(t, root)
			s, logs := openStore(t, root, nil)
			assertNotFound(t, s, tt.video, tt.chunk)
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log does not say %q:\n%s", tt.log, logs)
			}
			// Not left in place: moved aside, so the index is what is on disk.
			if !strings.Contains(logs.String(), "quarantined") || s.Quarantined() == 0 {
				t.Errorf("nothing quarantined (Quarantined = %d):\n%s", s.Quarantined(), logs)
			}
			if videos, err := s.List(""); err != nil {
				t.Fatal(err)
			} else {
				for _, v := range videos {
					if v.ID == tt.video {
						t.Errorf("List lists %s: %+v", tt.video, v)
					}
				}
			}
		})
	}
}

func TestOpen_RequiresRoot(t *testing.T) {
	if _, err := storage.Open(storage.Options{}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("Open without root = %v, want ErrInvalid", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, nil)
	if _, err := storage.Open(storage.Options{Root: file}); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}

func TestCommit_RefusesSymlinkedVideoDir(t *testing.T) {
	s := newStore(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(s.Root(), "v")); err != nil {
		t.Fatal(err)
	}
	p, err := s.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if _, err := p.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(storage.Metadata{OriginalSize: 4}); err == nil {
		t.Fatal("Commit wrote through a symlinked video directory")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("files written outside the store: %v", entries)
	}
}

func TestTempDirAndHealth(t *testing.T) {
	s := newStore(t)
	if got, want := s.TempDir(), filepath.Join(s.Root(), ".tmp"); got != want {
		t.Fatalf("TempDir = %s, want %s", got, want)
	}
	if fi, err := os.Stat(s.TempDir()); err != nil || !fi.IsDir() {
		t.Fatalf("TempDir missing: %v", err)
	}
	if err := s.CheckWritable(); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
	assertNoScratch(t, s.Root())
	free, err := s.FreeBytes()
	if err != nil || free <= 0 {
		t.Fatalf("FreeBytes = %d, %v", free, err)
	}
}

func TestCommit_NegativeOriginalSize(t *testing.T) {
	s := newStore(t)
	p, err := s.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("abc"))
	if _, err := p.Commit(storage.Metadata{OriginalSize: -1}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("Commit = %v, want ErrInvalid", err)
	}
	assertNotFound(t, s, "v", 0)
	assertNoScratch(t, s.Root())
}
