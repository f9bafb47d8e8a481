package storage

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrIndexCorrupt: SQLite found the index database damaged (another
// process wrote into it, or the disk failed). The metadata files are the
// truth: a restart rebuilds the index from them, since Close does not mark
// a damaged index clean.
var ErrIndexCorrupt = errors.New("the index database is corrupt")

// SQLite's primary result codes for a damaged database.
const (
	sqliteCorrupt = 11 // SQLITE_CORRUPT
	sqliteNotADB  = 26 // SQLITE_NOTADB
)

// guardedIndex is an index whose errors are checked for corruption: the
// first one is kept for CheckIndex (the worker's health), and each wraps
// ErrIndexCorrupt.
type guardedIndex struct {
	chunkIndex
	corrupt atomic.Pointer[error]
}

func (g *guardedIndex) check(err error) error {
	var coded interface{ Code() int } // the driver's *sqlite.Error
	if err == nil || !errors.As(err, &coded) {
		return err
	}
	if code := coded.Code() & 0xff; code != sqliteCorrupt && code != sqliteNotADB {
		return err
	}
	g.corrupt.CompareAndSwap(nil, &err)
	return indexCorrupt(err)
}

func indexCorrupt(err error) error {
	return fmt.Errorf("%w (restart the worker: it rebuilds the index from the metadata files): %w", ErrIndexCorrupt, err)
}

func (g *guardedIndex) get(key chunkKey) (Metadata, bool, error) {
	m, ok, err := g.chunkIndex.get(key)
	return m, ok, g.check(err)
}

func (g *guardedIndex) video(id string) ([]Metadata, error) {
	ms, err := g.chunkIndex.video(id)
	return ms, g.check(err)
}

func (g *guardedIndex) page(opts PageOptions) ([]Video, bool, error) {
	vs, more, err := g.chunkIndex.page(opts)
	return vs, more, g.check(err)
}

func (g *guardedIndex) put(m Metadata) (int64, bool, error) {
	n, had, err := g.chunkIndex.put(m)
	return n, had, g.check(err)
}

func (g *guardedIndex) drop(key chunkKey) (int64, bool, error) {
	n, had, err := g.chunkIndex.drop(key)
	return n, had, g.check(err)
}

func (g *guardedIndex) leastRecent(after lruCursor, limit int) ([]lruEntry, error) {
	es, err := g.chunkIndex.leastRecent(after, limit)
	return es, g.check(err)
}

func (g *guardedIndex) close() error { return g.check(g.chunkIndex.close()) }

// CheckIndex reports the first corruption the index found, wrapping
// ErrIndexCorrupt; nil when none (or the index is in memory).
func (s *Store) CheckIndex() error {
	if g, ok := s.index.(*guardedIndex); ok {
		if err := g.corrupt.Load(); err != nil {
			return indexCorrupt(*err)
		}
	}
	return nil
}
