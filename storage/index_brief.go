package storage

import (
	"slices"
	"sync"
)

// briefCacheRows bounds the chunks briefCache holds, over all its videos
// (about 100 bytes each).
const briefCacheRows = 200_000

// briefRow is a chunk as a brief listing shows it, less what is derived.
type briefRow struct {
	chunk    int
	size     int64
	checksum string
}

// briefCache keeps the brief listings of videos listed whole, so that a
// video listed again costs a copy, not a query: the SQLite driver steps
// some 2 µs a row, 20 ms for a video of 10,000 chunks. A write to a
// video drops its listing (invalidate); a listing read from the database
// while a write to its video ran is not kept, as it may miss the write:
// gen counts the writes to a video while listings of it are in flight.
type briefCache struct {
	mu       sync.Mutex
	videos   map[string][]briefRow
	rows     int
	inFlight map[string]int    // listings of a video being read
	gen      map[string]uint64 // writes to a video while inFlight
}

func newBriefCache() *briefCache {
	return &briefCache{videos: map[string][]briefRow{}, inFlight: map[string]int{}, gen: map[string]uint64{}}
}

// get returns video's cached listing, or starts reading it: then done
// must be called with what was read (nil when the read failed).
func (c *briefCache) get(video string) (rows []briefRow, ok bool, done func([]briefRow)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rows, ok := c.videos[video]; ok {
		return rows, true, nil
	}
	c.inFlight[video]++
	start := c.gen[video]
	return nil, false, func(rows []briefRow) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if rows != nil && c.gen[video] == start && len(rows) <= briefCacheRows {
			if _, had := c.videos[video]; !had {
				if c.rows+len(rows) > briefCacheRows {
					c.videos, c.rows = map[string][]briefRow{}, 0 // start again: simpler than an LRU, and rare
				}
				c.videos[video] = rows
				c.rows += len(rows)
			}
		}
		if c.inFlight[video]--; c.inFlight[video] == 0 {
			delete(c.inFlight, video)
			delete(c.gen, video)
		}
	}
}

// invalidate drops video's listing; called after each write to it.
func (c *briefCache) invalidate(video string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rows, ok := c.videos[video]; ok {
		delete(c.videos, video)
		c.rows -= len(rows)
	}
	if c.inFlight[video] > 0 {
		c.gen[video]++
	}
}

// invalidateAll drops every listing (a rebuild).
func (c *briefCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.videos, c.rows = map[string][]briefRow{}, 0
	for v := range c.inFlight {
		c.gen[v]++
	}
}

// briefPage is page for a brief listing of one whole video without
// filters, served from the cache (read whole on a miss).
func (x *sqliteIndex) briefPage(opts PageOptions) ([]Video, bool, error) {
	rows, ok, done := x.brief.get(opts.VideoID)
	if !ok {
		videos, _, err := x.page(PageOptions{VideoID: opts.VideoID, Brief: true, uncached: true})
		if err != nil {
			done(nil)
			return nil, false, err
		}
		rows = []briefRow{}
		for _, v := range videos {
			for _, m := range v.Chunks {
				rows = append(rows, briefRow{m.ChunkIndex, m.EncodedSize, m.ChecksumSHA256})
			}
		}
		done(rows)
	}
	// From after on, as the query would have it.
	from := 0
	if a := opts.After; a != nil {
		switch {
		case a.VideoID > opts.VideoID:
			from = len(rows)
		case a.VideoID == opts.VideoID:
			from, _ = slices.BinarySearchFunc(rows, a.ChunkIndex+1, func(r briefRow, n int) int { return r.chunk - n })
		}
	}
	rows = rows[from:]
	more := opts.Limit > 0 && len(rows) > opts.Limit
	if more {
		rows = rows[:opts.Limit]
	}
	if len(rows) == 0 {
		return nil, false, nil
	}
	v := Video{ID: opts.VideoID, Chunks: make([]Metadata, len(rows))}
	for i, r := range rows {
		v.Chunks[i] = Metadata{VideoID: v.ID, ChunkIndex: r.chunk, EncodedSize: r.size, ChecksumSHA256: r.checksum,
			ShardLocation: x.shardPath(v.ID, r.chunk)}
	}
	return []Video{v}, more, nil
}
