package master

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckOutputs(t *testing.T) {
	// Every case runs in a directory holding the input in.mp4, a
	// directory sub, the state directory state and the work directory
	// state/v.work with a file in it.
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) // more files, links
		output string                         // relative to dir
		input  string                         // relative to dir; "" for none
		force  bool
		want   error  // nil: accepted, unless wantIn is set
		wantIn string // what the refusal must say
	}{
		{"new output", nil, "out.mkv", "in.mp4", false, nil, ""},
		{"existing output", writeFiles("out.mkv"), "out.mkv", "in.mp4", false, ErrOutputExists, "add --force"},
		{"existing output, --force", writeFiles("out.mkv"), "out.mkv", "in.mp4", true, nil, ""},
		{"existing unverified output: an earlier run's, replaced", writeFiles("out.unverified.mkv"), "out.mkv", "in.mp4", false, nil, ""},
		{"existing unverified output, --force", writeFiles("out.unverified.mkv"), "out.mkv", "in.mp4", true, nil, ""},
		{"dangling symlink output", symlink("nowhere.mkv", "out.mkv"), "out.mkv", "in.mp4", false, ErrOutputExists, "add --force"},
		{"no input, existing output", writeFiles("out.mkv"), "out.mkv", "", false, ErrOutputExists, "add --force"},
		{"no input, existing output, --force", writeFiles("out.mkv"), "out.mkv", "", true, nil, ""},
		{"output directory", writeFiles("out.mkv/x"), "out.mkv", "in.mp4", true, nil, "is a directory"},
		{"output in a new directory: made", nil, "new/out.mkv", "in.mp4", false, nil, ""},
		{"output under a file", nil, "in.mp4/out.mkv", "in.mp4", false, nil, "in.mp4: not a directory"},

		{"output is the input", nil, "in.mp4", "in.mp4", true, ErrOutputIsInput, "--force does not allow this"},
		{"output is the input, spelt with ..", nil, "sub/../in.mp4", "in.mp4", true, ErrOutputIsInput, "--output sub/../in.mp4"},
		{"output is the input, spelt ./", nil, "./in.mp4", "in.mp4", true, ErrOutputIsInput, "is the input"},
		{"output is a symlink to the input", symlink("in.mp4", "link.mp4"), "link.mp4", "in.mp4", true, ErrOutputIsInput, "is the input"},
		{"input is a symlink to the output", symlink("in.mp4", "link.mkv"), "in.mp4", "link.mkv", true, ErrOutputIsInput, "is the input"},
		{"output is a hard link of the input", hardlink("in.mp4", "hard.mp4"), "hard.mp4", "in.mp4", true, ErrOutputIsInput, "is the input"},
		{"output through a symlinked directory", symlink(".", "again"), "again/in.mp4", "in.mp4", true, ErrOutputIsInput, "is the input"},
		{"unverified output is the input", writeFiles("out.unverified.mp4"), "out.mp4", "out.unverified.mp4", true, ErrOutputIsInput, "the unverified output"},
		{"chunk map is the input", writeFiles("state/v.json"), "out.mkv", "state/v.json", true, ErrOutputIsInput, "the chunk map"},
		{"input in the work directory", nil, "out.mkv", "state/v.work/in.mp4", true, nil, "work directory"},
		{"output in the work directory", nil, "state/v.work/out.mkv", "in.mp4", true, nil, "work directory"},
		{"output is the work directory", nil, "state/v.work", "in.mp4", true, nil, "work directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // relative spellings, as on a command line
			writeFiles("in.mp4", "sub/x", "state/v.work/in.mp4")(t, dir)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			cfg := JobConfig{Output: tt.output, StateDir: "state", VideoID: "v", Force: tt.force}
			err := checkOutputs(cfg, tt.input)
			if tt.want == nil && tt.wantIn == "" {
				if err != nil {
					t.Fatalf("checkOutputs = %v, want accepted", err)
				}
				return
			}
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("checkOutputs = %v, want %v saying %q", err, tt.want, tt.wantIn)
			}
		})
	}
}

// writeFiles makes each file (and its directories) under the case's dir.
func writeFiles(names ...string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		for _, name := range names {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func symlink(target, name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func hardlink(target, name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Link(filepath.Join(dir, target), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}
