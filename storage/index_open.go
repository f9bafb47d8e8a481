package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
)

// IndexKind selects where a Store keeps its index of committed chunks.
type IndexKind string

const (
	// IndexSQLite keeps the index in an SQLite database in <root>/.index,
	// so that Open need not read every metadata file: it is used as it is
	// when it was closed cleanly and nothing in the store changed since,
	// and rebuilt from the metadata files otherwise. The default.
	IndexSQLite IndexKind = "sqlite"
	// IndexMemory builds the index in memory at Open, from every metadata
	// file.
	IndexMemory IndexKind = "memory"
)

// cleanMarkerName is the file in .index that a clean Close leaves, saying
// the database holds what the files held then. Open removes it before the
// first write, so a store not closed cleanly has none.
const cleanMarkerName = "clean"

// cleanMarker is the content of the clean marker.
type cleanMarker struct {
	Schema int `json:"schema"`
	// Fingerprint is storeFingerprint at Close: a change to the store's
	// directories while it was closed (a file added, removed, renamed)
	// makes Open rebuild.
	Fingerprint string `json:"fingerprint"`
	DBSize      int64  `json:"db_size"` // the database's size: a truncated one is rebuilt
	// DBStamp is the database file's identity and times (dbStamp) at
	// Close: any write to it since (another process's) moves its change
	// time, which no one but the clock sets, and makes Open rebuild.
	DBStamp string `json:"db_stamp"`
	Chunks  int64  `json:"chunks"` // Usage at Close
	Bytes   int64  `json:"bytes"`
}

// dbFiles are the files SQLite keeps beside the database.
var dbFiles = []string{indexDBName, indexDBName + "-wal", indexDBName + "-shm", indexDBName + "-journal"}

// openIndex builds or opens the index of kind (default IndexSQLite);
// rebuild makes an SQLite index be rebuilt even if it is clean.
func (s *Store) openIndex(kind IndexKind, rebuild bool) error {
	switch kind {
	case IndexMemory:
		// A database left by an SQLite run misses whatever this run changes.
		if err := s.removeCleanMarker(false); err != nil {
			return err
		}
		metas, err := s.load()
		if err != nil {
			return err
		}
		s.index = newMemIndex(metas)
		s.setUsage(metas)
		return nil
	case IndexSQLite, "":
	default:
		return fmt.Errorf("%w: index %q is not %s or %s", ErrInvalid, kind, IndexMemory, IndexSQLite)
	}
	var err error
	if s.idxDir, err = s.fixedDir(indexDirName); err != nil {
		return err
	}
	s.sqlite = true
	marker, why := s.readCleanMarker()
	if err := s.removeCleanMarker(true); err != nil {
		return err
	}
	if why == "" && rebuild {
		why = "a rebuild was asked for"
	}
	if why == "" {
		why = s.checkDB(marker)
	}
	if why == "" {
		x, err := openSQLiteIndex(s.idxDir.join(indexDBName), false, s.shardPath)
		if err == nil {
			s.index = &guardedIndex{chunkIndex: x}
			s.usedChunks.Store(marker.Chunks)
			s.usedBytes.Store(marker.Bytes)
			return nil
		}
		why = "cannot open the database: " + err.Error()
	}
	if why == "no index yet" {
		s.log.Info("building the index from the metadata files", "path", s.idxDir.join(indexDBName))
	} else {
		s.log.Warn("rebuilding the index from the metadata files", "reason", why, "path", s.idxDir.join(indexDBName))
	}
	return s.rebuildIndex()
}

// readCleanMarker returns the clean marker, or why there is no usable one.
func (s *Store) readCleanMarker() (cleanMarker, string) {
	var m cleanMarker
	data, mode, err := s.idxDir.readFile(cleanMarkerName, 1<<10, nil)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := s.idxDir.lstat(indexDBName); errors.Is(err, fs.ErrNotExist) {
			return m, "no index yet"
		}
		return m, "the index was not closed cleanly"
	case err != nil:
		return m, "cannot read the clean marker: " + err.Error()
	case !mode.IsRegular():
		return m, "the clean marker is not a regular file"
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, "the clean marker does not parse"
	}
	if m.Schema != indexSchema {
		return m, "the index is of schema version " + strconv.Itoa(m.Schema) + ", not " + strconv.Itoa(indexSchema)
	}
	return m, ""
}

// checkDB says why the database is not what marker describes, or "".
func (s *Store) checkDB(marker cleanMarker) string {
	fp, err := s.storeFingerprint()
	if err != nil {
		return "cannot fingerprint the store: " + err.Error()
	}
	if fp != marker.Fingerprint {
		return "the store's files changed since the index was closed"
	}
	for _, name := range dbFiles {
		fi, err := s.idxDir.lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist) && name != indexDBName:
			continue
		case err != nil:
			return "cannot stat " + name + ": " + err.Error()
		case !fi.Mode().IsRegular():
			return name + " is not a regular file"
		case name == indexDBName && fi.Size() != marker.DBSize:
			return fmt.Sprintf("the database is %d bytes, %d when it was closed", fi.Size(), marker.DBSize)
		case name == indexDBName && dbStamp(fi) != marker.DBStamp:
			return "the database was written or replaced since it was closed"
		}
	}
	return ""
}

// rebuildIndex replaces the database with one built from the metadata
// files (load).
func (s *Store) rebuildIndex() error {
	for _, name := range dbFiles {
		if err := s.removeAll(s.idxDir, name, 0); err != nil {
			return fmt.Errorf("remove old index: %w", err)
		}
	}
	metas, err := s.load()
	if err != nil {
		return err
	}
	x, err := openSQLiteIndex(s.idxDir.join(indexDBName), true, s.shardPath)
	if err != nil {
		return fmt.Errorf("create index: %w", noSpace(err))
	}
	if err := x.build(metas); err != nil {
		x.close()
		return fmt.Errorf("build index: %w", noSpace(err))
	}
	s.index = &guardedIndex{chunkIndex: x}
	s.setUsage(metas)
	return nil
}

// removeCleanMarker removes the clean marker, durably: from here on the
// index may change, and only a clean Close vouches for it again. With
// exists false, .index may be missing.
func (s *Store) removeCleanMarker(exists bool) error {
	d := s.idxDir
	if !exists {
		var err error
		d, err = s.rootDir.openDir(indexDirName)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer closeDir(d)
	}
	err := s.fs.Remove(d, cleanMarkerName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove index clean marker: %w", err)
	}
	return s.fs.SyncDir(d)
}

// writeCleanMarker makes the closed database durable and then records it
// as clean.
func (s *Store) writeCleanMarker() error {
	f, _, err := s.idxDir.openFile(indexDBName, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat() // after the sync: the times the file keeps
	}
	f.Close()
	if err != nil {
		return err
	}
	fp, err := s.storeFingerprint()
	if err != nil {
		return err
	}
	data, err := json.Marshal(cleanMarker{Schema: indexSchema, Fingerprint: fp, DBSize: fi.Size(), DBStamp: dbStamp(fi),
		Chunks: s.usedChunks.Load(), Bytes: s.usedBytes.Load()})
	if err != nil {
		return err
	}
	tmp, err := s.writeTemp(s.idxDir, "."+cleanMarkerName+tempInfix+"*", data)
	if err != nil {
		return err
	}
	if err := s.fs.Rename(s.idxDir, tmp, s.idxDir, cleanMarkerName); err != nil {
		s.fs.Remove(s.idxDir, tmp)
		return err
	}
	return s.fs.SyncDir(s.idxDir)
}

// dbStamp is a file's device, inode, size, modification and change times.
func dbStamp(fi fs.FileInfo) string {
	id, _ := fileID(fi)
	return fmt.Sprintf("%d %d %d %d %d", id.dev, id.ino, fi.Size(), fi.ModTime().UnixNano(), changeTime(fi))
}

// storeFingerprint hashes the identity, modification and change times of
// metadata/ and of every video directory: adding, removing or renaming a
// file in any of them moves its directory's times. (A file rewritten in
// place is not seen; readers still check each shard's size.)
func (s *Store) storeFingerprint() (string, error) {
	names, err := s.rootDir.list()
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		if name != metadataDirName && ValidateVideoID(name) != nil {
			continue
		}
		fi, err := s.rootDir.lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		id, _ := fileID(fi)
		fmt.Fprintf(h, "%s\x00%v %d %d %d %d\n", name, fi.Mode(), id.dev, id.ino, fi.ModTime().UnixNano(), changeTime(fi))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
