package storage

import "sync"

// chunkKey names one chunk of one video.
type chunkKey struct {
	video string
	chunk int
}

// keyedMutex is a mutex per chunk. Entries are reference counted and
// removed when nobody holds or waits for them, so the map holds only the
// chunks being written or opened right now. The zero value is ready to use.
type keyedMutex struct {
	mu    sync.Mutex // guards locks and every refMutex.refs
	locks map[chunkKey]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int // holders plus waiters
}

// lock locks key and returns the function that unlocks it.
func (k *keyedMutex) lock(key chunkKey) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[chunkKey]*refMutex)
	}
	m := k.locks[key]
	if m == nil {
		m = new(refMutex)
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()

	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// len is the number of live entries (for tests).
func (k *keyedMutex) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}
