package storage

import (
	"sync"
	"testing"
)

// The keyed mutex excludes per key and forgets keys nobody holds.
func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	counters := make([]int, 4) // guarded by the lock of chunkKey{"v", i}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for range 200 {
				key := chunkKey{"v", g % len(counters)}
				unlock := k.lock(key)
				counters[key.chunk]++
				unlock()
			}
		})
	}
	wg.Wait()
	for i, c := range counters {
		if c != 32/len(counters)*200 {
			t.Errorf("counter %d = %d, want %d", i, c, 32/len(counters)*200)
		}
	}
	if n := k.len(); n != 0 {
		t.Fatalf("%d lock entries left, want 0", n)
	}
}
