//go:build unix

package storage_test

// Symlinks planted in the store by whoever can write its root: each attack
// is reproduced, with openat2 and with the fallback walk, and nothing
// outside the store may be created, deleted, moved, read or named.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/videoshard/videoshard/storage"
)

// resolvers are the two ways a path is resolved: openat2 where the kernel
// has it, and the walk used where it does not.
var resolvers = []struct {
	name string
	walk bool
}{{"openat2", false}, {"walk", true}}

// forEachResolver runs test once per resolver.
func forEachResolver(t *testing.T, test func(t *testing.T, walk bool)) {
	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) { test(t, r.walk) })
	}
}

func symOptions(t testing.TB, root string, fsys storage.FS, walk bool) (storage.Options, *logBuffer) {
	log, lb := newLogger(t)
	o := storage.Options{Root: root, FS: fsys, Now: func() time.Time { return testNow }, Logger: log, Lock: true}
	if walk {
		o = storage.WithWalk(o)
	}
	return o, lb
}

// openSym opens a store as the worker does (with its lock).
func openSym(t testing.TB, root string, fsys storage.FS, walk bool) (*storage.Store, *logBuffer) {
	t.Helper()
	o, lb := symOptions(t, root, fsys, walk)
	s, err := storage.Open(o)
	if err != nil {
		t.Fatalf("Open(%s): %v", root, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

// bait is a directory outside the store holding what an attacker would
// like the worker to delete, move, read, overwrite or describe.
type bait struct {
	dir    string
	secret []byte // the content of every shard-like file here
	before map[string]string
}

// newBait makes the bait directory; its shard-like files hold size bytes,
// so that a size check alone cannot tell them from a real shard.
func newBait(t *testing.T, size int) *bait {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outside")
	secret := bytes.Repeat([]byte("OUTSIDE-SECRET-"), size/15+1)[:size]
	b := &bait{dir: dir, secret: secret}
	meta := fmt.Sprintf(`{"video_id": %q, "chunk_index": 0, "encoded_size": %d, "checksum_sha256": %q}`,
		"x", size, sum(secret))
	for name, data := range map[string][]byte{
		"chunk_0.shard":           secret,
		"secret.shard":            secret,
		"x_chunk_0_metadata.json": []byte(meta),
		"v_chunk_0_metadata.json": []byte(strings.Replace(meta, `"x"`, `"v"`, 1)),
		// Names the store deletes when they are its own leftovers.
		".v_chunk_0_metadata.json.tmp-0123456789abcdef": []byte("not a leftover"),
		".chunk_0.shard.tmp-0123456789abcdef":           []byte("not a leftover"),
		"sub/file":                                      []byte("not scratch"),
	} {
		writeFile(t, filepath.Join(dir, name), data)
	}
	b.before = snapshot(t, dir)
	return b
}

// snapshot maps every entry under dir to its type and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			out[rel] = "symlink to " + target
		case d.IsDir():
			out[rel] = "dir"
		default:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("%v %s", d.Type(), sum(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshotDiff lists the entries that differ between two snapshots.
func snapshotDiff(before, after map[string]string) []string {
	var diff []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diff = append(diff, k+" gone")
		} else if w != v {
			diff = append(diff, k+" changed")
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, k+" created")
		}
	}
	sort.Strings(diff)
	return diff
}

// intact fails if anything under the bait directory was created, deleted,
// moved or changed.
func (b *bait) intact(t *testing.T) {
	t.Helper()
	if diff := snapshotDiff(b.before, snapshot(t, b.dir)); len(diff) > 0 {
		t.Errorf("outside the store: %s", strings.Join(diff, ", "))
	}
}

// notNamed fails if text names the bait directory or its content (the
// secret's checksum or bytes).
func (b *bait) notNamed(t *testing.T, what, text string) {
	t.Helper()
	for _, leak := range []string{b.dir, sum(b.secret), string(b.secret[:15])} {
		if strings.Contains(text, leak) {
			t.Errorf("%s names what is outside the store (%q):\n%s", what, leak, text)
		}
	}
}

// plant replaces the entry name in root (if any, moved to aside) with a
// symlink to target.
func plant(t *testing.T, root, name, target, aside string) {
	t.Helper()
	p := filepath.Join(root, name)
	if aside != "" {
		if err := os.Rename(p, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// quarantineNotes returns every REASON.txt under the store's quarantine.
func quarantineNotes(t *testing.T, s *storage.Store) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(s.QuarantineDir(), "*", "REASON.txt"))
	var all strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(data)
	}
	return all.String()
}

// populated makes a closed store at root with chunks v/0 and v/1 (of size
// bytes) and one quarantined chunk, so that every fixed entry exists.
func populated(t *testing.T, walk bool, size int) (root string, v0 []byte) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "store")
	s, _ := openSym(t, root, nil, walk)
	v0 = payload(1, size)
	commit(t, s, "v", 0, v0)
	commit(t, s, "v", 1, payload(2, size))
	commit(t, s, "q", 0, payload(3, size))
	if err := s.Quarantine("q", 0, "test"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, v0
}

// Open refuses a store whose fixed entries or video directories are
// symlinks, says which, and touches nothing: not what the links point to
// (the old start-up deleted files through .tmp, moved them through
// metadata, created one through .lock) and not the store.
func TestOpen_RefusesPlantedSymlinks(t *testing.T) {
	tests := []struct {
		name   string
		entry  string
		target func(b *bait, root string) string
	}{
		{".tmp to a directory outside", ".tmp", func(b *bait, _ string) string { return b.dir }},
		{"metadata to a directory outside", "metadata", func(b *bait, _ string) string { return b.dir }},
		{".quarantine to a directory outside", ".quarantine", func(b *bait, _ string) string { return b.dir }},
		{".pins to a directory outside", ".pins", func(b *bait, _ string) string { return b.dir }},
		{".lock to a file outside", ".lock", func(b *bait, _ string) string { return filepath.Join(b.dir, "secret.shard") }},
		{".lock dangling", ".lock", func(b *bait, _ string) string { return filepath.Join(b.dir, "created-by-the-worker") }},
		{"video directory to a directory outside", "v", func(b *bait, _ string) string { return b.dir }},
		{"video directory to one inside the store", "w", func(_ *bait, root string) string { return filepath.Join(root, "v") }},
		{"video directory relative and dangling", "w", func(*bait, string) string { return "../outside-nothing" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachResolver(t, func(t *testing.T, walk bool) {
				root, _ := populated(t, walk, 100)
				b := newBait(t, 100)
				plant(t, root, tt.entry, tt.target(b, root), filepath.Join(t.TempDir(), "aside"))
				before := snapshot(t, root)

				o, logs := symOptions(t, root, nil, walk)
				s, err := storage.Open(o)
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded on a store with a planted symlink")
				}
				if !errors.Is(err, storage.ErrSymlink) {
					t.Errorf("Open error %v does not wrap ErrSymlink", err)
				}
				msg := err.Error()
				if want := filepath.Join(root, tt.entry); !strings.Contains(msg, want+" is a symlink") {
					t.Errorf("Open error does not say %s is a symlink: %s", want, msg)
				}
				b.notNamed(t, "Open's error", msg)
				b.notNamed(t, "the log", logs.String())
				b.intact(t)
				if diff := snapshotDiff(before, snapshot(t, root)); len(diff) > 0 {
					t.Errorf("the refused store was changed: %s", strings.Join(diff, ", "))
				}
			})
		})
	}
}

// Symlinks inside the store's directories are never followed either:
// leftovers that are links are removed as links, metadata and shards that
// are links are quarantined as links, and nothing behind them is indexed.
func TestOpen_SymlinksInsideDirectoriesAreNotFollowed(t *testing.T) {
	forEachResolver(t, func(t *testing.T, walk bool) {
		root, v0 := populated(t, walk, 100)
		b := newBait(t, 100)
		for link, target := range map[string]string{
			".tmp/dir":             b.dir,
			".tmp/sub/deeper/file": filepath.Join(b.dir, "secret.shard"),
			"metadata/.v_chunk_0_metadata.json.tmp-1": filepath.Join(b.dir, ".v_chunk_0_metadata.json.tmp-0123456789abcdef"),
			"metadata/x_chunk_0_metadata.json":        filepath.Join(b.dir, "x_chunk_0_metadata.json"),
			"x/chunk_0.shard":                         filepath.Join(b.dir, "chunk_0.shard"),
			"v/.chunk_1.shard.tmp-1":                  filepath.Join(b.dir, ".chunk_0.shard.tmp-0123456789abcdef"),
			"v/.chunk_0.shard.bak-1":                  filepath.Join(b.dir, "chunk_0.shard"),
		} {
			p := filepath.Join(root, link)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
		s, logs := openSym(t, root, nil, walk)
		assertCommitted(t, s, "v", 0, v0)
		assertNotFound(t, s, "x", 0)
		b.intact(t)
		b.notNamed(t, "the log", logs.String())
		b.notNamed(t, "REASON.txt", quarantineNotes(t, s))
		for _, gone := range []string{".tmp/dir", ".tmp/sub", "metadata/x_chunk_0_metadata.json", "x/chunk_0.shard", "v/.chunk_0.shard.bak-1"} {
			if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s is still in the store: %v", gone, err)
			}
		}
		// The links themselves went to the quarantine, as links.
		links, _ := filepath.Glob(filepath.Join(s.QuarantineDir(), "*", "*"))
		var quarantinedLinks int
		for _, l := range links {
			if fi, err := os.Lstat(l); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				quarantinedLinks++
			}
		}
		if quarantinedLinks != 2 {
			t.Errorf("%d symlinks quarantined, want 2 (the metadata and the shard of x/0)", quarantinedLinks)
		}
	})
}

// hookFS runs a function once, just before the first operation matching
// rule, to stand for an attacker acting at that moment.
type hookFS struct {
	storage.OSFS
	mu     sync.Mutex
	rule   func(op, path string) bool
	action func()
}

func (h *hookFS) at(op, path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rule != nil && h.rule(op, path) {
		h.rule = nil
		h.action()
	}
}

func (h *hookFS) Mkdir(dir *storage.Dir, name string, perm fs.FileMode) error {
	h.at("mkdir", filepath.Join(dir.Path(), name))
	return h.OSFS.Mkdir(dir, name, perm)
}

func (h *hookFS) SyncDir(dir *storage.Dir) error {
	h.at("syncdir", dir.Path())
	return h.OSFS.SyncDir(dir)
}

func (h *hookFS) Rename(olddir *storage.Dir, oldname string, newdir *storage.Dir, newname string) error {
	h.at("rename", filepath.Join(newdir.Path(), newname))
	return h.OSFS.Rename(olddir, oldname, newdir, newname)
}

// A symlink planted after Open checked the layout, before it used the
// entry, is refused all the same.
func TestOpen_SymlinkPlantedDuringOpen(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		rule  func(op, path string) bool
	}{
		{".tmp before it is opened", ".tmp", on("mkdir", "/.tmp")},
		{"metadata before it is opened", "metadata", on("mkdir", "/metadata")},
		{"video directory before the scan", "v", on("syncdir", "/store")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachResolver(t, func(t *testing.T, walk bool) {
				root, _ := populated(t, walk, 100)
				b := newBait(t, 100)
				hook := &hookFS{rule: tt.rule, action: func() {
					plant(t, root, tt.entry, b.dir, filepath.Join(t.TempDir(), "aside"))
				}}
				o, logs := symOptions(t, root, hook, walk)
				s, err := storage.Open(o)
				if hook.rule != nil {
					t.Fatal("the attack point was not reached")
				}
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, storage.ErrSymlink) || !strings.Contains(err.Error(), filepath.Join(root, tt.entry)) {
					t.Errorf("Open error = %v, want ErrSymlink naming %s", err, tt.entry)
				}
				b.notNamed(t, "Open's error", err.Error())
				b.notNamed(t, "the log", logs.String())
				b.intact(t)
			})
		})
	}
}

// .tmp or metadata swapped for a symlink while the store is open: the
// store keeps using the directories it opened, so nothing lands outside;
// a commit whose metadata directory was swapped fails rather than leave
// its metadata elsewhere than the store's metadata/.
func TestSymlink_FixedDirSwappedWhileOpen(t *testing.T) {
	forEachResolver(t, func(t *testing.T, walk bool) {
		t.Run(".tmp", func(t *testing.T) {
			root, _ := populated(t, walk, 100)
			b := newBait(t, 100)
			s, logs := openSym(t, root, nil, walk)
			plant(t, root, ".tmp", b.dir, filepath.Join(root, ".tmp-aside"))
			if err := s.CheckWritable(); err != nil {
				t.Fatalf("CheckWritable: %v", err)
			}
			data := payload(9, 100)
			commit(t, s, "v", 2, data)
			assertCommitted(t, s, "v", 2, data)
			b.intact(t)
			b.notNamed(t, "the log", logs.String())
		})
		// Other processes (ffmpeg) open scratch files and pending shards by
		// the paths the store hands out: a .tmp swapped for a symlink does
		// not send what they write outside.
		t.Run(".tmp for other processes", func(t *testing.T) {
			root, _ := populated(t, walk, 100)
			b := newBait(t, 100)
			s, _ := openSym(t, root, nil, walk)
			plant(t, root, ".tmp", b.dir, filepath.Join(root, ".tmp-aside"))
			tmp, err := s.CreateTemp("spool-*")
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Create("v", 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{tmp.Path(), p.Path()} {
				if out, err := exec.Command("/bin/sh", "-c", `printf 'from a child' >"$0"`, path).CombinedOutput(); err != nil {
					t.Fatalf("a child writing %s: %v\n%s", path, err, out)
				}
			}
			if got, err := io.ReadAll(tmp); err != nil || string(got) != "from a child" {
				t.Errorf("the scratch file holds %q, %v; want what the child wrote", got, err)
			}
			if _, err := p.Commit(storage.Metadata{}); err != nil {
				t.Fatalf("Commit of the pending shard a child wrote: %v", err)
			}
			assertCommitted(t, s, "v", 3, []byte("from a child"))
			if err := tmp.Remove(); err != nil {
				t.Fatal(err)
			}
			b.intact(t)
		})
		t.Run("metadata", func(t *testing.T) {
			root, v0 := populated(t, walk, 100)
			b := newBait(t, 100)
			s, logs := openSym(t, root, nil, walk)
			plant(t, root, "metadata", b.dir, filepath.Join(root, ".metadata-aside"))
			p, err := s.Create("v", 2)
			if err != nil {
				t.Fatal(err)
			}
			p.Write(payload(9, 100))
			_, err = p.Commit(storage.Metadata{})
			if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "metadata")+" was replaced during the commit") {
				t.Fatalf("Commit = %v, want a refusal naming the replaced metadata directory", err)
			}
			assertNotFound(t, s, "v", 2)
			if _, err := os.Lstat(filepath.Join(root, "v", "chunk_2.shard")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the failed commit left its shard: %v", err)
			}
			assertCommitted(t, s, "v", 0, v0)
			// Quarantine moves the metadata the store opened, not what the link shows.
			if err := s.Quarantine("v", 0, "test"); err != nil {
				t.Fatal(err)
			}
			b.intact(t)
			b.notNamed(t, "Commit's error", err.Error())
			b.notNamed(t, "the log", logs.String())
			b.notNamed(t, "REASON.txt", quarantineNotes(t, s))
			if _, err := storage.Open(storage.Options{Root: root}); !errors.Is(err, storage.ErrSymlink) {
				t.Errorf("reopening = %v, want ErrSymlink", err)
			}
		})
	})
}

// A video directory swapped for a symlink between two operations: the
// commit through it is refused, nothing is written outside.
func TestSymlink_VideoDirSwappedBeforeCommit(t *testing.T) {
	forEachResolver(t, func(t *testing.T, walk bool) {
		for _, chunk := range []int{0, 2} { // replace, new
			t.Run(fmt.Sprint("chunk ", chunk), func(t *testing.T) {
				root, v0 := populated(t, walk, 100)
				b := newBait(t, 100)
				s, logs := openSym(t, root, nil, walk)
				p, err := s.Create("v", chunk)
				if err != nil {
					t.Fatal(err)
				}
				p.Write(payload(9, 100))
				plant(t, root, "v", b.dir, filepath.Join(root, ".v-aside"))
				_, err = p.Commit(storage.Metadata{})
				if !errors.Is(err, storage.ErrSymlink) {
					t.Fatalf("Commit through a symlinked video directory = %v, want ErrSymlink", err)
				}
				b.intact(t)
				b.notNamed(t, "Commit's error", err.Error())
				b.notNamed(t, "the log", logs.String())
				assertNoScratch(t, root)
				if m, err := s.Lookup("v", 0); err != nil || m.ChecksumSHA256 != sum(v0) {
					t.Errorf("v/0 after the refused commit: %+v, %v", m, err)
				}
				if chunk == 2 {
					assertNotFound(t, s, "v", 2)
				}
			})
		}
	})
}

// The video directory swapped for a symlink in the middle of a commit,
// after the store opened it and before the shard's rename: the shard goes
// into the directory the store opened (wherever that now is, never through
// the link), the swap is noticed before the commit point, and the commit
// is undone.
func TestSymlink_VideoDirSwappedDuringCommit(t *testing.T) {
	forEachResolver(t, func(t *testing.T, walk bool) {
		for _, chunk := range []int{0, 2} { // replace, new
			t.Run(fmt.Sprint("chunk ", chunk), func(t *testing.T) {
				root, v0 := populated(t, walk, 100)
				b := newBait(t, 100)
				aside := filepath.Join(root, ".v-aside")
				hook := &hookFS{
					rule:   on("rename", fmt.Sprintf("/v/chunk_%d.shard", chunk)),
					action: func() { plant(t, root, "v", b.dir, aside) },
				}
				s, logs := openSym(t, root, hook, walk)
				p, err := s.Create("v", chunk)
				if err != nil {
					t.Fatal(err)
				}
				p.Write(payload(9, 100))
				_, err = p.Commit(storage.Metadata{})
				if hook.rule != nil {
					t.Fatal("the attack point was not reached")
				}
				if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "v")+" was replaced during the commit (by a symlink)") {
					t.Fatalf("Commit = %v, want it undone as the video directory was replaced", err)
				}
				b.intact(t)
				b.notNamed(t, "Commit's error", err.Error())
				b.notNamed(t, "the log", logs.String())
				assertNoScratch(t, root)
				// Undone in the directory the store had opened.
				got, rerr := os.ReadFile(filepath.Join(aside, fmt.Sprintf("chunk_%d.shard", chunk)))
				switch {
				case chunk == 0 && (rerr != nil || !bytes.Equal(got, v0)):
					t.Errorf("the replaced version was not restored: %v", rerr)
				case chunk == 2 && !errors.Is(rerr, fs.ErrNotExist):
					t.Errorf("the undone shard is still there: %v", rerr)
				}
				if chunk == 2 {
					assertNotFound(t, s, "v", 2)
				}
			})
		}
	})
}

// A read through a video directory swapped for a symlink to a file of the
// right size: the old store opened it, hashed it, named its hash and moved
// it into the quarantine. Now the shard is corrupt for what it is (a path
// through a symlink), only the metadata is quarantined, and the outside
// file is neither read, moved nor described.
func TestSymlink_ReadThroughSwappedVideoDir(t *testing.T) {
	forEachResolver(t, func(t *testing.T, walk bool) {
		for _, via := range []string{"OpenShard", "Scrub"} {
			t.Run(via, func(t *testing.T) {
				const size = 4096
				root, _ := populated(t, walk, size)
				b := newBait(t, size)
				s, logs := openSym(t, root, nil, walk)
				plant(t, root, "v", b.dir, filepath.Join(root, ".v-aside"))
				victim := filepath.Join(b.dir, "chunk_0.shard")
				// An atime before the mtime: any read moves it (relatime too).
				old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
				if err := os.Chtimes(victim, old, time.Now()); err != nil {
					t.Fatal(err)
				}

				var texts []string
				switch via {
				case "OpenShard":
					_, _, err := s.OpenShard("v", 0)
					var ce *storage.CorruptError
					if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "symlink") {
						t.Fatalf("OpenShard through a symlink = %v, want a CorruptError saying so", err)
					}
					qerr := s.QuarantineVersion(ce.Metadata, err.Error())
					if !errors.Is(qerr, storage.ErrSymlink) || !strings.Contains(qerr.Error(), filepath.Join(root, "v", "chunk_0.shard")+" not moved") {
						t.Errorf("QuarantineVersion = %v, want it to say the shard was not moved", qerr)
					}
					texts = append(texts, err.Error(), fmt.Sprint(qerr))
				case "Scrub":
					rep, err := s.Scrub(t.Context(), storage.ScrubOptions{})
					if len(rep.Corrupt) != 2 {
						t.Fatalf("Scrub found %+v, want v/0 and v/1 corrupt", rep.Corrupt)
					}
					for _, c := range rep.Corrupt {
						if !strings.Contains(c.Reason, "symlink") {
							t.Errorf("Scrub reason %q does not say symlink", c.Reason)
						}
						texts = append(texts, c.Reason)
					}
					if !errors.Is(err, storage.ErrSymlink) {
						t.Errorf("Scrub error = %v, want it to say the shards were not moved", err)
					}
					texts = append(texts, fmt.Sprint(err))
				}
				// Before intact, which reads it.
				var st unix.Stat_t
				if err := unix.Stat(victim, &st); err != nil {
					t.Fatal(err)
				}
				if at := time.Unix(st.Atim.Unix()); !at.Equal(old) {
					t.Errorf("the file behind the symlink was read (atime %v)", at)
				}
				assertNotFound(t, s, "v", 0)
				b.intact(t)
				for _, text := range append(texts, logs.String(), quarantineNotes(t, s)) {
					b.notNamed(t, via+"'s report", text)
				}
			})
		}
	})
}

// The video directory swapped back and forth with a symlink while commits
// run concurrently (the old store put 41 of 480 acknowledged shards
// outside): a commit either fails or its shard is inside the store, and
// nothing is ever created outside.
func TestSymlink_VideoDirSwappedDuringConcurrentCommits(t *testing.T) {
	forEachResolver(t, func(t *testing.T, walk bool) {
		root, _ := populated(t, walk, 100)
		b := newBait(t, 100)
		s, _ := openSym(t, root, nil, walk)
		const writers, perWriter = 4, 40

		done := make(chan struct{})
		attacker := make(chan int)
		go func() {
			// Bounded in count as well as by the writers' end.
			swaps := 0
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-done:
					attacker <- swaps
					return
				default:
				}
				aside := filepath.Join(root, fmt.Sprintf(".v-aside-%d", i))
				v := filepath.Join(root, "v")
				if os.Rename(v, aside) != nil {
					continue
				}
				if os.Symlink(b.dir, v) == nil {
					swaps++
					os.Remove(v)
				}
				os.Rename(aside, v) // fails if a writer made a new v meanwhile
			}
			attacker <- swaps
		}()

		type acked struct {
			chunk int
			sum   string
		}
		var mu sync.Mutex
		var ok []acked
		var failed int
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					n := 10 + w*perWriter + i
					data := []byte(fmt.Sprintf("chunk %d of the concurrent test", n))
					p, err := s.Create("v", n)
					if err != nil {
						t.Error(err)
						return
					}
					p.Write(data)
					m, err := p.Commit(storage.Metadata{})
					mu.Lock()
					if err == nil {
						ok = append(ok, acked{n, m.ChecksumSHA256})
					} else {
						failed++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(done)
		swaps := <-attacker
		t.Logf("%d swaps; %d commits acknowledged, %d refused", swaps, len(ok), failed)

		b.intact(t)
		// Every acknowledged shard is a file inside the store.
		inside := map[string]bool{}
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(path, ".shard") {
				data, _ := os.ReadFile(path)
				inside[sum(data)] = true
			}
			return nil
		})
		for _, a := range ok {
			if !inside[a.sum] {
				t.Errorf("acknowledged chunk %d is nowhere in the store", a.chunk)
			}
		}
	})
}
