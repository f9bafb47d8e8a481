package storage_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// commitMeta commits data as a chunk with the encode fields of meta.
func commitMeta(t testing.TB, s *storage.Store, video string, chunk int, data []byte, meta storage.Metadata) storage.Metadata {
	t.Helper()
	p, err := s.Create(video, chunk)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if _, err := p.Write(data); err != nil {
		t.Fatal(err)
	}
	m, err := p.Commit(meta)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// openKind opens root with an index of kind and a clock that ticks a
// second a call, closing it at the end of the test.
func openKind(t testing.TB, root string, kind storage.IndexKind) (*storage.Store, *logBuffer) {
	t.Helper()
	log, lb := newLogger(t)
	var tick atomic.Int64
	s, err := storage.Open(storage.Options{Root: root, Index: kind, Logger: log,
		Now: func() time.Time { return testNow.Add(time.Duration(tick.Add(1)) * time.Second) }})
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", root, kind, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

var (
	codecs   = []string{"", "libx264", "libvpx-vp9"}
	encoders = []string{"simulated", "ffmpeg"}
)

// randomStore commits random chunks into root and closes the store, leaving
// a clean SQLite index.
func randomStore(t *testing.T, rng *rand.Rand, root string) {
	s, _ := openKind(t, root, storage.IndexSQLite)
	for range 10 + rng.IntN(40) {
		video := fmt.Sprintf("v%d", rng.IntN(5))
		commitMeta(t, s, video, rng.IntN(12), payload(byte(rng.IntN(256)), 1+rng.IntN(300)), storage.Metadata{
			Encoder: encoders[rng.IntN(len(encoders))], VideoCodec: codecs[rng.IntN(len(codecs))]})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// tear damages root the way crashes and operators do: one of a shard without
// metadata, metadata without a shard, leftover temporary files, a truncated
// database, a database of another schema version, or nothing.
func tear(t *testing.T, rng *rand.Rand, root string) string {
	videos, _ := filepath.Glob(filepath.Join(root, "v*"))
	vd := videos[rng.IntN(len(videos))]
	shards, _ := filepath.Glob(filepath.Join(vd, "chunk_*.shard"))
	db := filepath.Join(root, ".index", "index.db")
	switch what := rng.IntN(6); what {
	case 0:
		writeFile(t, filepath.Join(vd, "chunk_99.shard"), []byte("orphan"))
		return "shard without metadata"
	case 1:
		if err := os.Remove(shards[rng.IntN(len(shards))]); err != nil {
			t.Fatal(err)
		}
		return "metadata without shard"
	case 2:
		writeFile(t, filepath.Join(vd, ".chunk_1.shard.tmp-0123456789abcdef"), []byte("partial"))
		writeFile(t, filepath.Join(root, "metadata", ".x_chunk_1_metadata.json.tmp-0123456789abcdef"), []byte("{"))
		return "temporary files"
	case 3:
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(db, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		return "truncated database"
	case 4:
		d, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec("PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		d.Close()
		return "database of another schema version"
	}
	return "nothing"
}

// relative strips root from the locations of ms, to compare two stores.
func relative(root string, ms []storage.Metadata) []storage.Metadata {
	for i := range ms {
		ms[i].ShardLocation = strings.TrimPrefix(ms[i].ShardLocation, root)
	}
	return ms
}

func flatPage(root string, p storage.Page) []storage.Metadata {
	var out []storage.Metadata
	for _, v := range p.Videos {
		out = append(out, v.Chunks...)
	}
	return relative(root, out)
}

// TestIndex_SQLiteMatchesMemory: over random stores, torn in random ways,
// the SQLite index after Open (used as it was, or rebuilt) answers Lookup
// and ListPage (every filter, limit and position) as the memory index built
// from the same files does.
func TestIndex_SQLiteMatchesMemory(t *testing.T) {
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 7))
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			randomStore(t, rng, src)
			what := tear(t, rng, src)
			memRoot, sqlRoot := filepath.Join(t.TempDir(), "mem"), filepath.Join(t.TempDir(), "sql")
			for _, dst := range []string{memRoot, sqlRoot} {
				if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
					t.Fatal(err)
				}
			}
			mem, _ := openKind(t, memRoot, storage.IndexMemory)
			sq, _ := openKind(t, sqlRoot, storage.IndexSQLite)
			if mu, su := mem.Usage(), sq.Usage(); mu != su {
				t.Errorf("%s: Usage memory %+v, sqlite %+v", what, mu, su)
			}
			for v := range 6 {
				for n := range 13 {
					mm, merr := mem.Lookup(fmt.Sprintf("v%d", v), n)
					sm, serr := sq.Lookup(fmt.Sprintf("v%d", v), n)
					mm.ShardLocation = strings.TrimPrefix(mm.ShardLocation, mem.Root())
					sm.ShardLocation = strings.TrimPrefix(sm.ShardLocation, sq.Root())
					if !reflect.DeepEqual(mm, sm) || (merr == nil) != (serr == nil) {
						t.Fatalf("%s: Lookup(v%d, %d): memory %+v, %v; sqlite %+v, %v", what, v, n, mm, merr, sm, serr)
					}
				}
			}
			for range 200 {
				opts := storage.PageOptions{Limit: rng.IntN(6), Brief: rng.IntN(2) == 0}
				if rng.IntN(3) == 0 {
					opts.VideoID = fmt.Sprintf("v%d", rng.IntN(6))
				}
				if rng.IntN(2) == 0 {
					opts.After = &storage.ChunkRef{VideoID: fmt.Sprintf("v%d", rng.IntN(6)), ChunkIndex: rng.IntN(13)}
				}
				if rng.IntN(2) == 0 {
					opts.Filter.VideoCodec = codecs[rng.IntN(len(codecs))]
				}
				if rng.IntN(2) == 0 {
					opts.Filter.Encoder = encoders[rng.IntN(len(encoders))]
				}
				if rng.IntN(2) == 0 {
					opts.Filter.ProcessedAfter = testNow.Add(time.Duration(rng.IntN(40)) * time.Second)
				}
				if rng.IntN(2) == 0 {
					opts.Filter.ProcessedBefore = testNow.Add(time.Duration(rng.IntN(60)) * time.Second)
				}
				mp, merr := mem.ListPage(opts)
				sp, serr := sq.ListPage(opts)
				if merr != nil || serr != nil {
					t.Fatalf("%s: ListPage(%+v): %v, %v", what, opts, merr, serr)
				}
				if got, want := flatPage(sq.Root(), sp), flatPage(mem.Root(), mp); !reflect.DeepEqual(got, want) || sp.More != mp.More {
					t.Fatalf("%s: ListPage(%+v):\nsqlite %+v more=%v\nmemory %+v more=%v", what, opts, got, sp.More, want, mp.More)
				}
			}
		})
	}
}

// TestIndex_UncleanIsRebuilt: a store whose index was not closed (a crash)
// is rebuilt from the metadata files at the next Open, and then lists what
// the files hold, even what the old database never saw.
func TestIndex_UncleanIsRebuilt(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openKind(t, root, storage.IndexSQLite)
	commit(t, s, "v", 0, []byte("zero"))
	// Not closed: as after kill -9. A chunk written behind the index's back
	// by a copy of the store's layout shows it is read from the files.
	other := filepath.Join(t.TempDir(), "other")
	o, _ := openKind(t, other, storage.IndexMemory)
	commit(t, o, "w", 3, []byte("three"))
	for _, f := range []string{"w/chunk_3.shard", "metadata/w_chunk_3_metadata.json"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
		data, err := os.ReadFile(filepath.Join(other, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, f), []byte(strings.ReplaceAll(string(data), o.Root(), s.Root())))
	}
	if _, err := os.Stat(filepath.Join(root, ".index", "clean")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("clean marker of an open store: %v, want none", err)
	}
	r, lb := openKind(t, root, storage.IndexSQLite)
	if !strings.Contains(lb.String(), "not closed cleanly") {
		t.Errorf("reopen did not log the rebuild:\n%s", lb)
	}
	assertCommitted(t, r, "v", 0, []byte("zero"))
	assertCommitted(t, r, "w", 3, []byte("three"))
	if u := r.Usage(); u != (storage.Usage{Chunks: 2, Bytes: 9}) {
		t.Errorf("Usage %+v, want 2 chunks of 9 bytes", u)
	}
	// Closed cleanly, it is used as it is.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	c, lb := openKind(t, root, storage.IndexSQLite)
	if strings.Contains(lb.String(), "rebuilding") {
		t.Errorf("a clean index was rebuilt:\n%s", lb)
	}
	assertCommitted(t, c, "w", 3, []byte("three"))
	if u := c.Usage(); u != (storage.Usage{Chunks: 2, Bytes: 9}) {
		t.Errorf("Usage after a clean reopen %+v, want 2 chunks of 9 bytes", u)
	}
}

// TestIndex_ChangedWhileClosed: a file removed while the store was closed
// makes Open rebuild (the index would list a chunk without its shard).
func TestIndex_ChangedWhileClosed(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openKind(t, root, storage.IndexSQLite)
	commit(t, s, "v", 0, []byte("zero"))
	commit(t, s, "v", 1, []byte("one"))
	s.Close()
	if err := os.Remove(filepath.Join(root, "v", "chunk_1.shard")); err != nil {
		t.Fatal(err)
	}
	r, lb := openKind(t, root, storage.IndexSQLite)
	if !strings.Contains(lb.String(), "changed since the index was closed") {
		t.Errorf("no rebuild logged:\n%s", lb)
	}
	assertNotFound(t, r, "v", 1)
	assertCommitted(t, r, "v", 0, []byte("zero"))
}

// TestIndex_IndexDirIsFixed: .index is never a video, and a symlink in its
// place is refused like the store's other directories.
func TestIndex_IndexDirIsFixed(t *testing.T) {
	if err := storage.ValidateVideoID(".index"); err == nil {
		t.Fatal(".index is a valid video id")
	}
	root := filepath.Join(t.TempDir(), "store")
	os.MkdirAll(root, 0o755)
	if err := os.Symlink(t.TempDir(), filepath.Join(root, ".index")); err != nil {
		t.Fatal(err)
	}
	_, err := storage.Open(storage.Options{Root: root})
	if !errors.Is(err, storage.ErrSymlink) {
		t.Fatalf("Open with .index a symlink: %v, want ErrSymlink", err)
	}
}

// TestIndex_RootWithURICharacters: the database is opened by an SQLite
// URI, and a root whose path holds '?', '#' or '%' must still name the
// store's own .index/index.db: nothing is created beside the root, and
// the store reopens.
func TestIndex_RootWithURICharacters(t *testing.T) {
	for _, name := range []string{"q?x", "h#x", "p%41x", "p%zz", "a b", "x?_pragma=foo&y=1"} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, name)
			s, err := storage.Open(storage.Options{Root: root})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			commit(t, s, "v", 0, []byte("zero"))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(base)
			if len(entries) != 1 || entries[0].Name() != name {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("beside the root: %q, want only %q", names, name)
			}
			if _, err := os.Stat(filepath.Join(root, ".index", "index.db")); err != nil {
				t.Fatalf("the store's own database: %v", err)
			}
			r, lb := openStore(t, root, nil)
			if strings.Contains(lb.String(), "rebuilding") {
				t.Errorf("a clean index was rebuilt:\n%s", lb)
			}
			assertCommitted(t, r, "v", 0, []byte("zero"))
		})
	}
}

// TestRecencyAndUse: for both indexes, reads move a chunk to the end of
// LeastRecentlyRead (scrubs do not), an open reader marks it read in use,
// and a Pending marks it written.
func TestRecencyAndUse(t *testing.T) {
	for _, kind := range []storage.IndexKind{storage.IndexMemory, storage.IndexSQLite} {
		t.Run(string(kind), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			s, _ := openKind(t, root, kind)
			for n := range 3 {
				commit(t, s, "v", n, []byte{byte(n)})
			}
			lru := func() []int {
				ms, err := s.LeastRecentlyRead(10)
				if err != nil {
					t.Fatal(err)
				}
				var out []int
				for _, m := range ms {
					out = append(out, m.ChunkIndex)
				}
				return out
			}
			if got := fmt.Sprint(lru()); got != "[0 1 2]" {
				t.Fatalf("before any read: %s, want commit order [0 1 2]", got)
			}
			r, err := s.OpenVerified("v", 0)
			if err != nil {
				t.Fatal(err)
			}
			if reading, writing := s.InUse("v", 0); !reading || writing {
				t.Errorf("InUse with an open reader: %v, %v; want true, false", reading, writing)
			}
			r.Close()
			if reading, _ := s.InUse("v", 0); reading {
				t.Error("InUse after the reader's Close: still reading")
			}
			if got := fmt.Sprint(lru()); got != "[1 2 0]" {
				t.Fatalf("after reading 0: %s, want [1 2 0]", got)
			}
			f, _, err := s.OpenShard("v", 1)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if _, err := s.Scrub(t.Context(), storage.ScrubOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(lru()); got != "[2 0 1]" {
				t.Fatalf("after reading 1 and a scrub: %s, want [2 0 1]", got)
			}
			p, err := s.Create("v", 2)
			if err != nil {
				t.Fatal(err)
			}
			if _, writing := s.InUse("v", 2); !writing {
				t.Error("InUse with a Pending: not writing")
			}
			p.Abort()
			if _, writing := s.InUse("v", 2); writing {
				t.Error("InUse after Abort: still writing")
			}
			if u := s.Usage(); u != (storage.Usage{Chunks: 3, Bytes: 3}) {
				t.Errorf("Usage %+v, want 3 chunks of 3 bytes", u)
			}
			if kind == storage.IndexSQLite { // recency survives a restart
				s.Close()
				s, _ = openKind(t, root, kind)
				if got := fmt.Sprint(lru()); got != "[2 0 1]" {
					t.Fatalf("after a restart: %s, want [2 0 1]", got)
				}
			}
		})
	}
}

// The SQLite index's cache of brief listings never serves a listing a
// write has changed: after commits and deletes, and while they race with
// listings, a brief listing of the video is what the memory index says.
func TestIndex_BriefCacheFollowsWrites(t *testing.T) {
	s, _ := openKind(t, filepath.Join(t.TempDir(), "store"), storage.IndexSQLite)
	brief := func() string {
		p, err := s.ListPage(storage.PageOptions{VideoID: "v", Brief: true})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range p.Videos {
			for _, m := range v.Chunks {
				out = append(out, fmt.Sprintf("%d:%d", m.ChunkIndex, m.EncodedSize))
			}
		}
		return strings.Join(out, " ")
	}
	commit(t, s, "v", 0, []byte("a"))
	if got := brief(); got != "0:1" {
		t.Fatalf("first listing: %q", got)
	}
	commit(t, s, "v", 1, []byte("bb"))
	commit(t, s, "v", 0, []byte("ccc")) // replaced
	if got := brief(); got != "0:3 1:2" {
		t.Fatalf("after commits: %q", got)
	}
	if _, err := s.Delete("v", 0); err != nil {
		t.Fatal(err)
	}
	if got := brief(); got != "1:2" {
		t.Fatalf("after a delete: %q", got)
	}
	// Paging from the cache is the query's.
	p, err := s.ListPage(storage.PageOptions{VideoID: "v", Brief: true, After: &storage.ChunkRef{VideoID: "v", ChunkIndex: 1}})
	if err != nil || len(p.Videos) != 0 || p.More {
		t.Fatalf("page after the last chunk: %+v, %v", p, err)
	}

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 50 {
				commit(t, s, "v", 2+w*50+n, []byte{byte(n)})
				brief()
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(brief(), ":"); got != 201 {
		t.Fatalf("after racing commits and listings, the listing holds %d chunks, want 201", got)
	}
}

// TestIndex_OverwrittenInPlaceIsRebuilt: a database another process wrote
// over while the store was closed (same size, clean marker kept) is not
// trusted: Open rebuilds it from the metadata files, saying why, and
// every chunk reads back.
func TestIndex_OverwrittenInPlaceIsRebuilt(t *testing.T) {
	root := t.TempDir()
	s, _ := openKind(t, root, storage.IndexSQLite)
	for i := range 20 {
		commitMeta(t, s, "v", i, payload(byte(i), 100+i), storage.Metadata{Encoder: "simulated"})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(root, ".index", "index.db")
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xA5}, 200)
	for off := int64(4096); off < fi.Size(); off += 4096 { // the header left whole: the database opens
		if _, err := f.WriteAt(junk, off+100); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	s, logs := openKind(t, root, storage.IndexSQLite)
	if !strings.Contains(logs.String(), "written or replaced since it was closed") {
		t.Errorf("Open did not say why it rebuilt the index:\n%s", logs.String())
	}
	for i := range 20 {
		if _, err := s.Lookup("v", i); err != nil {
			t.Fatalf("chunk %d after the rebuild: %v", i, err)
		}
	}
}
