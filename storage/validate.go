package storage

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/videoshard/videoshard/internal/chunkid"
)

// MaxVideoIDLen is the longest video id accepted, in bytes (see
// chunkid.MaxVideoIDLen for why).
const MaxVideoIDLen = chunkid.MaxVideoIDLen

// Names inside the root that are not video directories. None can be a
// video id: "metadata" is reserved and ids cannot start with '.'.
const (
	metadataDirName   = chunkid.Reserved
	tempDirName       = ".tmp"
	quarantineDirName = ".quarantine"
	lockFileName      = ".lock"
	indexDirName      = ".index"
)

// ValidateVideoID reports whether id can name a video (chunkid's rules),
// so that it is safe to use as one path element. The error wraps
// ErrInvalid and says what was wrong.
func ValidateVideoID(id string) error {
	if err := chunkid.ValidateVideoID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ValidateChunkIndex reports whether i is a chunk index: 0 to math.MaxInt32,
// the range of the wire's int32. The error wraps ErrInvalid.
func ValidateChunkIndex(i int64) error {
	if err := chunkid.ValidateChunkIndex(i); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
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
