package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
	pb "github.com/videoshard/videoshard/proto"
)

// The master never destroys the user's files (issue 8): an existing output
// is refused unless --force, and an output that is the input, by any path,
// is refused even with it, before anything is probed or sent to a worker.
// The same holds for reconstruct. A simulated worker keeps it cheap.
func TestE2EOutputNeverDestroysFiles(t *testing.T) {
	w := e2etest.StartWorker(t, bins["worker"], "", "", "encoder: simulated\n")
	dir := t.TempDir()
	source, err := os.ReadFile(testdata("h264_noaudio_320x240_30000-1001_3s.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "in.mkv")
	if err := os.WriteFile(input, source, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(input, filepath.Join(dir, "link.mkv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(input, filepath.Join(dir, "hard.mkv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mkv")
	if err := os.WriteFile(out, []byte("the user's older file"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	encode := func(output string, extra ...string) (int, string, string) {
		args := append([]string{"encode", "--workers", w.Addr, "--output", output, "--segment-seconds", "1",
			"--state-dir", state, "--video-id", "guard"}, extra...)
		return runMaster(t, append(args, input)...)
	}
	untouched := func(t *testing.T) {
		t.Helper()
		if b, err := os.ReadFile(input); err != nil || string(b) != string(source) {
			t.Fatalf("the input was changed (%d bytes, %v)", len(b), err)
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Fatalf("the refused job made its state directory: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if list, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{}); err != nil || len(list.GetVideos()) != 0 {
			t.Fatalf("the worker got work: %v, %v", list.GetVideos(), err)
		}
	}

	refusals := []struct {
		name, output string
		force        bool
		want         []string
	}{
		{"existing output", out, false, []string{"out.mkv exists", "add --force"}},
		{"the input", input, true, []string{"is the input", "--force does not allow this"}},
		{"the input through ..", filepath.Join(dir, "sub", "..", "in.mkv"), true, []string{"is the input"}},
		{"a symlink to the input", filepath.Join(dir, "link.mkv"), true, []string{"link.mkv is the input"}},
		{"a hard link of the input", filepath.Join(dir, "hard.mkv"), true, []string{"hard.mkv is the input"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.force {
				extra = append(extra, "--force")
			}
			code, stdout, stderr := encode(tt.output, extra...)
			if code != exitFailure {
				t.Fatalf("master encode -o %s exited %d, want %d\n%s\n%s", tt.output, code, exitFailure, stdout, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, stderr)
				}
			}
			untouched(t)
			if b, _ := os.ReadFile(out); string(b) != "the user's older file" {
				t.Fatalf("the existing output was replaced")
			}
		})
	}

	// --force replaces the existing output; reconstruct then follows the
	// same rules, with the chunk map's input.
	if code, stdout, stderr := encode(out, "--force"); code != 0 {
		t.Fatalf("master encode --force exited %d\n%s\n%s", code, stdout, stderr)
	}
	encoded, err := os.ReadFile(out)
	if err != nil || string(encoded) == "the user's older file" {
		t.Fatalf("--force did not replace the output: %v", err)
	}
	reconstruct := func(output string, extra ...string) (int, string, string) {
		return runMaster(t, append([]string{"reconstruct", "--video-id", "guard", "--state-dir", state, "--output", output}, extra...)...)
	}
	if code, stdout, stderr := reconstruct(out); code != exitFailure || !strings.Contains(stderr, "add --force") {
		t.Fatalf("master reconstruct over an existing output exited %d, want a refusal naming --force\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := reconstruct(filepath.Join(dir, "link.mkv"), "--force"); code != exitFailure || !strings.Contains(stderr, "is the input") {
		t.Fatalf("master reconstruct onto the input exited %d, want a refusal\n%s\n%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(input); err != nil || string(b) != string(source) {
		t.Fatalf("the input was changed (%d bytes, %v)", len(b), err)
	}
	if code, stdout, stderr := reconstruct(out, "--force"); code != 0 {
		t.Fatalf("master reconstruct --force exited %d\n%s\n%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != string(encoded) {
		t.Fatalf("reconstruct --force wrote %d bytes, %v; want the encode's %d", len(b), err, len(encoded))
	}
}
