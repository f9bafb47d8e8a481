package storage

import (
	"slices"
	"sort"
)

// index is the committed chunks in memory. Videos and each video's chunks
// are kept sorted as they are added, so that a listing, or a page of one
// anywhere in it, is a binary search and a copy: sorting 100,000 chunks
// for every page would cost more than the page. It is not safe for
// concurrent use; the Store guards it with mu.
type index struct {
	videos map[string]*videoChunks
	ids    []string // the keys of videos, sorted
}

// videoChunks is one video's committed chunks; it is never empty.
type videoChunks struct {
	byIndex map[int]Metadata
	order   []int // the keys of byIndex, sorted
}

func newIndex() *index { return &index{videos: make(map[string]*videoChunks)} }

// buildIndex indexes metas, sorting once rather than inserting one by one.
func buildIndex(metas map[chunkKey]Metadata) *index {
	x := newIndex()
	for key, m := range metas {
		vc := x.videos[key.video]
		if vc == nil {
			vc = &videoChunks{byIndex: make(map[int]Metadata)}
			x.videos[key.video] = vc
			x.ids = append(x.ids, key.video)
		}
		vc.byIndex[key.chunk] = m
		vc.order = append(vc.order, key.chunk)
	}
	sort.Strings(x.ids)
	for _, vc := range x.videos {
		slices.Sort(vc.order)
	}
	return x
}

func (x *index) get(video string, n int) (Metadata, bool) {
	vc := x.videos[video]
	if vc == nil {
		return Metadata{}, false
	}
	m, ok := vc.byIndex[n]
	return m, ok
}

// put adds or replaces m. Chunks are mostly added in order, at the end,
// where the insertion moves nothing.
func (x *index) put(m Metadata) {
	vc := x.videos[m.VideoID]
	if vc == nil {
		vc = &videoChunks{byIndex: make(map[int]Metadata)}
		x.videos[m.VideoID] = vc
		i, _ := slices.BinarySearch(x.ids, m.VideoID)
		x.ids = slices.Insert(x.ids, i, m.VideoID)
	}
	if _, ok := vc.byIndex[m.ChunkIndex]; !ok {
		i, _ := slices.BinarySearch(vc.order, m.ChunkIndex)
		vc.order = slices.Insert(vc.order, i, m.ChunkIndex)
	}
	vc.byIndex[m.ChunkIndex] = m
}

// drop removes a chunk, and its video when that was the last chunk.
func (x *index) drop(video string, n int) {
	vc := x.videos[video]
	if vc == nil {
		return
	}
	if _, ok := vc.byIndex[n]; !ok {
		return
	}
	delete(vc.byIndex, n)
	if i, ok := slices.BinarySearch(vc.order, n); ok {
		vc.order = slices.Delete(vc.order, i, i+1)
	}
	if len(vc.byIndex) > 0 {
		return
	}
	delete(x.videos, video)
	if i, ok := slices.BinarySearch(x.ids, video); ok {
		x.ids = slices.Delete(x.ids, i, i+1)
	}
}

// video returns a video's chunks in order, uncloned.
func (x *index) video(id string) []Metadata {
	vc := x.videos[id]
	if vc == nil {
		return nil
	}
	out := make([]Metadata, len(vc.order))
	for i, n := range vc.order {
		out[i] = vc.byIndex[n]
	}
	return out
}

// page returns, in order and uncloned, at most limit chunks (0: no limit)
// of video (""; every video) that sort after after (nil: from the first)
// and that match (nil: all), and whether another matching chunk follows.
// With brief, each chunk holds only what PageOptions.Brief says.
func (x *index) page(video string, after *ChunkRef, limit int, brief bool, match func(*Metadata) bool) (videos []Video, more bool) {
	ids := x.ids
	if video != "" {
		ids = nil
		if x.videos[video] != nil {
			ids = []string{video}
		}
	}
	first := 0 // the first chunk position in ids[v] to list
	v := 0
	if after != nil {
		var found bool
		v, found = slices.BinarySearch(ids, after.VideoID)
		if found {
			// Past after.ChunkIndex, which may be gone since it was listed.
			var at bool
			if first, at = slices.BinarySearch(x.videos[ids[v]].order, after.ChunkIndex); at {
				first++
			}
		}
	}
	n := 0
	for ; v < len(ids); v, first = v+1, 0 {
		vc := x.videos[ids[v]]
		var chunks []Metadata
		for _, c := range vc.order[first:] {
			full := vc.byIndex[c]
			if match != nil && !match(&full) {
				continue
			}
			if limit > 0 && n == limit {
				if len(chunks) > 0 {
					videos = append(videos, Video{ID: ids[v], Chunks: chunks})
				}
				return videos, true
			}
			if chunks == nil {
				hint := len(vc.order) - first
				if limit > 0 {
					hint = min(hint, limit-n)
				}
				chunks = make([]Metadata, 0, hint)
			}
			m := full
			if brief {
				m = briefMetadata(full)
			}
			chunks = append(chunks, m)
			n++
		}
		if len(chunks) > 0 {
			videos = append(videos, Video{ID: ids[v], Chunks: chunks})
		}
	}
	return videos, false
}

// briefMetadata is m with only what PageOptions.Brief keeps.
func briefMetadata(m Metadata) Metadata {
	return Metadata{VideoID: m.VideoID, ChunkIndex: m.ChunkIndex, ShardLocation: m.ShardLocation,
		EncodedSize: m.EncodedSize, ChecksumSHA256: m.ChecksumSHA256}
}
