package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"strconv"
)

// castagnoli is the CRC-32C table. hash/crc32 computes this polynomial
// with the CPU's CRC32 instructions (SSE 4.2 on amd64, ARMv8 on arm64): an
// order of magnitude faster than SHA-256, which is why reads verify it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// digestPiece is how much of a write each hash takes in turn: small enough
// that the bytes SHA-256 just read are still in the cache for CRC-32C, so
// both cost one pass over memory.
const digestPiece = 64 << 10

// digest computes over bytes as they go by what a shard's metadata records
// of them: the count, the CRC-32C, and the SHA-256, each only if asked.
type digest struct {
	n   int64
	crc uint32
	// withCRC is set when the CRC-32C is computed.
	withCRC bool
	sha     hash.Hash // nil when the SHA-256 is not computed
}

// newDigest returns a digest computing the CRC-32C if crc is set and the
// SHA-256 if sha is set (the count always).
func newDigest(crc, sha bool) *digest {
	d := &digest{withCRC: crc}
	if sha {
		d.sha = sha256.New()
	}
	return d
}

// Write hashes p; it never fails.
func (d *digest) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), digestPiece)
		if d.sha != nil {
			d.sha.Write(p[:k])
		}
		if d.withCRC {
			d.crc = crc32.Update(d.crc, castagnoli, p[:k])
		}
		p = p[k:]
	}
	d.n += int64(n)
	return n, nil
}

// crc32c is the CRC-32C so far, as metadata records it.
func (d *digest) crc32c() string { return formatCRC32C(d.crc) }

// sha256 is the SHA-256 so far, in hex, as metadata records it.
func (d *digest) sha256() string { return hex.EncodeToString(d.sha.Sum(nil)) }

// crc32cCombine returns the CRC-32C of a followed by b from crcA, crcB and
// b's length, as zlib's crc32_combine does: crcA is advanced over lenB zero
// bytes by squaring the GF(2) operator of one zero bit, then crcB is added.
// It lets two goroutines checksum the halves of a shard.
func crc32cCombine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32
	odd[0] = crc32.Castagnoli // the operator for one zero bit
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four
	for {
		gf2Square(&even, &odd) // eight, then on: one byte, two, four...
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		if lenB >>= 1; lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		if lenB >>= 1; lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// formatCRC32C is a CRC-32C as metadata records it: 8 lower-case hex digits.
func formatCRC32C(c uint32) string { return fmt.Sprintf("%08x", c) }

// checkLevel says which of its recorded checksums a shard is held to.
type checkLevel int

const (
	// checkFast is what readers do: the CRC-32C when the metadata records
	// one (committed since it was added), else the SHA-256.
	checkFast checkLevel = iota
	// checkFull is the identity check: the SHA-256 that clients verify, and
	// the CRC-32C too when recorded, so that a CRC a reader would trip
	// over is caught as well.
	checkFull
)

// verifierFor returns the digest that checks a version of m at level.
func verifierFor(m Metadata, level checkLevel) *digest {
	crc := m.ChecksumCRC32C != ""
	return newDigest(crc, level == checkFull || !crc)
}

// mismatch compares what d read with m, checking the size first, then the
// SHA-256 and the CRC-32C (those d computed), and describes the first
// difference; nil if there is none.
func (d *digest) mismatch(m Metadata) *CorruptError {
	if d.n != m.EncodedSize {
		return sizeMismatch(m, d.n)
	}
	if d.sha != nil {
		if got := d.sha256(); got != m.ChecksumSHA256 {
			return &CorruptError{Metadata: m, Kind: CorruptChecksum, Checksum: "sha256", Want: m.ChecksumSHA256, Got: got,
				Reason: fmt.Sprintf("shard has sha256 %s, its metadata says %s", got, m.ChecksumSHA256)}
		}
	}
	if d.withCRC {
		if got := d.crc32c(); got != m.ChecksumCRC32C {
			return &CorruptError{Metadata: m, Kind: CorruptChecksum, Checksum: "crc32c", Want: m.ChecksumCRC32C, Got: got,
				Reason: fmt.Sprintf("shard has crc32c %s, its metadata says %s", got, m.ChecksumCRC32C)}
		}
	}
	return nil
}

// sizeMismatch is the error for a shard of m found to hold n bytes.
func sizeMismatch(m Metadata, n int64) *CorruptError {
	return &CorruptError{Metadata: m, Kind: CorruptSize,
		Want: strconv.FormatInt(m.EncodedSize, 10), Got: strconv.FormatInt(n, 10),
		Reason: fmt.Sprintf("shard holds %d bytes, its metadata says %d", n, m.EncodedSize)}
}
