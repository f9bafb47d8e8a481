package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Store. Zero values mean defaults.
type Options struct {
	// Root is the store's directory; required. It is created if missing,
	// and made absolute and symlink-resolved at Open: every path the store
	// returns starts with the resolved root.
	Root string
	// FS performs the write path's file operations; nil means OSFS, the
	// real filesystem. Tests use it to inject failures.
	FS FS
	// Now stamps committed metadata; nil means time.Now. Its result is
	// converted to UTC.
	Now func() time.Time
	// Logger receives what Open skipped, repaired or quarantined, every
	// quarantine, and failures that cannot be returned (a rollback that
	// failed); nil discards.
	Logger *slog.Logger
	// Lock makes Open take an exclusive advisory lock (flock) on
	// <root>/.lock, held until Close or the process exits, so that a second
	// process cannot open the same root: its Open fails with an error
	// wrapping ErrLocked. Two Stores in one process conflict too. The lock
	// is not taken on platforms without flock.
	Lock bool
}

// Store is a directory of committed shards and their metadata, with an
// in-memory index of the committed chunks. Its methods are safe for
// concurrent use. See the package documentation for the model.
type Store struct {
	root    string // absolute, symlink-resolved
	metaDir string // <root>/metadata
	tmpDir  string // <root>/.tmp
	quarDir string // <root>/.quarantine, created on first use
	fs      FS
	now     func() time.Time
	log     *slog.Logger

	// locks serialises writers (and OpenShard and Quarantine) per chunk.
	locks keyedMutex

	lockFile    *os.File     // <root>/.lock when Options.Lock; nil after Close
	lockMu      sync.Mutex   // guards lockFile
	quarantined atomic.Int64 // entries in quarDir

	// mu guards index and is held only to read or copy map entries, never
	// during I/O.
	mu    sync.RWMutex
	index map[string]map[int]Metadata // video id -> chunk index -> metadata
}

// Open opens the store at opts.Root, creating its directories if needed. It
// removes every temporary file a previous process left behind (the whole of
// TempDir, and the hidden .tmp- files of interrupted commits), finishes or
// rolls back a replace that a crash interrupted, and builds the index by
// reading each metadata file once. A metadata file is indexed only if it
// parses, its name is exactly what its video_id and chunk_index produce, both
// validate, and the shard exists as a regular file at its expected path with
// the recorded encoded_size; everything else is skipped and logged. Shards
// without metadata are not indexed.
//
// What Open cannot index is not left where it was: a shard without
// metadata, metadata without a shard, a shard whose size differs from its
// metadata, and a metadata file that is unreadable or misnamed are moved into
// <root>/.quarantine (see Quarantine) and logged, so that the index is exactly
// what the store's directories hold.
//
// Only one Store may use a root at a time: Open deletes the temporary files
// of a Store that is still writing. Options.Lock enforces this between
// processes.
func Open(opts Options) (s *Store, err error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("open store: %w: root is required", ErrInvalid)
	}
	s = &Store{fs: opts.FS, now: opts.Now, log: opts.Logger}
	if s.fs == nil {
		s.fs = OSFS{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	abs, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.fs.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", noSpace(err))
	}
	if s.root, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.metaDir = filepath.Join(s.root, metadataDirName)
	s.tmpDir = filepath.Join(s.root, tempDirName)
	s.quarDir = filepath.Join(s.root, quarantineDirName)
	if opts.Lock {
		if err := s.lock(); err != nil {
			return nil, fmt.Errorf("open store %s: %w", s.root, err)
		}
		defer func() {
			if err != nil {
				s.Close()
			}
		}()
	}
	for _, dir := range []string{s.metaDir, s.tmpDir} {
		if err := s.fs.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open store: %w", noSpace(err))
		}
	}
	if err := s.fs.SyncDir(s.root); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.emptyTempDir(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.countQuarantined(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// lock opens <root>/.lock and takes an exclusive lock on it.
func (s *Store) lock() error {
	f, err := os.OpenFile(filepath.Join(s.root, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock: %w", noSpace(err))
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return err
		}
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	s.lockMu.Lock()
	s.lockFile = f
	s.lockMu.Unlock()
	return nil
}

// Close releases the lock taken for Options.Lock, letting another process
// open the root; without Lock it does nothing. The Store's methods keep
// working after Close, but it no longer excludes other processes. Close is
// idempotent.
func (s *Store) Close() error {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lockFile == nil {
		return nil
	}
	err := s.lockFile.Close() // closing the descriptor releases the flock
	s.lockFile = nil
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Root returns the store's absolute, symlink-resolved root directory.
func (s *Store) Root() string { return s.root }

// TempDir returns <root>/.tmp, scratch space on the store's filesystem for
// callers (for example an encoder's input file). Open empties it; callers
// remove what they create there.
func (s *Store) TempDir() string { return s.tmpDir }

// FreeBytes returns the bytes available to the worker on the root's
// filesystem.
func (s *Store) FreeBytes() (int64, error) {
	n, err := freeBytes(s.root)
	if err != nil {
		return 0, fmt.Errorf("free bytes: %w", err)
	}
	return n, nil
}

// CheckWritable creates, writes, fsyncs and removes a probe file in TempDir.
// A full filesystem yields an error wrapping ErrNoSpace.
func (s *Store) CheckWritable() error {
	f, err := s.fs.CreateTemp(s.tmpDir, "probe-*")
	if err != nil {
		return fmt.Errorf("check writable: %w", noSpace(err))
	}
	_, werr := f.Write([]byte("videoshard write probe\n"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := s.fs.Remove(f.Name())
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("check writable: %w", noSpace(err))
	}
	return nil
}

// emptyTempDir removes everything inside TempDir.
func (s *Store) emptyTempDir() error {
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(s.tmpDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		s.log.Info("removed leftover temporary file", "path", p)
	}
	return nil
}

func (s *Store) videoDir(videoID string) string { return filepath.Join(s.root, videoID) }

func (s *Store) shardPath(videoID string, n int) string {
	return filepath.Join(s.root, videoID, shardName(n))
}

func (s *Store) metadataPath(videoID string, n int) string {
	return filepath.Join(s.metaDir, metadataName(videoID, n))
}

// get returns a copy of the indexed metadata of a chunk.
func (s *Store) get(videoID string, n int) (Metadata, bool) {
	s.mu.RLock()
	m, ok := s.index[videoID][n]
	s.mu.RUnlock()
	if !ok {
		return Metadata{}, false
	}
	return cloneMetadata(m), true
}

// put indexes m, which the caller no longer modifies.
func (s *Store) put(m Metadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chunks := s.index[m.VideoID]
	if chunks == nil {
		chunks = make(map[int]Metadata)
		s.index[m.VideoID] = chunks
	}
	chunks[m.ChunkIndex] = m
}

// drop removes a chunk from the index.
func (s *Store) drop(videoID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if chunks := s.index[videoID]; chunks != nil {
		delete(chunks, n)
		if len(chunks) == 0 {
			delete(s.index, videoID)
		}
	}
}

// chunks returns copies of a video's indexed chunks, sorted by index.
func (s *Store) chunks(videoID string) []Metadata {
	s.mu.RLock()
	out := make([]Metadata, 0, len(s.index[videoID]))
	for _, m := range s.index[videoID] {
		out = append(out, m)
	}
	s.mu.RUnlock()
	for i := range out {
		out[i] = cloneMetadata(out[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChunkIndex < out[j].ChunkIndex })
	return out
}

// cloneMetadata copies m deeply enough that the copy shares nothing mutable
// with m.
func cloneMetadata(m Metadata) Metadata {
	m.EncoderSettings = maps.Clone(m.EncoderSettings)
	if m.Quality != nil {
		q := *m.Quality
		m.Quality = &q
	}
	return m
}

// noSpaceError marks an ENOSPC or EDQUOT error as ErrNoSpace without
// changing its message.
type noSpaceError struct{ err error }

func (e *noSpaceError) Error() string        { return e.err.Error() }
func (e *noSpaceError) Unwrap() error        { return e.err }
func (e *noSpaceError) Is(target error) bool { return target == ErrNoSpace }

// noSpace makes err match ErrNoSpace if it reports a full filesystem or an
// exceeded quota.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) || !isNoSpace(err) {
		return err
	}
	return &noSpaceError{err}
}
