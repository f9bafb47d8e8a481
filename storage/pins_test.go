package storage_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// Pins survive a restart, are idempotent both ways, and a pin file that
// Pin did not finish, or a name that is no video id, is not a pin.
func TestPins(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := openStore(t, root, nil)
	if s.Pinned("v") {
		t.Fatal("a fresh store has v pinned")
	}
	for range 2 {
		if err := s.Pin("v"); err != nil {
			t.Fatalf("Pin(v): %v", err)
		}
	}
	if err := s.Pin("w"); err != nil {
		t.Fatalf("Pin(w): %v", err)
	}
	if err := s.Unpin("w"); err != nil {
		t.Fatalf("Unpin(w): %v", err)
	}
	if err := s.Unpin("never-pinned"); err != nil {
		t.Fatalf("Unpin of a video not pinned: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "metadata"} {
		if err := s.Pin(bad); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Pin(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	s.Close()

	pins := filepath.Join(root, ".pins")
	for _, name := range []string{".pin.tmp-123", "not a video id"} {
		if err := os.WriteFile(filepath.Join(pins, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, logs := openStore(t, root, nil)
	if got := s.PinnedVideos(); !slices.Equal(got, []string{"v"}) {
		t.Fatalf("after a restart pinned = %q, want [v]", got)
	}
	if _, err := os.Stat(filepath.Join(pins, ".pin.tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted pin was left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pins, "not a video id")); err != nil {
		t.Errorf("a file that is not ours was touched: %v", err)
	}
	if !strings.Contains(logs.String(), "not a pin") {
		t.Errorf("the stray name was not logged: %s", logs)
	}
}

// Pins are bounded: past MaxPins a new one is refused, saying why, and an
// existing one is still idempotent.
func TestPins_Bounded(t *testing.T) {
	s, err := storage.Open(storage.Options{Root: t.TempDir(), MaxPins: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Pin(fmt.Sprintf("v%d", i)); err != nil {
			t.Fatalf("pin %d: %v", i, err)
		}
	}
	if err := s.Pin("one-more"); !errors.Is(err, storage.ErrNoSpace) || !strings.Contains(err.Error(), "pinned already") {
		t.Fatalf("pin past MaxPins: %v, want ErrNoSpace", err)
	}
	if err := s.Pin("v0"); err != nil {
		t.Fatalf("pinning a pinned video again: %v", err)
	}
}
