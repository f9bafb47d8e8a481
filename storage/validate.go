package storage

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxVideoIDLen is the longest video id accepted, in bytes. The seed's
// layout puts the id into file names, and most Linux filesystems (ext4, xfs,
// btrfs) cap a name at 255 bytes: the metadata file adds 31 bytes
// ("_chunk_2147483647_metadata.json") and its temporary name a further 22
// ("." and ".tmp-" plus 16 random characters). 200 leaves that room, so every
// id ValidateVideoID accepts can actually be stored.
const MaxVideoIDLen = 200

// Names inside the root that are not video directories. None can be a
// video id: "metadata" is reserved and ids cannot start with '.'.
const (
	metadataDirName   = "metadata"
	tempDirName       = ".tmp"
	quarantineDirName = ".quarantine"
	lockFileName      = ".lock"
)

// ValidateVideoID reports whether id can name a video: 1 to MaxVideoIDLen
// bytes of A-Z a-z 0-9 '.' '_' '-', not starting with '.', and not the
// reserved name "metadata". Such an id is safe to use as one path element.
// The error wraps ErrInvalid and says what was wrong.
func ValidateVideoID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: video id is empty", ErrInvalid)
	case len(id) > MaxVideoIDLen:
		return fmt.Errorf("%w: video id is %d bytes, longer than %d", ErrInvalid, len(id), MaxVideoIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isIDByte(c) {
			return fmt.Errorf("%w: video id %q has %q at byte %d; only A-Z a-z 0-9 . _ - are allowed",
				ErrInvalid, id, c, i)
		}
	}
	switch {
	case id[0] == '.':
		return fmt.Errorf("%w: video id %q starts with '.'", ErrInvalid, id)
	case id == metadataDirName:
		return fmt.Errorf("%w: video id %q is reserved", ErrInvalid, id)
	}
	return nil
}

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// ValidateChunkIndex reports whether i is a chunk index: 0 to math.MaxInt32,
// the range of the wire's int32. The error wraps ErrInvalid.
func ValidateChunkIndex(i int64) error {
	if i < 0 || i > math.MaxInt32 {
		return fmt.Errorf("%w: chunk index %d is outside 0..%d", ErrInvalid, i, math.MaxInt32)
	}
	return nil
}

func validateKey(videoID string, chunkIndex int) error {
	if err := ValidateVideoID(videoID); err != nil {
		return err
	}
	return ValidateChunkIndex(int64(chunkIndex))
}

// shardName is the file name of chunk n inside its video directory.
func shardName(n int) string { return "chunk_" + strconv.Itoa(n) + ".shard" }

// metadataName is the file name of a chunk's metadata inside metadata/.
// It is ambiguous (video "a_chunk_1" chunk 2 vs a video "a" with a strange
// index), so identity is never parsed out of it: see Store.load.
func metadataName(videoID string, n int) string {
	return videoID + "_chunk_" + strconv.Itoa(n) + "_metadata.json"
}

// parseShardName parses "chunk_<n>.shard" with n in canonical decimal
// (no sign, no leading zeros) and within 0..MaxInt32.
func parseShardName(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "chunk_")
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, ".shard"); !ok {
		return 0, false
	}
	return parseIndex(s)
}

// parseBackupName parses ".chunk_<n>.shard.bak-<random>".
func parseBackupName(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, ".")
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, backupInfix)
	if !ok {
		return 0, false
	}
	return parseShardName(s)
}

func parseIndex(s string) (int, bool) {
	if s == "" || len(s) > 10 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// Infixes of the hidden scratch names the write path uses beside a final
// file: ".<final>.tmp-<random>" for a new version being written and
// ".<final>.bak-<random>" for a hard link to the version being replaced.
const (
	tempInfix   = ".tmp-"
	backupInfix = ".bak-"
)

func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

func isBackupName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, backupInfix)
}
