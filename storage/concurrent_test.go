package storage_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// assertConsistent checks every listed chunk: its file's size and SHA-256
// equal the metadata's, and a reopened store lists the same.
func assertConsistent(t *testing.T, s *storage.Store) []storage.Video {
	t.Helper()
	videos, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range videos {
		for _, m := range v.Chunks {
			data, err := os.ReadFile(m.ShardLocation)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(data)) != m.EncodedSize || sum(data) != m.ChecksumSHA256 {
				t.Errorf("%s chunk %d: file (%d bytes, %s) differs from metadata (%d bytes, %s)",
					v.ID, m.ChunkIndex, len(data), sum(data), m.EncodedSize, m.ChecksumSHA256)
			}
		}
	}
	s2, _ := openStore(t, s.Root(), nil)
	again, err := s2.List("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(videos, again) {
		t.Errorf("reopened store lists something else")
	}
	assertNoScratch(t, s.Root())
	return videos
}

func TestConcurrentCommits_DifferentChunks(t *testing.T) {
	s := newStore(t)
	const videos, chunks = 4, 16
	var wg sync.WaitGroup
	for v := range videos {
		for n := range chunks {
			wg.Go(func() {
				p, err := s.Create(fmt.Sprintf("video-%d", v), n)
				if err != nil {
					t.Error(err)
					return
				}
				defer p.Abort()
				p.Write(payload(byte(v*chunks+n), 1000+v*chunks+n))
				if _, err := p.Commit(storage.Metadata{}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	listed := assertConsistent(t, s)
	if len(listed) != videos {
		t.Fatalf("%d videos listed, want %d", len(listed), videos)
	}
	for i, v := range listed {
		if len(v.Chunks) != chunks {
			t.Fatalf("%s: %d chunks, want %d", v.ID, len(v.Chunks), chunks)
		}
		for n, m := range v.Chunks {
			if m.ChunkIndex != n || m.EncodedSize != int64(1000+i*chunks+n) {
				t.Fatalf("%s chunk %d: %+v", v.ID, n, m)
			}
		}
	}
}

// Writers replace one chunk over and over while readers open it: a reader
// always gets a complete file matching the metadata it was given.
func TestConcurrentCommits_SameChunk(t *testing.T) {
	s := newStore(t)
	commit(t, s, "v", 0, payload(0, 10))
	const writers, rounds, readers = 8, 4, 4
	var done atomic.Bool
	var reads atomic.Int64
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for !done.Load() {
				f, m, err := s.OpenShard("v", 0)
				if err != nil {
					t.Error(err)
					return
				}
				h := sha256.New()
				n, err := io.Copy(h, f)
				f.Close()
				if err != nil {
					t.Error(err)
					return
				}
				if n != m.EncodedSize || hex.EncodeToString(h.Sum(nil)) != m.ChecksumSHA256 {
					t.Errorf("read %d bytes not matching metadata %+v", n, m)
					return
				}
				if _, _, err := s.ResolveLocation(m.ShardLocation); err != nil {
					t.Error(err)
				}
				reads.Add(1)
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				p, err := s.Create("v", 0)
				if err != nil {
					t.Error(err)
					return
				}
				data := payload(byte(w*rounds+r+1), 500+100*w+r)
				if w%2 == 0 {
					p.Write(data)
				} else if err := os.WriteFile(p.Path(), data, 0o644); err != nil {
					t.Error(err)
				}
				if _, err := p.Commit(storage.Metadata{WorkerID: fmt.Sprint(w)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	t.Logf("%d reads during %d commits", reads.Load(), writers*rounds)
	listed := assertConsistent(t, s)
	if len(listed) != 1 || len(listed[0].Chunks) != 1 {
		t.Fatalf("List = %+v", listed)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root(), "v")); len(entries) != 1 {
		t.Fatalf("video directory holds %d entries, want 1", len(entries))
	}
}
