package main

// Clients that misbehave on purpose, for the end-to-end tests and
// benchmarks of the worker's limits: slowloris uploads, calls that send
// their headers and nothing else, and maximum-size messages encoded once
// and sent many times.

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
)

// preEncoded is a message already in wire form: rawCodec sends it as it is,
// so a 64 MiB chunk is marshalled once however many calls send it.
type preEncoded []byte

// rawCodec is the proto codec, except that it sends preEncoded as is.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func mustMarshal(m proto.Message) preEncoded {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // only well-formed messages are built here
	}
	return b
}

func headerFrame(h *pb.UploadHeader) preEncoded {
	return mustMarshal(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: h}})
}

func dataFrame(b []byte) preEncoded {
	return mustMarshal(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: b}})
}

// dialRaw opens a connection of its own to addr, with room for
// maximum-size messages: calls on one connection reach the worker in the
// order they were started.
func dialRaw(tb testing.TB, addr string) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// openStream starts a call of method and sends msgs on it, nothing more:
// the call stays open, its side not closed.
func openStream(ctx context.Context, conn *grpc.ClientConn, method string, msgs ...preEncoded) (grpc.ClientStream, error) {
	desc := &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
	cs, err := conn.NewStream(ctx, desc, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if err := cs.SendMsg(m); err != nil {
			return cs, fmt.Errorf("send: %w", err)
		}
	}
	return cs, nil
}

// outcome waits for the call's answer: its status (nil for OK).
func outcome(cs grpc.ClientStream) error {
	var resp pb.ProcessChunkResponse
	return cs.RecvMsg(&resp)
}

// slowloris opens an upload that announces size bytes in its header and
// then sends nothing, for as long as ctx lasts.
func slowloris(ctx context.Context, conn *grpc.ClientConn, video string, chunk int32, size int64) (grpc.ClientStream, error) {
	return openStream(ctx, conn, pb.VideoProcessingService_UploadChunk_FullMethodName,
		headerFrame(&pb.UploadHeader{VideoId: video, ChunkIndex: chunk, TotalSize: size}))
}
