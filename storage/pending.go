package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// timestampLayout is ISO-8601 in UTC with microseconds, as the seed wrote
// (plus the zone designator).
const timestampLayout = "2006-01-02T15:04:05.000000Z"

// Create starts writing a new version of a chunk. The bytes go to a fresh
// temporary file in TempDir (".chunk_<n>.shard.tmp-…"), never indexed; the
// video's directory is made only at Commit, so a chunk that is never
// committed leaves no trace in the store; the caller writes through Write, or has another process
// write the file at Path, then calls Commit to publish it or Abort to discard
// it. Until Commit returns, readers see the previous version, if any.
//
// Create returns an error wrapping ErrInvalid for a bad id or index, and one
// wrapping ErrNoSpace if the filesystem is full or the store is at a disk
// limit it does not evict for (Limits): then no encode need start.
func (s *Store) Create(videoID string, chunkIndex int) (*Pending, error) {
	if err := validateKey(videoID, chunkIndex); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if err := s.checkRoom(); err != nil {
		return nil, fmt.Errorf("create %s chunk %d: %w", videoID, chunkIndex, err)
	}
	f, err := s.fs.CreateTemp(s.tmpDir, "."+shardName(chunkIndex)+tempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("create %s chunk %d: %w", videoID, chunkIndex, noSpace(err))
	}
	s.writing.add(chunkKey{videoID, chunkIndex}, 1)
	return &Pending{
		s:       s,
		videoID: videoID,
		chunk:   chunkIndex,
		f:       f,
		path:    f.Name(),
		name:    filepath.Base(f.Name()),
		d:       newDigest(true, true),
	}, nil
}

// ensureVideoDir opens a video's directory, creating it if needed and
// making its entry in the root durable. A symlink in its place is refused
// (ErrSymlink): it would send the shard outside the store.
func (s *Store) ensureVideoDir(video string) (*Dir, error) {
	d, err := s.rootDir.openDir(video)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.fs.Mkdir(s.rootDir, video, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := s.fs.SyncDir(s.rootDir); err != nil {
			return nil, err
		}
		d, err = s.rootDir.openDir(video)
	}
	return d, err
}

// checkInPlace verifies that the directories a commit renamed into (dirs,
// named by their names in the root) are still there: one moved away (and
// perhaps replaced by a symlink) meanwhile took the files with it, away
// from the paths the metadata names.
func (s *Store) checkInPlace(dirs ...storeFile) error {
	for _, d := range dirs {
		cur, err := s.rootDir.lstat(d.name)
		if err != nil {
			return fmt.Errorf("%s was moved during the commit: %w", d.dir.Path(), err)
		}
		fi, err := d.dir.stat()
		if err != nil {
			return err
		}
		if !sameFile(cur, fi) {
			return fmt.Errorf("%s was replaced during the commit (by a %s)", d.dir.Path(), fileKind(cur.Mode()))
		}
	}
	return nil
}

// fileKind names a file type for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}

// Pending is a chunk version being written, created by Store.Create. It
// ends with exactly one Commit or Abort; Abort after either is a no-op, so
//
//	p, err := store.Create(id, n)
//	if err != nil { ... }
//	defer p.Abort()
//	... p.Write(...) or an external writer on p.Path() ...
//	meta, err := p.Commit(storage.Metadata{OriginalSize: ..., WorkerID: ...})
//
// is the usual shape. A Pending is not safe for concurrent use.
type Pending struct {
	s       *Store
	videoID string
	chunk   int
	f       File   // nil once closed
	path    string // the temporary shard
	name    string // its name in TempDir
	metaTmp string // the temporary metadata file's name in metadata/, once written

	d       *digest // CRC-32C and SHA-256 of the bytes passed to Write
	n       int64   // bytes passed to Write
	flushed int64   // bytes handed to startWriteback
	wrote   bool    // Write was called with data
	werr    error   // the first Write error; Commit fails with it
	done    bool    // Commit or Abort was called
	// timestamp is the one CommitCopy keeps; "" is the commit's time.
	timestamp string
}

// Path returns a path of the temporary file for a writer in another
// process (such as ffmpeg) to open and write: on Linux one that names the
// open file itself (/proc/<pid>/fd/<n>), so a TempDir swapped for a
// symlink meanwhile cannot send the writer out of the store. Use either
// Path or Write, not both. The name does not end in ".shard", so a writer
// that picks its output format by extension must be told the format.
func (p *Pending) Path() string {
	if p.f == nil {
		return p.path
	}
	return childPath(p.f)
}

// Write appends b to the temporary file and hashes it (SHA-256 and
// CRC-32C, in one pass). After a failed write
// the Pending is broken: Commit returns the error (wrapping ErrNoSpace if the
// filesystem is full).
func (p *Pending) Write(b []byte) (int, error) {
	if p.done {
		return 0, fmt.Errorf("write %s: %w", p, os.ErrClosed)
	}
	if p.werr != nil {
		return 0, fmt.Errorf("write %s: earlier write failed: %w", p, p.werr)
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.wrote = true
	var n int
	var err error
	if len(b) >= overlapHashBytes {
		// Hash on another core while the kernel copies b.
		hashed := make(chan struct{})
		go func() {
			p.d.Write(b)
			close(hashed)
		}()
		n, err = p.f.Write(b)
		<-hashed
	} else {
		n, err = p.f.Write(b)
		p.d.Write(b[:n])
	}
	p.n += int64(n)
	if err != nil {
		// After a short write the hash covers bytes not on disk; the
		// Pending is broken from here on, so it never reaches a commit.
		p.werr = noSpace(err)
		return n, fmt.Errorf("write %s: %w", p, p.werr)
	}
	if p.n-p.flushed >= writebackBytes {
		startWriteback(p.f, p.flushed, p.n-p.flushed)
		p.flushed = p.n
	}
	return n, nil
}

const (
	// overlapHashBytes is the write size from which hashing runs beside
	// the write instead of after it.
	overlapHashBytes = 256 << 10
	// writebackBytes is how much is written between writeback hints.
	writebackBytes = 8 << 20
)

// String names the chunk, for errors.
func (p *Pending) String() string { return p.videoID + " chunk " + strconv.Itoa(p.chunk) }

// Commit makes the written bytes the chunk's committed version and returns
// its metadata. From meta it keeps what only the caller knows (OriginalSize,
// WorkerID, Encoder and the other encode fields) and fills in VideoID,
// ChunkIndex, EncodedSize, ChecksumSHA256, ChecksumCRC32C, ShardLocation,
// Timestamp and CompressionRatio (encoded/original, 0 when OriginalSize is
// 0).
//
// The steps: fsync the temporary shard, and meanwhile measure and hash it
// (from the running hashes if the bytes came through Write, else by reading
// the file once for both) and write the metadata JSON to a temporary file
// and fsync it; then, under the
// chunk's lock, rename the shard into place and fsync the video directory,
// rename the metadata into place and fsync metadata/, and update the index.
// Before each rename over an existing file Commit keeps a hard link to it
// (".<name>.bak-…") so that a failure of any later step can put the previous
// version back.
//
// On error nothing of the new version remains: temporary files are removed,
// the previous committed version (if any) is still on disk byte for byte and
// still indexed, and the error wraps ErrNoSpace if the filesystem was full.
// (Should even the rollback fail, the chunk is dropped from the index rather
// than served inconsistently, and the failure is logged.)
//
// A crash cannot be rolled back in-process. The remaining window is between
// the two renames when replacing an existing chunk: the disk then holds the
// new shard beside the old metadata (and the .bak- link to the old shard).
// Open detects this (the shard no longer matches the recorded size and
// checksum) and restores the old shard from the link; without a usable link
// the chunk is not indexed and Open logs why. A crash before the first rename
// leaves only temporary files, which Open removes; a crash after the second
// leaves the new version, complete.
//
// Commit after Commit or Abort returns an error wrapping os.ErrClosed.
func (p *Pending) Commit(meta Metadata) (Metadata, error) {
	if p.done {
		return Metadata{}, fmt.Errorf("commit %s: %w", p, os.ErrClosed)
	}
	p.done = true
	defer p.s.writing.add(chunkKey{p.videoID, p.chunk}, -1)
	m, err := p.commit(meta)
	if err != nil {
		p.discard()
		return Metadata{}, fmt.Errorf("commit %s: %w", p, noSpace(err))
	}
	return m, nil
}

// Abort discards the temporary file. It is a no-op after Commit or a
// previous Abort.
func (p *Pending) Abort() error {
	if p.done {
		return nil
	}
	p.done = true
	defer p.s.writing.add(chunkKey{p.videoID, p.chunk}, -1)
	if err := p.discard(); err != nil {
		return fmt.Errorf("abort %s: %w", p, err)
	}
	return nil
}

// discard closes and removes the temporary files.
func (p *Pending) discard() error {
	if p.f != nil {
		p.f.Close() // its error does not matter: the file is being thrown away
		p.f = nil
	}
	var errs []error
	for _, f := range []storeFile{{p.s.tmpDir, p.name}, {p.s.metaDir, p.metaTmp}} {
		if f.name == "" {
			continue
		}
		if err := p.s.fs.Remove(f.dir, f.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Pending) commit(meta Metadata) (Metadata, error) {
	s := p.s
	if p.werr != nil {
		return Metadata{}, fmt.Errorf("earlier write failed: %w", p.werr)
	}
	if meta.OriginalSize < 0 {
		return Metadata{}, fmt.Errorf("%w: original size %d is negative", ErrInvalid, meta.OriginalSize)
	}

	// The temporary shard is private to p: make it durable, measure and
	// hash it, and write the metadata, all before taking the chunk's lock.
	// The shard's fsync runs beside the rest: the two files are
	// independent until they are renamed, and two fsyncs waited for at
	// once cost about one.
	synced := make(chan error, 1)
	go func() { synced <- p.f.Sync() }()
	meta, err := p.writeMetadata(meta)
	if serr := <-synced; serr != nil {
		return Metadata{}, fmt.Errorf("sync shard: %w", serr)
	}
	if err != nil {
		return Metadata{}, err
	}
	err = p.f.Close()
	p.f = nil
	if err != nil {
		return Metadata{}, fmt.Errorf("close shard: %w", err)
	}
	metaName := metadataName(p.videoID, p.chunk)

	// Room for the shard, under the disk limits, before the commit point.
	room, err := s.reserve(chunkKey{p.videoID, p.chunk}, meta.EncodedSize)
	if err != nil {
		return Metadata{}, err
	}
	defer room.release() // a failed commit's; a commit's moves to Usage at put

	unlock := s.locks.lock(chunkKey{p.videoID, p.chunk})
	defer unlock()

	vd, err := s.ensureVideoDir(p.videoID)
	if err != nil {
		return Metadata{}, fmt.Errorf("create video directory: %w", err)
	}
	defer closeDir(vd)
	shard, err := s.install(s.tmpDir, p.name, vd, shardName(p.chunk))
	if err != nil {
		return Metadata{}, p.rolledBack(fmt.Errorf("install shard: %w", err))
	}
	// Before the commit point (the metadata's rename): the shard must be
	// where its location says.
	if err := s.checkInPlace(storeFile{vd, p.videoID}, storeFile{s.metaDir, metadataDirName}); err != nil {
		return Metadata{}, p.rolledBack(errors.Join(err, shard.undo()))
	}
	md, err := s.install(s.metaDir, p.metaTmp, s.metaDir, metaName)
	if err != nil {
		return Metadata{}, p.rolledBack(errors.Join(fmt.Errorf("install metadata: %w", err), shard.undo()))
	}
	s.put(meta, room)
	shard.finish()
	md.finish()
	return cloneMetadata(meta), nil
}

// writeMetadata completes meta with what the store records (see Commit)
// and writes it to a new temporary file in metadata/, fsynced, whose name
// it keeps in p.metaTmp; it returns the completed metadata.
func (p *Pending) writeMetadata(meta Metadata) (Metadata, error) {
	s := p.s
	size, sums, err := p.digest()
	if err != nil {
		return Metadata{}, err
	}
	meta = cloneMetadata(meta)
	meta.VideoID = p.videoID
	meta.ChunkIndex = p.chunk
	meta.EncodedSize = size
	meta.ChecksumSHA256 = sums.sha256()
	meta.ChecksumCRC32C = sums.crc32c()
	meta.ShardLocation = s.shardPath(p.videoID, p.chunk)
	meta.Timestamp = p.timestamp
	if meta.Timestamp == "" {
		meta.Timestamp = s.now().UTC().Format(timestampLayout)
	}
	meta.CompressionRatio = 0
	if meta.OriginalSize > 0 {
		meta.CompressionRatio = float64(size) / float64(meta.OriginalSize)
	}
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return Metadata{}, fmt.Errorf("%w: encode metadata: %v", ErrInvalid, err)
	}
	data = append(data, '\n')
	if len(data) > maxMetadataBytes {
		// Open reads no more than this: the chunk would be lost at the next start.
		return Metadata{}, fmt.Errorf("%w: metadata of %d bytes, at most %d", ErrInvalid, len(data), maxMetadataBytes)
	}
	metaName := metadataName(p.videoID, p.chunk)
	if p.metaTmp, err = s.writeTemp(s.metaDir, "."+metaName+tempInfix+"*", data); err != nil {
		return Metadata{}, fmt.Errorf("write metadata: %w", err)
	}
	return meta, nil
}

// rolledBack inspects a failed install: if the rollback failed too, the
// chunk's disk state is unknown, so it leaves the index and the failure is
// logged.
func (p *Pending) rolledBack(err error) error {
	var u *undoError
	if errors.As(err, &u) {
		p.s.dirty.Store(true)
		p.s.drop(chunkKey{p.videoID, p.chunk})
		p.s.log.Error("rollback failed; chunk no longer served until the store is reopened",
			"video_id", p.videoID, "chunk_index", p.chunk, "err", err)
	}
	return err
}

// digest returns the size of the temporary shard, which must still be the
// file p created, and its checksums.
func (p *Pending) digest() (int64, *digest, error) {
	fi, err := p.f.Stat()
	if err != nil {
		return 0, nil, fmt.Errorf("stat shard: %w", err)
	}
	li, err := p.s.fs.Lstat(p.s.tmpDir, p.name)
	if err != nil || !sameFile(fi, li) {
		return 0, nil, fmt.Errorf("temporary shard %s was removed or replaced", p.path)
	}
	if p.wrote {
		if fi.Size() != p.n {
			return 0, nil, fmt.Errorf("temporary shard is %d bytes but %d were written; was it also written through Path?",
				fi.Size(), p.n)
		}
		return p.n, p.d, nil
	}
	// Another process wrote the file. Nothing moved p.f's offset from 0.
	d := newDigest(true, true)
	n, err := io.CopyBuffer(d, onlyReader{p.f}, make([]byte, hashBufferSize))
	if err != nil {
		return 0, nil, fmt.Errorf("hash shard: %w", err)
	}
	if n != fi.Size() {
		return 0, nil, fmt.Errorf("temporary shard changed while being hashed (%d bytes, then %d)", fi.Size(), n)
	}
	return n, d, nil
}

// hashBufferSize is the read size when hashing a file: large reads cost
// fewer system calls than io.Copy's 32 KiB.
const hashBufferSize = 256 << 10

// onlyReader hides a reader's WriteTo, which would make io.CopyBuffer
// ignore its buffer.
type onlyReader struct{ io.Reader }

// writeTemp writes data to a new temporary file in dir, fsyncs and closes
// it, and returns its name. On error it leaves nothing behind.
func (s *Store) writeTemp(dir *Dir, pattern string, data []byte) (string, error) {
	f, err := s.fs.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := filepath.Base(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.fs.Remove(dir, name)
		return "", err
	}
	return name, nil
}

// installed is a file renamed into place, with what it takes to put the
// previous version back.
type installed struct {
	s      *Store
	dir    *Dir
	final  string // the file's name in dir
	backup string // name of a hard link to the previous version; "" if none was kept
	hadOld bool   // final existed before
}

// undoError marks a failed rollback.
type undoError struct{ err error }

func (e *undoError) Error() string { return "rollback: " + e.err.Error() }
func (e *undoError) Unwrap() error { return e.err }

// install renames tmp in from over final in dir and fsyncs dir, first
// linking any existing final to a backup name. If the rename or the fsync
// fails, the previous state is restored before returning the error.
func (s *Store) install(from *Dir, tmp string, dir *Dir, final string) (*installed, error) {
	in := &installed{s: s, dir: dir, final: final}
	fi, err := s.fs.Lstat(dir, final)
	switch {
	case err == nil:
		in.hadOld = true
		if fi.Mode().IsRegular() {
			if in.backup, err = s.link(dir, final, "."+final+backupInfix); err != nil {
				s.log.Warn("cannot keep the previous version while replacing it; a failed replace will lose it",
					"path", dir.join(final), "err", err)
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := s.fs.Rename(from, tmp, dir, final); err != nil {
		in.finish()
		return nil, err
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return nil, errors.Join(err, in.undo())
	}
	return in, nil
}

// link hard-links target in dir to a new name prefix+random in dir and
// returns that name.
func (s *Store) link(dir *Dir, target, prefix string) (string, error) {
	for range 100 {
		name := prefix + randomString()
		err := s.fs.Link(dir, target, dir, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, nil
	}
	return "", &fs.PathError{Op: "link", Path: dir.join(prefix + "*"), Err: fs.ErrExist}
}

// undo restores the state before install: the previous version from its
// backup, or no file at all if there was none. The error, if any, is an
// *undoError.
func (in *installed) undo() error {
	var err error
	switch {
	case in.backup != "":
		err = in.s.fs.Rename(in.dir, in.backup, in.dir, in.final)
		if err == nil {
			in.backup = ""
		}
	case !in.hadOld:
		err = in.s.fs.Remove(in.dir, in.final)
	default:
		err = fmt.Errorf("previous version of %s was not kept", in.dir.join(in.final))
	}
	if err == nil {
		err = in.s.fs.SyncDir(in.dir)
	}
	if err != nil {
		return &undoError{err}
	}
	return nil
}

// finish drops the backup once it is no longer needed. Failing to remove it
// is harmless (Open removes it) and only logged.
func (in *installed) finish() {
	if in.backup == "" {
		return
	}
	if err := in.s.fs.Remove(in.dir, in.backup); err != nil && !errors.Is(err, fs.ErrNotExist) {
		in.s.log.Warn("cannot remove backup", "path", in.dir.join(in.backup), "err", err)
	}
	in.backup = ""
}
