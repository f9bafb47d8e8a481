package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// Deleted is what Delete or DeleteVideo removed.
type Deleted struct {
	Chunks int   // chunks removed; 0 when none was committed
	Bytes  int64 // their shards' bytes (encoded_size)
}

// Delete removes a committed chunk: its metadata file (and the fsync of
// metadata/), then its shard (and the fsync of its video directory), then
// its index entry, all under the chunk's lock. From the metadata's removal
// on the chunk is not committed: a crash later leaves a shard without
// metadata, which Open quarantines, never a listed chunk without its
// shard. Readers that opened the shard before keep reading it (an open file
// keeps its content); those that open it after get ErrNotFound.
//
// Delete is idempotent: a chunk not committed is Deleted{} and no error.
// It returns an error wrapping ErrInvalid for a bad id or index (nothing is
// touched), and one wrapping ErrBusy while the chunk is being written (a
// Pending exists for it). If removing the shard fails after the metadata
// went, the chunk is out of the index all the same, the error is returned,
// and the next Open quarantines the shard.
func (s *Store) Delete(videoID string, chunkIndex int) (Deleted, error) {
	if err := validateKey(videoID, chunkIndex); err != nil {
		return Deleted{}, fmt.Errorf("delete: %w", err)
	}
	d, err := s.delete(chunkKey{videoID, chunkIndex})
	if err != nil {
		return d, fmt.Errorf("delete %s chunk %d: %w", videoID, chunkIndex, err)
	}
	return d, nil
}

// DeleteVideo deletes every committed chunk of a video, as Delete does
// each, and returns what went. It refuses with ErrBusy, having removed
// nothing, while any chunk of the video is being written; a write that
// starts while it runs makes it stop there with ErrBusy, returning what it
// removed until then. A video with no committed chunk is Deleted{} and no
// error; an invalid id is ErrInvalid.
func (s *Store) DeleteVideo(videoID string) (Deleted, error) {
	if err := ValidateVideoID(videoID); err != nil {
		return Deleted{}, fmt.Errorf("delete video: %w", err)
	}
	if busy := s.writing.video(videoID); len(busy) > 0 {
		slices.Sort(busy)
		return Deleted{}, fmt.Errorf("delete video %s: %w: chunks %v", videoID, ErrBusy, busy)
	}
	chunks, err := s.index.video(videoID)
	if err != nil {
		return Deleted{}, fmt.Errorf("delete video %s: %w", videoID, s.indexFailed(err))
	}
	var total Deleted
	for _, m := range chunks {
		d, err := s.delete(chunkKey{videoID, m.ChunkIndex})
		total.Chunks += d.Chunks
		total.Bytes += d.Bytes
		if err != nil {
			return total, fmt.Errorf("delete video %s chunk %d: %w", videoID, m.ChunkIndex, err)
		}
	}
	return total, nil
}

func (s *Store) delete(key chunkKey) (Deleted, error) { return s.remove(key, false) }

// remove is delete; an eviction (evicting) also leaves a chunk being read
// or of a pinned video, with errSpared.
func (s *Store) remove(key chunkKey, evicting bool) (Deleted, error) {
	unlock := s.locks.lock(key)
	defer unlock()
	// Under the lock: a Commit holds it from its first rename to the index
	// update, and its Pending exists until then, so no commit's rollback
	// can bring back what this removes; and a reader counts itself under
	// it too.
	if s.writing.has(key) {
		return Deleted{}, fmt.Errorf("%w: retry once it is committed", ErrBusy)
	}
	if evicting && (s.reading.has(key) || s.Pinned(key.video)) {
		return Deleted{}, errSpared
	}
	m, ok, err := s.get(key)
	if err != nil || !ok {
		return Deleted{}, err
	}
	// The video directory is opened first, so that a failure here touches
	// nothing.
	vd, err := s.rootDir.openDir(key.video)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		vd = nil // the shard is gone already; the metadata still goes
	case isSymlinkErr(err):
		return Deleted{}, symlinkRefusal(s.rootDir.join(key.video))
	case err != nil:
		return Deleted{}, err
	default:
		defer closeDir(vd)
	}
	if err := s.fs.Remove(s.metaDir, metadataName(key.video, key.chunk)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Deleted{}, fmt.Errorf("remove metadata: %w", err)
	}
	// From here on the chunk is not committed, whatever fails next: it
	// leaves the index, and the next Open sorts out what is left.
	if err := s.fs.SyncDir(s.metaDir); err != nil {
		return Deleted{}, s.deleteFailed(key, fmt.Errorf("sync metadata directory: %w", err))
	}
	if vd != nil {
		if err := s.fs.Remove(vd, shardName(key.chunk)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Deleted{}, s.deleteFailed(key, fmt.Errorf("remove shard: %w", err))
		}
		if err := s.fs.SyncDir(vd); err != nil {
			return Deleted{}, s.deleteFailed(key, fmt.Errorf("sync video directory: %w", err))
		}
	}
	if err := s.drop(key); err != nil {
		return Deleted{}, err
	}
	if !evicting {
		s.log.Info("chunk deleted", "video_id", key.video, "chunk_index", key.chunk, "bytes", m.EncodedSize)
	}
	return Deleted{Chunks: 1, Bytes: m.EncodedSize}, nil
}

// deleteFailed takes a chunk whose metadata was removed out of the index
// after a later step failed, and has the next Open rebuild the index.
func (s *Store) deleteFailed(key chunkKey, err error) error {
	s.dirty.Store(true)
	s.drop(key)
	s.log.Error("delete failed after the metadata was removed; the chunk is no longer served",
		"video_id", key.video, "chunk_index", key.chunk, "err", err)
	return err
}
