package storage

import (
	"errors"
	"fmt"
	"strconv"
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
	// ErrCorrupt is returned when a committed chunk's shard no longer
	// matches its metadata: by OpenShard when its size or type changed or
	// it is gone, and by a VerifiedReader (and Verify) when its bytes do not
	// add up to the recorded size and checksum. The error is a
	// *CorruptError naming the version and what was wrong.
	ErrCorrupt = errors.New("shard corrupt")
	// ErrLocked is returned by Open with Options.Lock when another process
	// holds the root's lock file.
	ErrLocked = errors.New("store is in use by another process")
	// ErrBusy is returned by Delete and DeleteVideo for a chunk that is
	// being written (a Pending from Create has not committed or aborted):
	// nothing was removed; retry once the write is over.
	ErrBusy = errors.New("chunk is being written")
	// ErrSymlink is returned when a path in the store is, or passes
	// through, a symlink. The store never follows one: whoever can write
	// the root could plant it to redirect the worker's reads and writes
	// outside the store. Open refuses a store whose fixed directories,
	// lock file or video directories are symlinks.
	ErrSymlink = errors.New("refusing to follow a symlink in the store")
)

// CorruptError reports a committed chunk whose shard does not match its
// metadata. It matches ErrCorrupt, and also ErrNotFound when the shard file
// is missing altogether. From OpenShard, pass Metadata to
// QuarantineVersion to move that version out of the store; a
// VerifiedReader has done that already.
type CorruptError struct {
	// Metadata is the indexed version that was found corrupt.
	Metadata Metadata
	// Kind is what does not match.
	Kind CorruptKind
	// Checksum names the checksum that differs ("sha256" or "crc32c") for
	// CorruptChecksum; empty otherwise.
	Checksum string
	// Want and Got are what the metadata records and what the shard holds:
	// byte counts for CorruptSize, hex digests for CorruptChecksum; empty
	// for the other kinds.
	Want, Got string
	// Reason says what does not match, in words.
	Reason string
	// Missing is set when the shard file does not exist.
	Missing bool

	// quarantine is what a VerifiedReader did about it.
	quarantine quarantineOutcome
}

// CorruptKind is what a CorruptError found wrong with a shard.
type CorruptKind int

const (
	// CorruptFile: the shard is missing, not a regular file, or reached
	// through a symlink; or its metadata file is gone (Scrub).
	CorruptFile CorruptKind = iota + 1
	// CorruptSize: the shard holds more or fewer bytes than recorded.
	CorruptSize
	// CorruptChecksum: the shard's bytes do not have the recorded checksum.
	CorruptChecksum
	// CorruptRead: reading the shard failed (an I/O error).
	CorruptRead
)

func (k CorruptKind) String() string {
	switch k {
	case CorruptFile:
		return "file"
	case CorruptSize:
		return "size"
	case CorruptChecksum:
		return "checksum"
	case CorruptRead:
		return "read"
	}
	return "CorruptKind(" + strconv.Itoa(int(k)) + ")"
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s chunk %d: %v: %s", e.Metadata.VideoID, e.Metadata.ChunkIndex, ErrCorrupt, e.Reason)
}

// Is makes the error match ErrCorrupt, and ErrNotFound if Missing.
func (e *CorruptError) Is(target error) bool {
	return target == ErrCorrupt || e.Missing && target == ErrNotFound
}
