package storage

import (
	"cmp"
	"fmt"
	"math"
	"sync"
)

// Usage is what the committed chunks take.
type Usage struct {
	Chunks int64 // committed chunks
	Bytes  int64 // their shards' bytes (encoded_size), metadata files not counted
}

// Usage returns what the committed chunks take. It is kept as chunks are
// committed, replaced, deleted and quarantined, so it costs nothing.
func (s *Store) Usage() Usage {
	return Usage{Chunks: s.usedChunks.Load(), Bytes: s.usedBytes.Load()}
}

// LeastRecentlyRead returns up to limit committed chunks (limit > 0), the
// least recently read first; ties, such as chunks never read, go by
// video id and chunk index. A chunk's recency starts at its commit
// (ProcessedAt) and moves with every OpenVerified, OpenShard and Verify
// of it, which GetShard, DownloadShard and an answer from the store to a
// retried ProcessChunk use; Scrub's reads do not count. With IndexSQLite
// recency is kept in the index (so it survives a restart) and the query
// uses an index on it; with IndexMemory it starts again at Open and the
// query sorts every chunk. Recency is for choosing what to evict, so a
// read may show up to a second late.
//
// The list is a snapshot: a chunk may be read, replaced, or be in use
// (InUse) by the time it is acted on. An invalid limit is an error
// wrapping ErrInvalid.
func (s *Store) LeastRecentlyRead(limit int) ([]Metadata, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("least recently read: %w: limit %d is not positive", ErrInvalid, limit)
	}
	entries, err := s.leastRecent(lruCursor{}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Metadata, len(entries))
	for i, e := range entries {
		out[i] = e.Metadata
	}
	return out, nil
}

// lruCursor is a place in the order of LeastRecentlyRead: a chunk's last
// read (Unix ns), then its key. leastRecent takes the zero value for
// lruStart.
type lruCursor struct {
	at  int64
	key chunkKey
}

func (c lruCursor) compare(d lruCursor) int {
	return cmp.Or(cmp.Compare(c.at, d.at), cmp.Compare(c.key.video, d.key.video), cmp.Compare(c.key.chunk, d.key.chunk))
}

func (c lruCursor) before(d lruCursor) bool { return c.compare(d) < 0 }

// lruStart comes before every chunk's place: a timestamp may be before
// 1970, and chunk indexes are never negative.
func lruStart() lruCursor { return lruCursor{at: math.MinInt64, key: chunkKey{chunk: -1}} }

// lruEntry is a chunk of the LeastRecentlyRead order, with its place in it.
type lruEntry struct {
	Metadata
	lruCursor
}

// leastRecent is LeastRecentlyRead from after on, with each chunk's place.
func (s *Store) leastRecent(after lruCursor, limit int) ([]lruEntry, error) {
	if after == (lruCursor{}) {
		after = lruStart()
	}
	out, err := s.index.leastRecent(after, limit)
	if err != nil {
		return nil, fmt.Errorf("least recently read: %w", s.indexFailed(err))
	}
	return out, nil
}

// InUse reports whether a chunk is being read (a reader from OpenVerified
// or OpenShard is open: until its Close, or the end of a VerifiedReader)
// and whether it is being written (a Pending from Create has not yet
// committed or aborted). Delete refuses a chunk being written; one being
// read can be deleted (the reader keeps its file), but an eviction policy
// would skip it.
func (s *Store) InUse(videoID string, chunkIndex int) (reading, writing bool) {
	key := chunkKey{videoID, chunkIndex}
	return s.reading.has(key), s.writing.has(key)
}

// useCounts counts the users of each chunk. The zero value is ready to use.
type useCounts struct {
	mu sync.Mutex
	n  map[chunkKey]int // guarded by mu; only chunks with users
}

func (u *useCounts) add(key chunkKey, delta int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == nil {
		u.n = make(map[chunkKey]int)
	}
	if u.n[key] += delta; u.n[key] <= 0 {
		delete(u.n, key)
	}
}

func (u *useCounts) has(key chunkKey) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n[key] > 0
}

// video returns the chunks of a video that have users.
func (u *useCounts) video(id string) []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []int
	for key := range u.n {
		if key.video == id {
			out = append(out, key.chunk)
		}
	}
	return out
}
