package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// maxMetadataBytes bounds a metadata file read at Open; real ones are well
// under 4 KiB.
const maxMetadataBytes = 1 << 20

// load reads the committed chunks from disk, removing temporary files,
// resolving interrupted replaces and quarantining what cannot be indexed on
// the way.
func (s *Store) load() (map[chunkKey]Metadata, error) {
	metas, err := s.readMetadataDir()
	if err != nil {
		return nil, err
	}
	shards, backups, err := s.scanVideoDirs()
	if err != nil {
		return nil, err
	}

	var refused []chunkKey // out of metas once the shards without metadata are known
	for key, m := range metas {
		ok, err := s.checkChunk(key, m, shards[key], backups[key])
		delete(backups, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			refused = append(refused, key)
			continue
		}
		m.ShardLocation = s.shardPath(key.video, key.chunk) // the store may have moved since
		metas[key] = m
	}
	// Backups of chunks that have no metadata: the replaced version was
	// never committed, so there is nothing to restore.
	for key, bk := range backups {
		if err := s.inVideoDir(key.video, func(vd *Dir) {
			for _, b := range bk {
				s.removeLeftover(vd, b)
			}
		}); err != nil {
			return nil, err
		}
	}
	for key := range shards {
		if _, ok := metas[key]; ok {
			continue // indexed, or quarantined with its metadata
		}
		if err := s.inVideoDir(key.video, func(vd *Dir) {
			s.quarantineChunkAtOpen(key, "shard has no metadata", "", storeFile{vd, shardName(key.chunk)})
		}); err != nil {
			return nil, err
		}
	}
	for _, key := range refused {
		delete(metas, key)
	}
	return metas, nil
}

// checkChunk reports whether the chunk with metadata m can be indexed: its
// shard (fi, nil if missing) must match, after any interrupted replace
// (backups) is resolved. If not, it quarantines the chunk's files.
func (s *Store) checkChunk(key chunkKey, m Metadata, fi fs.FileInfo, backups []string) (bool, error) {
	var msg, detail string
	if len(backups) == 0 {
		if msg, detail = checkShard(fi, m); msg == "" {
			return true, nil // the common case: no directory to open
		}
	}
	files := []storeFile{{s.metaDir, metadataName(key.video, key.chunk)}}
	if fi == nil && len(backups) == 0 {
		s.quarantineChunkAtOpen(key, msg, detail, files...)
		return false, nil
	}
	err := s.inVideoDir(key.video, func(vd *Dir) {
		name := shardName(key.chunk)
		var extra []string
		if len(backups) > 0 {
			msg, detail, extra = s.recoverChunk(vd, name, m, backups)
		}
		if msg == "" {
			return
		}
		files = append(files, storeFile{vd, name})
		for _, b := range extra {
			files = append(files, storeFile{vd, b})
		}
		s.quarantineChunkAtOpen(key, msg, detail, files...)
	})
	return msg == "", err
}

// inVideoDir runs fn with a video's directory, which Open found to be a
// directory; one replaced by a symlink since fails Open.
func (s *Store) inVideoDir(video string, fn func(vd *Dir)) error {
	vd, err := s.rootDir.openDir(video)
	if isSymlinkErr(err) {
		return symlinkRefusal(s.rootDir.join(video))
	}
	if err != nil {
		return err
	}
	defer closeDir(vd)
	fn(vd)
	return nil
}

// storeFile is a file of the store: a name in one of its directories.
type storeFile struct {
	dir  *Dir
	name string
}

func (f storeFile) path() string { return f.dir.join(f.name) }

// readMetadataDir reads every metadata file, removes temporary and backup
// files, and returns the metadata that is well-formed and correctly named.
// The files are read and parsed in parallel (readMetadataFiles); what is
// done about each is decided here, in name order, as before.
func (s *Store) readMetadataDir() (map[chunkKey]Metadata, error) {
	names, err := s.metaDir.list()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	reads := s.readMetadataFiles(names)
	metas := make(map[chunkKey]Metadata, len(names))
	for i, name := range names {
		if isTempName(name) || isBackupName(name) {
			s.removeLeftover(s.metaDir, name)
			continue
		}
		if !isMetadataName(name) {
			s.log.Warn("unexpected file in metadata directory; ignored", "path", s.metaDir.join(name))
			continue
		}
		label := strings.TrimSuffix(name, ".json")
		file := storeFile{s.metaDir, name}
		m, mode, err := reads[i].m, reads[i].mode, reads[i].err
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed meanwhile
		case isSymlinkErr(err):
			s.quarantineAtOpen(label, "metadata is not a regular file", "a symlink, not followed", file)
			continue
		case err == nil && !mode.IsRegular():
			s.quarantineAtOpen(label, "metadata is not a regular file", fmt.Sprintf("mode %v", mode), file)
			continue
		case err != nil:
			s.quarantineAtOpen(label, "unreadable metadata", err.Error(), file)
			continue
		}
		// The name is ambiguous ("a_chunk_1_chunk_2_metadata.json"), so
		// identity comes from the content, and the name must be exactly
		// what the content produces.
		if err := validateKey(m.VideoID, m.ChunkIndex); err != nil {
			s.quarantineAtOpen(label, "metadata names an invalid chunk", err.Error(), file)
			continue
		}
		if want := metadataName(m.VideoID, m.ChunkIndex); name != want {
			s.quarantineAtOpen(label, "metadata file name does not match its video_id and chunk_index",
				"its content names "+want, file)
			continue
		}
		if m.EncodedSize < 0 {
			s.quarantineAtOpen(label, "metadata has a negative encoded_size", "", file)
			continue
		}
		metas[chunkKey{m.VideoID, m.ChunkIndex}] = m
	}
	return metas, nil
}

// isMetadataName reports whether readMetadataDir reads the file name.
func isMetadataName(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".json")
}

// metadataRead is what reading one metadata file gave.
type metadataRead struct {
	m    Metadata
	mode fs.FileMode
	err  error
}

// openWorkers bounds the goroutines that read the store at Open.
const openWorkers = 8

// parallel runs fn(i) for every i in 0..n-1 on up to openWorkers
// goroutines (no more than GOMAXPROCS: the work is system calls and
// parsing, not waiting), each taking batches of consecutive i.
func parallel(n int, fn func(worker, i int)) {
	const batch = 64
	workers := min(runtime.GOMAXPROCS(0), openWorkers, (n+batch-1)/batch)
	if workers <= 1 {
		for i := range n {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				start := int(next.Add(batch)) - batch
				if start >= n {
					return
				}
				for i := start; i < min(start+batch, n); i++ {
					fn(w, i)
				}
			}
		})
	}
	wg.Wait()
}

// readMetadataFiles reads and parses the metadata files among names, in
// parallel: at 100,000 chunks, reading them one after the other was most
// of a worker's start-up. It only reads; nothing is moved or logged.
func (s *Store) readMetadataFiles(names []string) []metadataRead {
	reads := make([]metadataRead, len(names))
	bufs := make([][]byte, openWorkers)
	parallel(len(names), func(w, i int) {
		if name := names[i]; isMetadataName(name) && !isTempName(name) && !isBackupName(name) {
			r := &reads[i]
			r.m, r.mode, bufs[w], r.err = s.readMetadata(name, bufs[w])
		}
	})
	return reads
}

// readMetadata reads and parses the metadata file name, using buf as
// scratch, and returns buf for reuse. If the file is not regular, it
// returns its mode and no error, having read nothing.
func (s *Store) readMetadata(name string, buf []byte) (Metadata, fs.FileMode, []byte, error) {
	data, mode, err := s.metaDir.readFile(name, maxMetadataBytes, buf)
	if err != nil || !mode.IsRegular() {
		return Metadata{}, mode, buf, err
	}
	m, err := decodeMetadata(data)
	if err != nil {
		return Metadata{}, 0, data, err
	}
	return m, mode, data, nil
}

// scanVideoDirs lists the shard files of every video directory (regular or
// not), removes temporary files, and collects the names of backups left by
// interrupted replaces. A video directory that is a symlink fails it. The
// directories are listed in parallel (scanVideoDir); the removals are done
// afterwards, in name order.
func (s *Store) scanVideoDirs() (shards map[chunkKey]fs.FileInfo, backups map[chunkKey][]string, err error) {
	names, err := s.rootDir.list()
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	videos := slices.DeleteFunc(names, func(name string) bool {
		return ValidateVideoID(name) != nil // metadata/, .tmp/ and anything that is not ours
	})
	scans := make([]videoScan, len(videos))
	parallel(len(videos), func(_, i int) { scans[i] = s.scanVideoDir(videos[i]) })

	shards = make(map[chunkKey]fs.FileInfo)
	backups = make(map[chunkKey][]string)
	for i, video := range videos {
		sc := &scans[i]
		switch {
		case isSymlinkErr(sc.err):
			return nil, nil, symlinkRefusal(s.rootDir.join(video)) // planted since checkLayout
		case errors.Is(sc.err, fs.ErrNotExist) || isNotDir(sc.err):
			continue // a file, not a video directory
		case sc.err != nil:
			return nil, nil, sc.err
		}
		for _, sh := range sc.shards {
			shards[chunkKey{video, sh.n}] = sh.fi
		}
		for _, b := range sc.backups {
			key := chunkKey{video, b.n}
			backups[key] = append(backups[key], b.name)
		}
		if len(sc.leftovers) > 0 {
			if err := s.inVideoDir(video, func(vd *Dir) {
				for _, name := range sc.leftovers {
					s.removeLeftover(vd, name)
				}
			}); err != nil {
				return nil, nil, err
			}
		}
	}
	return shards, backups, nil
}

// videoScan is what listing one video directory found.
type videoScan struct {
	err       error // opening or listing the directory
	shards    []shardFile
	backups   []shardFile
	leftovers []string // temporary files, to remove
}

// shardFile is a file of chunk n: a shard (described by fi) or a backup.
type shardFile struct {
	n    int
	name string
	fi   fs.FileInfo
}

// scanVideoDir lists a video directory, in name order, and describes each
// shard without following a symlink (checkShard refuses anything
// irregular). It only reads; nothing is moved.
func (s *Store) scanVideoDir(video string) (sc videoScan) {
	vd, err := s.rootDir.openDir(video)
	if err != nil {
		sc.err = err
		return sc
	}
	defer closeDir(vd)
	files, err := vd.list()
	if err != nil {
		sc.err = err
		return sc
	}
	sort.Strings(files)
	for _, name := range files {
		if n, ok := parseBackupName(name); ok {
			sc.backups = append(sc.backups, shardFile{n: n, name: name})
			continue
		}
		if isTempName(name) || isBackupName(name) {
			sc.leftovers = append(sc.leftovers, name)
			continue
		}
		n, ok := parseShardName(name)
		if !ok {
			continue
		}
		fi, err := vd.lstat(name)
		if err != nil {
			s.log.Warn("cannot stat shard; not indexed", "path", vd.join(name), "err", err)
			continue
		}
		sc.shards = append(sc.shards, shardFile{n: n, name: name, fi: fi})
	}
	return sc
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

// quarantineChunkAtOpen is quarantineAtOpen for the files of a known
// chunk, which RecentQuarantines then lists.
func (s *Store) quarantineChunkAtOpen(key chunkKey, msg, detail string, files ...storeFile) {
	if reason, ok := s.quarantineAtOpen(key.video+"_chunk_"+strconv.Itoa(key.chunk), msg, detail, files...); ok {
		s.recordQuarantine(key, reason)
	}
}

// quarantineAtOpen moves files that cannot be indexed into QuarantineDir
// and logs why; msg is a short phrase, detail may be empty. It returns the
// reason recorded and whether the files were moved.
func (s *Store) quarantineAtOpen(label, msg, detail string, files ...storeFile) (string, bool) {
	reason := msg
	if detail != "" {
		reason += ": " + detail
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path()
	}
	dir, err := s.moveToQuarantine(label, reason, files...)
	if err != nil {
		s.log.Error(msg+"; not indexed, and cannot be quarantined", "files", paths, "detail", detail, "err", err)
		return reason, false
	}
	s.log.Warn(msg+"; quarantined", "files", paths, "detail", detail, "path", dir)
	return reason, true
}

// recoverChunk resolves a replace that a crash interrupted, leaving backups
// (hard links to the replaced shard, named in vd). If the shard matches the
// metadata in size and checksum, the replace got through (or never started)
// and the backups go. Otherwise the crash fell between the two renames: the
// shard is new but the metadata old, so the backup that matches the
// metadata is renamed back. It returns "" if the chunk can be indexed, else
// why not and any backup to quarantine with it.
func (s *Store) recoverChunk(vd *Dir, name string, m Metadata, backups []string) (msg, detail string, keep []string) {
	defer func() {
		for _, b := range backups {
			if b != "" {
				s.removeLeftover(vd, b)
			}
		}
	}()
	if s.matches(vd, name, m) {
		return "", "", nil
	}
	for i, b := range backups {
		if !s.matches(vd, b, m) {
			continue
		}
		if err := s.fs.Rename(vd, b, vd, name); err != nil {
			backups[i] = "" // the good version: kept, in quarantine
			return "cannot restore shard after interrupted replace", err.Error(), []string{b}
		}
		backups[i] = ""
		if err := s.fs.SyncDir(vd); err != nil {
			s.log.Warn("cannot sync directory", "path", vd.Path(), "err", err)
		}
		s.log.Warn("interrupted replace rolled back: restored the previous shard", "path", vd.join(name))
		return "", "", nil
	}
	return "shard matches neither its metadata nor any backup", "", nil
}

// matches reports whether name in dir is a regular file with m's size and,
// when m records them, m's checksums (all of them: this decides which
// version a chunk is).
func (s *Store) matches(dir *Dir, name string, m Metadata) bool {
	f, fi, err := dir.openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if !fi.Mode().IsRegular() || fi.Size() != m.EncodedSize {
		return false
	}
	if m.ChecksumSHA256 == "" && m.ChecksumCRC32C == "" {
		return true
	}
	d := newDigest(m.ChecksumCRC32C != "", m.ChecksumSHA256 != "")
	if _, err := io.CopyBuffer(d, onlyReader{f}, make([]byte, hashBufferSize)); err != nil {
		return false
	}
	return d.mismatch(m) == nil
}

// removeLeftover removes a temporary or backup file found at Open.
func (s *Store) removeLeftover(dir *Dir, name string) {
	path := dir.join(name)
	if err := s.fs.Remove(dir, name); err != nil {
		s.log.Warn("cannot remove leftover temporary file", "path", path, "err", err)
		return
	}
	s.log.Info("removed leftover temporary file", "path", path)
}
