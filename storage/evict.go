package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/videoshard/videoshard/internal/sysinfo"
)

// Eviction says what a commit that would cross a disk limit (Limits) does.
type Eviction string

const (
	// EvictNone refuses the commit with ErrNoSpace: nothing stored is ever
	// deleted behind the operator's back. The default.
	EvictNone Eviction = "none"
	// EvictLRU deletes whole chunks, least recently read first, until the
	// store is back under the low watermark (Limits.EvictToRatio), never
	// a pinned video's, nor a chunk being read or written.
	EvictLRU Eviction = "lru"
)

// DefaultEvictToRatio is Limits.EvictToRatio when unset.
const DefaultEvictToRatio = 0.9

// evictBatch is how many eviction candidates are asked of the index at a
// time.
const evictBatch = 256

// Limits bound the disk a store takes. Either limit may be 0 (unset).
type Limits struct {
	// MaxBytes caps the committed shards' bytes (Usage().Bytes).
	MaxBytes int64
	// MinFreeBytes is the free space the filesystem must keep.
	MinFreeBytes int64
	// Eviction is EvictNone ("") or EvictLRU.
	Eviction Eviction
	// EvictToRatio is the low watermark eviction frees down to, as a
	// fraction of MaxBytes (committed bytes at most MaxBytes × ratio) and
	// of the free space (at least MinFreeBytes / ratio); in (0, 1],
	// DefaultEvictToRatio when 0.
	EvictToRatio float64
}

func (l Limits) withDefaults() (Limits, error) {
	if l.Eviction == "" {
		l.Eviction = EvictNone
	}
	if l.EvictToRatio == 0 {
		l.EvictToRatio = DefaultEvictToRatio
	}
	switch {
	case l.MaxBytes < 0 || l.MinFreeBytes < 0:
		return l, fmt.Errorf("%w: negative disk limit (max bytes %d, min free bytes %d)", ErrInvalid, l.MaxBytes, l.MinFreeBytes)
	case l.Eviction != EvictNone && l.Eviction != EvictLRU:
		return l, fmt.Errorf("%w: eviction %q: want %q or %q", ErrInvalid, l.Eviction, EvictNone, EvictLRU)
	case !(l.EvictToRatio > 0 && l.EvictToRatio <= 1):
		return l, fmt.Errorf("%w: evict-to ratio %g: want a fraction in (0, 1]", ErrInvalid, l.EvictToRatio)
	}
	return l, nil
}

func (l Limits) set() bool { return l.MaxBytes > 0 || l.MinFreeBytes > 0 }

// room guards the disk limits across concurrent commits: a commit
// reserves its shard's bytes between its check and the moment they count
// in Usage.
type room struct {
	mu      sync.Mutex // serialises checks and evictions
	evicted atomic.Int64

	// acct guards reserved, and makes a commit's bytes move from reserved
	// to Usage at once (put): counted in neither, a limit could be
	// crossed; in both, a commit refused for room it does not lack. A
	// leaf lock: nothing else is taken while it is held.
	acct     sync.Mutex
	reserved int64 // bytes of commits checked and not yet indexed
}

// reservation is a commit's room, held from reserve until its shard
// counts in Usage or the commit fails; nil without limits.
type reservation struct {
	r *room
	n int64
}

// release gives the room back; it is idempotent, and a nil reservation's
// does nothing.
func (rv *reservation) release() {
	if rv == nil {
		return
	}
	rv.r.acct.Lock()
	rv.r.reserved -= rv.n
	rv.n = 0
	rv.r.acct.Unlock()
}

// committed returns what the committed shards and the reservations take.
func (s *Store) committed() int64 {
	s.room.acct.Lock()
	defer s.room.acct.Unlock()
	return s.usedBytes.Load() + s.room.reserved
}

// Limits returns the store's disk limits, as Open was given them.
func (s *Store) Limits() Limits { return s.limits }

// Evicted is the number of chunks evicted since Open.
func (s *Store) Evicted() int64 { return s.room.evicted.Load() }

// LowOnSpace reports why the store is below Limits.MinFreeBytes, or "".
func (s *Store) LowOnSpace() string {
	if s.limits.MinFreeBytes <= 0 {
		return ""
	}
	free, err := sysinfo.FreeBytes(s.root)
	if err != nil {
		return fmt.Sprintf("free space unknown: %v", err)
	}
	if free < s.limits.MinFreeBytes {
		return fmt.Sprintf("%d bytes free on the store's filesystem, below storage.min_free_bytes %d", free, s.limits.MinFreeBytes)
	}
	return ""
}

// overLimit says which limit committing n more bytes would cross, and how
// many bytes must go to get back under the low watermark; "" when none.
// The shard's bytes are already on the filesystem (in .tmp), so the free
// space needs no n. Held: room.mu.
func (s *Store) overLimit(n int64) (why string, toFree int64, err error) {
	l := s.limits
	if l.MaxBytes > 0 {
		used := s.committed() + n
		if used > l.MaxBytes {
			why = fmt.Sprintf("the store would hold %d bytes of shards, over storage.max_bytes %d", used, l.MaxBytes)
			toFree = used - int64(float64(l.MaxBytes)*l.EvictToRatio)
		}
	}
	if l.MinFreeBytes > 0 {
		free, err := sysinfo.FreeBytes(s.root)
		if err != nil {
			return "", 0, fmt.Errorf("free space: %w", err)
		}
		if free < l.MinFreeBytes {
			if why != "" {
				why += "; "
			}
			why += fmt.Sprintf("%d bytes would be left free on the store's filesystem, below storage.min_free_bytes %d", free, l.MinFreeBytes)
			toFree = max(toFree, int64(float64(l.MinFreeBytes)/l.EvictToRatio)-free)
		}
	}
	return why, toFree, nil
}

// checkRoom fails with ErrNoSpace when the store is at a limit and does
// not evict: any commit would fail.
func (s *Store) checkRoom() error {
	if !s.limits.set() || s.limits.Eviction == EvictLRU {
		return nil
	}
	s.room.mu.Lock()
	defer s.room.mu.Unlock()
	why, _, err := s.overLimit(1)
	if err != nil {
		return err
	}
	if why != "" {
		return noEvictionError(why)
	}
	return nil
}

func noEvictionError(why string) error {
	return fmt.Errorf("%w: %s (storage.eviction is none: nothing is evicted; delete videos or raise the limit)", ErrNoSpace, why)
}

// reserve makes room for a commit of n bytes to key, evicting (EvictLRU)
// what must go, and holds the room until the shard is indexed (put) or
// the reservation released. It fails with ErrNoSpace, saying which limit
// and why, when the commit would cross a limit and not enough can be
// evicted.
func (s *Store) reserve(key chunkKey, n int64) (*reservation, error) {
	if !s.limits.set() {
		return nil, nil
	}
	s.room.mu.Lock()
	defer s.room.mu.Unlock()
	why, toFree, err := s.overLimit(n)
	if err != nil {
		return nil, err
	}
	if why != "" {
		if s.limits.Eviction != EvictLRU {
			return nil, noEvictionError(why)
		}
		skipped, err := s.evict(key, toFree)
		if err != nil {
			return nil, err
		}
		// The watermark is where eviction aims; the limit is what must hold.
		if why, _, err = s.overLimit(n); err != nil {
			return nil, err
		} else if why != "" {
			return nil, fmt.Errorf("%w: %s, and nothing more can be evicted (%s)", ErrNoSpace, why, skipped)
		}
	}
	s.room.acct.Lock()
	s.room.reserved += n
	s.room.acct.Unlock()
	return &reservation{r: &s.room, n: n}, nil
}

// errSpared: an eviction left the chunk, which is being read or pinned.
var errSpared = errors.New("spared")

// evict deletes chunks, least recently read first, until toFree bytes are
// gone or nothing more may go, and says what it had to leave. Held:
// room.mu.
func (s *Store) evict(committing chunkKey, toFree int64) (left string, err error) {
	var (
		freed         int64
		pinned, inUse int
	)
	// Pages of the order, each from where the last one ended: chunks left
	// behind are not read again.
	for after := lruStart(); freed < toFree; {
		page, err := s.leastRecent(after, evictBatch)
		if err != nil {
			return "", err
		}
		for _, e := range page {
			after = e.lruCursor
			switch {
			case e.key == committing:
				continue // its old version is replaced, not evicted
			case s.Pinned(e.VideoID):
				pinned++
				continue
			}
			d, err := s.remove(e.key, true)
			switch {
			case errors.Is(err, errSpared), errors.Is(err, ErrBusy):
				inUse++
				continue
			case err != nil:
				return "", fmt.Errorf("evict %s chunk %d: %w", e.VideoID, e.ChunkIndex, err)
			case d.Chunks == 0:
				continue // deleted meanwhile
			}
			freed += d.Bytes
			s.room.evicted.Add(1)
			s.log.Info("chunk evicted", "video_id", e.VideoID, "chunk_index", e.ChunkIndex, "bytes", d.Bytes,
				"processed_at", e.ProcessedAt(), "freed", freed, "to_free", toFree)
			if freed >= toFree {
				break
			}
		}
		if len(page) < evictBatch {
			break // every chunk was considered
		}
	}
	return fmt.Sprintf("%d chunks of pinned videos and %d being read or written were left", pinned, inUse), nil
}
