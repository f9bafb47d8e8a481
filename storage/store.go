package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/videoshard/videoshard/internal/sysinfo"
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
	// Index is where the index of committed chunks is kept: IndexSQLite
	// (""), in <root>/.index, or IndexMemory. See the package
	// documentation.
	Index IndexKind
	// Reindex makes Open rebuild an IndexSQLite index from the metadata
	// files even if it was closed cleanly.
	Reindex bool
	// Limits bound the disk the shards take, and say whether to evict
	// when a commit would cross them; none by default.
	Limits Limits
	// MaxPins bounds the pinned videos (Pin): a pin may name a video not
	// stored yet, so nothing else bounds the files in .pins.
	// DefaultMaxPins when 0.
	MaxPins int

	// walk makes paths resolve by the fallback walk, as on a kernel
	// without openat2 (for tests).
	walk bool
}

// Store is a directory of committed shards and their metadata, with an
// in-memory index of the committed chunks. Its methods are safe for
// concurrent use. See the package documentation for the model.
type Store struct {
	root    string // absolute, symlink-resolved path of rootDir
	rootDir *Dir   // opened once at Open: every file is reached through it
	metaDir *Dir   // <root>/metadata
	tmpDir  *Dir   // <root>/.tmp
	fs      FS
	now     func() time.Time
	log     *slog.Logger

	quarMu  sync.Mutex
	quarDir *Dir          // <root>/.quarantine once it exists; guarded by quarMu
	recent  quarantineLog // RecentQuarantines

	// locks serialises writers (and OpenShard and Quarantine) per chunk.
	locks keyedMutex

	lockFile    *os.File     // <root>/.lock when Options.Lock; nil after Close
	lockMu      sync.Mutex   // guards lockFile
	quarantined atomic.Int64 // entries in quarDir
	corrupted   atomic.Int64 // versions found corrupt since Open (Corrupted)

	index  chunkIndex // the committed chunks
	sqlite bool       // index is an sqliteIndex
	idxDir *Dir       // <root>/.index, with an sqliteIndex
	// dirty is set when the index may no longer be what the files say (an
	// index write failed, a rollback or a move failed): Close then leaves
	// no clean marker, and the next Open rebuilds.
	dirty atomic.Bool
	// usedBytes and usedChunks are Usage, kept as chunks come and go.
	usedBytes, usedChunks atomic.Int64

	reading useCounts  // open readers per chunk (InUse)
	writing useCounts  // Pendings per chunk (InUse)
	closeMu sync.Mutex // serialises Close
	closed  bool       // guarded by closeMu

	pinMu   sync.Mutex
	pins    map[string]struct{} // pinned video ids (Pin)
	pinsDir *Dir                // <root>/.pins once it exists
	maxPins int

	limits Limits
	room   room // commits checked against limits (reserve)
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
// The root itself may be reached through a symlink (it is resolved once,
// here), but nothing inside it is ever followed: Open refuses, with an error
// wrapping ErrSymlink, a store whose metadata, .tmp or .quarantine
// directory, .lock file or any video directory is a symlink, and fails if a
// fixed directory is not a directory. See Dir.
//
// Only one Store may use a root at a time: Open deletes the temporary files
// of a Store that is still writing. Options.Lock enforces this between
// processes.
func Open(opts Options) (s *Store, err error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("open store: %w: root is required", ErrInvalid)
	}
	limits, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s = &Store{fs: opts.FS, now: opts.Now, log: opts.Logger, limits: limits, maxPins: cmp.Or(opts.MaxPins, DefaultMaxPins)}
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
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", noSpace(err))
	}
	if s.root, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	res := &resolver{}
	if opts.walk {
		res.forceWalk()
	}
	if s.rootDir, err = openRootDir(s.root, res); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.checkLayout(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.root, err)
	}
	if opts.Lock {
		if err := s.lock(); err != nil {
			return nil, fmt.Errorf("open store %s: %w", s.root, err)
		}
		locked := s // s is nil on the error returns
		defer func() {
			if err != nil {
				locked.Close()
			}
		}()
	}
	if s.metaDir, err = s.fixedDir(metadataDirName); err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.root, err)
	}
	if s.tmpDir, err = s.fixedDir(tempDirName); err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.root, err)
	}
	if err := s.fs.SyncDir(s.rootDir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.emptyTempDir(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.countQuarantined(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.openIndex(opts.Index, opts.Reindex); err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.root, err)
	}
	if err := s.loadPins(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// checkLayout refuses a root whose fixed entries (metadata/, .tmp/,
// .quarantine/, .lock) or video directories are symlinks, or whose fixed
// entries are of the wrong type. Following such a link would make the store
// delete, move, read or create files wherever it points. The error names
// the entries, never what they point to.
func (s *Store) checkLayout() error {
	names, err := s.rootDir.list()
	if err != nil {
		return err
	}
	sort.Strings(names)
	var links []string
	var errs []error
	for _, name := range names {
		fixed := isFixedName(name)
		if !fixed && ValidateVideoID(name) != nil {
			continue // not ours
		}
		fi, err := s.rootDir.lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed meanwhile
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			links = append(links, s.rootDir.join(name))
		case name == lockFileName && !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("%s is not a regular file (mode %v)", s.rootDir.join(name), fi.Mode()))
		case fixed && name != lockFileName && !fi.IsDir():
			errs = append(errs, fmt.Errorf("%s is not a directory (mode %v)", s.rootDir.join(name), fi.Mode()))
		}
	}
	if len(links) > 0 {
		return symlinkRefusal(links...)
	}
	return errors.Join(errs...)
}

// symlinkRefusal is Open's error for symlinks found in the store.
func symlinkRefusal(paths ...string) error {
	what := "is a symlink"
	if len(paths) > 1 {
		what = "are symlinks"
	}
	return fmt.Errorf("%w: %s %s; whoever can write the store's root could use one to send the worker's "+
		"reads and writes elsewhere: remove it (the store's directories and lock file must be real ones) and start again",
		ErrSymlink, strings.Join(paths, ", "), what)
}

func isFixedName(name string) bool {
	switch name {
	case metadataDirName, tempDirName, quarantineDirName, lockFileName, indexDirName, pinsDirName:
		return true
	}
	return false
}

// fixedDir creates the directory name in the root if it is missing and
// opens it.
func (s *Store) fixedDir(name string) (*Dir, error) {
	if err := s.fs.Mkdir(s.rootDir, name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, noSpace(err)
	}
	d, err := s.rootDir.openDir(name)
	if isSymlinkErr(err) {
		return nil, symlinkRefusal(s.rootDir.join(name)) // planted since checkLayout
	}
	return d, err
}

// lock opens <root>/.lock and takes an exclusive lock on it.
func (s *Store) lock() error {
	f, fi, err := s.rootDir.openFile(lockFileName, os.O_RDWR|os.O_CREATE, 0o644)
	switch {
	case isSymlinkErr(err):
		return fmt.Errorf("lock: %w", symlinkRefusal(s.rootDir.join(lockFileName)))
	case err != nil:
		return fmt.Errorf("lock: %w", noSpace(err))
	case !fi.Mode().IsRegular():
		f.Close()
		return fmt.Errorf("lock: %s is not a regular file (mode %v)", f.Name(), fi.Mode())
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

// Close closes the index and then releases the lock taken for
// Options.Lock, letting another process open the root. An IndexSQLite
// index is written out and marked clean, unless it may disagree with the
// files (see the package documentation), so that the next Open uses it as
// it is. The caller stops writing first: after Close, methods that use the
// index fail (IndexSQLite) or keep working (IndexMemory), but no longer
// exclude other processes. Directory handles are released once the Store
// is no longer referenced. Close is idempotent.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.index != nil {
		err := s.index.close()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("close index: %w", err))
		case s.sqlite && (s.dirty.Load() || s.CheckIndex() != nil):
			s.log.Warn("index not marked clean: the next start rebuilds it from the metadata files")
		case s.sqlite:
			if err := s.writeCleanMarker(); err != nil {
				errs = append(errs, fmt.Errorf("mark index clean: %w", err))
			}
		}
	}
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lockFile != nil {
		errs = append(errs, s.lockFile.Close()) // closing the descriptor releases the flock
		s.lockFile = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Root returns the store's absolute, symlink-resolved root directory.
func (s *Store) Root() string { return s.root }

// TempDir returns <root>/.tmp, scratch space on the store's filesystem.
// Open empties it. Whatever a caller opens by this path is resolved by the
// operating system, outside the store's control of symlinks: make scratch
// files with CreateTemp instead.
func (s *Store) TempDir() string { return s.tmpDir.Path() }

// FreeBytes returns the bytes available to the worker on the root's
// filesystem.
func (s *Store) FreeBytes() (int64, error) {
	n, err := sysinfo.FreeBytes(s.root)
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
	rerr := s.fs.Remove(s.tmpDir, filepath.Base(f.Name()))
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("check writable: %w", noSpace(err))
	}
	return nil
}

// maxRemoveDepth bounds how deep Open descends into TempDir to empty it.
const maxRemoveDepth = 64

// emptyTempDir removes everything inside TempDir.
func (s *Store) emptyTempDir() error {
	names, err := s.tmpDir.list()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := s.removeAll(s.tmpDir, name, 0); err != nil {
			return err
		}
		s.log.Info("removed leftover temporary file", "path", s.tmpDir.join(name))
	}
	return nil
}

// removeAll removes name in dir and, if it is a directory, all it holds.
// A symlink is removed itself: nothing is followed.
func (s *Store) removeAll(dir *Dir, name string, depth int) error {
	err := s.fs.Remove(dir, name)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if fi, lerr := s.fs.Lstat(dir, name); lerr != nil || !fi.IsDir() {
		return err
	}
	if depth >= maxRemoveDepth {
		return fmt.Errorf("%s: nested more than %d directories deep; not removed", dir.join(name), maxRemoveDepth)
	}
	sub, err := dir.openDir(name)
	if err != nil {
		return err
	}
	defer closeDir(sub)
	names, err := sub.list()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := s.removeAll(sub, n, depth+1); err != nil {
			return err
		}
	}
	return s.fs.Remove(dir, name)
}

// shardPath is the absolute path of a shard: Join's cleaning is not needed
// for a valid video id and a clean root, and Open makes 100,000 of them.
func (s *Store) shardPath(videoID string, n int) string {
	if strings.HasSuffix(s.root, string(filepath.Separator)) { // "/"
		return s.root + videoID + string(filepath.Separator) + shardName(n)
	}
	return s.root + string(filepath.Separator) + videoID + string(filepath.Separator) + shardName(n)
}

// get returns the indexed metadata of a chunk.
func (s *Store) get(key chunkKey) (Metadata, bool, error) {
	m, ok, err := s.index.get(key)
	if err != nil {
		return Metadata{}, false, s.indexFailed(err)
	}
	return m, ok, nil
}

// put indexes m, which the caller no longer modifies, and counts it in
// Usage; the shard's bytes move from the commit's reservation rv (nil
// without limits) to Usage at once. Its files are committed by then, so
// a failure is not the caller's: it is logged, and the next Open indexes
// the chunk.
func (s *Store) put(m Metadata, rv *reservation) {
	prev, had, err := s.index.put(m)
	if err != nil {
		s.log.Error("cannot index a committed chunk; it is listed once the store is reopened",
			"video_id", m.VideoID, "chunk_index", m.ChunkIndex, "err", s.indexFailed(err))
		return
	}
	s.room.acct.Lock()
	s.usedBytes.Add(m.EncodedSize - prev)
	if rv != nil {
		s.room.reserved -= rv.n
		rv.n = 0
	}
	s.room.acct.Unlock()
	if !had {
		s.usedChunks.Add(1)
	}
}

// drop removes a chunk from the index and from Usage. A failure is logged
// (the next Open no longer finds the files) and returned.
func (s *Store) drop(key chunkKey) error {
	prev, had, err := s.index.drop(key)
	if err != nil {
		err = s.indexFailed(err)
		s.log.Error("cannot remove a chunk from the index; it leaves once the store is reopened",
			"video_id", key.video, "chunk_index", key.chunk, "err", err)
		return err
	}
	if had {
		s.usedBytes.Add(-prev)
		s.usedChunks.Add(-1)
	}
	return nil
}

// setUsage counts what a new index holds.
func (s *Store) setUsage(metas map[chunkKey]Metadata) {
	var n int64
	for _, m := range metas {
		n += m.EncodedSize
	}
	s.usedBytes.Store(n)
	s.usedChunks.Store(int64(len(metas)))
}

// indexFailed marks the index as no longer trusted (see dirty) and returns
// err, as an index error.
func (s *Store) indexFailed(err error) error {
	s.dirty.Store(true)
	return fmt.Errorf("index: %w", err)
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
