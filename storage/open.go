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
	"strconv"
	"strings"
)

// maxMetadataBytes bounds a metadata file read at Open; real ones are well
// under 4 KiB.
const maxMetadataBytes = 1 << 20

// load builds the index from disk, removing temporary files, resolving
// interrupted replaces and quarantining what cannot be indexed on the way.
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
		var msg, detail string
		var extra []string
		if bk := backups[key]; len(bk) > 0 {
			msg, detail, extra = s.recoverChunk(path, m, bk)
			delete(backups, key)
		} else {
			msg, detail = checkShard(shards[key], m)
		}
		if msg != "" {
			files := append([]string{s.metadataPath(key.video, key.chunk), path}, extra...)
			s.quarantineAtOpen(key.video+"_chunk_"+strconv.Itoa(key.chunk), msg, detail, files...)
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
			s.quarantineAtOpen(key.video+"_chunk_"+strconv.Itoa(key.chunk), "shard has no metadata", "",
				s.shardPath(key.video, key.chunk))
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
		label := strings.TrimSuffix(name, ".json")
		if !e.Type().IsRegular() {
			s.quarantineAtOpen(label, "metadata is not a regular file", fmt.Sprintf("mode %v", e.Type()), path)
			continue
		}
		m, err := readMetadata(path)
		if err != nil {
			s.quarantineAtOpen(label, "unreadable metadata", err.Error(), path)
			continue
		}
		// The name is ambiguous ("a_chunk_1_chunk_2_metadata.json"), so
		// identity comes from the content, and the name must be exactly
		// what the content produces.
		if err := validateKey(m.VideoID, m.ChunkIndex); err != nil {
			s.quarantineAtOpen(label, "metadata names an invalid chunk", err.Error(), path)
			continue
		}
		if want := metadataName(m.VideoID, m.ChunkIndex); name != want {
			s.quarantineAtOpen(label, "metadata file name does not match its video_id and chunk_index",
				"its content names "+want, path)
			continue
		}
		if m.EncodedSize < 0 {
			s.quarantineAtOpen(label, "metadata has a negative encoded_size", "", path)
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

// scanVideoDirs lists the shard files of every video directory (regular or
// not), removes temporary files, and collects backups left by interrupted
// replaces.
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
			fi, err := f.Info() // not following a symlink: checkShard refuses anything irregular
			if err != nil {
				s.log.Warn("cannot stat shard; not indexed", "path", path, "err", err)
				continue
			}
			shards[chunkKey{video, n}] = fi
		}
	}
	return shards, backups, nil
}

// checkShard says what is wrong with a shard (described by fi, nil if
// missing) for m, or "" if nothing: it must be a regular file of the
// recorded size. The checksum is not verified, as that would read every
// shard at Open; Scrub does that.
func checkShard(fi fs.FileInfo, m Metadata) (msg, detail string) {
	switch {
	case fi == nil:
		return "metadata without shard", ""
	case !fi.Mode().IsRegular():
		return "shard is not a regular file", fmt.Sprintf("mode %v", fi.Mode())
	case fi.Size() != m.EncodedSize:
		return "shard size differs from metadata", fmt.Sprintf("%d bytes, encoded_size %d", fi.Size(), m.EncodedSize)
	}
	return "", ""
}

// quarantineAtOpen moves files that cannot be indexed into QuarantineDir
// and logs why; msg is a short phrase, detail may be empty.
func (s *Store) quarantineAtOpen(label, msg, detail string, files ...string) {
	reason := msg
	if detail != "" {
		reason += ": " + detail
	}
	dir, err := s.moveToQuarantine(label, reason, files...)
	if err != nil {
		s.log.Error(msg+"; not indexed, and cannot be quarantined", "files", files, "detail", detail, "err", err)
		return
	}
	s.log.Warn(msg+"; quarantined", "files", files, "detail", detail, "path", dir)
}

// recoverChunk resolves a replace that a crash interrupted, leaving backups
// (hard links to the replaced shard). If the shard matches the metadata in
// size and checksum, the replace got through (or never started) and the
// backups go. Otherwise the crash fell between the two renames: the shard is
// new but the metadata old, so the backup that matches the metadata is
// renamed back. It returns "" if the chunk can be indexed, else why not and
// any backup to quarantine with it.
func (s *Store) recoverChunk(path string, m Metadata, backups []string) (msg, detail string, keep []string) {
	defer func() {
		for _, b := range backups {
			if b != "" {
				s.removeLeftover(b)
			}
		}
	}()
	if s.matches(path, m) {
		return "", "", nil
	}
	for i, b := range backups {
		if !s.matches(b, m) {
			continue
		}
		if err := os.Rename(b, path); err != nil {
			backups[i] = "" // the good version: kept, in quarantine
			return "cannot restore shard after interrupted replace", err.Error(), []string{b}
		}
		backups[i] = ""
		if err := s.fs.SyncDir(filepath.Dir(path)); err != nil {
			s.log.Warn("cannot sync directory", "path", filepath.Dir(path), "err", err)
		}
		s.log.Warn("interrupted replace rolled back: restored the previous shard", "path", path)
		return "", "", nil
	}
	return "shard matches neither its metadata nor any backup", "", nil
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
	sum, err := FileSHA256(path)
	return err == nil && sum == m.ChecksumSHA256
}

// FileSHA256 returns the hex SHA-256 of the file at path, as metadata
// records checksums.
func FileSHA256(path string) (string, error) {
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
