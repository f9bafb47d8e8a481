// Package chunkid holds the rules for what names a chunk on the wire and in
// a worker's store: a video id and a chunk index. The worker's store and the
// master both check them here, so an id one accepts the other accepts too.
package chunkid

import (
	"fmt"
	"math"
)

// MaxVideoIDLen is the longest video id accepted, in bytes. The seed's
// layout puts the id into file names, and most Linux filesystems (ext4, xfs,
// btrfs) cap a name at 255 bytes: the metadata file adds 31 bytes
// ("_chunk_2147483647_metadata.json") and its temporary name a further 22
// ("." and ".tmp-" plus 16 random characters). 200 leaves that room, so every
// id ValidateVideoID accepts can actually be stored.
const MaxVideoIDLen = 200

// Reserved is the one id that is otherwise valid but names the store's
// metadata directory.
const Reserved = "metadata"

// ValidateVideoID reports whether id can name a video: 1 to MaxVideoIDLen
// bytes of A-Z a-z 0-9 '.' '_' '-', not starting with '.', and not
// Reserved. Such an id is safe to use as one path element. The error says
// what was wrong.
func ValidateVideoID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("video id is empty")
	case len(id) > MaxVideoIDLen:
		return fmt.Errorf("video id is %d bytes, longer than %d", len(id), MaxVideoIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !IsIDByte(c) {
			return fmt.Errorf("video id %q has %q at byte %d; only A-Z a-z 0-9 . _ - are allowed", id, c, i)
		}
	}
	switch {
	case id[0] == '.':
		return fmt.Errorf("video id %q starts with '.'", id)
	case id == Reserved:
		return fmt.Errorf("video id %q is reserved", id)
	}
	return nil
}

// IsIDByte reports whether c may appear in a video id.
func IsIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// ValidateChunkIndex reports whether i is a chunk index: 0 to math.MaxInt32,
// the range of the wire's int32.
func ValidateChunkIndex(i int64) error {
	if i < 0 || i > math.MaxInt32 {
		return fmt.Errorf("chunk index %d is outside 0..%d", i, math.MaxInt32)
	}
	return nil
}
