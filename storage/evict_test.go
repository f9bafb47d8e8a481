package storage_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// openLimited opens a fresh store with limits, an index of kind and a
// clock that ticks a second a call.
func openLimited(t *testing.T, kind storage.IndexKind, limits storage.Limits) (*storage.Store, *logBuffer) {
	t.Helper()
	log, lb := newLogger(t)
	var tick atomic.Int64
	s, err := storage.Open(storage.Options{Root: filepath.Join(t.TempDir(), "store"), Index: kind, Logger: log, Limits: limits,
		Now: func() time.Time { return testNow.Add(time.Duration(tick.Add(1)) * time.Second) }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

// stored lists the committed chunks as "video/chunk", in listing order.
func stored(t *testing.T, s *storage.Store) string {
	t.Helper()
	videos, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range videos {
		for _, c := range v.Chunks {
			out = append(out, fmt.Sprintf("%s/%d", v.ID, c.ChunkIndex))
		}
	}
	return strings.Join(out, " ")
}

// tryCommit is commit that returns Commit's error.
func tryCommit(s *storage.Store, video string, chunk int, data []byte) error {
	p, err := s.Create(video, chunk)
	if err != nil {
		return err
	}
	defer p.Abort()
	if _, err := p.Write(data); err != nil {
		return err
	}
	_, err = p.Commit(storage.Metadata{OriginalSize: int64(len(data)), Encoder: "simulated"})
	return err
}

// With lru, a commit over max_bytes evicts the least recently read
// chunks down to the low watermark; pinned videos and chunks being read
// are left, and each eviction is logged and counted.
func TestEvict_LRU(t *testing.T) {
	for _, kind := range []storage.IndexKind{storage.IndexMemory, storage.IndexSQLite} {
		t.Run(string(kind), func(t *testing.T) {
			s, logs := openLimited(t, kind, storage.Limits{MaxBytes: 1000, Eviction: storage.EvictLRU, EvictToRatio: 0.3})
			for n := range 5 {
				commit(t, s, "a", n, payload(byte(n), 100)) // a/0..a/4: 500 bytes
			}
			for n := range 3 {
				commit(t, s, "pinned", n, payload(byte(n), 100)) // 800 bytes
			}
			if err := s.Pin("pinned"); err != nil {
				t.Fatal(err)
			}
			readShard(t, s, "a", 0) // read: after a/2, a/3, a/4 in the order
			open, err := s.OpenVerified("a", 1)
			if err != nil {
				t.Fatal(err)
			}
			defer open.Close() // a/1 being read, the most recent

			// 800 + 250 > 1000: down to 300 would take 750 bytes, but the
			// pinned video and a/1 stay; 400 go, which is under the limit.
			commit(t, s, "b", 0, payload(9, 250))
			if got, want := stored(t, s), "a/1 b/0 pinned/0 pinned/1 pinned/2"; got != want {
				t.Fatalf("after the commit: %s, want %s", got, want)
			}
			if n := s.Evicted(); n != 4 {
				t.Errorf("Evicted() = %d, want 4 (a/2, a/3, a/4, a/0)", n)
			}
			if u := s.Usage(); u.Bytes > 1000 {
				t.Errorf("usage %d bytes, over max_bytes", u.Bytes)
			}
			if c := strings.Count(logs.String(), "chunk evicted"); c != 4 {
				t.Errorf("%d eviction log lines, want 4:\n%s", c, logs)
			}
		})
	}
}

// A commit that cannot be made to fit is refused with ErrNoSpace saying
// why, and nothing stored is lost but what eviction may take.
func TestEvict_NothingToEvict(t *testing.T) {
	s, _ := openLimited(t, storage.IndexSQLite, storage.Limits{MaxBytes: 500, Eviction: storage.EvictLRU})
	for n := range 4 {
		commit(t, s, "pinned", n, payload(byte(n), 100))
	}
	if err := s.Pin("pinned"); err != nil {
		t.Fatal(err)
	}
	err := tryCommit(s, "b", 0, payload(1, 200))
	if !errors.Is(err, storage.ErrNoSpace) || !strings.Contains(err.Error(), "nothing more can be evicted") ||
		!strings.Contains(err.Error(), "4 chunks of pinned videos") {
		t.Fatalf("commit over the limit: %v, want ErrNoSpace saying nothing can be evicted", err)
	}
	if got := stored(t, s); got != "pinned/0 pinned/1 pinned/2 pinned/3" {
		t.Fatalf("stored after the refusal: %s", got)
	}
	if err := s.Unpin("pinned"); err != nil {
		t.Fatal(err)
	}
	if err := tryCommit(s, "b", 0, payload(1, 200)); err != nil {
		t.Fatalf("after Unpin: %v", err)
	}
	if got := stored(t, s); got != "b/0 pinned/2 pinned/3" {
		t.Fatalf("after the commit: %s", got)
	}
}

// Without eviction a store at its limit refuses new chunks at Create,
// before any encode, and says why; what is stored stays.
func TestEvict_None(t *testing.T) {
	s, _ := openLimited(t, storage.IndexMemory, storage.Limits{MaxBytes: 250})
	commit(t, s, "a", 0, payload(0, 100))
	commit(t, s, "a", 1, payload(1, 100))
	err := tryCommit(s, "a", 2, payload(2, 100))
	if !errors.Is(err, storage.ErrNoSpace) || !strings.Contains(err.Error(), "storage.max_bytes 250") ||
		!strings.Contains(err.Error(), "eviction is none") {
		t.Fatalf("commit over max_bytes: %v", err)
	}
	commit(t, s, "a", 2, payload(2, 50)) // fits exactly
	if _, err := s.Create("a", 3); !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("Create at the limit: %v, want ErrNoSpace", err)
	}
	if got := stored(t, s); got != "a/0 a/1 a/2" {
		t.Fatalf("stored: %s", got)
	}
	if s.Evicted() != 0 {
		t.Fatal("evicted with eviction none")
	}
}

// min_free_bytes beyond what the disk has: every commit would cross it.
// Without eviction it is refused; with lru everything evictable goes and
// the commit is still refused, naming the free space.
func TestEvict_MinFree(t *testing.T) {
	huge := int64(1) << 60
	s, _ := openLimited(t, storage.IndexMemory, storage.Limits{MinFreeBytes: huge})
	if err := tryCommit(s, "a", 0, payload(0, 10)); !errors.Is(err, storage.ErrNoSpace) || !strings.Contains(err.Error(), "storage.min_free_bytes") {
		t.Fatalf("commit below min_free_bytes: %v", err)
	}
	if why := s.LowOnSpace(); !strings.Contains(why, "below storage.min_free_bytes") {
		t.Fatalf("LowOnSpace() = %q", why)
	}
}

func TestLimits_Invalid(t *testing.T) {
	for _, l := range []storage.Limits{
		{MaxBytes: -1},
		{MinFreeBytes: -1},
		{Eviction: "fifo"},
		{EvictToRatio: 1.5},
		{EvictToRatio: -0.1},
	} {
		if _, err := storage.Open(storage.Options{Root: t.TempDir(), Limits: l}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Open with %+v: %v, want ErrInvalid", l, err)
		}
	}
}

// Concurrent commits under a limit evict for one another without ever
// leaving the store over it, while readers read.
func TestEvict_Concurrent(t *testing.T) {
	s, _ := openLimited(t, storage.IndexSQLite, storage.Limits{MaxBytes: 20_000, Eviction: storage.EvictLRU})
	var over atomic.Int64
	done := make(chan error, 8)
	for w := range 8 {
		go func() {
			for n := range 40 {
				video := fmt.Sprintf("v%d", w)
				if err := tryCommit(s, video, n, payload(byte(n), 1000)); err != nil {
					done <- err
					return
				}
				if f, _, err := s.OpenShard(video, n/2); err == nil {
					f.Close()
				}
				if u := s.Usage(); u.Bytes > 20_000 {
					over.Store(u.Bytes)
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if b := over.Load(); b != 0 {
		t.Fatalf("usage reached %d bytes, over max_bytes", b)
	}
	if s.Evicted() < 300 {
		t.Errorf("Evicted() = %d, want at least 300 of the 320 chunks", s.Evicted())
	}
}

// Eviction pages past chunks it must leave: with more pinned chunks than
// a page holds ahead of it, the evictable one behind them still goes.
func TestEvict_PastAPageOfPinned(t *testing.T) {
	for _, kind := range []storage.IndexKind{storage.IndexMemory, storage.IndexSQLite} {
		t.Run(string(kind), func(t *testing.T) {
			s, _ := openLimited(t, kind, storage.Limits{MaxBytes: 700 * 10, Eviction: storage.EvictLRU, EvictToRatio: 1})
			if err := s.Pin("pinned"); err != nil {
				t.Fatal(err)
			}
			for n := range 600 {
				commit(t, s, "pinned", n, payload(byte(n), 10))
			}
			commit(t, s, "old", 0, payload(1, 10))  // after every pinned chunk in the order
			commit(t, s, "new", 0, payload(2, 990)) // 6010 + 990 = 7000: fits
			commit(t, s, "new", 1, payload(3, 10))  // over: only old/0 may go
			if _, err := s.Lookup("old", 0); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("old/0 after a commit over the limit: %v, want evicted", err)
			}
			if n := s.Evicted(); n != 1 {
				t.Fatalf("Evicted() = %d, want 1", n)
			}
		})
	}
}
