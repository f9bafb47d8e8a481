package grpcapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/internal/reqid"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lines returns the logged lines that contain every one of parts.
func (b *syncBuffer) lines(parts ...string) []string {
	var out []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// chunkRecorder is a ChunkObserver that keeps what it is told.
type chunkRecorder struct {
	mu    sync.Mutex
	calls []ChunkCall
}

func (r *chunkRecorder) ObserveChunk(c ChunkCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *chunkRecorder) all() []ChunkCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ChunkCall(nil), r.calls...)
}

// ctxEncoder records the request id of each encode's context and fails
// with err, if set.
type ctxEncoder struct {
	fakeEncoder
	mu  sync.Mutex
	ids []string
	err error
}

func (e *ctxEncoder) Encode(ctx context.Context, in io.Reader, out encode.Output, opts encode.Options) (encode.Result, error) {
	e.mu.Lock()
	e.ids = append(e.ids, reqid.From(ctx))
	e.mu.Unlock()
	if e.err != nil {
		return encode.Result{}, e.err
	}
	return e.fakeEncoder.Encode(ctx, in, out, opts)
}

// observedHarness serves a Server over enc with a text logger at debug
// level into logs, and obs as its chunk observer.
func observedHarness(t *testing.T, enc encode.Encoder, logs *syncBuffer, obs ChunkObserver) pb.VideoProcessingServiceClient {
	t.Helper()
	store, err := storage.Open(storage.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(reqid.Handler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv := NewServer(store, enc, Config{WorkerID: "w", Logger: log})
	gs := grpc.NewServer(srv.GRPCOptions(WithChunkObserver(obs))...)
	srv.Register(gs)
	return pb.NewVideoProcessingServiceClient(serveBufconn(t, gs))
}

// A unary and a streamed chunk each log one access line with the method,
// video, chunk, code, duration and bytes both ways; the observer hears of
// both, and of a retry answered from the store.
func TestAccessLineAndChunkObserver(t *testing.T) {
	logs, rec := &syncBuffer{}, &chunkRecorder{}
	c := observedHarness(t, &fakeEncoder{}, logs, rec)
	ctx := context.Background()
	data := bytes.Repeat([]byte("v"), 1000)
	req := &pb.ProcessChunkRequest{VideoId: "obs.mp4", ChunkIndex: 3, ChunkData: data}
	for range 2 { // the second is a retry
		if _, err := c.ProcessChunk(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := c.UploadChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: &pb.UploadHeader{
		VideoId: "obs.mp4", ChunkIndex: 4, TotalSize: int64(len(data))}}})
	stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: data}})
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "../x", ChunkIndex: 0, ChunkData: data}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad video id: %v", err)
	}

	unary := logs.lines(`msg=rpc`, "method="+pb.VideoProcessingService_ProcessChunk_FullMethodName, "video_id=obs.mp4", "chunk=3", "code=OK")
	if len(unary) != 2 {
		t.Fatalf("access lines of the unary calls: %q\nall:\n%s", unary, logs)
	}
	for _, want := range []string{"bytes_in=10", "bytes_out=", "duration=", "request_id="} {
		if !strings.Contains(unary[0], want) {
			t.Errorf("access line %q lacks %q", unary[0], want)
		}
	}
	if strings.Contains(unary[0], "bytes_out=0 ") {
		t.Errorf("access line %q counts no bytes out", unary[0])
	}
	upload := logs.lines(`msg=rpc`, "method="+pb.VideoProcessingService_UploadChunk_FullMethodName, "video_id=obs.mp4", "chunk=4", "code=OK")
	if len(upload) != 1 || !strings.Contains(upload[0], "bytes_in=10") {
		t.Fatalf("access line of the upload: %q\nall:\n%s", upload, logs)
	}
	if bad := logs.lines(`msg=rpc`, "code=InvalidArgument", `video_id=../x`, "level=INFO"); len(bad) != 1 {
		t.Fatalf("access line of the refused call: %q\nall:\n%s", bad, logs)
	}

	got := rec.all()
	want := []string{ChunkStored, ChunkReused, ChunkStored, "InvalidArgument"}
	if len(got) != len(want) {
		t.Fatalf("observed %+v, want outcomes %v", got, want)
	}
	for i, o := range want {
		if got[i].Outcome != o {
			t.Errorf("call %d: outcome %q, want %q (%+v)", i, got[i].Outcome, o, got[i])
		}
	}
	if g := got[0]; g.Encoder != "fake" || g.InputBytes != 1000 || g.OutputBytes != 1000 {
		t.Errorf("stored chunk observed as %+v", g)
	}
}

// A well-formed x-request-id is the call's: in the handler's context (the
// encoder sees it), in the access line, in the response header. A
// malformed one is replaced by a generated id, returned the same way.
func TestRequestIDPropagation(t *testing.T) {
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"well formed", "job-42.chunk:7", true},
		{"none", "", false},
		{"too long", strings.Repeat("a", reqid.MaxLen+1), false},
		{"bad characters", "a b level=ERROR msg=forged", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			enc := &ctxEncoder{}
			c := observedHarness(t, enc, logs, nil)
			ctx := context.Background()
			if tt.sent != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, reqid.MetadataKey, tt.sent)
			}
			var header metadata.MD
			_, err := c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "rid.mp4", ChunkIndex: int32(i),
				ChunkData: []byte("data")}, grpc.Header(&header))
			if err != nil {
				t.Fatal(err)
			}
			ids := header.Get(reqid.MetadataKey)
			if len(ids) != 1 || !reqid.Valid(ids[0]) {
				t.Fatalf("response header %s = %q, want one valid id", reqid.MetadataKey, ids)
			}
			id := ids[0]
			if tt.kept != (id == tt.sent) {
				t.Fatalf("sent %q, got back %q (kept: want %v)", tt.sent, id, tt.kept)
			}
			if len(enc.ids) != 1 || enc.ids[0] != id {
				t.Errorf("the encoder's context carried %q, want %q", enc.ids, id)
			}
			if lines := logs.lines("msg=rpc", "request_id="+id); len(lines) != 1 {
				t.Errorf("access lines with request_id=%s: %q\nall:\n%s", id, lines, logs)
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a caller's request id forged a log line:\n%s", logs)
			}
		})
	}
}

// A failed call's header still carries the request id, so that a caller
// can quote it.
func TestRequestIDOnFailure(t *testing.T) {
	logs := &syncBuffer{}
	c := observedHarness(t, &ctxEncoder{err: errors.New("boom")}, logs, nil)
	ctx := metadata.AppendToOutgoingContext(context.Background(), reqid.MetadataKey, "fail-1")
	var header metadata.MD
	_, err := c.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "f.mp4", ChunkData: []byte("x")}, grpc.Header(&header))
	if status.Code(err) != codes.Internal {
		t.Fatalf("err = %v, want Internal", err)
	}
	if ids := header.Get(reqid.MetadataKey); len(ids) != 1 || ids[0] != "fail-1" {
		t.Fatalf("header of a failed call: %q", ids)
	}
	if lines := logs.lines("msg=rpc", "request_id=fail-1", "code=Internal", "level=ERROR"); len(lines) != 1 {
		t.Fatalf("access line of the failed call:\n%s", logs)
	}
}
