package storage

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// countingIndex counts the chunks leastRecent hands out.
type countingIndex struct {
	chunkIndex
	rows int
}

func (c *countingIndex) leastRecent(after lruCursor, limit int) ([]lruEntry, error) {
	out, err := c.chunkIndex.leastRecent(after, limit)
	c.rows += len(out)
	return out, err
}

// TestEvict_PinnedHeadReadOnce: chunks left at the head of the order
// (pinned, in use) are not read again for every batch past them. With
// n of them, a commit at the limit read n²/512 rows under the room's lock
// (some 10 s for 30,000 pinned chunks in SQLite), every commit waiting.
func TestEvict_PinnedHeadReadOnce(t *testing.T) {
	for _, n := range []int{evictBatch - 1, evictBatch * 3, 10_000} {
		s, err := Open(Options{Root: filepath.Join(t.TempDir(), "store"), Index: IndexMemory,
			Limits: Limits{MaxBytes: int64(n), Eviction: EvictLRU}})
		if err != nil {
			t.Fatal(err)
		}
		metas := make(map[chunkKey]Metadata, n)
		for i := range n {
			metas[chunkKey{"pinned", i}] = Metadata{VideoID: "pinned", ChunkIndex: i, EncodedSize: 1}
		}
		s.index.close()
		ci := &countingIndex{chunkIndex: newMemIndex(metas)}
		s.index = ci
		if err := s.Pin("pinned"); err != nil {
			t.Fatal(err)
		}
		s.room.mu.Lock()
		left, err := s.evict(chunkKey{"new", 0}, int64(n))
		s.room.mu.Unlock()
		if err != nil || !strings.HasPrefix(left, strconv.Itoa(n)+" chunks of pinned videos") {
			t.Fatalf("n=%d: evict: %q, %v", n, left, err)
		}
		if ci.rows > n+evictBatch {
			t.Errorf("n=%d: %d rows read to pass %d pinned chunks", n, ci.rows, n)
		}
		s.Close()
	}
}
