package grpcapi

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// The input hasher gives the SHA-256 of the whole input and of its first
// MiB however the input is split into writes.
func TestInputHasher(t *testing.T) {
	hexSum := func(b []byte) string {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	for _, size := range []int{0, 1, inputPrefixBytes - 1, inputPrefixBytes, inputPrefixBytes + 1, 3*inputPrefixBytes + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*13 + i>>9)
		}
		for _, piece := range []int{1 << 20, 1000, 64 << 10, inputPrefixBytes + 5, size + 1} {
			h := newInputHasher()
			for off := 0; off < len(data); off += piece {
				h.write(data[off:min(off+piece, len(data))])
			}
			got := h.sums()
			want := inputSums{size: int64(size), sum: hexSum(data), prefix: hexSum(data[:min(size, inputPrefixBytes)])}
			if got != want {
				t.Errorf("size %d in writes of %d: %+v, want %+v", size, piece, got, want)
			}
		}
	}
}
