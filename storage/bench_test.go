package storage_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// BenchmarkCommit64MiB compares a durable commit through Pending (temp file,
// hashing, fsyncs, renames, metadata) with a bare os.WriteFile plus fsync of
// the same 64 MiB.
func BenchmarkCommit64MiB(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	const piece = 1 << 20

	b.Run("Pending", func(b *testing.B) {
		s := newStore(b)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			p, err := s.Create("bench", 0)
			if err != nil {
				b.Fatal(err)
			}
			for off := 0; off < len(data); off += piece {
				if _, err := p.Write(data[off : off+piece]); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := p.Commit(storage.Metadata{OriginalSize: int64(len(data))}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("WriteFileSync", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "chunk_0.shard")
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				b.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
