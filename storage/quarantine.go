package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// quarantineStampLayout starts a quarantine directory's name: UTC, sortable,
// to the nanosecond.
const quarantineStampLayout = "20060102T150405.000000000Z"

// quarantineReasonName is the file in each quarantine directory that says
// why and from where. No shard ("chunk_<n>.shard") or metadata file (moved
// only when its name ends in ".json") can take this name.
const quarantineReasonName = "REASON.txt"

// maxQuarantineLabel bounds the label part of a quarantine directory's name
// so that stamp, label and a collision suffix fit in NAME_MAX (255).
const maxQuarantineLabel = 255 - len(quarantineStampLayout) - len("-") - len("-999")

// QuarantineDir returns <root>/.quarantine, where corrupt or orphaned files
// are moved: one directory per quarantined chunk or file, named
// "<UTC timestamp>-<video_id>_chunk_<n>" (or "-<file name>" for a metadata
// file whose chunk is unknown), holding the files under their original names
// and a REASON.txt. The store never reads, lists or deletes what is there;
// it is the operator's to inspect, restore (stop the worker, move the files
// back, start it) or delete. The directory exists once something was
// quarantined.
func (s *Store) QuarantineDir() string { return filepath.Join(s.root, quarantineDirName) }

// Quarantined returns the number of entries in QuarantineDir: those found
// at Open plus those quarantined since. Entries an operator removes while
// the Store is open are still counted.
func (s *Store) Quarantined() int64 { return s.quarantined.Load() }

// Corrupted returns the number of shard versions found corrupt since Open,
// by VerifiedReaders (Verify included) and Scrub, and taken out of the
// store. Each version is counted once, by whichever found it first; what
// Open itself quarantines is in Quarantined only. A chunk that has left the
// index has been counted by then, so a caller that no longer sees it sees
// it in both counters.
func (s *Store) Corrupted() int64 { return s.corrupted.Load() }

// QuarantinedChunk is a chunk the store took out, as RecentQuarantines
// lists it.
type QuarantinedChunk struct {
	VideoID    string
	ChunkIndex int
	Reason     string
	Time       time.Time
}

// maxRecentQuarantines bounds RecentQuarantines: a store that quarantines
// without end must not grow without end.
const maxRecentQuarantines = 1000

// quarantineLog is a ring of the last maxRecentQuarantines chunks
// quarantined.
type quarantineLog struct {
	mu    sync.Mutex // guards the fields below
	ring  []QuarantinedChunk
	start int // index of the oldest entry once ring is full
}

// RecentQuarantines returns the chunks quarantined since Open (by a
// reader, a scrub, Quarantine, or Open itself), most recent last, at most
// the last 1000. Files quarantined at Open whose chunk is unknown (an
// unreadable or misnamed metadata file) are not listed.
func (s *Store) RecentQuarantines() []QuarantinedChunk {
	l := &s.recent
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(append([]QuarantinedChunk(nil), l.ring[l.start:]...), l.ring[:l.start]...)
}

// recordQuarantine adds a chunk to RecentQuarantines.
func (s *Store) recordQuarantine(key chunkKey, reason string) {
	q := QuarantinedChunk{VideoID: key.video, ChunkIndex: key.chunk, Reason: reason, Time: s.now().UTC()}
	l := &s.recent
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < maxRecentQuarantines {
		l.ring = append(l.ring, q)
		return
	}
	l.ring[l.start] = q
	l.start = (l.start + 1) % maxRecentQuarantines
}

// countQuarantined counts the entries already in QuarantineDir.
func (s *Store) countQuarantined() error {
	d, err := s.quarantineDir(false)
	if d == nil || err != nil {
		return err
	}
	names, err := d.list()
	if err != nil {
		return err
	}
	s.quarantined.Store(int64(len(names)))
	return nil
}

// quarantineDir returns the open QuarantineDir; if it does not exist yet it
// is created when create is set, and otherwise nil is returned.
func (s *Store) quarantineDir(create bool) (*Dir, error) {
	s.quarMu.Lock()
	defer s.quarMu.Unlock()
	if s.quarDir != nil {
		return s.quarDir, nil
	}
	d, err := s.rootDir.openDir(quarantineDirName)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		if err := s.fs.Mkdir(s.rootDir, quarantineDirName, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := s.fs.SyncDir(s.rootDir); err != nil {
			return nil, err
		}
		d, err = s.rootDir.openDir(quarantineDirName)
	}
	if err != nil {
		return nil, err
	}
	s.quarDir = d
	return d, nil
}

// Quarantine takes a committed chunk out of the store without deleting it:
// its metadata and shard are moved into a new directory under QuarantineDir
// (metadata first, so that a crash in between leaves an orphan shard, which
// Open quarantines too), every directory involved is fsynced, and the chunk
// leaves the index. From then on Lookup, List, VideoMetadata, OpenShard and
// ResolveLocation no longer see it, reopening the store does not bring it
// back, and a new Create and Commit of the chunk work as for a chunk never
// stored. reason is recorded in the directory's REASON.txt and logged.
//
// Quarantine returns an error wrapping ErrInvalid for a bad id or index and
// one wrapping ErrNotFound if the chunk is not committed. If moving the files
// fails, the chunk stays out of the index (it is not served) and the error
// is returned; the next Open sees whatever the move left and indexes or
// quarantines it.
func (s *Store) Quarantine(videoID string, chunkIndex int, reason string) error {
	if err := validateKey(videoID, chunkIndex); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	_, _, err := s.quarantine(chunkKey{videoID, chunkIndex}, nil, reason, "")
	return err
}

// QuarantineVersion is Quarantine for the version m describes only (as
// returned by OpenShard, Lookup or in a *CorruptError): if the chunk has
// been replaced or quarantined since m was read, it does nothing and
// returns an error wrapping ErrNotFound. Readers that found a version
// corrupt use it, so that a good replacement committed meanwhile is kept.
// Versions are told apart by checksum, size and commit timestamp.
func (s *Store) QuarantineVersion(m Metadata, reason string) error {
	if err := validateKey(m.VideoID, m.ChunkIndex); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	_, _, err := s.quarantine(chunkKey{m.VideoID, m.ChunkIndex}, &m, reason, "")
	return err
}

// quarantineOutcome is what taking a corrupt version out of the store did.
type quarantineOutcome struct {
	// taken is set when this finding took the version out of the store
	// (and counted it); not when it had been replaced or quarantined, by
	// another reader or a scrub, meanwhile.
	taken bool
	dir   string // where its files went, if a quarantine directory was made
	err   error  // moving the files failed; it is out of the index all the same
}

// foundCorrupt takes the version ce names out of the store, counting it
// as corrupt and logging it as found by by ("read", "scrub"; see
// quarantine), and returns ce with the outcome recorded.
func (s *Store) foundCorrupt(ce *CorruptError, by string) *CorruptError {
	m := ce.Metadata
	dir, taken, err := s.quarantine(chunkKey{m.VideoID, m.ChunkIndex}, &m, by+": "+ce.Reason, by)
	ce.quarantine = quarantineOutcome{taken: taken, dir: dir}
	if taken {
		ce.quarantine.err = err
	}
	return ce
}

// quarantine moves a committed chunk (the version want describes, if not
// nil) into a new quarantine directory and returns its path, and whether
// it took the chunk out of the store (false, with an error wrapping
// ErrNotFound, if there was no such version). foundBy, when not empty,
// says who found the version corrupt ("read", "scrub"): it is then counted
// in Corrupted and logged as corrupt.
//
// The chunk leaves the index last, after it was counted, its files moved
// and the move logged, so that whoever no longer sees it sees all of that
// too (the chunk's lock keeps readers off it meanwhile); it leaves even if
// moving fails, so that it is not served.
func (s *Store) quarantine(key chunkKey, want *Metadata, reason, foundBy string) (string, bool, error) {
	unlock := s.locks.lock(key)
	defer unlock()
	cur, ok, err := s.get(key)
	if err != nil {
		return "", false, fmt.Errorf("quarantine %s chunk %d: %w", key.video, key.chunk, err)
	}
	if !ok || want != nil && !sameVersion(cur, *want) {
		return "", false, fmt.Errorf("quarantine %s chunk %d: %w (replaced or already quarantined)", key.video, key.chunk, ErrNotFound)
	}
	defer s.drop(key)
	if foundBy != "" {
		s.corrupted.Add(1)
	}
	s.recordQuarantine(key, reason)
	files := []storeFile{{s.metaDir, metadataName(key.video, key.chunk)}}
	// The shard is reached through its video directory, never through a
	// symlink put in its place: then only the metadata moves, and the
	// shard's path (not what it leads to) is named.
	vd, verr := s.rootDir.openDir(key.video)
	switch {
	case verr == nil:
		defer closeDir(vd)
		files = append(files, storeFile{vd, shardName(key.chunk)})
	case errors.Is(verr, fs.ErrNotExist):
		verr = nil // no shard to move
	default:
		verr = fmt.Errorf("shard %s not moved: %w", s.shardPath(key.video, key.chunk), verr)
		reason += "; " + verr.Error()
	}
	dir, err := s.moveToQuarantine(key.video+"_chunk_"+strconv.Itoa(key.chunk), reason, files...)
	if err = errors.Join(err, verr); err != nil {
		s.dirty.Store(true) // what the move left is for the next Open to sort out
		s.log.Error("cannot quarantine chunk; no longer served until the store is reopened",
			"video_id", key.video, "chunk_index", key.chunk, "reason", reason, "err", err)
		return dir, true, fmt.Errorf("quarantine %s chunk %d: %w", key.video, key.chunk, noSpace(err))
	}
	if foundBy != "" {
		s.log.Error(foundBy+": corrupted shard quarantined", "video_id", key.video, "chunk_index", key.chunk,
			"reason", reason, "path", dir)
	} else {
		s.log.Warn("chunk quarantined", "video_id", key.video, "chunk_index", key.chunk,
			"reason", reason, "path", dir)
	}
	return dir, true, nil
}

// sameVersion reports whether a and b describe the same committed version.
func sameVersion(a, b Metadata) bool {
	return a.ChecksumSHA256 == b.ChecksumSHA256 && a.EncodedSize == b.EncodedSize && a.Timestamp == b.Timestamp
}

// moveToQuarantine moves files (those that do not exist are skipped) into
// a new directory under QuarantineDir named after the current time and
// label, beside a REASON.txt, and fsyncs the directories involved. It
// returns the new directory's path. The caller holds whatever lock keeps
// others off the files.
func (s *Store) moveToQuarantine(label, reason string, files ...storeFile) (string, error) {
	qd, err := s.quarantineDir(true)
	if err != nil {
		return "", err
	}
	if len(label) > maxQuarantineLabel {
		label = label[:maxQuarantineLabel]
	}
	now := s.now().UTC()
	base := now.Format(quarantineStampLayout) + "-" + label
	var name string
	for i := 0; ; i++ {
		name = base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		err := s.fs.Mkdir(qd, name, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		if i >= 999 {
			return "", &fs.PathError{Op: "mkdir", Path: qd.join(base + "-*"), Err: fs.ErrExist}
		}
	}
	path := qd.join(name)
	s.quarantined.Add(1)
	if err := s.fs.SyncDir(qd); err != nil {
		return path, err
	}
	dir, err := qd.openDir(name)
	if err != nil {
		return path, err
	}
	defer closeDir(dir)

	var note strings.Builder
	fmt.Fprintf(&note, "reason: %s\ntime: %s\n", oneLine(reason), now.Format(timestampLayout))
	var moves []storeFile
	for _, f := range files {
		if _, err := s.fs.Lstat(f.dir, f.name); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		moves = append(moves, f)
		fmt.Fprintf(&note, "from: %s\n", f.path())
	}
	// The note goes first: a crash during the moves leaves it saying what
	// was meant to be moved here.
	tmp, err := s.writeTemp(dir, "."+quarantineReasonName+tempInfix+"*", []byte(note.String()))
	if err != nil {
		return path, err
	}
	if err := s.fs.Rename(dir, tmp, dir, quarantineReasonName); err != nil {
		s.fs.Remove(dir, tmp)
		return path, err
	}
	synced := map[*Dir]bool{}
	var errs []error
	for _, mv := range moves {
		if err := s.fs.Rename(mv.dir, mv.name, dir, mv.name); err != nil {
			errs = append(errs, err)
			continue
		}
		if !synced[mv.dir] {
			synced[mv.dir] = true
			if err := s.fs.SyncDir(mv.dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := s.fs.SyncDir(dir); err != nil {
		errs = append(errs, err)
	}
	return path, errors.Join(errs...)
}

// oneLine keeps a reason on one line of REASON.txt.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
