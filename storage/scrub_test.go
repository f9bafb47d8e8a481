package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// flipByte flips one byte of the file at path in place (same size).
func flipByte(t testing.TB, path string, at int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[at%len(data)] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// quarantined returns the quarantine directories of a store and the files
// each holds (REASON.txt included), by directory name.
func quarantined(t testing.TB, s *storage.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	dirs, err := os.ReadDir(s.QuarantineDir())
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		files, err := os.ReadDir(filepath.Join(s.QuarantineDir(), d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		out[d.Name()] = names
	}
	return out
}

// findQuarantined returns the quarantine directory of (video, n), failing
// unless there is exactly one.
func findQuarantined(t testing.TB, s *storage.Store, video string, n int) string {
	t.Helper()
	var found []string
	for dir := range quarantined(t, s) {
		if strings.HasSuffix(dir, fmt.Sprintf("-%s_chunk_%d", video, n)) {
			found = append(found, dir)
		}
	}
	if len(found) != 1 {
		t.Fatalf("quarantine dirs for %s chunk %d: %v (all: %v)", video, n, found, quarantined(t, s))
	}
	return filepath.Join(s.QuarantineDir(), found[0])
}

func assertUnlisted(t testing.TB, s *storage.Store, video string, n int) {
	t.Helper()
	assertNotFound(t, s, video, n)
	videos, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range videos {
		for _, c := range v.Chunks {
			if v.ID == video && c.ChunkIndex == n {
				t.Fatalf("List still lists %s chunk %d", video, n)
			}
		}
	}
	if ms, err := s.VideoMetadata(video); err == nil {
		for _, m := range ms {
			if m.ChunkIndex == n {
				t.Fatalf("VideoMetadata still has %s chunk %d", video, n)
			}
		}
	}
	if _, _, err := s.ResolveLocation(filepath.Join(video, fmt.Sprintf("chunk_%d.shard", n))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ResolveLocation of a quarantined chunk = %v, want ErrNotFound", err)
	}
}

func TestScrub_CleanStore(t *testing.T) {
	s := newStore(t)
	var total int64
	for n := range 5 {
		total += commit(t, s, "v", n, payload(byte(n), 1000+n)).EncodedSize
	}
	rep, err := s.Scrub(context.Background(), storage.ScrubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 5 || rep.Bytes != total || len(rep.Corrupt) != 0 || rep.Skipped != 0 {
		t.Fatalf("report = %+v, want 5 checked, %d bytes, nothing corrupt", rep, total)
	}
	if s.Quarantined() != 0 {
		t.Fatalf("Quarantined = %d", s.Quarantined())
	}
}

// Every shard of several gets one flipped byte at a random place: every one
// is found and quarantined, none of the untouched ones is.
func TestScrub_FlippedByteInEveryShard(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	type key struct {
		video string
		n     int
	}
	var corrupt, intact []key
	for i, video := range []string{"a", "b.mp4", "c-1"} {
		for n := range 8 {
			m := commit(t, s, video, n, payload(byte(i*8+n), 1+rng.IntN(200_000)))
			if (i+n)%4 == 3 {
				intact = append(intact, key{video, n})
				continue
			}
			flipByte(t, m.ShardLocation, rng.IntN(int(m.EncodedSize)))
			corrupt = append(corrupt, key{video, n})
		}
	}
	rep, err := s.Scrub(context.Background(), storage.ScrubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Corrupt), len(corrupt); got != want {
		t.Fatalf("found %d corrupt shards, want %d: %+v", got, want, rep.Corrupt)
	}
	if rep.Checked != len(corrupt)+len(intact) {
		t.Fatalf("Checked = %d, want %d", rep.Checked, len(corrupt)+len(intact))
	}
	for _, f := range rep.Corrupt {
		if !slices.Contains(corrupt, key{f.VideoID, f.ChunkIndex}) {
			t.Errorf("intact chunk reported corrupt: %+v", f)
		}
		if !strings.Contains(f.Reason, "sha256") || f.QuarantineDir == "" {
			t.Errorf("finding %+v: want a checksum reason and a quarantine dir", f)
		}
	}
	for _, k := range corrupt {
		assertUnlisted(t, s, k.video, k.n)
		dir := findQuarantined(t, s, k.video, k.n)
		for _, name := range []string{fmt.Sprintf("chunk_%d.shard", k.n), fmt.Sprintf("%s_chunk_%d_metadata.json", k.video, k.n), "REASON.txt"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("quarantine of %v lacks %s: %v", k, name, err)
			}
		}
	}
	for _, k := range intact {
		if _, err := s.Lookup(k.video, k.n); err != nil {
			t.Errorf("intact chunk %v: %v", k, err)
		}
	}
	if got := s.Quarantined(); got != int64(len(corrupt)) {
		t.Errorf("Quarantined = %d, want %d", got, len(corrupt))
	}
	if got := s.Corrupted(); got != int64(len(corrupt)) {
		t.Errorf("Corrupted = %d, want %d", got, len(corrupt))
	}
	// A second scrub finds nothing more.
	rep, err = s.Scrub(context.Background(), storage.ScrubOptions{})
	if err != nil || len(rep.Corrupt) != 0 || rep.Checked != len(intact) {
		t.Fatalf("second scrub: %+v, %v", rep, err)
	}
	assertNoScratch(t, root)
}

func TestScrub_SizeChangeMissingShardMissingMetadata(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	grown := commit(t, s, "v", 0, payload(1, 5000))
	shrunk := commit(t, s, "v", 1, payload(2, 5000))
	gone := commit(t, s, "v", 2, payload(3, 5000))
	commit(t, s, "v", 3, payload(4, 5000))
	good := payload(5, 5000)
	commit(t, s, "v", 4, good)

	f, err := os.OpenFile(grown.ShardLocation, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Close()
	if err := os.Truncate(shrunk.ShardLocation, 10); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone.ShardLocation); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "metadata", "v_chunk_3_metadata.json")); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Scrub(context.Background(), storage.ScrubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: "5001 bytes", 1: "10 bytes", 2: "missing", 3: "metadata file is missing"}
	if len(rep.Corrupt) != len(want) {
		t.Fatalf("corrupt = %+v, want chunks 0-3", rep.Corrupt)
	}
	for _, c := range rep.Corrupt {
		if !strings.Contains(c.Reason, want[c.ChunkIndex]) {
			t.Errorf("chunk %d: reason %q, want it to say %q", c.ChunkIndex, c.Reason, want[c.ChunkIndex])
		}
		assertUnlisted(t, s, "v", c.ChunkIndex)
	}
	// The missing shard's metadata and the metadata-less shard are moved too.
	if _, err := os.Stat(filepath.Join(findQuarantined(t, s, "v", 2), "v_chunk_2_metadata.json")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(findQuarantined(t, s, "v", 3), "chunk_3.shard")); err != nil {
		t.Error(err)
	}
	assertCommitted(t, s, "v", 4, good)
}

// Readers trust the CRC-32C; Scrub checks the SHA-256, the shard's
// identity, as well, and both when the metadata has no CRC-32C.
func TestScrub_ChecksSHA256BesideCRC32C(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	commit(t, s, "v", 0, payload(1, 5000))        // sha256 in its metadata made wrong
	commit(t, s, "v", 1, payload(2, 5000))        // crc32c made wrong
	old := commit(t, s, "v", 2, payload(3, 5000)) // no crc32c, a flipped byte
	commit(t, s, "v", 3, payload(4, 5000))        // no crc32c, intact
	editMetadata(t, root, "v", 0, func(f map[string]json.RawMessage) {
		f["checksum_sha256"] = json.RawMessage(`"` + sum([]byte("other bytes")) + `"`)
	})
	editMetadata(t, root, "v", 1, func(f map[string]json.RawMessage) { f["crc32c"] = json.RawMessage(`"00000000"`) })
	dropCRC(t, root, "v", 2)
	dropCRC(t, root, "v", 3)
	flipByte(t, old.ShardLocation, 10)
	s, _ = openStore(t, root, nil)

	if _, err := s.Verify("v", 0); err != nil {
		t.Fatalf("a reader checks the CRC-32C only, which matches: %v", err)
	}
	rep, err := s.Scrub(context.Background(), storage.ScrubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: "sha256", 1: "crc32c", 2: "sha256"}
	if len(rep.Corrupt) != len(want) || rep.Checked != 4 {
		t.Fatalf("report %+v, want chunks 0-2 corrupt of 4 checked", rep)
	}
	for _, c := range rep.Corrupt {
		if !strings.Contains(c.Reason, "shard has "+want[c.ChunkIndex]) {
			t.Errorf("chunk %d: reason %q, want a %s mismatch", c.ChunkIndex, c.Reason, want[c.ChunkIndex])
		}
	}
	if _, err := s.Lookup("v", 3); err != nil {
		t.Fatalf("intact chunk without crc32c: %v", err)
	}
	if s.Corrupted() != 3 {
		t.Fatalf("Corrupted = %d, want 3", s.Corrupted())
	}
}

// A version found corrupt by a scrub fails a reader that had it open too,
// and is counted once.
func TestScrub_CorruptAlsoReadCountedOnce(t *testing.T) {
	s := newStore(t)
	m := commit(t, s, "v", 0, payload(1, 50_000))
	flipByte(t, m.ShardLocation, 1)
	r, err := s.OpenVerified("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := s.Scrub(context.Background(), storage.ScrubOptions{})
	if err != nil || len(rep.Corrupt) != 1 {
		t.Fatalf("scrub: %+v, %v", rep, err)
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("reader of the scrubbed version: %v, want ErrCorrupt", err)
	}
	if s.Corrupted() != 1 || s.Quarantined() != 1 {
		t.Fatalf("Corrupted %d, Quarantined %d; want 1 each", s.Corrupted(), s.Quarantined())
	}
}

// Quarantine moves the files, unlists the chunk, keeps it out after a
// reopen, and the chunk can be written again.
func TestQuarantine_MovesUnlistsSurvivesReopen(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, logs := openStore(t, root, nil)
	old := payload(1, 3000)
	m := commit(t, s, "v", 0, old)
	other := payload(2, 3000)
	commit(t, s, "v", 1, other)

	if err := s.Quarantine("v", 0, "operator says so"); err != nil {
		t.Fatal(err)
	}
	assertUnlisted(t, s, "v", 0)
	if _, err := os.Lstat(m.ShardLocation); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("shard still in place: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "metadata", "v_chunk_0_metadata.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("metadata still in place: %v", err)
	}
	dir := findQuarantined(t, s, "v", 0)
	if got, _ := os.ReadFile(filepath.Join(dir, "chunk_0.shard")); string(got) != string(old) {
		t.Fatal("quarantined shard is not the shard's bytes")
	}
	reason, _ := os.ReadFile(filepath.Join(dir, "REASON.txt"))
	if !strings.Contains(string(reason), "operator says so") || !strings.Contains(string(reason), m.ShardLocation) {
		t.Errorf("REASON.txt = %q", reason)
	}
	if !strings.Contains(logs.String(), "chunk quarantined") {
		t.Errorf("not logged:\n%s", logs)
	}
	if err := s.Quarantine("v", 0, "again"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second Quarantine = %v, want ErrNotFound", err)
	}
	if err := s.Quarantine("../v", 0, "bad"); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("Quarantine(../v) = %v, want ErrInvalid", err)
	}

	s2, _ := openStore(t, root, nil)
	assertUnlisted(t, s2, "v", 0)
	assertCommitted(t, s2, "v", 1, other)
	if got := s2.Quarantined(); got != 1 {
		t.Fatalf("Quarantined after reopen = %d, want 1", got)
	}

	fresh := payload(3, 2000)
	commit(t, s2, "v", 0, fresh)
	assertCommitted(t, s2, "v", 0, fresh)
	s3, _ := openStore(t, root, nil)
	assertCommitted(t, s3, "v", 0, fresh)
	assertNoScratch(t, root)
}

// QuarantineVersion leaves a chunk alone that was replaced after the
// corrupt version was read.
func TestQuarantineVersion_KeepsReplacement(t *testing.T) {
	s := newStore(t)
	oldMeta := commit(t, s, "v", 0, payload(1, 100))
	fresh := payload(2, 120)
	commit(t, s, "v", 0, fresh)
	if err := s.QuarantineVersion(oldMeta, "read found it corrupt"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("QuarantineVersion of a replaced version = %v, want ErrNotFound", err)
	}
	assertCommitted(t, s, "v", 0, fresh)
	cur, _ := s.Lookup("v", 0)
	if err := s.QuarantineVersion(cur, "read found it corrupt"); err != nil {
		t.Fatal(err)
	}
	assertUnlisted(t, s, "v", 0)
}

// OpenShard reports a size change or a missing file as a *CorruptError
// naming the version, so the reader can quarantine exactly that.
func TestOpenShard_CorruptError(t *testing.T) {
	s := newStore(t)
	m := commit(t, s, "v", 0, payload(1, 100))
	if err := os.Truncate(m.ShardLocation, 99); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.OpenShard("v", 0)
	var ce *storage.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, storage.ErrCorrupt) || ce.Metadata.ChecksumSHA256 != m.ChecksumSHA256 {
		t.Fatalf("OpenShard of a truncated shard = %v, want a CorruptError for its version", err)
	}
	if errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a truncated shard is not missing: %v", err)
	}
	os.Remove(m.ShardLocation)
	_, _, err = s.OpenShard("v", 0)
	if !errors.Is(err, storage.ErrCorrupt) || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("OpenShard of a missing shard = %v, want ErrCorrupt and ErrNotFound", err)
	}
}

func TestScrub_RateLimit(t *testing.T) {
	s := newStore(t)
	const perShard, shards = 20_000, 5
	for n := range shards {
		commit(t, s, "v", n, payload(byte(n), perShard))
	}
	const rate = 200_000 // bytes per second: 100 KB should take 0.5 s
	start := time.Now()
	rep, err := s.Scrub(context.Background(), storage.ScrubOptions{BytesPerSecond: rate})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Duration(float64(perShard*shards) / rate * float64(time.Second))
	if elapsed < want*8/10 {
		t.Fatalf("scrub of %d bytes at %d B/s took %v, want at least %v", rep.Bytes, rate, elapsed, want*8/10)
	}
	if elapsed > 10*want {
		t.Errorf("scrub took %v, far more than the %v the rate allows", elapsed, want)
	}
	if rep.Checked != shards || rep.Duration < want*8/10 {
		t.Fatalf("report %+v", rep)
	}
}

func TestScrub_Cancelled(t *testing.T) {
	s := newStore(t)
	for n := range 3 {
		commit(t, s, "v", n, payload(byte(n), 50_000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	rep, err := s.Scrub(ctx, storage.ScrubOptions{BytesPerSecond: 100_000}) // 1.5 s of work
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scrub past its deadline = %+v, %v", rep, err)
	}
	if rep.Checked == 3 || len(rep.Corrupt) != 0 {
		t.Fatalf("report %+v", rep)
	}
	for n := range 3 {
		if _, err := s.Lookup("v", n); err != nil {
			t.Fatalf("a cancelled scrub touched chunk %d: %v", n, err)
		}
	}
}

// Commits and reads running beside a scrub are neither blocked for long nor
// mistaken for corruption.
func TestScrub_ConcurrentWrites(t *testing.T) {
	s := newStore(t)
	for n := range 20 {
		commit(t, s, "v", n, payload(byte(n), 20_000))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			commit(t, s, "v", i%20, payload(byte(i), 10_000+i%7))
		}
	}()
	for range 3 {
		rep, err := s.Scrub(context.Background(), storage.ScrubOptions{})
		if err != nil {
			t.Error(err)
		}
		if len(rep.Corrupt) != 0 {
			t.Errorf("scrub beside commits found corruption: %+v", rep.Corrupt)
		}
	}
	close(stop)
	wg.Wait()
	if s.Quarantined() != 0 {
		t.Fatalf("Quarantined = %d", s.Quarantined())
	}
}

// Start-up recovery: orphans on either side are quarantined and logged, the
// index equals what is left on disk, and the chunk can be written again.
func TestOpen_QuarantinesOrphans(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	keep := payload(9, 100)
	commit(t, s, "v", 0, keep)
	orphanMeta := commit(t, s, "v", 1, payload(1, 100))
	os.Remove(orphanMeta.ShardLocation)
	orphanShard := payload(2, 70)
	writeFile(t, filepath.Join(root, "w", "chunk_4.shard"), orphanShard)
	sized := commit(t, s, "v", 2, payload(3, 100))
	os.Truncate(sized.ShardLocation, 50)

	s, logs := openStore(t, root, nil)
	for _, want := range []string{"metadata without shard; quarantined", "shard has no metadata; quarantined", "shard size differs from metadata; quarantined"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs)
		}
	}
	assertUnlisted(t, s, "v", 1)
	assertUnlisted(t, s, "w", 4)
	assertUnlisted(t, s, "v", 2)
	assertCommitted(t, s, "v", 0, keep)
	if got, _ := os.ReadFile(filepath.Join(findQuarantined(t, s, "w", 4), "chunk_4.shard")); string(got) != string(orphanShard) {
		t.Error("orphan shard not kept in quarantine")
	}
	if _, err := os.Stat(filepath.Join(findQuarantined(t, s, "v", 1), "v_chunk_1_metadata.json")); err != nil {
		t.Error(err)
	}
	q := findQuarantined(t, s, "v", 2)
	for _, name := range []string{"chunk_2.shard", "v_chunk_2_metadata.json"} {
		if _, err := os.Stat(filepath.Join(q, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "w", "chunk_4.shard")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan shard left in place: %v", err)
	}
	if got := s.Quarantined(); got != 3 {
		t.Errorf("Quarantined = %d, want 3", got)
	}

	// Nothing left to repair: a reopen changes nothing.
	s, logs = openStore(t, root, nil)
	if strings.Contains(logs.String(), "quarantined") {
		t.Errorf("second Open quarantined more:\n%s", logs)
	}
	if got := s.Quarantined(); got != 3 {
		t.Errorf("Quarantined after reopen = %d, want 3", got)
	}
	fresh := payload(4, 33)
	commit(t, s, "w", 4, fresh)
	assertCommitted(t, s, "w", 4, fresh)
}

func TestOpen_Lock(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, err := storage.Open(storage.Options{Root: root, Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = storage.Open(storage.Options{Root: root, Lock: true})
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second locked Open = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := storage.Open(storage.Options{Root: root, Lock: true})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}
