package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// testNow is the fixed clock of test stores.
var testNow = time.Date(2023, 4, 25, 14, 30, 45, 123456789, time.UTC)

// logBuffer collects a store's log lines and echoes them to the test output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(t testing.TB) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{out: t.Output()}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// openStore opens a store at root with the test clock and logger; fsys may
// be nil.
func openStore(t testing.TB, root string, fsys storage.FS) (*storage.Store, *logBuffer) {
	t.Helper()
	log, lb := newLogger(t)
	s, err := storage.Open(storage.Options{
		Root:   root,
		FS:     fsys,
		Now:    func() time.Time { return testNow },
		Logger: log,
	})
	if err != nil {
		t.Fatalf("Open(%s): %v", root, err)
	}
	return s, lb
}

// newStore opens a store in a fresh directory <tmp>/store.
func newStore(t testing.TB) *storage.Store {
	t.Helper()
	s, _ := openStore(t, filepath.Join(t.TempDir(), "store"), nil)
	return s
}

// commit writes data as a chunk through Pending.Write and commits it.
func commit(t testing.TB, s *storage.Store, video string, chunk int, data []byte) storage.Metadata {
	t.Helper()
	p, err := s.Create(video, chunk)
	if err != nil {
		t.Fatalf("Create(%q, %d): %v", video, chunk, err)
	}
	defer p.Abort()
	if _, err := p.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	m, err := p.Commit(storage.Metadata{
		OriginalSize: int64(2 * len(data)),
		WorkerID:     "localhost:50061",
		Encoder:      "simulated",
	})
	if err != nil {
		t.Fatalf("Commit(%q, %d): %v", video, chunk, err)
	}
	return m
}

// readShard returns a committed shard's bytes and metadata via OpenShard.
func readShard(t testing.TB, s *storage.Store, video string, chunk int) ([]byte, storage.Metadata) {
	t.Helper()
	f, m, err := s.OpenShard(video, chunk)
	if err != nil {
		t.Fatalf("OpenShard(%q, %d): %v", video, chunk, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read shard: %v", err)
	}
	return data, m
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// crc32c is data's CRC-32C as metadata records it.
func crc32c(data []byte) string {
	return fmt.Sprintf("%08x", crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
}

// payload returns n deterministic bytes that differ with seed.
func payload(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

// assertNoScratch fails if any temporary or backup file is left under root
// (TempDir included).
func assertNoScratch(t testing.TB, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.Contains(name, ".tmp-") || strings.Contains(name, ".bak-") {
			t.Errorf("scratch file left behind: %s", path)
		}
		if filepath.Dir(path) == filepath.Join(root, ".tmp") {
			t.Errorf("file left in TempDir: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assertCommitted checks that chunk (video, n) is listed with want's
// checksum and that its file holds exactly data.
func assertCommitted(t testing.TB, s *storage.Store, video string, n int, data []byte) {
	t.Helper()
	m, err := s.Lookup(video, n)
	if err != nil {
		t.Fatalf("Lookup(%q, %d): %v", video, n, err)
	}
	if got, want := m.ChecksumSHA256, sum(data); got != want {
		t.Fatalf("Lookup checksum = %s, want %s", got, want)
	}
	got, om := readShard(t, s, video, n)
	if !bytes.Equal(got, data) {
		t.Fatalf("shard %s chunk %d: %d bytes, not the %d expected", video, n, len(got), len(data))
	}
	if om.ChecksumSHA256 != m.ChecksumSHA256 {
		t.Fatalf("OpenShard metadata checksum %s, Lookup %s", om.ChecksumSHA256, m.ChecksumSHA256)
	}
	found := false
	vs, err := s.List(video)
	if err != nil {
		t.Fatalf("List(%q): %v", video, err)
	}
	for _, c := range vs[0].Chunks {
		found = found || c.ChunkIndex == n && c.ChecksumSHA256 == m.ChecksumSHA256
	}
	if !found {
		t.Fatalf("List(%q) does not list chunk %d", video, n)
	}
}

func assertNotFound(t testing.TB, s *storage.Store, video string, n int) {
	t.Helper()
	if _, err := s.Lookup(video, n); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Lookup(%q, %d) error = %v, want ErrNotFound", video, n, err)
	}
	if _, _, err := s.OpenShard(video, n); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("OpenShard(%q, %d) error = %v, want ErrNotFound", video, n, err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
