package storage

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrMismatch is returned by CommitCopy when the written bytes are not the
// chunk its metadata describes (another size or SHA-256): nothing was
// installed.
var ErrMismatch = errors.New("copy does not match its metadata")

// CommitCopy is Commit for a copy of a chunk committed elsewhere (another
// worker's store), written through Write: it keeps meta as given (the
// encode's fields, the source's Timestamp, so a chunk's version reads the
// same on every worker; WorkerID and ReplicatedFrom as the caller sets
// them) except what the store records of its own copy (ShardLocation,
// the CRC-32C, recomputed). Before anything is installed it checks that
// the bytes are meta's: the same size as meta.EncodedSize and the same
// SHA-256 as meta.ChecksumSHA256, else the Pending is aborted and the
// error wraps ErrMismatch; meta must name p's chunk and carry a Timestamp
// the store can read, else ErrInvalid. Like Commit, it replaces a
// committed version atomically, and on error leaves the store as it was.
//
// The copy's recency (LeastRecentlyRead) starts at this commit, not at the
// source's Timestamp, so a copy of an old chunk is not the first evicted.
func (p *Pending) CommitCopy(meta Metadata) (Metadata, error) {
	if p.done {
		return Metadata{}, fmt.Errorf("commit %s: %w", p, os.ErrClosed)
	}
	if err := p.checkCopy(meta); err != nil {
		p.Abort()
		return Metadata{}, fmt.Errorf("commit copy of %s: %w", p, err)
	}
	p.timestamp = meta.Timestamp
	m, err := p.Commit(meta)
	if err != nil {
		return Metadata{}, err
	}
	p.s.index.touch(chunkKey{p.videoID, p.chunk}, p.s.now().UnixNano())
	return m, nil
}

// maxClockSkew is how far in the future a copy's timestamp may be: the
// clocks of two workers differ a little, not by days.
const maxClockSkew = 24 * time.Hour

// checkCopy refuses meta for p's bytes, as CommitCopy says.
func (p *Pending) checkCopy(meta Metadata) error {
	switch {
	case meta.VideoID != p.videoID || meta.ChunkIndex != p.chunk:
		return fmt.Errorf("%w: the metadata names %s chunk %d", ErrInvalid, meta.VideoID, meta.ChunkIndex)
	case processedAt(meta) == 0:
		return fmt.Errorf("%w: timestamp %q is not an ISO-8601 time between 1970 and 2262", ErrInvalid, meta.Timestamp)
	case processedAt(meta) > p.s.now().Add(maxClockSkew).UnixNano():
		return fmt.Errorf("%w: timestamp %q is in the future", ErrInvalid, meta.Timestamp)
	case meta.Width < 0 || meta.Height < 0 || meta.FrameCount < 0 || meta.DurationSeconds < 0 || meta.OriginalSize < 0:
		return fmt.Errorf("%w: negative width, height, frame count, duration or original size", ErrInvalid)
	case p.werr != nil:
		return fmt.Errorf("earlier write failed: %w", p.werr)
	}
	size, sums, err := p.digest()
	if err != nil {
		return err
	}
	if size != meta.EncodedSize {
		return fmt.Errorf("%w: %d bytes, the metadata says %d", ErrMismatch, size, meta.EncodedSize)
	}
	if got := sums.sha256(); got != strings.ToLower(meta.ChecksumSHA256) {
		return fmt.Errorf("%w: sha256 %s, the metadata says %s", ErrMismatch, got, meta.ChecksumSHA256)
	}
	return nil
}
