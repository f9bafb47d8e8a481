package grpcapi

import (
	"context"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// rawCodec sends and receives messages as the bytes they are: a client
// that writes what it likes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestMalformedRequests: a request whose bytes do not decode is the
// client's fault: InvalidArgument saying why, not gRPC's Internal; and
// the server goes on answering well-formed ones.
func TestMalformedRequests(t *testing.T) {
	store, err := storage.Open(storage.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(store, &fakeEncoder{}, Config{})
	gs := grpc.NewServer(srv.GRPCOptions()...)
	srv.Register(gs)
	conn := serveBufconn(t, gs)
	invalidUTF8 := []byte{0x0a, 0x02, 0xff, 0xfe} // field 1 (a string): two bytes that are not UTF-8
	garbage := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	tests := []struct {
		name, method string
		body         []byte
		want         string
	}{
		{"a video id not UTF-8", pb.VideoProcessingService_GetVideoMetadata_FullMethodName, invalidUTF8, "invalid UTF-8"},
		{"a shard location not UTF-8", pb.VideoProcessingService_GetShard_FullMethodName, invalidUTF8, "invalid UTF-8"},
		{"garbage", pb.VideoProcessingService_ListShards_FullMethodName, garbage, "invalid wire-format"},
		{"a health check of garbage", pb.VideoProcessingService_CheckHealth_FullMethodName, garbage, "invalid wire-format"},
		{"a chunk of garbage", pb.VideoProcessingService_ProcessChunk_FullMethodName, garbage, "invalid wire-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reply []byte
			err := conn.Invoke(t.Context(), tt.method, &tt.body, &reply, grpc.ForceCodecV2(rawCodec{}))
			if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tt.want) {
				t.Errorf("err = %v, want InvalidArgument saying %q", err, tt.want)
			}
		})
	}
	t.Run("an upload frame of garbage", func(t *testing.T) {
		stream, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ClientStreams: true}, pb.VideoProcessingService_UploadChunk_FullMethodName,
			grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&garbage); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		var reply []byte
		err = stream.RecvMsg(&reply)
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "invalid wire-format") {
			t.Errorf("err = %v, want InvalidArgument", err)
		}
	})
	if _, err := pb.NewVideoProcessingServiceClient(conn).CheckHealth(context.Background(), &pb.HealthCheckRequest{}); err != nil {
		t.Errorf("a well-formed health check after them: %v", err)
	}
}

// With auth, garbage from a caller without a token is refused as any call
// of theirs is: Unauthenticated; with the token, it is InvalidArgument.
func TestMalformedRequests_Auth(t *testing.T) {
	store, err := storage.Open(storage.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(store, &fakeEncoder{}, Config{})
	gs := grpc.NewServer(srv.GRPCOptions(WithAuth(newAuth(t, tokenA)))...)
	srv.Register(gs)
	conn := serveBufconn(t, gs)
	garbage := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	call := func(ctx context.Context) error {
		var reply []byte
		return conn.Invoke(ctx, pb.VideoProcessingService_ListShards_FullMethodName, &garbage, &reply, grpc.ForceCodecV2(rawCodec{}))
	}
	if err := call(t.Context()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("garbage without a token: %v, want Unauthenticated", err)
	}
	withToken := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tokenA)
	if err := call(withToken); status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage with the token: %v, want InvalidArgument", err)
	}
}
