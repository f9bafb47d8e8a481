package storage_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// The shards planted for FuzzMetadataJSON, without metadata: only a
// metadata file naming one of them, correctly named and with its size, may
// make Open index a chunk.
var fuzzShards = map[fuzzKey]string{
	{"v", 3}:              "0123456789",
	{"v", 0}:              "",
	{"a_chunk_1", 2}:      "x",
	{"example.mp4", 7000}: "seven thousand",
}

// fuzzMetaName is the documented metadata file name of a chunk.
func fuzzMetaName(video string, chunk int) string {
	return video + "_chunk_" + strconv.Itoa(chunk) + "_metadata.json"
}

// FuzzMetadataJSON writes fuzzed bytes as a metadata file into a store
// holding shards without metadata, then opens it. Open must not fail or
// panic, must index the chunk exactly when the file is valid JSON (at most
// 1 MiB) for a valid video id and chunk index, is named what that id and
// index produce, and its encoded_size matches a shard at the expected path;
// an indexed chunk must point at that shard whatever shard_location says.
// Open must remove the file if its name is a temporary or backup name, and
// otherwise, like the shards, keep it: in place or set aside under
// <root>/.quarantine, never destroyed.
//
// nameMode picks the file's name: 0, the name of chunk v/3; 1, the name the
// content asks for (if it has a string video_id and an integer
// chunk_index); 2, name itself when it is a usable file name.
func FuzzMetadataJSON(f *testing.F) {
	good := func(video string, chunk int, size int) string {
		return `{"video_id":` + strconv.Quote(video) + `,"chunk_index":` + strconv.Itoa(chunk) +
			`,"encoded_size":` + strconv.Itoa(size) + `,"shard_location":"/etc/passwd","checksum_sha256":"00"}`
	}
	f.Add([]byte(good("v", 3, 10)), uint8(0), "")
	f.Add([]byte(good("v", 3, 10)), uint8(1), "")
	f.Add([]byte(good("v", 3, 11)), uint8(0), "")
	f.Add([]byte(good("v", 0, 0)), uint8(1), "")
	f.Add([]byte(good("a_chunk_1", 2, 1)), uint8(1), "")
	f.Add([]byte(good("a_chunk_1", 2, 1)), uint8(2), "a_chunk_1_chunk_2_metadata.json")
	f.Add([]byte(good("example.mp4", 7000, 14)), uint8(1), "")
	f.Add([]byte(good("v", 3, 10)), uint8(2), ".v_chunk_3_metadata.json.tmp-1234")
	f.Add([]byte(good("v", 3, 10)), uint8(2), ".v_chunk_3_metadata.json.bak-1234")
	f.Add([]byte(good("v", 3, 10)), uint8(2), "v_chunk_03_metadata.json")
	f.Add([]byte(good("../v", 3, 10)), uint8(1), "")
	f.Add([]byte(good("metadata", 3, 10)), uint8(1), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":-1}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3.0,"encoded_size":10}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":-3,"encoded_size":10}`), uint8(1), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":2147483648,"encoded_size":10}`), uint8(1), "")
	f.Add([]byte(`{"VIDEO_ID":"v","Chunk_Index":3,"encoded_size":10}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","video_id":"w","chunk_index":3,"encoded_size":10}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":10,"encoder_settings":{"a":1}}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":10,"quality":{"frames":4,"psnr_min":null,"psnr_mean":null,"ssim_min":1,"ssim_mean":1}}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":10,"quality":{"frames":4,"psnr_min":"inf"}}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":10,"quality":null}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":10,"quality":[1]}`), uint8(0), "")
	f.Add([]byte(`{"video_id":"v","chunk_index":3,"encoded_size":10} trailing`), uint8(0), "")
	f.Add([]byte(`null`), uint8(0), "")
	f.Add([]byte(`[]`), uint8(0), "")
	f.Add([]byte(``), uint8(0), "")
	f.Add([]byte("\xff\xfe{}"), uint8(0), "")

	base := fuzzScratch(f)
	f.Fuzz(func(t *testing.T, data []byte, nameMode uint8, name string) {
		dir, err := os.MkdirTemp(base, "")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		root := filepath.Join(dir, "store")
		for k, content := range fuzzShards {
			fuzzWrite(t, filepath.Join(root, k.video, "chunk_"+strconv.Itoa(k.chunk)+".shard"), content)
		}
		var loose struct {
			VideoID    any `json:"video_id"`
			ChunkIndex any `json:"chunk_index"`
		}
		switch {
		case nameMode%3 == 1 && json.Unmarshal(data, &loose) == nil:
			video, _ := loose.VideoID.(string)
			n, _ := loose.ChunkIndex.(float64)
			name = fuzzMetaName(video, int(n))
			if !fuzzUsableName(name) || n != math.Trunc(n) || math.Abs(n) > 1<<40 {
				name = fuzzMetaName("v", 3)
			}
		case nameMode%3 == 2 && fuzzUsableName(name):
		default:
			name = fuzzMetaName("v", 3)
		}
		path := filepath.Join(root, "metadata", name)
		fuzzWrite(t, path, string(data))

		s, err := storage.Open(storage.Options{Root: root})
		if err != nil {
			t.Fatalf("Open with metadata file %q = %q: %v", name, data, err)
		}

		// What the documented rules say.
		var m storage.Metadata
		valid := len(data) <= 1<<20 && json.Unmarshal(data, &m) == nil &&
			storage.ValidateVideoID(m.VideoID) == nil && storage.ValidateChunkIndex(int64(m.ChunkIndex)) == nil &&
			name == fuzzMetaName(m.VideoID, m.ChunkIndex)
		shard, hasShard := fuzzShards[fuzzKey{m.VideoID, m.ChunkIndex}]
		wantIndexed := valid && hasShard && m.EncodedSize == int64(len(shard))

		videos, err := s.List("")
		if err != nil {
			t.Fatal(err)
		}
		var listed []storage.Metadata
		for _, v := range videos {
			listed = append(listed, v.Chunks...)
		}
		switch {
		case !wantIndexed && len(listed) > 0:
			t.Fatalf("metadata file %q = %q: Open indexed %+v; the rules say nothing may be indexed", name, data, listed)
		case wantIndexed && len(listed) != 1:
			t.Fatalf("metadata file %q = %q: Open indexed %d chunks, want exactly %s chunk %d", name, data, len(listed), m.VideoID, m.ChunkIndex)
		case wantIndexed:
			got := listed[0]
			wantPath := filepath.Join(s.Root(), m.VideoID, "chunk_"+strconv.Itoa(m.ChunkIndex)+".shard")
			if got.VideoID != m.VideoID || got.ChunkIndex != m.ChunkIndex || got.EncodedSize != int64(len(shard)) || got.ShardLocation != wantPath {
				t.Fatalf("metadata file %q = %q: indexed %+v, want %s chunk %d at %s", name, data, got, m.VideoID, m.ChunkIndex, wantPath)
			}
			file, om, err := s.OpenShard(m.VideoID, m.ChunkIndex)
			if err != nil {
				t.Fatalf("OpenShard of an indexed chunk: %v", err)
			}
			b, err := io.ReadAll(file)
			file.Close()
			if err != nil || string(b) != shard || om.ShardLocation != wantPath {
				t.Fatalf("OpenShard read %q from %s (%v), want the planted shard %q", b, om.ShardLocation, err, shard)
			}
		}

		for k, content := range fuzzShards {
			p := filepath.Join(root, k.video, "chunk_"+strconv.Itoa(k.chunk)+".shard")
			if !fuzzKept(root, p, []byte(content)) {
				t.Fatalf("Open destroyed or changed the shard of %v", k)
			}
		}
		scratch := strings.HasPrefix(name, ".") && (strings.Contains(name, ".tmp-") || strings.Contains(name, ".bak-"))
		if _, err := os.Lstat(path); scratch && err == nil {
			t.Fatalf("Open left the scratch file %q", name)
		}
		if !scratch && !fuzzKept(root, path, data) {
			t.Fatalf("Open destroyed or changed the metadata file %q", name)
		}
	})
}

// fuzzKept reports whether the file at path still holds data, either in
// place or moved under <root>/.quarantine with its name: Open may set
// aside what it cannot index, but must not destroy it.
func fuzzKept(root, path string, data []byte) bool {
	if b, err := os.ReadFile(path); err == nil {
		return bytes.Equal(b, data)
	}
	found := false
	filepath.WalkDir(filepath.Join(root, ".quarantine"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == filepath.Base(path) {
			if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, data) {
				found = true
			}
		}
		return nil
	})
	return found
}

// fuzzScratch returns a new directory for fuzzed stores, removed at the
// end: on tmpfs (/dev/shm) when there is one, where Open's fsyncs cost
// nothing and a busy disk does not stall the fuzzer, else in tb.TempDir.
func fuzzScratch(tb testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "videoshard-fuzz-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// fuzzUsableName reports whether name can be a file name in one directory.
func fuzzUsableName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 &&
		!strings.ContainsAny(name, "/\x00")
}
