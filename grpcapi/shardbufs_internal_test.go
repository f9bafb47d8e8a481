package grpcapi

import "testing"

// TestBufferClass: a size gets the smallest class that holds it, at most
// an eighth larger, and a buffer of a class's size goes back to that class.
func TestBufferClass(t *testing.T) {
	for _, tc := range []struct {
		n     int64
		class int
		size  int64
		ok    bool
	}{
		{minPooledBuffer - 1, 0, 0, false},
		{minPooledBuffer, 7, 1 << 20, true},
		{1<<20 + 1, 8, 9 << 17, true},
		{9 << 17, 8, 9 << 17, true},
		{9<<17 + 1, 9, 10 << 17, true},
		{64 << 20, 55, 64 << 20, true},
		{64<<20 + 1, 56, 72 << 20, true},
		{2 << 30, 95, 2 << 30, true},
		{2<<30 + 1, 0, 0, false},
	} {
		class, size, ok := bufferClass(tc.n)
		if class != tc.class || size != tc.size || ok != tc.ok {
			t.Errorf("bufferClass(%d) = %d, %d, %v; want %d, %d, %v", tc.n, class, size, ok, tc.class, tc.size, tc.ok)
		}
		if ok && (size < tc.n || size-tc.n > tc.n/8) {
			t.Errorf("bufferClass(%d): size %d does not fit within an eighth", tc.n, size)
		}
	}

	var p shardBuffers
	b := p.get(64<<20 + 1)
	if len(b) != 0 || cap(b) != 72<<20 {
		t.Fatalf("get: len %d cap %d", len(b), cap(b))
	}
	b = append(b, 1, 2, 3)
	p.put(b)
	p.put(make([]byte, 0, 70<<20)) // no class's size: not kept
	if again := p.get(70 << 20); cap(again) != 72<<20 {
		t.Fatalf("get after put: cap %d", cap(again))
	}
	if p.get(100) != nil {
		t.Fatal("get of a small size gave a buffer")
	}
}
