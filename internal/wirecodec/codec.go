// Package wirecodec is gRPC's proto codec with one difference: the bytes
// of a shard (GetShardResponse.shard_data, DownloadShardResponse.data)
// are sent without being copied into the message's buffer, and received
// with one copy instead of two. The bytes on the wire are the same proto
// encoding (a field's place in the message is free in proto), so peers
// with the stock codec read and write them as before.
package wirecodec

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the stock codec this one falls back to
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/videoshard/videoshard/proto"
)

// Name is the codec's name: proto, as the stock codec's, for that is what
// it speaks.
const Name = "proto"

// minDirect is the smallest payload sent beside the message rather than
// copied into it: below it, a copy costs less than another buffer.
const minDirect = 64 << 10

// dataField is the field number of shard_data and data in their messages.
const dataField = 2

// pieceBytes is the size of the buffers a payload is handed to gRPC in:
// gRPC frees each once it has written it out, so a watcher learns how an
// answer goes, piece by piece (OnWritten's taken).
const pieceBytes = 256 << 10

// Codec is the codec. Its zero value is ready, without OnWritten and
// Recycle; New returns one with them.
type Codec struct {
	written   *sync.Map  // message → *watch, see OnWritten
	payloads  *sync.Pool // *[]byte given back by Recycle, for Unmarshal's payloads
	malformed *sync.Map  // request → why it did not decode, see Lenient
}

// watch is what OnWritten registered for a message.
type watch struct {
	done  func()
	taken func(n int) // nil: none
	freed func()      // nil: none
}

// finish runs done, then freed: for the paths on which Marshal (or gRPC,
// having written them) is finished with the bytes, not Forget.
func (w *watch) finish() {
	w.done()
	if w.freed != nil {
		w.freed()
	}
}

var _ encoding.CodecV2 = Codec{}

// New returns a codec that keeps OnWritten's promises and reuses what
// Recycle gives back.
func New() Codec { return Codec{written: new(sync.Map), payloads: new(sync.Pool)} }

// Lenient returns c taking a message that does not decode (truncated,
// garbage, a string field that is not UTF-8) as an empty one, and keeping
// why for Malformed. gRPC answers a codec's error with Internal, a fault
// of the server's, before any interceptor can say it is the client's. For
// a server only, whose interceptors must ask Malformed of every request
// it decodes (or the reasons pile up).
func (c Codec) Lenient() Codec {
	c.malformed = new(sync.Map)
	return c
}

// Malformed reports, once, why the request msg did not decode (see
// Lenient); nil if it did.
func (c Codec) Malformed(msg any) error {
	if c.malformed == nil {
		return nil
	}
	if err, ok := c.malformed.LoadAndDelete(msg); ok {
		return err.(error)
	}
	return nil
}

// Recycle gives back the payload of a received DownloadShardResponse (its
// Data) once nothing refers to it any more, for a later message's payload:
// a fresh one costs its zeroing and page faults, and the collector's work,
// every frame of a download. Anything else is left to the collector.
func (c Codec) Recycle(data []byte) {
	if c.payloads != nil && cap(data) >= minDirect {
		data = data[:cap(data)]
		c.payloads.Put(&data)
	}
}

// payloadBuffer is a buffer of size bytes for a payload, one Recycle gave
// back if it is large enough.
func (c Codec) payloadBuffer(size int) []byte {
	if c.payloads != nil {
		if b, ok := c.payloads.Get().(*[]byte); ok && cap(*b) >= size {
			return (*b)[:size]
		}
	}
	return make([]byte, size)
}

// OnWritten arranges for done to run once gRPC is finished with the shard
// bytes of msg (a *pb.GetShardResponse or *pb.DownloadShardResponse): when
// it has written them out or dropped them with the stream. So a server can
// count the bytes its answers hold until then, against a client that does
// not read them. taken, when not nil, is called with the size of each
// piece of them (pieceBytes) gRPC is finished with, as it goes: how fast
// this answer's client takes it, whatever else its connection carries.
// The caller must call Forget if msg might never be sent (an RPC that ends
// first: see there). done runs at most once, on whichever goroutine frees
// the bytes; with the zero Codec it never runs from here, only from
// Forget. freed, when not nil, runs after done when it was gRPC (or
// Marshal, having copied them) that finished with the bytes, not Forget:
// nothing refers to them any more, and their buffer may be used again.
// (After a Forget, a Marshal still to come would send the bytes as its
// own, uncounted.)
func (c Codec) OnWritten(msg any, done func(), taken func(n int), freed func()) {
	if c.written != nil {
		c.written.Store(msg, &watch{done: sync.OnceFunc(done), taken: taken, freed: freed})
	}
}

// Forget runs the done of a message OnWritten registered that was never
// marshalled (its RPC ended first), and reports whether there was one;
// after Marshal took it, Forget does nothing (gRPC frees the bytes).
func (c Codec) Forget(msg any) bool {
	w := c.taken(msg)
	if w != nil {
		w.done()
	}
	return w != nil
}

// taken is the watch registered for msg, removed; nil if none.
func (c Codec) taken(msg any) *watch {
	if c.written == nil {
		return nil
	}
	if w, ok := c.written.LoadAndDelete(msg); ok {
		return w.(*watch)
	}
	return nil
}

// Name implements encoding.CodecV2.
func (Codec) Name() string { return Name }

// Marshal encodes v as the stock codec does, a large payload as a buffer
// of its own after the rest of the message.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	field := payloadField(v)
	if field == nil {
		return stock().Marshal(v)
	}
	w := c.taken(v)
	data := *field
	if len(data) < minDirect {
		out, err := stock().Marshal(v) // the bytes are copied: free at once
		if w != nil {
			w.finish()
		}
		return out, err
	}
	*field = nil
	defer func() { *field = data }()
	return marshalWith(v, data, w)
}

// payloadField is the shard-bytes field of v, nil for a message without one.
func payloadField(v any) *[]byte {
	switch m := v.(type) {
	case *pb.GetShardResponse:
		return &m.ShardData
	case *pb.DownloadShardResponse:
		return &m.Data
	}
	return nil
}

// marshalWith is the encoding of rest (without its payload) followed by
// the payload as field dataField, the payload's bytes not copied; w, if
// not nil, hears as gRPC frees them, piece by piece (all of them at once
// on an error).
func marshalWith(rest any, data []byte, w *watch) (mem.BufferSlice, error) {
	out, err := stock().Marshal(rest)
	if err != nil {
		if w != nil {
			w.finish()
		}
		return nil, err
	}
	head := protowire.AppendTag(make([]byte, 0, 2*binary.MaxVarintLen64), dataField, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(data)))
	out = append(out, mem.SliceBuffer(head))
	if w == nil {
		return append(out, mem.SliceBuffer(data)), nil
	}
	// Pieces of one size: none so small that gRPC would not pool it (and
	// so never free it to its pool).
	pieces := (len(data) + pieceBytes - 1) / pieceBytes
	size := (len(data) + pieces - 1) / pieces
	left := new(atomic.Int64)
	left.Store(int64((len(data) + size - 1) / size)) // the pieces the loop makes
	for at := 0; at < len(data); at += size {
		end := min(at+size, len(data))
		piece := data[at:end:end]
		n := len(piece)
		out = append(out, mem.NewBuffer(&piece, releasePool(func() {
			if w.taken != nil {
				w.taken(n)
			}
			if left.Add(-1) == 0 {
				w.finish()
			}
		})))
	}
	return out, nil
}

// releasePool is the "pool" a payload's buffer returns to when gRPC frees
// it: only its function is called; the bytes are left to the collector.
type releasePool func()

func (p releasePool) Get(int) *[]byte { panic("wirecodec: releasePool gives no buffers") }
func (p releasePool) Put(*[]byte)     { p() }

// Unmarshal decodes data into v as the stock codec does; a
// DownloadShardResponse that is only a payload (every frame after the
// first) is copied straight out of gRPC's buffers into its own slice.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*pb.DownloadShardResponse); ok && data.Len() >= minDirect {
		if payload, ok := payloadOnly(data, c.payloadBuffer); ok {
			m.Reset()
			m.Data = payload
			return nil
		}
	}
	err := stock().Unmarshal(data, v)
	if m, ok := v.(interface{ Reset() }); ok && err != nil && c.malformed != nil {
		m.Reset()
		c.malformed.Store(v, err)
		return nil
	}
	return err
}

// payloadOnly is the payload of an encoded message that holds field
// dataField and nothing else, copied once into a buffer alloc gives; ok
// is false for any other message.
func payloadOnly(data mem.BufferSlice, alloc func(size int) []byte) ([]byte, bool) {
	var head [1 + binary.MaxVarintLen64]byte
	n := copyPrefix(head[:], data)
	num, typ, tagLen := protowire.ConsumeTag(head[:n])
	if tagLen < 0 || num != dataField || typ != protowire.BytesType {
		return nil, false
	}
	size, sizeLen := protowire.ConsumeVarint(head[tagLen:n])
	skip := tagLen + sizeLen
	if sizeLen < 0 || uint64(data.Len()-skip) != size {
		return nil, false
	}
	out := alloc(int(size))
	at := 0
	for _, b := range data {
		part := b.ReadOnlyData()
		if skip >= len(part) {
			skip -= len(part)
			continue
		}
		at += copy(out[at:], part[skip:])
		skip = 0
	}
	return out, true
}

// copyPrefix copies data's first bytes into dst, returning how many.
func copyPrefix(dst []byte, data mem.BufferSlice) int {
	n := 0
	for _, b := range data {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], b.ReadOnlyData())
	}
	return n
}

// stock is gRPC's own proto codec.
func stock() encoding.CodecV2 {
	c := encoding.GetCodecV2(Name)
	if c == nil {
		panic(fmt.Sprintf("wirecodec: gRPC's %q codec is not registered", Name))
	}
	return c
}
