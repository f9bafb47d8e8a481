//go:build unix

package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
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
