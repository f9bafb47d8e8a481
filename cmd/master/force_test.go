package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encode and reconstruct refuse an existing output without --force, and an
// output that is the input with it, before they dial a worker (the one named
// here does not exist). --force is a flag, not a key: the environment cannot
// set it.
func TestForce(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "in.mkv")
	existing := filepath.Join(dir, "old.mkv")
	for _, p := range []string{input, existing} {
		if err := os.WriteFile(p, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const nowhere = "127.0.0.1:1"
	state := filepath.Join(dir, "state")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"encode, existing output", nil, []string{"encode", "--workers", nowhere, "-o", existing, input}, "old.mkv exists: add --force"},
		{"encode, env cannot force", map[string]string{"VIDEOSHARD_MASTER_FORCE": "true"},
			[]string{"encode", "--workers", nowhere, "-o", existing, input}, "add --force"},
		{"encode, output is the input", nil, []string{"encode", "--force", "--workers", nowhere, "-o", input, input}, "--force does not allow this"},
		{"reconstruct, existing output", nil, []string{"reconstruct", "--workers", nowhere, "--video-id", "v", "-o", existing}, "add --force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := run(t, append(tt.args, "--state-dir", state)...)
			if code != exitFailure || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want %d saying %q\n%s\n%s", code, exitFailure, tt.want, stdout, stderr)
			}
			for _, p := range []string{input, existing} {
				if b, err := os.ReadFile(p); err != nil || string(b) != "keep me" {
					t.Fatalf("%s now holds %q, %v", p, b, err)
				}
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Fatalf("the refused job made its state directory: %v", err)
			}
		})
	}
}
