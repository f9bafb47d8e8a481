package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// copyOf is src's metadata as a replicating worker commits it.
func copyOf(src storage.Metadata) storage.Metadata {
	m := src
	m.WorkerID, m.ShardLocation, m.ReplicatedFrom = "target:1", "", "source:1"
	return m
}

func commitCopy(s *storage.Store, meta storage.Metadata, data []byte) (storage.Metadata, error) {
	p, err := s.Create(meta.VideoID, meta.ChunkIndex)
	if err != nil {
		return storage.Metadata{}, err
	}
	defer p.Abort()
	if _, err := p.Write(data); err != nil {
		return storage.Metadata{}, err
	}
	return p.CommitCopy(meta)
}

func TestCommitCopy_KeepsTheSourcesMetadata(t *testing.T) {
	data := payload(1, 5000)
	src := commit(t, newStore(t), "v", 3, data)
	src.Timestamp = "2020-01-02T03:04:05.678901Z" // not the target's clock
	dst := newStore(t)
	got, err := commitCopy(dst, copyOf(src), data)
	if err != nil {
		t.Fatal(err)
	}
	want := copyOf(src)
	want.ShardLocation = filepath.Join(dst.Root(), "v", "chunk_3.shard")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CommitCopy = %+v\nwant %+v", got, want)
	}
	assertCommitted(t, dst, "v", 3, data)
	// The file carries it too: reopened, the copy is the same.
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	re, _ := openStore(t, dst.Root(), nil)
	if m, err := re.Lookup("v", 3); err != nil || !reflect.DeepEqual(m, want) {
		t.Fatalf("after reopen: %+v, %v\nwant %+v", m, err, want)
	}
}

func TestCommitCopy_Refused(t *testing.T) {
	data := payload(1, 5000)
	src := commit(t, newStore(t), "v", 3, data)
	other := payload(2, 5000)
	tests := []struct {
		name string
		meta func(storage.Metadata) storage.Metadata
		data []byte
		want error
	}{
		{"other bytes", func(m storage.Metadata) storage.Metadata { return m }, other, storage.ErrMismatch},
		{"fewer bytes", func(m storage.Metadata) storage.Metadata { return m }, data[:4999], storage.ErrMismatch},
		{"size says more", func(m storage.Metadata) storage.Metadata { m.EncodedSize++; return m }, data, storage.ErrMismatch},
		{"no checksum", func(m storage.Metadata) storage.Metadata { m.ChecksumSHA256 = ""; return m }, data, storage.ErrMismatch},
		{"other chunk", func(m storage.Metadata) storage.Metadata { m.ChunkIndex = 4; return m }, data, storage.ErrInvalid},
		{"bad timestamp", func(m storage.Metadata) storage.Metadata { m.Timestamp = "yesterday"; return m }, data, storage.ErrInvalid},
		// Times whose nanoseconds since 1970 do not fit an int64 would
		// sort wrong in the index (processed_before/after filters).
		{"year 9999", func(m storage.Metadata) storage.Metadata { m.Timestamp = "9999-12-31T23:59:59.000000"; return m }, data, storage.ErrInvalid},
		{"year 1", func(m storage.Metadata) storage.Metadata { m.Timestamp = "0001-01-01T00:00:00.000000"; return m }, data, storage.ErrInvalid},
		{"next year", func(m storage.Metadata) storage.Metadata {
			m.Timestamp = time.Now().AddDate(1, 0, 0).UTC().Format("2006-01-02T15:04:05.000000")
			return m
		}, data, storage.ErrInvalid},
		{"negative width", func(m storage.Metadata) storage.Metadata { m.Width = -1; return m }, data, storage.ErrInvalid},
		{"negative frame count", func(m storage.Metadata) storage.Metadata { m.FrameCount = -5; return m }, data, storage.ErrInvalid},
		// Metadata Open would refuse to read back (over 1 MiB): the chunk
		// would be lost at the next start.
		{"metadata over 1 MiB", func(m storage.Metadata) storage.Metadata {
			m.Encoder = strings.Repeat("x", 1<<20)
			return m
		}, data, storage.ErrInvalid},
		{"a setting over 1 MiB", func(m storage.Metadata) storage.Metadata {
			m.EncoderSettings = map[string]string{"crf": strings.Repeat("9", 1<<20)}
			return m
		}, data, storage.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newStore(t)
			old := commit(t, dst, "v", 3, other)
			meta := tt.meta(copyOf(src))
			p, err := dst.Create("v", 3)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(tt.data); err != nil {
				t.Fatal(err)
			}
			if _, err := p.CommitCopy(meta); !errors.Is(err, tt.want) {
				t.Fatalf("CommitCopy error %v, want %v", err, tt.want)
			}
			// Nothing installed, nothing existing touched, nothing left.
			assertCommitted(t, dst, "v", 3, other)
			if m, _ := dst.Lookup("v", 3); m.Timestamp != old.Timestamp {
				t.Fatalf("the old version's metadata changed: %+v", m)
			}
			assertNoScratch(t, dst.Root())
			if _, err := p.CommitCopy(copyOf(src)); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("CommitCopy after a refusal: %v, want os.ErrClosed", err)
			}
		})
	}
}

// Quarantines at run time are listed (the ring's bound: quarantine_internal_test.go).
func TestRecentQuarantines(t *testing.T) {
	s := newStore(t)
	if got := s.RecentQuarantines(); len(got) != 0 {
		t.Fatalf("fresh store: %v", got)
	}
	for i := range 2 {
		commit(t, s, "v", i, []byte("x"))
		if err := s.Quarantine("v", i, "test"); err != nil {
			t.Fatal(err)
		}
	}
	got := s.RecentQuarantines()
	if len(got) != 2 || got[0].ChunkIndex != 0 || got[1].ChunkIndex != 1 || got[0].VideoID != "v" ||
		got[0].Reason != "test" || got[0].Time.IsZero() {
		t.Fatalf("RecentQuarantines = %+v", got)
	}
}

func TestRecentQuarantines_AtOpen(t *testing.T) {
	s := newStore(t)
	commit(t, s, "v", 1, []byte("abc"))
	root := s.Root()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "v", "chunk_1.shard")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "v", "chunk_2.shard"), []byte("orphan"))
	writeFile(t, filepath.Join(root, "metadata", "junk_metadata.json"), []byte("{"))
	re, _ := openStore(t, root, nil)
	var got []string
	for _, q := range re.RecentQuarantines() {
		got = append(got, q.VideoID+"/"+string(rune('0'+q.ChunkIndex))+": "+q.Reason)
	}
	want := []string{"v/1: metadata without shard", "v/2: shard has no metadata"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("RecentQuarantines after Open = %q, want %q (the unreadable metadata file names no chunk)", got, want)
	}
}
