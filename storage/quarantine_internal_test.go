package storage

import (
	"testing"
	"time"
)

func TestRecentQuarantinesIsARing(t *testing.T) {
	s := &Store{now: time.Now}
	const n = maxRecentQuarantines + 3
	for i := range n {
		s.recordQuarantine(chunkKey{"v", i}, "test")
	}
	got := s.RecentQuarantines()
	if len(got) != maxRecentQuarantines {
		t.Fatalf("%d entries, want %d", len(got), maxRecentQuarantines)
	}
	for i, q := range got {
		if want := n - maxRecentQuarantines + i; q.ChunkIndex != want {
			t.Fatalf("entry %d is chunk %d, want %d: the most recent last", i, q.ChunkIndex, want)
		}
	}
}
