package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Video is one video's committed chunks.
type Video struct {
	ID     string
	Chunks []Metadata // sorted by ChunkIndex
}

// Lookup returns the committed metadata of a chunk from the index, without
// touching the disk. It returns an error wrapping ErrInvalid for a bad id or
// index and one wrapping ErrNotFound if the chunk is not committed.
func (s *Store) Lookup(videoID string, chunkIndex int) (Metadata, error) {
	if err := validateKey(videoID, chunkIndex); err != nil {
		return Metadata{}, fmt.Errorf("lookup: %w", err)
	}
	m, ok, err := s.get(chunkKey{videoID, chunkIndex})
	switch {
	case err != nil:
		return Metadata{}, fmt.Errorf("lookup %s chunk %d: %w", videoID, chunkIndex, err)
	case !ok:
		return Metadata{}, fmt.Errorf("lookup %s chunk %d: %w", videoID, chunkIndex, ErrNotFound)
	}
	return m, nil
}

// OpenShard opens a committed shard for reading and returns it with its
// metadata; the file is the version the metadata describes, even while the
// chunk is being replaced (a replace waits for the open, and an open file
// keeps its content after a rename over its name). The caller closes the
// file. It returns an error wrapping ErrInvalid for a bad id or index, one
// wrapping ErrNotFound if the chunk is not committed, and a *CorruptError
// (matching ErrCorrupt) if the shard no longer has the recorded size, is
// not a regular file, or has gone (then it matches ErrNotFound too).
//
// Nothing is verified beyond that, and nothing is quarantined: a reader
// that serves the bytes uses OpenVerified, which checks them as they are
// read and takes a corrupt version out of the store.
func (s *Store) OpenShard(videoID string, chunkIndex int) (*ShardFile, Metadata, error) {
	if err := validateKey(videoID, chunkIndex); err != nil {
		return nil, Metadata{}, fmt.Errorf("open shard: %w", err)
	}
	key := chunkKey{videoID, chunkIndex}
	f, m, err := s.openCommitted(key, nil)
	if err != nil {
		return nil, Metadata{}, fmt.Errorf("open shard: %w", err)
	}
	s.index.touch(key, s.now().UnixNano())
	return &ShardFile{File: f, release: sync.OnceFunc(func() { s.reading.add(key, -1) })}, m, nil
}

// ShardFile is a shard opened by OpenShard. While it is open the chunk is
// in use (InUse); Close ends that.
type ShardFile struct {
	*os.File
	release func()
}

// Close closes the file.
func (f *ShardFile) Close() error {
	f.release()
	return f.File.Close()
}

// openVersion opens the shard m describes, relative to the root and
// without following any symlink, and checks that it is a regular file of
// the recorded size. A mismatch is a *CorruptError; it names the shard's
// path in the store and never what a symlink there leads to.
func (s *Store) openVersion(m Metadata) (*os.File, error) {
	f, fi, err := s.rootDir.openFile(m.VideoID+"/"+shardName(m.ChunkIndex), os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &CorruptError{Metadata: m, Kind: CorruptFile, Reason: "shard file is missing", Missing: true}
	case isSymlinkErr(err):
		return nil, &CorruptError{Metadata: m, Kind: CorruptFile, Reason: "shard or its video directory is a symlink, which is not followed"}
	case isNotDir(err):
		return nil, &CorruptError{Metadata: m, Kind: CorruptFile, Reason: "video directory is not a directory"}
	case err != nil:
		return nil, err
	}
	var ce *CorruptError
	switch {
	case !fi.Mode().IsRegular():
		ce = &CorruptError{Metadata: m, Kind: CorruptFile, Reason: fmt.Sprintf("shard is not a regular file (mode %v)", fi.Mode())}
	case fi.Size() != m.EncodedSize:
		ce = sizeMismatch(m, fi.Size())
	default:
		return f, nil
	}
	f.Close()
	return nil, ce
}

// ResolveLocation maps a shard location to the chunk it names, without
// opening anything. It accepts the absolute ShardLocation that Commit and
// List return (also through a symlinked path to the root) and the relative
// form "<video_id>/chunk_<n>.shard". After cleaning and resolving symlinks,
// the location must lie inside the root and be exactly
// <valid video id>/chunk_<n>.shard with n in canonical decimal; anything
// else (empty, NUL bytes, outside the root, metadata or temporary files, a
// symlink pointing elsewhere) is refused with an error wrapping ErrInvalid.
// A well-formed location of a chunk that is not committed returns an error
// wrapping ErrNotFound.
func (s *Store) ResolveLocation(location string) (videoID string, chunkIndex int, err error) {
	switch {
	case location == "":
		return "", 0, fmt.Errorf("resolve location: %w: empty location", ErrInvalid)
	case strings.IndexByte(location, 0) >= 0:
		return "", 0, fmt.Errorf("resolve location %q: %w: contains a NUL byte", location, ErrInvalid)
	}
	p := filepath.Clean(location)
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.root, p)
	}
	resolved, err := resolveSymlinks(p)
	if err != nil {
		return "", 0, fmt.Errorf("resolve location %q: %w: %v", location, ErrInvalid, err)
	}
	rel, err := filepath.Rel(s.root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", 0, fmt.Errorf("resolve location %q: %w: outside the store", location, ErrInvalid)
	}
	video, file, ok := strings.Cut(rel, string(filepath.Separator))
	if !ok || strings.ContainsRune(file, filepath.Separator) {
		return "", 0, fmt.Errorf("resolve location %q: %w: not <video_id>/chunk_<n>.shard", location, ErrInvalid)
	}
	if err := ValidateVideoID(video); err != nil {
		return "", 0, fmt.Errorf("resolve location %q: %w", location, err)
	}
	n, ok := parseShardName(file)
	if !ok {
		return "", 0, fmt.Errorf("resolve location %q: %w: not <video_id>/chunk_<n>.shard", location, ErrInvalid)
	}
	if _, ok, err := s.get(chunkKey{video, n}); err != nil || !ok {
		return "", 0, fmt.Errorf("resolve location %q: %w", location, cmp.Or(err, ErrNotFound))
	}
	return video, n, nil
}

// resolveSymlinks resolves the symlinks in the clean absolute path p. The
// longest existing prefix is resolved and the missing rest joined to it, so
// a location that does not exist yet still resolves through a symlinked
// root. A dangling symlink is an error.
func resolveSymlinks(p string) (string, error) {
	rest := ""
	for {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(resolved, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(p); lerr == nil {
			return "", fmt.Errorf("%s is a dangling symlink", p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest), nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// List returns committed chunks from the index, without touching the disk:
// every video for videoID "", else only that one. Videos are sorted by ID
// and chunks by index. A named video with no committed chunk returns an
// error wrapping ErrNotFound; an invalid one, ErrInvalid.
func (s *Store) List(videoID string) ([]Video, error) {
	if videoID != "" {
		chunks, err := s.VideoMetadata(videoID)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		return []Video{{ID: videoID, Chunks: chunks}}, nil
	}
	p, err := s.ListPage(PageOptions{})
	return p.Videos, err
}

// ChunkRef names a chunk: a position in the listing.
type ChunkRef struct {
	VideoID    string
	ChunkIndex int
}

// PageOptions select a page of the listing for ListPage.
type PageOptions struct {
	// VideoID is the one video to list; "" lists every video.
	VideoID string
	// After starts the page after this chunk, in the listing's order
	// (videos by ID, then chunks by index); nil starts at the first. It
	// need not be committed (any more): a page starts where it would be.
	After *ChunkRef
	// Limit bounds the chunks on the page; 0 means no bound.
	Limit int
	// Brief leaves out of each chunk's Metadata all but what a listing
	// shows: VideoID, ChunkIndex, ShardLocation, EncodedSize and
	// ChecksumSHA256. Such a page costs a fraction of a full one to make.
	Brief bool
	// Filter lists only the chunks it matches; the zero Filter matches all.
	// More and After work as without one.
	Filter Filter

	// uncached makes the SQLite index query the database for a page it
	// would serve from its cache of brief listings.
	uncached bool
}

// Filter selects chunks by their metadata. A chunk matches when it matches
// every field set; the zero Filter matches every chunk.
type Filter struct {
	// VideoCodec and Encoder match Metadata.VideoCodec and Encoder exactly.
	VideoCodec, Encoder string
	// ProcessedAfter and ProcessedBefore bound the commit time (ProcessedAt),
	// both exclusive; the zero time is no bound.
	ProcessedAfter, ProcessedBefore time.Time
}

// IsZero reports whether f matches every chunk.
func (f Filter) IsZero() bool { return f == Filter{} }

func (f Filter) match(m *Metadata) bool {
	if f.VideoCodec != "" && m.VideoCodec != f.VideoCodec || f.Encoder != "" && m.Encoder != f.Encoder {
		return false
	}
	if f.ProcessedAfter.IsZero() && f.ProcessedBefore.IsZero() {
		return true
	}
	at := processedAt(*m)
	return (f.ProcessedAfter.IsZero() || at > f.ProcessedAfter.UnixNano()) &&
		(f.ProcessedBefore.IsZero() || at < f.ProcessedBefore.UnixNano())
}

// Page is a part of the listing.
type Page struct {
	// Videos holds the page's chunks, sorted as List sorts them; a video
	// cut by the limit continues on the next page.
	Videos []Video
	// More says chunks follow the page's last one (as After for the next
	// page); it is false on the last page.
	More bool
}

// Last returns the page's last chunk, to pass as PageOptions.After for the
// next page; false for an empty page.
func (p Page) Last() (ChunkRef, bool) {
	if len(p.Videos) == 0 {
		return ChunkRef{}, false
	}
	v := p.Videos[len(p.Videos)-1]
	return ChunkRef{v.ID, v.Chunks[len(v.Chunks)-1].ChunkIndex}, true
}

// ListPage returns a page of the committed chunks from the index, without
// touching the disk: at most opts.Limit chunks of opts.VideoID (or of
// every video) that sort after opts.After. Paging with After set to the
// previous page's Last is stable while chunks are committed and removed
// between pages: no chunk that stays committed throughout is listed twice
// or skipped, and chunks committed meanwhile are listed if they sort after
// the position reached. Finding the start is a binary search, so a page
// costs what it holds, wherever it is in the listing. A video with no
// committed chunk is an empty page, not an error. An invalid video id,
// After or a negative Limit is an error wrapping ErrInvalid.
func (s *Store) ListPage(opts PageOptions) (Page, error) {
	if opts.VideoID != "" {
		if err := ValidateVideoID(opts.VideoID); err != nil {
			return Page{}, fmt.Errorf("list: %w", err)
		}
	}
	if opts.After != nil {
		if err := validateKey(opts.After.VideoID, opts.After.ChunkIndex); err != nil {
			return Page{}, fmt.Errorf("list after: %w", err)
		}
	}
	if opts.Limit < 0 {
		return Page{}, fmt.Errorf("list: %w: limit %d is negative", ErrInvalid, opts.Limit)
	}
	videos, more, err := s.index.page(opts)
	if err != nil {
		return Page{}, fmt.Errorf("list: %w", s.indexFailed(err))
	}
	return Page{Videos: videos, More: more}, nil
}

// VideoMetadata returns the metadata of a video's committed chunks, sorted
// by index, from the index. Only chunks whose metadata names exactly this
// video are included. A video with no committed chunk returns an error
// wrapping ErrNotFound; an invalid id, ErrInvalid.
func (s *Store) VideoMetadata(videoID string) ([]Metadata, error) {
	if err := ValidateVideoID(videoID); err != nil {
		return nil, fmt.Errorf("video metadata: %w", err)
	}
	chunks, err := s.index.video(videoID)
	if err != nil {
		return nil, fmt.Errorf("video metadata %s: %w", videoID, s.indexFailed(err))
	}
	if len(chunks) == 0 {
		return nil, fmt.Errorf("video metadata %s: %w", videoID, ErrNotFound)
	}
	return chunks, nil
}
