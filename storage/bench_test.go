package storage_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/storetest"
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

// benchRounds returns the rounds a benchmark runs: env, or def.
func benchRounds(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", env, v)
	}
	return n
}

// quantile returns the q-quantile of xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)]
}

// logSeries logs each round's value of a figure on one line, then the
// median (a benchmark's log keeps 10 lines).
func logSeries(b *testing.B, label, format string, xs []float64) {
	b.Helper()
	var sb strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&sb, " "+format, x)
	}
	b.Logf("%-22s%s | median "+format, label+":", sb.String(), quantile(xs, 0.5))
}

// store100k writes a store of 1,000 videos of 100 chunks each (100,000
// chunks; VIDEOSHARD_BENCH_STORE_VIDEOS changes the videos) straight in
// the on-disk layout and returns its root.
func store100k(b *testing.B) (root string, chunks int) {
	b.Helper()
	videos := benchRounds(b, "VIDEOSHARD_BENCH_STORE_VIDEOS", 1000)
	root = filepath.Join(b.TempDir(), "store")
	start := time.Now()
	chunks, err := storetest.Write(root, storetest.Layout{Videos: videos, ChunksPerVideo: 100})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d chunks in %.1f s", chunks, time.Since(start).Seconds())
	return root, chunks
}

// readPlain is Open's reference: the least any open of the layout must do,
// sequentially with package os: read and parse every metadata file and
// lstat every shard.
func readPlain(root string) (int, error) {
	entries, err := os.ReadDir(filepath.Join(root, "metadata"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(root, "metadata", e.Name()))
		if err != nil {
			return n, err
		}
		var m storage.Metadata
		if err := json.Unmarshal(data, &m); err != nil {
			return n, err
		}
		if _, err := os.Lstat(filepath.Join(root, m.VideoID, "chunk_"+strconv.Itoa(m.ChunkIndex)+".shard")); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// BenchmarkOpen100k opens a store of 100,000 chunks as the worker does
// (Lock, every metadata file read and parsed, every shard's size checked,
// each path resolved with openat2 and no symlink followed) and, side by
// side in alternating order, the reference readPlain. The data is in the
// page cache for both. VIDEOSHARD_BENCH_OPEN_ROUNDS sets the rounds
// (default 5).
func BenchmarkOpen100k(b *testing.B) {
	rounds := benchRounds(b, "VIDEOSHARD_BENCH_OPEN_ROUNDS", 5)
	root, chunks := store100k(b)
	open := func() error {
		s, err := storage.Open(storage.Options{Root: root, Lock: true})
		if err != nil {
			return err
		}
		defer s.Close()
		p, err := s.ListPage(storage.PageOptions{Limit: 1})
		if err == nil && (len(p.Videos) != 1 || !p.More) {
			err = fmt.Errorf("the store lists %v", p.Videos)
		}
		return err
	}
	plain := func() error {
		n, err := readPlain(root)
		if err == nil && n != chunks {
			err = fmt.Errorf("read %d chunks, want %d", n, chunks)
		}
		return err
	}
	timed := func(f func() error) float64 {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start).Seconds()
	}
	var openS, plainS, ratio []float64
	for b.Loop() {
		for r := range rounds {
			var o, p float64
			if r%2 == 0 {
				o, p = timed(open), timed(plain)
			} else {
				p, o = timed(plain), timed(open)
			}
			openS, plainS, ratio = append(openS, o), append(plainS, p), append(ratio, o/p)
		}
	}
	logSeries(b, "Open s", "%.3f", openS)
	logSeries(b, "plain read s", "%.3f", plainS)
	logSeries(b, "Open/plain", "%.2f", ratio)
	b.ReportMetric(float64(len(openS)), "rounds")
	b.ReportMetric(quantile(openS, 0.5), "open-s")
	b.ReportMetric(slices.Max(openS), "open-max-s")
	b.ReportMetric(quantile(plainS, 0.5), "plain-s")
	b.ReportMetric(quantile(ratio, 0.5), "open/plain")
}
