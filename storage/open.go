package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxMetadataBytes bounds a metadata file read at Open; real ones are well
// under 4 KiB.
const maxMetadataBytes = 1 << 20

// load builds the index from disk, removing temporary files and resolving
// interrupted replaces on the way.
func (s *Store) load() error {
	metas, err := s.readMetadataDir()
	if err != nil {
		return err
	}
	shards, backups, err := s.scanVideoDirs()
	if err != nil {
		return err
	}

	index := make(map[string]map[int]Metadata)
	for key, m := range metas {
		path := s.shardPath(key.video, key.chunk)
		var ok bool
		if bk := backups[key]; len(bk) > 0 {
			ok = s.recoverChunk(path, m, bk)
			delete(backups, key)
		} else {
			ok = s.checkShard(path, shards[key], m)
		}
		if !ok {
			continue
		}
		m.ShardLocation = path // the store may have moved since
		chunks := index[key.video]
		if chunks == nil {
			chunks = make(map[int]Metadata)
			index[key.video] = chunks
		}
		chunks[key.chunk] = m
	}
	// Backups of chunks that have no metadata: the replaced version was
	// never committed, so there is nothing to restore.
	for _, bk := range backups {
		for _, b := range bk {
			s.removeLeftover(b)
		}
	}
	for key := range shards {
		if _, ok := metas[key]; !ok {
			s.log.Warn("shard has no metadata; not indexed",
				"path", s.shardPath(key.video, key.chunk))
		}
	}
	s.index = index
	return nil
}

// readMetadataDir reads every metadata file, removes temporary and backup
// files, and returns the metadata that is well-formed and correctly named.
func (s *Store) readMetadataDir() (map[chunkKey]Metadata, error) {
	entries, err := os.ReadDir(s.metaDir)
	if err != nil {
		return nil, err
	}
	metas := make(map[chunkKey]Metadata, len(entries))
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(s.metaDir, name)
		if isTempName(name) || isBackupName(name) {
			s.removeLeftover(path)
			continue
		}
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			s.log.Warn("unexpected file in metadata directory; ignored", "path", path)
			continue
		}
		if !e.Type().IsRegular() {
			s.log.Warn("metadata is not a regular file; not indexed", "path", path, "mode", e.Type())
			continue
		}
		m, err := readMetadata(path)
		if err != nil {
			s.log.Warn("unreadable metadata; not indexed", "path", path, "err", err)
			continue
		}
		// The name is ambiguous ("a_chunk_1_chunk_2_metadata.json"), so
		// identity comes from the content, and the name must be exactly
		// what the content produces.
		if err := validateKey(m.VideoID, m.ChunkIndex); err != nil {
			s.log.Warn("metadata names an invalid chunk; not indexed", "path", path, "err", err)
			continue
		}
		if want := metadataName(m.VideoID, m.ChunkIndex); name != want {
			s.log.Warn("metadata file name does not match its video_id and chunk_index; not indexed",
				"path", path, "want_name", want)
			continue
		}
		if m.EncodedSize < 0 {
			s.log.Warn("metadata has a negative encoded_size; not indexed", "path", path)
			continue
		}
		metas[chunkKey{m.VideoID, m.ChunkIndex}] = m
	}
	return metas, nil
}

func readMetadata(path string) (Metadata, error) {
	f, err := os.Open(path)
	if err != nil {
		return Metadata{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMetadataBytes+1))
	if err != nil {
		return Metadata{}, err
	}
	if len(data) > maxMetadataBytes {
		return Metadata{}, fmt.Errorf("larger than %d bytes", maxMetadataBytes)
	}
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return Metadata{}, err
	}
	return m, nil
}

// scanVideoDirs lists the shard files of every video directory, removes
// temporary files, and collects backups left by interrupted replaces.
func (s *Store) scanVideoDirs() (shards map[chunkKey]fs.FileInfo, backups map[chunkKey][]string, err error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, nil, err
	}
	shards = make(map[chunkKey]fs.FileInfo)
	backups = make(map[chunkKey][]string)
	for _, e := range entries {
		video := e.Name()
		if ValidateVideoID(video) != nil {
			continue // metadata/, .tmp/ and anything that is not ours
		}
		dir := filepath.Join(s.root, video)
		if !e.IsDir() {
			if e.Type()&fs.ModeSymlink != 0 {
				s.log.Warn("video directory is a symlink; not indexed", "path", dir)
			}
			continue
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			name := f.Name()
			path := filepath.Join(dir, name)
			if n, ok := parseBackupName(name); ok {
				key := chunkKey{video, n}
				backups[key] = append(backups[key], path)
				continue
			}
			if isTempName(name) || isBackupName(name) {
				s.removeLeftover(path)
				continue
			}
			n, ok := parseShardName(name)
			if !ok {
				continue
			}
			if !f.Type().IsRegular() {
				s.log.Warn("shard is not a regular file; not indexed", "path", path, "mode", f.Type())
				continue
			}
			fi, err := f.Info()
			if err != nil {
				s.log.Warn("cannot stat shard; not indexed", "path", path, "err", err)
				continue
			}
			shards[chunkKey{video, n}] = fi
		}
	}
	return shards, backups, nil
}

// checkShard reports whether the shard at path (described by fi, nil if
// missing) is what m records: it must exist with the recorded size. The
// checksum is not verified, as that would read every shard at Open.
func (s *Store) checkShard(path string, fi fs.FileInfo, m Metadata) bool {
	switch {
	case fi == nil:
		s.log.Warn("metadata without shard; not indexed", "path", path)
		return false
	case fi.Size() != m.EncodedSize:
		s.log.Warn("shard size differs from metadata; not indexed",
			"path", path, "size", fi.Size(), "encoded_size", m.EncodedSize)
		return false
	}
	return true
}

// recoverChunk resolves a replace that a crash interrupted, leaving backups
// (hard links to the replaced shard). If the shard matches the metadata in
// size and checksum, the replace got through (or never started) and the
// backups go. Otherwise the crash fell between the two renames: the shard is
// new but the metadata old, so the backup that matches the metadata is
// renamed back. It reports whether the chunk can be indexed.
func (s *Store) recoverChunk(path string, m Metadata, backups []string) bool {
	defer func() {
		for _, b := range backups {
			if b != "" {
				s.removeLeftover(b)
			}
		}
	}()
	if s.matches(path, m) {
		return true
	}
	for i, b := range backups {
		if !s.matches(b, m) {
			continue
		}
		if err := os.Rename(b, path); err != nil {
			s.log.Error("cannot restore shard after interrupted replace; not indexed",
				"path", path, "backup", b, "err", err)
			return false
		}
		backups[i] = ""
		if err := s.fs.SyncDir(filepath.Dir(path)); err != nil {
			s.log.Warn("cannot sync directory", "path", filepath.Dir(path), "err", err)
		}
		s.log.Warn("interrupted replace rolled back: restored the previous shard", "path", path)
		return true
	}
	s.log.Warn("shard matches neither its metadata nor any backup; not indexed", "path", path)
	return false
}

// matches reports whether the regular file at path has m's size and, when m
// records one, m's checksum.
func (s *Store) matches(path string, m Metadata) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != m.EncodedSize {
		return false
	}
	if m.ChecksumSHA256 == "" {
		return true
	}
	sum, err := hashFile(path)
	return err == nil && sum == m.ChecksumSHA256
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// removeLeftover removes a temporary or backup file found at Open.
func (s *Store) removeLeftover(path string) {
	if err := os.Remove(path); err != nil {
		s.log.Warn("cannot remove leftover temporary file", "path", path, "err", err)
		return
	}
	s.log.Info("removed leftover temporary file", "path", path)
}
