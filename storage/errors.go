package storage

import (
	"errors"
	"fmt"
)

// Errors returned by Store methods, wrapped with detail; test with errors.Is.
var (
	// ErrInvalid is returned when a caller-supplied video id, chunk index,
	// location or payload is malformed. Nothing on disk is touched.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound is returned when no committed chunk or video matches.
	ErrNotFound = errors.New("not found")
	// ErrNoSpace is returned when the filesystem is full (ENOSPC/EDQUOT).
	ErrNoSpace = errors.New("no space left on device")
	// ErrCorrupt is returned by OpenShard when a committed chunk's shard no
	// longer matches its metadata (its size or type changed, or it is gone);
	// the error is a *CorruptError naming the version.
	ErrCorrupt = errors.New("shard corrupt")
	// ErrLocked is returned by Open with Options.Lock when another process
	// holds the root's lock file.
	ErrLocked = errors.New("store is in use by another process")
	// ErrSymlink is returned when a path in the store is, or passes
	// through, a symlink. The store never follows one: whoever can write
	// the root could plant it to redirect the worker's reads and writes
	// outside the store. Open refuses a store whose fixed directories,
	// lock file or video directories are symlinks.
	ErrSymlink = errors.New("refusing to follow a symlink in the store")
)

// CorruptError reports a committed chunk whose shard does not match its
// metadata. It matches ErrCorrupt, and also ErrNotFound when the shard file
// is missing altogether. Pass Metadata to QuarantineVersion to move that
// version out of the store.
type CorruptError struct {
	// Metadata is the indexed version that was found corrupt.
	Metadata Metadata
	// Reason says what does not match.
	Reason string
	// Missing is set when the shard file does not exist.
	Missing bool
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s chunk %d: %v: %s", e.Metadata.VideoID, e.Metadata.ChunkIndex, ErrCorrupt, e.Reason)
}

// Is makes the error match ErrCorrupt, and ErrNotFound if Missing.
func (e *CorruptError) Is(target error) bool {
	return target == ErrCorrupt || e.Missing && target == ErrNotFound
}
