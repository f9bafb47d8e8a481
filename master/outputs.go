package master

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Refusals of checkOutputs.
var (
	// ErrOutputExists: a file the job would write exists and
	// JobConfig.Force is not set.
	ErrOutputExists = errors.New("output exists")
	// ErrOutputIsInput: a file the job would write is its input; Force
	// does not lift it.
	ErrOutputIsInput = errors.New("output is the input")
)

// checkOutputs refuses, before any work, a job that would destroy a file
// (input is the source, "" when there is none). Whatever Force says: the
// output, the unverified output beside it or the chunk map being the input
// (in another spelling, through a symlink, as a hard link), and the input or
// the output lying in the work directory, which the job removes when it
// ends. Without Force: an output that exists. An unverified output left by
// an earlier run's failed verification is the job's own, kept for a look:
// the next run replaces it.
func checkOutputs(cfg JobConfig, input string) error {
	output := cfg.Output
	unverified := unverifiedPath(output)
	if input != "" {
		targets := []struct{ path, what string }{
			{output, "--output " + output},
			{unverified, "the unverified output " + unverified + " (joined beside --output before it is verified)"},
		}
		if p, err := StatePath(cfg.StateDir, cfg.VideoID); err == nil {
			targets = append(targets, struct{ path, what string }{p, "the chunk map " + p + " (--state-dir, --video-id)"})
		}
		for _, t := range targets {
			if sameFile(t.path, input) {
				return fmt.Errorf("%w: %s is the input %s: writing it would destroy the source; choose another --output "+
					"or --state-dir (--force does not allow this)", ErrOutputIsInput, t.what, input)
			}
		}
	}
	work := cfg.workDir()
	for _, p := range []struct{ path, what string }{{input, "the input"}, {output, "--output"}} {
		if p.path != "" && within(p.path, work) {
			return fmt.Errorf("%s %s lies in the job's work directory %s, which is removed when the job ends: "+
				"choose another --state-dir", p.what, p.path, work)
		}
	}
	if err := checkOutputDir(filepath.Dir(output)); err != nil {
		return fmt.Errorf("--output %s: %w", output, err)
	}
	for _, p := range []string{output, unverified} {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("--output: %w", err)
		case fi.IsDir():
			return fmt.Errorf("--output: %s is a directory", p)
		case !cfg.Force && p == output:
			return fmt.Errorf("%w: %s exists: add --force to replace it", ErrOutputExists, p)
		}
	}
	return nil
}

// checkOutputDir makes dir, as the state directory is made, and reports
// why the output cannot be written into it, if it cannot: found before any
// chunk is encoded, not at the join.
func checkOutputDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("its directory %s cannot be made: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".videoshard-writable-*")
	if err != nil {
		return fmt.Errorf("its directory %s cannot be written: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// sameFile reports whether a and b name one file: the same absolute path,
// or, both existing, one file once symlinks are followed (a hard link too).
func sameFile(a, b string) bool {
	if absA, err := filepath.Abs(a); err == nil {
		if absB, err := filepath.Abs(b); err == nil && absA == absB {
			return true
		}
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// within reports whether path is dir or lies under it, as spelt or with
// symlinks followed as far as both exist.
func within(path, dir string) bool {
	under := func(path, dir string) bool {
		rel, err := filepath.Rel(dir, path)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	absPath, errP := filepath.Abs(path)
	absDir, errD := filepath.Abs(dir)
	return errP == nil && errD == nil && under(absPath, absDir) || under(resolve(path), resolve(dir))
}

// resolve makes path absolute and follows its symlinks; of a path that does
// not exist (yet), those of its directory.
func resolve(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs))
	}
	return abs
}
