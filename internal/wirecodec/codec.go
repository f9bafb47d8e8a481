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

// Codec is the codec; its zero value is ready.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name implements encoding.CodecV2.
func (Codec) Name() string { return Name }

// Marshal encodes v as the stock codec does, a large payload as a buffer
// of its own after the rest of the message.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *pb.GetShardResponse:
		if data := m.ShardData; len(data) >= minDirect {
			m.ShardData = nil
			defer func() { m.ShardData = data }()
			return marshalWith(m, data)
		}
	case *pb.DownloadShardResponse:
		if data := m.Data; len(data) >= minDirect {
			m.Data = nil
			defer func() { m.Data = data }()
			return marshalWith(m, data)
		}
	}
	return stock().Marshal(v)
}

// marshalWith is the encoding of rest (without its payload) followed by
// the payload as field dataField, the payload's bytes not copied.
func marshalWith(rest any, data []byte) (mem.BufferSlice, error) {
	out, err := stock().Marshal(rest)
	if err != nil {
		return nil, err
	}
	head := protowire.AppendTag(make([]byte, 0, 2*binary.MaxVarintLen64), dataField, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(data)))
	return append(out, mem.SliceBuffer(head), mem.SliceBuffer(data)), nil
}

// Unmarshal decodes data into v as the stock codec does; a
// DownloadShardResponse that is only a payload (every frame after the
// first) is copied straight out of gRPC's buffers into its own slice.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*pb.DownloadShardResponse); ok && data.Len() >= minDirect {
		if payload, ok := payloadOnly(data); ok {
			m.Reset()
			m.Data = payload
			return nil
		}
	}
	return stock().Unmarshal(data, v)
}

// payloadOnly is the payload of an encoded message that holds field
// dataField and nothing else, copied once; ok is false for any other
// message.
func payloadOnly(data mem.BufferSlice) ([]byte, bool) {
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
	out := make([]byte, size)
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
