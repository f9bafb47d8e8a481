package grpcapi

import (
	"math/bits"
	"sync"
)

// shardBuffers keeps the buffers GetShard reads whole shards into, for
// later answers once gRPC has written them out: a fresh 64 MiB buffer costs
// its page faults and zeroing, a third of the handler's time. Buffers go by
// size, eight classes to a doubling, so that one is at most an eighth
// larger than the shard it holds (the read budget counts the shard). Idle
// buffers go to the collector as sync.Pool's do, within two collections.
type shardBuffers struct {
	classes [bufferClasses]sync.Pool // *[]byte of the class's size
}

const (
	// minPooledBuffer is the smallest buffer kept: below it, a fresh one
	// costs little beside its answer's transport.
	minPooledBuffer = 1 << 20
	// bufferClasses are the classes, from minPooledBuffer to 2 GiB; larger
	// buffers are not kept.
	bufferClasses = 8 * 12
)

// bufferClass is the class and buffer size for n bytes; ok is false for a
// size not kept.
func bufferClass(n int64) (class int, size int64, ok bool) {
	if n < minPooledBuffer {
		return 0, 0, false
	}
	e := bits.Len64(uint64(n - 1)) // 2^(e-1) < n <= 2^e
	step := int64(1) << (e - 4)    // an eighth of 2^(e-1)
	size = (n + step - 1) / step * step
	class = (e-bits.Len64(minPooledBuffer-1))*8 + int(size/step) - 9
	if class >= bufferClasses {
		return 0, 0, false
	}
	return class, size, true
}

// get is an empty buffer with room for n bytes: one used before when one of
// its class is free; nil for a size not kept (the reader makes its own).
func (p *shardBuffers) get(n int64) []byte {
	class, size, ok := bufferClass(n)
	if !ok {
		return nil
	}
	if b, ok := p.classes[class].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// put gives a buffer from get back, once nothing refers to its bytes.
func (p *shardBuffers) put(b []byte) {
	class, size, ok := bufferClass(int64(cap(b)))
	if !ok || size != int64(cap(b)) {
		return
	}
	b = b[:0]
	p.classes[class].Put(&b)
}
