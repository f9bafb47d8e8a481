package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// readVerified reads a chunk to its end through a VerifiedReader, in
// pieces of piece bytes.
func readVerified(s *storage.Store, video string, n, piece int) ([]byte, error) {
	r, err := s.OpenVerified(video, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out bytes.Buffer
	buf := make([]byte, piece)
	for {
		k, err := r.Read(buf)
		out.Write(buf[:k])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// editMetadata rewrites a chunk's metadata file through edit.
func editMetadata(t *testing.T, root, video string, n int, edit func(fields map[string]json.RawMessage)) {
	t.Helper()
	path := filepath.Join(root, "metadata", video+"_chunk_"+strconv.Itoa(n)+"_metadata.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	edit(fields)
	out, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dropCRC rewrites a chunk's metadata file without its "crc32c" key, as a
// store written before the key was added has it.
func dropCRC(t *testing.T, root, video string, n int) {
	t.Helper()
	editMetadata(t, root, video, n, func(fields map[string]json.RawMessage) {
		if _, ok := fields["crc32c"]; !ok {
			t.Fatalf("%s chunk %d has no crc32c to drop", video, n)
		}
		delete(fields, "crc32c")
	})
}

func TestVerifiedReader(t *testing.T) {
	const size = 300_000
	tests := []struct {
		name    string
		oldMeta bool                            // metadata without crc32c, as before it was added
		damage  func(t *testing.T, path string) // to the shard after the reader opened it; nil: none
		piece   int                             // read size
		// want: nil for a good read, else the corruption expected.
		want     *storage.CorruptError
		checksum string // CorruptChecksum: which one
	}{
		{name: "good", piece: 64 << 10},
		{name: "good, one read of exactly the size", piece: size},
		{name: "good, reads larger than the shard", piece: 1 << 20},
		{name: "good, old metadata (sha256)", oldMeta: true, piece: 4096},
		{
			name: "flipped byte", piece: 64 << 10,
			damage: func(t *testing.T, path string) { flipByte(t, path, size/2) },
			want:   &storage.CorruptError{Kind: storage.CorruptChecksum}, checksum: "crc32c",
		},
		{
			name: "flipped last byte, one read of exactly the size", piece: size,
			damage: func(t *testing.T, path string) { flipByte(t, path, size-1) },
			want:   &storage.CorruptError{Kind: storage.CorruptChecksum}, checksum: "crc32c",
		},
		{
			name: "flipped byte, old metadata (sha256)", oldMeta: true, piece: 4096,
			damage: func(t *testing.T, path string) { flipByte(t, path, 7) },
			want:   &storage.CorruptError{Kind: storage.CorruptChecksum}, checksum: "sha256",
		},
		{
			name: "truncated while open", piece: 64 << 10,
			damage: func(t *testing.T, path string) {
				if err := os.Truncate(path, size-1000); err != nil {
					t.Fatal(err)
				}
			},
			want: &storage.CorruptError{Kind: storage.CorruptSize, Want: strconv.Itoa(size), Got: strconv.Itoa(size - 1000)},
		},
		{
			name: "grown while open", piece: size,
			damage: func(t *testing.T, path string) {
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.Write([]byte("tail"))
				f.Close()
			},
			want: &storage.CorruptError{Kind: storage.CorruptSize, Want: strconv.Itoa(size), Got: strconv.Itoa(size + 4)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			s, _ := openStore(t, root, nil)
			data := payload(3, size)
			m := commit(t, s, "v", 0, data)
			if tt.oldMeta {
				dropCRC(t, root, "v", 0)
				s, _ = openStore(t, root, nil)
				if got := lookup(t, s, "v", 0); got.ChecksumCRC32C != "" {
					t.Fatalf("reopened store still has crc32c %q", got.ChecksumCRC32C)
				}
			}
			r, err := s.OpenVerified("v", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Metadata(); got.ChecksumSHA256 != m.ChecksumSHA256 {
				t.Fatalf("reader's metadata %+v, want the committed version's", got)
			}
			if tt.damage != nil {
				tt.damage(t, m.ShardLocation)
			}
			var got []byte
			buf := make([]byte, tt.piece)
			var rerr error
			for {
				k, err := r.Read(buf)
				got = append(got, buf[:k]...)
				if err != nil {
					rerr = err
					break
				}
			}

			if tt.want == nil {
				if rerr != io.EOF || !bytes.Equal(got, data) {
					t.Fatalf("read %d bytes, %v; want the %d committed bytes and io.EOF", len(got), rerr, len(data))
				}
				if _, err := r.Read(buf); err != io.EOF {
					t.Fatalf("Read after the end = %v, want io.EOF", err)
				}
				if s.Corrupted() != 0 || s.Quarantined() != 0 {
					t.Fatalf("a good read counted %d corrupt, %d quarantined", s.Corrupted(), s.Quarantined())
				}
				assertCommitted(t, s, "v", 0, data)
				return
			}

			var ce *storage.CorruptError
			if !errors.As(rerr, &ce) || !errors.Is(rerr, storage.ErrCorrupt) {
				t.Fatalf("read ended with %v, want a *CorruptError", rerr)
			}
			if ce.Kind != tt.want.Kind || ce.Checksum != tt.checksum ||
				tt.want.Want != "" && (ce.Want != tt.want.Want || ce.Got != tt.want.Got) {
				t.Fatalf("corruption %+v, want kind %v, checksum %q, want/got %q/%q", ce, tt.want.Kind, tt.checksum, tt.want.Want, tt.want.Got)
			}
			if ce.Kind == storage.CorruptChecksum && (ce.Want == ce.Got || ce.Want == "" || ce.Got == "") {
				t.Fatalf("checksum corruption without the two checksums: %+v", ce)
			}
			if len(got) >= size {
				t.Fatalf("a corrupt read passed on %d bytes, the whole shard", len(got))
			}
			if _, err := r.Read(buf); !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("Read after the corruption = %v, want it again", err)
			}
			assertUnlisted(t, s, "v", 0)
			findQuarantined(t, s, "v", 0)
			if s.Corrupted() != 1 || s.Quarantined() != 1 {
				t.Fatalf("Corrupted %d, Quarantined %d; want 1 each", s.Corrupted(), s.Quarantined())
			}
			// The chunk can be written again, and reads well.
			fresh := payload(4, 1000)
			commit(t, s, "v", 0, fresh)
			if got, err := readVerified(s, "v", 0, 333); err != nil || !bytes.Equal(got, fresh) {
				t.Fatalf("re-stored chunk: %d bytes, %v", len(got), err)
			}
		})
	}
}

// A reader closed before the end has verified nothing: a corrupt shard is
// neither quarantined nor counted; a read after Close fails.
func TestVerifiedReader_ClosedEarly(t *testing.T) {
	s := newStore(t)
	m := commit(t, s, "v", 0, payload(1, 100_000))
	flipByte(t, m.ShardLocation, 10)
	r, err := s.OpenVerified("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 50_000)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
	}
	if s.Corrupted() != 0 || s.Quarantined() != 0 {
		t.Fatalf("Corrupted %d, Quarantined %d after an early Close; want 0", s.Corrupted(), s.Quarantined())
	}
	if _, err := s.Lookup("v", 0); err != nil {
		t.Fatalf("early Close took the chunk out: %v", err)
	}
}

// A shard found wrong already at the open is handled as corruption too.
func TestOpenVerified_CorruptAtOpen(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string)
		kind    storage.CorruptKind
		missing bool
	}{
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 3); err != nil {
				t.Fatal(err)
			}
		}, storage.CorruptSize, false},
		{"missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, storage.CorruptFile, true},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, storage.CorruptFile, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			m := commit(t, s, "v", 0, payload(1, 1000))
			tt.damage(t, m.ShardLocation)
			_, err := s.OpenVerified("v", 0)
			var ce *storage.CorruptError
			if !errors.As(err, &ce) || ce.Kind != tt.kind || errors.Is(err, storage.ErrNotFound) != tt.missing {
				t.Fatalf("OpenVerified = %v (%+v), want a %v corruption, missing %v", err, ce, tt.kind, tt.missing)
			}
			if s.Corrupted() != 1 {
				t.Fatalf("Corrupted = %d, want 1", s.Corrupted())
			}
			if _, err := s.Lookup("v", 0); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Lookup after a corrupt open = %v, want ErrNotFound", err)
			}
			if _, err := s.OpenVerified("v", 0); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("OpenVerified again = %v, want ErrNotFound only", err)
			}
			if s.Corrupted() != 1 {
				t.Fatalf("Corrupted = %d after the second open, want 1", s.Corrupted())
			}
		})
	}
}

// Verify reads a shard to its end: the committed version's metadata, or
// the corruption.
func TestVerify(t *testing.T) {
	s := newStore(t)
	good := commit(t, s, "v", 0, payload(1, 700_000))
	bad := commit(t, s, "v", 1, payload(2, 700_000))
	flipByte(t, bad.ShardLocation, 699_999)
	if m, err := s.Verify("v", 0); err != nil || m.ChecksumSHA256 != good.ChecksumSHA256 {
		t.Fatalf("Verify of a good shard = %+v, %v", m, err)
	}
	if _, err := s.Verify("v", 1); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("Verify of a corrupt shard = %v, want ErrCorrupt", err)
	}
	if _, err := s.Verify("v", 2); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Verify of a chunk not stored = %v, want ErrNotFound", err)
	}
	if _, err := s.Verify("../v", 0); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("Verify(../v) = %v, want ErrInvalid", err)
	}
	if s.Corrupted() != 1 {
		t.Fatalf("Corrupted = %d, want 1", s.Corrupted())
	}
}

// Several readers of one corrupt version all fail, and it is counted once.
func TestVerifiedReader_ConcurrentReadersCountOnce(t *testing.T) {
	s := newStore(t)
	m := commit(t, s, "v", 0, payload(1, 200_000))
	flipByte(t, m.ShardLocation, 5)
	const readers = 8
	rs := make([]*storage.VerifiedReader, readers)
	for i := range rs {
		r, err := s.OpenVerified("v", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs[i] = r
	}
	var wg sync.WaitGroup
	errs := make([]error, readers)
	for i, r := range rs {
		wg.Go(func() {
			_, errs[i] = io.Copy(io.Discard, r)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("reader %d: %v, want ErrCorrupt", i, err)
		}
	}
	if s.Corrupted() != 1 || s.Quarantined() != 1 {
		t.Fatalf("Corrupted %d, Quarantined %d; want 1 each", s.Corrupted(), s.Quarantined())
	}
}

// slowQuarantineFS makes every step of moving files into the quarantine
// slow, to widen the window in which a chunk found corrupt is on its way
// out of the store.
type slowQuarantineFS struct {
	storage.OSFS
	delay time.Duration
}

func (f slowQuarantineFS) slow(path string) {
	if strings.Contains(path, string(filepath.Separator)+".quarantine") {
		time.Sleep(f.delay)
	}
}

func (f slowQuarantineFS) Mkdir(dir *storage.Dir, name string, perm fs.FileMode) error {
	f.slow(filepath.Join(dir.Path(), name))
	return f.OSFS.Mkdir(dir, name, perm)
}

func (f slowQuarantineFS) Rename(olddir *storage.Dir, oldname string, newdir *storage.Dir, newname string) error {
	f.slow(filepath.Join(newdir.Path(), newname))
	return f.OSFS.Rename(olddir, oldname, newdir, newname)
}

// Whoever no longer sees a chunk found corrupt sees it counted and
// quarantined: the chunk leaves the index last. (Before, it left first and
// the counts came after the files had moved, which made
// cmd/worker's TestBackgroundScrub see quarantined 1, corrupted 0.)
func TestCorruptChunk_LeavesIndexLast(t *testing.T) {
	for _, by := range []string{"read", "scrub"} {
		t.Run(by, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			s, logs := openStore(t, root, slowQuarantineFS{delay: 20 * time.Millisecond})
			m := commit(t, s, "v", 0, payload(1, 10_000))
			flipByte(t, m.ShardLocation, 100)

			seen := make(chan [2]int64, 1)
			go func() {
				for {
					if _, err := s.Lookup("v", 0); errors.Is(err, storage.ErrNotFound) {
						seen <- [2]int64{s.Corrupted(), s.Quarantined()}
						return
					}
					time.Sleep(50 * time.Microsecond)
				}
			}()
			switch by {
			case "read":
				if _, err := readVerified(s, "v", 0, 4096); !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("read: %v, want ErrCorrupt", err)
				}
			case "scrub":
				if rep, err := s.Scrub(context.Background(), storage.ScrubOptions{}); err != nil || len(rep.Corrupt) != 1 {
					t.Fatalf("scrub: %+v, %v", rep, err)
				}
			}
			if got := <-seen; got != [2]int64{1, 1} {
				t.Fatalf("when the chunk left the index: corrupted %d, quarantined %d; want 1 each", got[0], got[1])
			}
			if !strings.Contains(logs.String(), by+": corrupted shard quarantined") {
				t.Errorf("log does not say %q:\n%s", by+": corrupted shard quarantined", logs)
			}
		})
	}
}

// ReadAll returns the whole shard verified, or the corruption: for shards
// read in pieces hashed beside the reading, in two halves at once, and for
// an empty shard. ReadAllInto does the same in a used buffer with room
// (into), and reads into it.
func TestVerifiedReader_ReadAll(t *testing.T) {
	const (
		mid   = 5<<20 + 3 // read in pieces hashed beside the reading
		large = 9<<20 + 3 // read in two halves at once
	)
	truncate := func(size int64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		size    int
		oldMeta bool
		into    bool
		damage  func(t *testing.T, path string)
		want    storage.CorruptKind // 0: a good read
	}{
		{name: "mid", size: mid},
		{name: "large", size: large},
		{name: "large, old metadata", size: large, oldMeta: true},
		{name: "empty", size: 0},
		{name: "mid, into a buffer", size: mid, into: true},
		{name: "large, into a buffer", size: large, into: true},
		{name: "large, old metadata, into a buffer", size: large, oldMeta: true, into: true},
		{name: "large, into a buffer, flipped last byte", size: large, into: true,
			damage: func(t *testing.T, path string) { flipByte(t, path, large-1) }, want: storage.CorruptChecksum},
		{name: "mid, flipped byte in a middle piece", size: mid,
			damage: func(t *testing.T, path string) { flipByte(t, path, 3<<20+5) }, want: storage.CorruptChecksum},
		{name: "large, flipped byte in the first half", size: large,
			damage: func(t *testing.T, path string) { flipByte(t, path, 1<<20) }, want: storage.CorruptChecksum},
		{name: "large, flipped last byte", size: large,
			damage: func(t *testing.T, path string) { flipByte(t, path, large-1) }, want: storage.CorruptChecksum},
		{name: "large, old metadata, flipped first byte", size: large, oldMeta: true,
			damage: func(t *testing.T, path string) { flipByte(t, path, 0) }, want: storage.CorruptChecksum},
		{name: "mid, truncated", size: mid, damage: truncate(2 << 20), want: storage.CorruptSize},
		{name: "large, truncated in the first half", size: large, damage: truncate(2 << 20), want: storage.CorruptSize},
		{name: "large, truncated in the second half", size: large, damage: truncate(large - 10), want: storage.CorruptSize},
		{name: "large, grown", size: large, damage: func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("more"))
			f.Close()
		}, want: storage.CorruptSize},
		{name: "empty, grown", size: 0, damage: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: storage.CorruptSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			s, _ := openStore(t, root, nil)
			data := payload(9, tt.size)
			m := commit(t, s, "v", 0, data)
			if tt.oldMeta {
				dropCRC(t, root, "v", 0)
				s, _ = openStore(t, root, nil)
			}
			r, err := s.OpenVerified("v", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tt.damage != nil {
				tt.damage(t, m.ShardLocation)
			}
			var got, buf []byte
			if tt.into {
				buf = bytes.Repeat([]byte{0xaa}, tt.size+1)[:0] // used before
				got, err = r.ReadAllInto(buf)
			} else {
				got, err = r.ReadAll()
			}
			if tt.want == 0 {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("ReadAll = %d bytes, %v; want the %d committed bytes", len(got), err, len(data))
				}
				if tt.into && &got[0] != &buf[:1][0] {
					t.Fatal("ReadAllInto read into another buffer than the one with room")
				}
				if s.Corrupted() != 0 {
					t.Fatalf("Corrupted = %d", s.Corrupted())
				}
				return
			}
			var ce *storage.CorruptError
			if !errors.As(err, &ce) || ce.Kind != tt.want || got != nil {
				t.Fatalf("ReadAll = %d bytes, %v; want a %v corruption and no bytes", len(got), err, tt.want)
			}
			if s.Corrupted() != 1 || s.Quarantined() != 1 {
				t.Fatalf("Corrupted %d, Quarantined %d; want 1 each", s.Corrupted(), s.Quarantined())
			}
		})
	}
}
