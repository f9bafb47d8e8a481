//go:build unix

package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Paths beneath a Dir resolve without following a symlink at any position,
// and cannot be made to leave it, with openat2 and with the walk alike.
func TestDirOpen_NoSymlinkNoEscape(t *testing.T) {
	for _, walk := range []bool{false, true} {
		name := "openat2"
		if walk {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			outside := t.TempDir()
			for _, p := range []string{"a/b/c", filepath.Join(outside, "b/c")} {
				if !filepath.IsAbs(p) {
					p = filepath.Join(root, p)
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for link, target := range map[string]string{
				"la":     "a",                      // inside, relative
				"a/lb":   "b",                      // inside, one level down
				"a/b/lc": "c",                      // the final element
				"out":    outside,                  // out of the root
				"a/up":   "..",                     // up to the root
				"a/abs":  filepath.Join(root, "a"), // absolute, inside
			} {
				if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
					t.Fatal(err)
				}
			}
			res := &resolver{}
			if walk {
				res.forceWalk()
			}
			d, err := openRootDir(root, res)
			if err != nil {
				t.Fatal(err)
			}
			defer d.close()

			if f, _, err := d.openFile("a/b/c", os.O_RDONLY, 0); err != nil {
				t.Fatalf("openFile(a/b/c): %v", err)
			} else {
				f.Close()
			}
			for _, rel := range []string{"la/b/c", "a/lb/c", "a/b/lc", "out/b/c", "a/up/a/b/c", "a/abs/b/c"} {
				if _, _, err := d.openFile(rel, os.O_RDONLY, 0); !errors.Is(err, ErrSymlink) {
					t.Errorf("openFile(%s) = %v, want ErrSymlink", rel, err)
				}
			}
			for _, rel := range []string{"la", "out", "a/up", "a/abs"} {
				if _, err := d.openDir(rel); !errors.Is(err, ErrSymlink) {
					t.Errorf("openDir(%s) = %v, want ErrSymlink", rel, err)
				}
			}
			for _, rel := range []string{"", ".", "..", "../x", "a/../a/b/c", "/etc/passwd", "a//b/c", "a/./b/c", "a/b/c/"} {
				if _, _, err := d.openFile(rel, os.O_RDONLY, 0); err == nil || isSymlinkErr(err) {
					t.Errorf("openFile(%q) = %v, want it refused as malformed", rel, err)
				}
			}
			// Creating over a symlink fails (O_EXCL); creating through one is refused.
			b, err := d.openDir("a/b")
			if err != nil {
				t.Fatal(err)
			}
			defer b.close()
			if _, err := b.create("lc", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
				t.Errorf("create over a symlink = %v, want ErrExist", err)
			}
			if _, _, err := d.openFile("out/new", os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, ErrSymlink) {
				t.Errorf("openFile(out/new, O_CREATE) = %v, want ErrSymlink", err)
			}
			if _, err := os.Lstat(filepath.Join(outside, "new")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a file was created outside the root: %v", err)
			}
			// Renames and removals act on the link, never on its target.
			if err := b.rename("lc", b, "lc2"); err != nil {
				t.Fatal(err)
			}
			if err := d.remove("out"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(outside, "b", "c")); err != nil {
				t.Errorf("removing a link removed its target: %v", err)
			}
			if fi, err := b.lstat("lc2"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("lstat(lc2) = %v, %v; want the symlink itself", fi, err)
			}
			if !walk && res.walk.Load() {
				t.Log("openat2 is not available here: the walk was used")
			}
		})
	}
}

// readFile, which Open reads every metadata file with, reads regular files
// whole (whatever the buffer it is given), refuses one over max and
// symlinks, and reads nothing of a FIFO (which would block) or a
// directory.
func TestDirReadFile(t *testing.T) {
	root := t.TempDir()
	const max = 100
	files := map[string]int{"empty": 0, "small": 10, "max": max, "over": max + 1, "big": 1 << 16}
	for name, n := range files {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte('a' + i%26)
		}
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("small", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, walk := range []bool{false, true} {
		res := &resolver{}
		if walk {
			res.forceWalk()
		}
		d, err := openRootDir(root, res)
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		for _, tc := range []struct {
			name, rel string
			max       int
			buf       []byte
			wantLen   int // -1: no data
			wantMode  fs.FileMode
			wantErr   string
		}{
			{name: "empty", rel: "empty", max: max, wantLen: 0},
			{name: "small", rel: "small", max: max, wantLen: 10},
			{name: "small into a larger buffer", rel: "small", max: max, buf: make([]byte, 50, 500), wantLen: 10},
			{name: "exactly max", rel: "max", max: max, buf: make([]byte, 0, 3), wantLen: max},
			{name: "one over max", rel: "over", max: max, wantLen: -1, wantErr: "larger than 100 bytes"},
			{name: "large", rel: "big", max: 1 << 20, buf: make([]byte, 0, 7), wantLen: 1 << 16},
			{name: "fifo", rel: "fifo", max: max, wantLen: -1, wantMode: fs.ModeNamedPipe},
			{name: "directory", rel: "dir", max: max, wantLen: -1, wantMode: fs.ModeDir},
			{name: "symlink", rel: "link", max: max, wantLen: -1, wantErr: ErrSymlink.Error()},
			{name: "missing", rel: "nothing", max: max, wantLen: -1, wantErr: "no such file"},
		} {
			t.Run(fmt.Sprintf("walk=%v/%s", walk, tc.name), func(t *testing.T) {
				data, mode, err := d.readFile(tc.rel, tc.max, tc.buf)
				switch {
				case tc.wantErr != "":
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("readFile(%s) = %d bytes, %v; want an error saying %q", tc.rel, len(data), err, tc.wantErr)
					}
					return
				case err != nil:
					t.Fatalf("readFile(%s): %v", tc.rel, err)
				case tc.wantLen < 0:
					if data != nil || mode.Type() != tc.wantMode {
						t.Fatalf("readFile(%s) = %d bytes, mode %v; want nothing read, mode type %v", tc.rel, len(data), mode, tc.wantMode)
					}
					return
				}
				if !mode.IsRegular() || len(data) != tc.wantLen {
					t.Fatalf("readFile(%s) = %d bytes, mode %v; want %d bytes of a regular file", tc.rel, len(data), mode, tc.wantLen)
				}
				for i, c := range data {
					if c != byte('a'+i%26) {
						t.Fatalf("byte %d = %q", i, c)
					}
				}
			})
		}
	}
}
