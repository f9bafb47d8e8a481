package storage

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// Combining the CRC-32Cs of two pieces gives that of the whole, for every
// split, empty pieces included.
func TestCRC32CCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 1<<20+13)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	whole := crc32.Checksum(data, castagnoli)
	for _, cut := range []int{0, 1, 7, 8, 4096, 1 << 19, len(data) - 1, len(data)} {
		a, b := data[:cut], data[cut:]
		got := crc32cCombine(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), int64(len(b)))
		if got != whole {
			t.Errorf("cut at %d: combined %08x, whole %08x", cut, got, whole)
		}
	}
	for range 200 {
		n := rng.IntN(5000)
		cut := rng.IntN(n + 1)
		got := crc32cCombine(crc32.Checksum(data[:cut], castagnoli), crc32.Checksum(data[cut:n], castagnoli), int64(n-cut))
		if want := crc32.Checksum(data[:n], castagnoli); got != want {
			t.Fatalf("%d bytes cut at %d: combined %08x, want %08x", n, cut, got, want)
		}
	}
}
