package storage_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

func TestDelete(t *testing.T) {
	for _, kind := range []storage.IndexKind{storage.IndexMemory, storage.IndexSQLite} {
		t.Run(string(kind), func(t *testing.T) {
			s, _ := openKind(t, filepath.Join(t.TempDir(), "store"), kind)
			commit(t, s, "v", 0, []byte("zero"))
			commit(t, s, "v", 1, []byte("one"))
			commit(t, s, "w", 0, []byte("w0"))
			for _, tc := range []struct {
				name  string
				del   func() (storage.Deleted, error)
				want  storage.Deleted
				usage storage.Usage
			}{
				{"one chunk", func() (storage.Deleted, error) { return s.Delete("v", 1) }, storage.Deleted{Chunks: 1, Bytes: 3}, storage.Usage{Chunks: 2, Bytes: 6}},
				{"again", func() (storage.Deleted, error) { return s.Delete("v", 1) }, storage.Deleted{}, storage.Usage{Chunks: 2, Bytes: 6}},
				{"never stored", func() (storage.Deleted, error) { return s.Delete("x", 7) }, storage.Deleted{}, storage.Usage{Chunks: 2, Bytes: 6}},
				{"a video", func() (storage.Deleted, error) { return s.DeleteVideo("v") }, storage.Deleted{Chunks: 1, Bytes: 4}, storage.Usage{Chunks: 1, Bytes: 2}},
				{"the video again", func() (storage.Deleted, error) { return s.DeleteVideo("v") }, storage.Deleted{}, storage.Usage{Chunks: 1, Bytes: 2}},
			} {
				got, err := tc.del()
				if err != nil || got != tc.want {
					t.Fatalf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
				}
				if u := s.Usage(); u != tc.usage {
					t.Fatalf("%s: Usage %+v, want %+v", tc.name, u, tc.usage)
				}
			}
			assertNotFound(t, s, "v", 0)
			assertNotFound(t, s, "v", 1)
			assertCommitted(t, s, "w", 0, []byte("w0"))
			assertNoScratch(t, s.Root())
			// Gone after a reopen too, and the chunk can be written again.
			root := s.Root()
			s.Close()
			s, _ = openKind(t, root, kind)
			assertNotFound(t, s, "v", 0)
			commit(t, s, "v", 0, []byte("again"))
			assertCommitted(t, s, "v", 0, []byte("again"))
		})
	}
}

func TestDelete_Invalid(t *testing.T) {
	// The memory index: SQLite's files change as it is read.
	s, _ := openKind(t, filepath.Join(t.TempDir(), "store"), storage.IndexMemory)
	commit(t, s, "v", 0, []byte("zero"))
	before := snapshot(t, s.Root())
	for _, id := range []string{"", "../v", "metadata", ".index", "a/b"} {
		if _, err := s.Delete(id, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Delete(%q, 0): %v, want ErrInvalid", id, err)
		}
		if _, err := s.DeleteVideo(id); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("DeleteVideo(%q): %v, want ErrInvalid", id, err)
		}
	}
	if _, err := s.Delete("v", -1); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("Delete(v, -1): %v, want ErrInvalid", err)
	}
	if diff := snapshotDiff(before, snapshot(t, s.Root())); len(diff) > 0 {
		t.Errorf("refused deletes changed the store: %v", diff)
	}
}

// TestDelete_BusyWhileWritten: a chunk with a Pending is refused, and so is
// its video; after the Commit, the delete works.
func TestDelete_BusyWhileWritten(t *testing.T) {
	s := newStore(t)
	commit(t, s, "v", 0, []byte("zero"))
	p, err := s.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if _, err := s.Delete("v", 0); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("Delete while written: %v, want ErrBusy", err)
	}
	q, err := s.Create("v", 5) // a new chunk of the video
	if err != nil {
		t.Fatal(err)
	}
	defer q.Abort()
	p.Abort()
	if _, err := s.DeleteVideo("v"); !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("DeleteVideo while a chunk is written: %v, want ErrBusy", err)
	}
	assertCommitted(t, s, "v", 0, []byte("zero"))
	q.Abort()
	if d, err := s.DeleteVideo("v"); err != nil || d.Chunks != 1 {
		t.Fatalf("DeleteVideo after the writes: %+v, %v", d, err)
	}
}

// TestDelete_ConcurrentReads: readers that opened the shard read it whole
// and verified; those that open after the delete get ErrNotFound.
func TestDelete_ConcurrentReads(t *testing.T) {
	s := newStore(t)
	data := payload(3, 4<<20)
	commit(t, s, "v", 0, data)
	var wg sync.WaitGroup
	opened := make(chan struct{}, 8)
	for range 8 {
		wg.Go(func() {
			r, err := s.OpenVerified("v", 0)
			opened <- struct{}{}
			if errors.Is(err, storage.ErrNotFound) {
				return
			}
			if err != nil {
				t.Errorf("OpenVerified: %v", err)
				return
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read %d bytes, %v; want the %d committed", len(got), err, len(data))
			}
		})
	}
	<-opened
	if d, err := s.Delete("v", 0); err != nil || d.Chunks != 1 {
		t.Fatalf("Delete: %+v, %v", d, err)
	}
	wg.Wait()
	if _, err := s.OpenVerified("v", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("OpenVerified after Delete: %v, want ErrNotFound", err)
	}
	if s.Corrupted() != 0 {
		t.Errorf("a delete under readers counted %d corrupt", s.Corrupted())
	}
}

// TestDelete_MetadataFirst: a failure between the two removals leaves the
// shard without its metadata, never the metadata without its shard: the
// chunk is not listed now, nor after a reopen, which quarantines the shard.
func TestDelete_MetadataFirst(t *testing.T) {
	for _, kind := range []storage.IndexKind{storage.IndexMemory, storage.IndexSQLite} {
		t.Run(string(kind), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			ffs := &faultFS{}
			log, _ := newLogger(t)
			s, err := storage.Open(storage.Options{Root: root, FS: ffs, Index: kind, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s, "v", 0, []byte("zero"))
			commit(t, s, "v", 1, []byte("one"))
			ffs.arm(on("remove", "chunk_1.shard"), syscall.EIO, false)
			if _, err := s.Delete("v", 1); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Delete with the shard's removal failing: %v, want EIO", err)
			}
			assertNotFound(t, s, "v", 1)
			s.Close()
			r, _ := openKind(t, root, kind)
			assertNotFound(t, r, "v", 1)
			assertCommitted(t, r, "v", 0, []byte("zero"))
			if r.Quarantined() != 1 {
				t.Errorf("Quarantined %d after reopen, want the orphan shard", r.Quarantined())
			}
		})
	}
}
