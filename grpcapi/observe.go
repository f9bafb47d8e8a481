package grpcapi

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/internal/reqid"
	pb "github.com/videoshard/videoshard/proto"
)

// ChunkObserver is told how every ProcessChunk and UploadChunk call ended
// (WithChunkObserver). It is called on the call's goroutine, after the
// handler: it must not block.
type ChunkObserver interface {
	ObserveChunk(ChunkCall)
}

// Outcomes of a ChunkCall besides a failure's code.
const (
	ChunkStored = "stored" // encoded and committed
	ChunkReused = "reused" // already stored: answered from the store, nothing encoded
)

// ChunkCall is one chunk call as it ended.
type ChunkCall struct {
	// Outcome is ChunkStored, ChunkReused, or the failure's gRPC code
	// ("ResourceExhausted").
	Outcome string
	// Encoder and Codec are the shard's (its metadata's); empty for a
	// failure.
	Encoder, Codec string
	// EncodeSeconds is the encode's own time; 0 unless ChunkStored.
	EncodeSeconds float64
	// InputBytes and OutputBytes are the chunk's and the shard's sizes;
	// 0 for a failure.
	InputBytes, OutputBytes int64
}

// maxLoggedVideoID bounds the video id an access line repeats: the id is
// logged before it is validated, and a caller must not make lines of
// megabytes.
const maxLoggedVideoID = 256

// call is what the access line and the chunk observer learn of one call.
// An upload's receiving goroutine may outlive its handler (upload.go), so
// what it records is guarded.
type call struct {
	method string
	start  time.Time

	mu       sync.Mutex // guards the fields below
	video    string
	chunk    int // -1: none named
	in, out  int64
	response *pb.ProcessChunkResponse // a chunk call's answer, if it gave one
}

// saw records a message received (in) or sent.
func (c *call) saw(m any, in bool) {
	pm, ok := m.(proto.Message)
	if !ok {
		return
	}
	n := int64(proto.Size(pm))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !in {
		c.out += n
		if r, ok := m.(*pb.ProcessChunkResponse); ok {
			c.response = r
		}
		return
	}
	c.in += n
	if c.video == "" && c.chunk < 0 {
		c.video, c.chunk = target(m)
		if len(c.video) > maxLoggedVideoID {
			c.video = c.video[:maxLoggedVideoID]
		}
	}
}

// target is the video and chunk a request names (chunk -1: none).
func target(m any) (string, int) {
	switch r := m.(type) {
	case *pb.ProcessChunkRequest:
		return r.GetVideoId(), int(r.GetChunkIndex())
	case *pb.UploadChunkRequest:
		if h := r.GetHeader(); h != nil {
			return h.GetVideoId(), int(h.GetChunkIndex())
		}
	case *pb.GetShardRequest:
		if r.ChunkIndex != nil {
			return r.GetVideoId(), int(r.GetChunkIndex())
		}
		return r.GetVideoId(), -1
	case *pb.DeleteShardRequest:
		return r.GetVideoId(), int(r.GetChunkIndex())
	case interface{ GetVideoId() string }:
		return r.GetVideoId(), -1
	}
	return "", -1
}

// requestID is the call's request id: the caller's x-request-id when it
// is well formed, a new one otherwise.
func requestID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if ids := md.Get(reqid.MetadataKey); len(ids) == 1 && reqid.Valid(ids[0]) {
		return ids[0]
	}
	return reqid.New()
}

// end logs the call's access line under its context (which carries the
// request id) and tells obs of a chunk call.
func (c *call) end(ctx context.Context, log *slog.Logger, obs ChunkObserver, id string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK, codes.Canceled: // a client's own choice: at a reset's rate, a flood
	case codes.NotFound, codes.InvalidArgument:
		level = slog.LevelInfo
	case codes.Internal, codes.DataLoss, codes.Unknown:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	if log.Enabled(ctx, level) {
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.String("method", c.method), slog.String(reqid.LogKey, id))
		if c.video != "" {
			attrs = append(attrs, slog.String("video_id", c.video))
		}
		if c.chunk >= 0 {
			attrs = append(attrs, slog.Int("chunk", c.chunk))
		}
		attrs = append(attrs, slog.String("code", code.String()),
			slog.Duration("duration", time.Since(c.start).Round(time.Microsecond)),
			slog.Int64("bytes_in", c.in), slog.Int64("bytes_out", c.out))
		if err != nil {
			attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
		}
		log.LogAttrs(ctx, level, "rpc", attrs...)
	}
	if obs != nil && isChunkMethod(c.method) {
		obs.ObserveChunk(c.chunkCall(code))
	}
}

func isChunkMethod(method string) bool {
	return method == pb.VideoProcessingService_ProcessChunk_FullMethodName ||
		method == pb.VideoProcessingService_UploadChunk_FullMethodName
}

func (c *call) chunkCall(code codes.Code) ChunkCall {
	r := c.response
	if code != codes.OK || r == nil {
		return ChunkCall{Outcome: code.String()}
	}
	cc := ChunkCall{
		Outcome:     ChunkStored,
		Encoder:     r.GetMetadata().GetEncoder(),
		Codec:       r.GetMetadata().GetVideoCodec(),
		InputBytes:  r.GetOriginalSize(),
		OutputBytes: r.GetEncodedSize(),
	}
	// A retry answered from the store says so in its message only
	// (processResponse).
	if strings.HasSuffix(r.GetMessage(), "already stored") {
		cc.Outcome = ChunkReused
	} else {
		cc.EncodeSeconds = r.GetMetadata().GetEncodeTimeSeconds()
	}
	return cc
}

// observeUnary gives each call its request id (in its context, and in the
// response's header metadata), then logs its access line and tells obs
// (may be nil) of chunk calls.
func observeUnary(log *slog.Logger, obs ChunkObserver) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		c := &call{method: info.FullMethod, start: time.Now(), chunk: -1}
		id := requestID(ctx)
		ctx = reqid.With(ctx, id)
		// Fails only outside a gRPC call (tests calling the interceptor).
		_ = grpc.SetHeader(ctx, metadata.Pairs(reqid.MetadataKey, id))
		c.saw(req, true)
		resp, err := handler(ctx, req)
		if err == nil {
			c.saw(resp, false)
		}
		c.end(ctx, log, obs, id, err)
		return resp, err
	}
}

// observeStream is observeUnary for streams: the handler gets a stream
// whose context carries the request id, and whose messages are counted.
func observeStream(log *slog.Logger, obs ChunkObserver) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		c := &call{method: info.FullMethod, start: time.Now(), chunk: -1}
		id := requestID(ss.Context())
		ctx := reqid.With(ss.Context(), id)
		_ = ss.SetHeader(metadata.Pairs(reqid.MetadataKey, id))
		err := handler(srv, &observedStream{ServerStream: ss, ctx: ctx, call: c})
		c.end(ctx, log, obs, id, err)
		return err
	}
}

// observedStream counts a stream's messages for its call; the call's
// goroutine alone uses it (gRPC allows one receiver and one sender, and
// the worker's handlers do both on the handler's goroutine).
type observedStream struct {
	grpc.ServerStream
	ctx  context.Context
	call *call
}

func (s *observedStream) Context() context.Context { return s.ctx }

func (s *observedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.call.saw(m, true)
	}
	return err
}

func (s *observedStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.call.saw(m, false)
	}
	return err
}
