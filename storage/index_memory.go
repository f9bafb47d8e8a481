package storage

import (
	"slices"
	"sync"
)

// chunkIndex is what a Store keeps of its committed chunks: memIndex (in
// memory, built from the metadata files at Open) or sqliteIndex (an SQLite
// database under <root>/.index). Implementations are safe for concurrent
// use; the Store serialises the writers of one chunk with its lock. What
// they return may be modified by the caller.
type chunkIndex interface {
	get(key chunkKey) (Metadata, bool, error)
	// video returns a video's chunks sorted by index.
	video(id string) ([]Metadata, error)
	// page is ListPage's query; see index.page for what more means.
	page(opts PageOptions) (videos []Video, more bool, err error)
	// put adds or replaces m (its last read is then its processed_at) and
	// returns the encoded size of the version replaced, if any.
	put(m Metadata) (prevSize int64, had bool, err error)
	// drop removes a chunk and returns its encoded size, if it was there.
	drop(key chunkKey) (prevSize int64, had bool, err error)
	// touch records a read of the chunk at at (Unix nanoseconds); it may
	// be recorded later, but before leastRecent and close.
	touch(key chunkKey, at int64)
	// leastRecent returns up to limit chunks, least recently read first
	// (ties by video id and index), from after on (the zero lruCursor:
	// from the first), each with its place in that order.
	leastRecent(after lruCursor, limit int) ([]lruEntry, error)
	close() error
}

// memIndex is the index in memory: the sorted index, and when each chunk
// was last read.
type memIndex struct {
	mu sync.RWMutex // guards x; held only to read or copy entries
	x  *index

	readMu   sync.Mutex // guards lastRead, apart from mu so reads do not take mu's write lock
	lastRead map[chunkKey]int64
}

var _ chunkIndex = (*memIndex)(nil)

func newMemIndex(metas map[chunkKey]Metadata) *memIndex {
	mi := &memIndex{x: buildIndex(metas), lastRead: make(map[chunkKey]int64, len(metas))}
	for key, m := range metas {
		mi.lastRead[key] = processedAt(m)
	}
	return mi
}

func (mi *memIndex) get(key chunkKey) (Metadata, bool, error) {
	mi.mu.RLock()
	m, ok := mi.x.get(key.video, key.chunk)
	mi.mu.RUnlock()
	return cloneMetadata(m), ok, nil
}

func (mi *memIndex) video(id string) ([]Metadata, error) {
	mi.mu.RLock()
	out := mi.x.video(id)
	mi.mu.RUnlock()
	for i := range out {
		out[i] = cloneMetadata(out[i])
	}
	return out, nil
}

func (mi *memIndex) page(opts PageOptions) ([]Video, bool, error) {
	var match func(*Metadata) bool
	if !opts.Filter.IsZero() {
		match = opts.Filter.match
	}
	mi.mu.RLock()
	videos, more := mi.x.page(opts.VideoID, opts.After, opts.Limit, opts.Brief, match)
	mi.mu.RUnlock()
	if !opts.Brief { // a brief chunk shares nothing mutable
		for _, v := range videos {
			for i := range v.Chunks {
				v.Chunks[i] = cloneMetadata(v.Chunks[i])
			}
		}
	}
	return videos, more, nil
}

func (mi *memIndex) put(m Metadata) (int64, bool, error) {
	key := chunkKey{m.VideoID, m.ChunkIndex}
	mi.mu.Lock()
	prev, had := mi.x.get(key.video, key.chunk)
	mi.x.put(m)
	mi.mu.Unlock()
	mi.readMu.Lock()
	mi.lastRead[key] = processedAt(m)
	mi.readMu.Unlock()
	return prev.EncodedSize, had, nil
}

func (mi *memIndex) drop(key chunkKey) (int64, bool, error) {
	mi.mu.Lock()
	prev, had := mi.x.get(key.video, key.chunk)
	mi.x.drop(key.video, key.chunk)
	mi.mu.Unlock()
	mi.readMu.Lock()
	delete(mi.lastRead, key)
	mi.readMu.Unlock()
	return prev.EncodedSize, had, nil
}

func (mi *memIndex) touch(key chunkKey, at int64) {
	mi.readMu.Lock()
	if _, ok := mi.lastRead[key]; ok {
		mi.lastRead[key] = at
	}
	mi.readMu.Unlock()
}

// leastRecent sorts every chunk by its last read: the memory index is for
// stores small enough for that; the SQLite one has an index on it.
func (mi *memIndex) leastRecent(after lruCursor, limit int) ([]lruEntry, error) {
	mi.readMu.Lock()
	all := make([]lruCursor, 0, len(mi.lastRead))
	for key, at := range mi.lastRead {
		if c := (lruCursor{at, key}); after.before(c) {
			all = append(all, c)
		}
	}
	mi.readMu.Unlock()
	slices.SortFunc(all, lruCursor.compare)
	out := make([]lruEntry, 0, min(limit, len(all)))
	for _, c := range all {
		if len(out) == limit {
			break
		}
		if m, ok, _ := mi.get(c.key); ok { // dropped meanwhile: skipped
			out = append(out, lruEntry{m, c})
		}
	}
	return out, nil
}

func (mi *memIndex) close() error { return nil }
