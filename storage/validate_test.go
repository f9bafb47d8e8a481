package storage_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

func TestValidateVideoID(t *testing.T) {
	tests := []struct {
		id      string
		ok      bool
		message string // part of the error message
	}{
		{id: "example_video.mp4", ok: true},
		{id: "a", ok: true},
		{id: "A-Z_a-z.0-9", ok: true},
		{id: "a_chunk_1", ok: true},
		{id: "video..mp4", ok: true},
		{id: "metadata2", ok: true},
		{id: "Metadata", ok: true},
		{id: strings.Repeat("x", storage.MaxVideoIDLen), ok: true},
		{id: "", message: "empty"},
		{id: "../x", message: "'/'"},
		{id: "a/b", message: "'/'"},
		{id: `a\b`, message: `'\\'`},
		{id: ".", message: "starts with '.'"},
		{id: "..", message: "starts with '.'"},
		{id: ".hidden", message: "starts with '.'"},
		{id: ".tmp", message: "starts with '.'"},
		{id: "metadata", message: "reserved"},
		{id: strings.Repeat("x", storage.MaxVideoIDLen+1), message: "longer than"},
		{id: strings.Repeat("x", 256), message: "longer than"},
		{id: "a\x00b", message: `'\x00'`},
		{id: "a b", message: "' '"},
		{id: "/abs", message: "'/'"},
		{id: "vidéo", message: "byte 3"},
	}
	for _, tt := range tests {
		err := storage.ValidateVideoID(tt.id)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidateVideoID(%q) = %v, want nil", tt.id, err)
			}
			continue
		}
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ValidateVideoID(%q) = %v, want ErrInvalid", tt.id, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.message) {
			t.Errorf("ValidateVideoID(%q) = %q, want a message containing %q", tt.id, err, tt.message)
		}
	}
}

func TestValidateChunkIndex(t *testing.T) {
	tests := []struct {
		i  int64
		ok bool
	}{
		{0, true},
		{1, true},
		{math.MaxInt32, true},
		{-1, false},
		{math.MinInt32, false},
		{math.MaxInt32 + 1, false},
		{math.MaxInt64, false},
	}
	for _, tt := range tests {
		err := storage.ValidateChunkIndex(tt.i)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateChunkIndex(%d) = %v, want ok=%v", tt.i, err, tt.ok)
		}
		if err != nil && !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ValidateChunkIndex(%d) = %v, want ErrInvalid", tt.i, err)
		}
	}
}

// Every store method refuses invalid ids and indexes before touching the disk.
func TestMethods_ErrInvalid(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"", "../x", "a/b", "metadata", "."} {
		if _, err := s.Create(id, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Create(%q) = %v, want ErrInvalid", id, err)
		}
		if _, err := s.Lookup(id, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Lookup(%q) = %v, want ErrInvalid", id, err)
		}
		if _, _, err := s.OpenShard(id, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("OpenShard(%q) = %v, want ErrInvalid", id, err)
		}
		if _, err := s.VideoMetadata(id); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("VideoMetadata(%q) = %v, want ErrInvalid", id, err)
		}
		if id != "" {
			if _, err := s.List(id); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("List(%q) = %v, want ErrInvalid", id, err)
			}
		}
	}
	for _, n := range []int{-1, math.MaxInt32 + 1} {
		if _, err := s.Create("v", n); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Create(v, %d) = %v, want ErrInvalid", n, err)
		}
		if _, err := s.Lookup("v", n); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Lookup(v, %d) = %v, want ErrInvalid", n, err)
		}
	}
}
