package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// fakeWorker records what it receives. The configuration fields are set
// before the server starts and only read afterwards.
type fakeWorker struct {
	pb.UnimplementedVideoProcessingServiceServer

	health    *pb.HealthCheckResponse // CheckHealth's answer
	err       error                   // when set, every RPC but CheckHealth fails with it
	uploadErr error                   // when set, UploadChunk fails with it after the header
	notOK     bool                    // answer success=false
	shard     []byte                  // what DownloadShard sends
	meta      *pb.ChunkMetadata       // DownloadShard's metadata; nil: none is sent
	stallAt   int                     // when > 0, DownloadShard stops sending after this many data frames, until the call ends

	mu       sync.Mutex // guards the fields below
	calls    []string
	received []byte
	header   *pb.UploadHeader
	unary    *pb.ProcessChunkRequest
	frames   []int // sizes of the upload's data frames
}

var _ pb.VideoProcessingServiceServer = (*fakeWorker)(nil)

func (f *fakeWorker) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeWorker) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeWorker) Received() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received
}

func (f *fakeWorker) CheckHealth(_ context.Context, req *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	f.record("CheckHealth")
	if f.health == nil {
		return &pb.HealthCheckResponse{IsHealthy: true, WorkerId: "fake"}, nil
	}
	return f.health, nil
}

func (f *fakeWorker) ProcessChunk(_ context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	f.record("ProcessChunk")
	if f.err != nil {
		return nil, f.err
	}
	f.mu.Lock()
	f.unary = req
	f.received = req.GetChunkData()
	f.mu.Unlock()
	return f.answer(int64(len(req.GetChunkData()))), nil
}

func (f *fakeWorker) UploadChunk(stream pb.VideoProcessingService_UploadChunkServer) error {
	f.record("UploadChunk")
	if f.err != nil {
		return f.err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	header := first.GetHeader()
	if header == nil {
		return status.Error(codes.InvalidArgument, "first message is not a header")
	}
	f.mu.Lock()
	f.header = header
	f.mu.Unlock()
	if f.uploadErr != nil {
		return f.uploadErr
	}
	var got []byte
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		got = append(got, msg.GetData()...)
		f.mu.Lock()
		f.frames = append(f.frames, len(msg.GetData()))
		f.mu.Unlock()
	}
	if int64(len(got)) != header.GetTotalSize() {
		return status.Errorf(codes.InvalidArgument, "got %d bytes, header says %d", len(got), header.GetTotalSize())
	}
	f.mu.Lock()
	f.received = got
	f.mu.Unlock()
	return stream.SendAndClose(f.answer(int64(len(got))))
}

func (f *fakeWorker) answer(size int64) *pb.ProcessChunkResponse {
	return &pb.ProcessChunkResponse{Success: !f.notOK, WorkerId: "fake", OriginalSize: size, Message: "fake says so"}
}

func (f *fakeWorker) ListShards(context.Context, *pb.ListShardsRequest) (*pb.ListShardsResponse, error) {
	f.record("ListShards")
	if f.err != nil {
		return nil, f.err
	}
	return &pb.ListShardsResponse{Success: !f.notOK, WorkerId: "fake", Message: "fake says so"}, nil
}

func (f *fakeWorker) GetVideoMetadata(context.Context, *pb.GetVideoMetadataRequest) (*pb.GetVideoMetadataResponse, error) {
	f.record("GetVideoMetadata")
	if f.err != nil {
		return nil, f.err
	}
	return &pb.GetVideoMetadataResponse{Success: !f.notOK, WorkerId: "fake", Message: "fake says so"}, nil
}

func (f *fakeWorker) DownloadShard(_ *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	f.record("DownloadShard")
	if f.err != nil {
		return f.err
	}
	if f.meta != nil {
		if err := stream.Send(&pb.DownloadShardResponse{Metadata: f.meta}); err != nil {
			return err
		}
	}
	sent := 0
	for data := f.shard; len(data) > 0; sent++ {
		if f.stallAt > 0 && sent == f.stallAt {
			<-stream.Context().Done() // a worker that stalls: no data, no error
			return stream.Context().Err()
		}
		n := min(len(data), 1<<20)
		if err := stream.Send(&pb.DownloadShardResponse{Data: data[:n]}); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// start serves f in memory and returns a client for it.
func start(t *testing.T, f *fakeWorker, opts client.DialOptions) *client.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	pb.RegisterVideoProcessingServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	opts.Insecure = true
	opts.GRPCOptions = append(opts.GRPCOptions, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return lis.DialContext(ctx)
	}))
	c, err := client.Dial(t.Context(), "passthrough:///fake", opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writeFile writes size random bytes into a temporary file.
func writeFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "chunk.mp4")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func limitedWorker(limit int64) *fakeWorker {
	return &fakeWorker{health: &pb.HealthCheckResponse{IsHealthy: true, MaxUnaryChunkBytes: limit}}
}

func TestProcessFile_UnaryAtLimit(t *testing.T) {
	f := limitedWorker(1000)
	c := start(t, f, client.DialOptions{})
	path, data := writeFile(t, 1000)
	crf := int32(30)
	enc := &pb.EncodingOptions{VideoCodec: "libx265", Crf: &crf, Preset: "fast"}

	resp, err := c.ProcessFile(t.Context(), "v.mp4", 7, path, enc)
	if err != nil {
		t.Fatalf("ProcessFile: %v", err)
	}
	if got, want := resp.GetOriginalSize(), int64(1000); got != want {
		t.Fatalf("original size = %d, want %d", got, want)
	}
	if got, want := f.Calls(), []string{"CheckHealth", "ProcessChunk"}; !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if !bytes.Equal(f.Received(), data) {
		t.Fatal("received bytes differ from the file")
	}
	if got, want := f.unary.GetVideoId(), "v.mp4"; got != want {
		t.Fatalf("video id = %q, want %q", got, want)
	}
	if got, want := f.unary.GetChunkIndex(), int32(7); got != want {
		t.Fatalf("chunk index = %d, want %d", got, want)
	}
	if !proto.Equal(f.unary.GetEncoding(), enc) {
		t.Fatalf("encoding = %v, want %v", f.unary.GetEncoding(), enc)
	}
}

func TestProcessFile_StreamsAboveLimit(t *testing.T) {
	f := limitedWorker(2 << 20)
	c := start(t, f, client.DialOptions{})
	size := 5<<20 + 17
	path, data := writeFile(t, size)

	if _, err := c.ProcessFile(t.Context(), "v.mp4", 3, path, nil); err != nil {
		t.Fatalf("ProcessFile: %v", err)
	}
	if got, want := f.Calls(), []string{"CheckHealth", "UploadChunk"}; !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if !bytes.Equal(f.Received(), data) {
		t.Fatal("received bytes differ from the file")
	}
	if got, want := f.header.GetTotalSize(), int64(size); got != want {
		t.Fatalf("header total_size = %d, want %d", got, want)
	}
	if got, want := f.header.GetVideoId(), "v.mp4"; got != want {
		t.Fatalf("header video id = %q, want %q", got, want)
	}
	if got, want := f.frames, []int{1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 17}; !slices.Equal(got, want) {
		t.Fatalf("frames = %v, want %v", got, want)
	}
}

func TestProcessFile_FramesFitLimit(t *testing.T) {
	f := limitedWorker(300 << 10) // a worker whose messages are under a frame
	c := start(t, f, client.DialOptions{})
	path, data := writeFile(t, 1<<20)

	if _, err := c.ProcessFile(t.Context(), "v.mp4", 0, path, nil); err != nil {
		t.Fatalf("ProcessFile: %v", err)
	}
	if !bytes.Equal(f.Received(), data) {
		t.Fatal("received bytes differ from the file")
	}
	if got, want := f.frames, []int{300 << 10, 300 << 10, 300 << 10, 124 << 10}; !slices.Equal(got, want) {
		t.Fatalf("frames = %v, want %v", got, want)
	}
}

func TestProcessFile_DefaultLimit(t *testing.T) {
	f := limitedWorker(0) // a worker that reports no limit
	c := start(t, f, client.DialOptions{})

	atLimit, _ := writeFile(t, client.DefaultUnaryLimit)
	if _, err := c.ProcessFile(t.Context(), "v.mp4", 0, atLimit, nil); err != nil {
		t.Fatalf("ProcessFile at the limit: %v", err)
	}
	over, data := writeFile(t, client.DefaultUnaryLimit+1)
	if _, err := c.ProcessFile(t.Context(), "v.mp4", 1, over, nil); err != nil {
		t.Fatalf("ProcessFile over the limit: %v", err)
	}
	// The limit is learnt once.
	if got, want := f.Calls(), []string{"CheckHealth", "ProcessChunk", "UploadChunk"}; !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if !bytes.Equal(f.Received(), data) {
		t.Fatal("received bytes differ from the file")
	}
}

func TestProcessFile_ClientMessageLimit(t *testing.T) {
	f := limitedWorker(1 << 20)
	c := start(t, f, client.DialOptions{MaxMessageBytes: 128 << 10})
	if got, want := mustLimit(t, c), int64(128<<10-pb.MessageHeadroom); got != want {
		t.Fatalf("UnaryLimit = %d, want %d", got, want)
	}
	path, _ := writeFile(t, 100<<10)
	if _, err := c.ProcessFile(t.Context(), "v.mp4", 0, path, nil); err != nil {
		t.Fatalf("ProcessFile: %v", err)
	}
	if got, want := f.Calls(), []string{"CheckHealth", "UploadChunk"}; !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
}

func mustLimit(t *testing.T, c *client.Client) int64 {
	t.Helper()
	limit, err := c.UnaryLimit(t.Context())
	if err != nil {
		t.Fatalf("UnaryLimit: %v", err)
	}
	return limit
}

func TestProcessFile_UploadRefused(t *testing.T) {
	f := limitedWorker(1000)
	f.uploadErr = status.Error(codes.ResourceExhausted, "chunk too large")
	c := start(t, f, client.DialOptions{})
	path, _ := writeFile(t, 3<<20)

	_, err := c.ProcessFile(t.Context(), "v.mp4", 0, path, nil)
	if got, want := status.Code(err), codes.ResourceExhausted; got != want {
		t.Fatalf("code = %v, want %v (err %v)", got, want, err)
	}
	if !strings.Contains(err.Error(), "chunk too large") {
		t.Fatalf("error %q lacks the worker's message", err)
	}
}

func TestProcessFile_Rejected(t *testing.T) {
	f := limitedWorker(1000)
	f.notOK = true
	c := start(t, f, client.DialOptions{})
	path, _ := writeFile(t, 10)
	if _, err := c.ProcessFile(t.Context(), "v.mp4", 0, path, nil); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
}

func TestProcessFile_ErrNotRegular(t *testing.T) {
	c := start(t, limitedWorker(1000), client.DialOptions{})
	if _, err := c.ProcessFile(t.Context(), "v.mp4", 0, t.TempDir(), nil); err == nil {
		t.Fatal("ProcessFile of a directory succeeded")
	}
	_, err := c.ProcessFile(t.Context(), "v.mp4", 0, filepath.Join(t.TempDir(), "missing"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

// shardWorker serves data with metadata describing it correctly.
func shardWorker(data []byte) *fakeWorker {
	sum := sha256.Sum256(data)
	return &fakeWorker{
		shard: data,
		meta: &pb.ChunkMetadata{
			VideoId:        "v.mp4",
			ChunkIndex:     2,
			EncodedSize:    int64(len(data)),
			ChecksumSha256: hex.EncodeToString(sum[:]),
		},
	}
}

func shardRequest() *pb.GetShardRequest {
	return &pb.GetShardRequest{VideoId: "v.mp4", ChunkIndex: proto.Int32(2)}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestDownloadShard(t *testing.T) {
	data := randomBytes(5<<19 + 3)
	f := shardWorker(data)
	c := start(t, f, client.DialOptions{})

	var buf bytes.Buffer
	meta, n, err := c.DownloadShard(t.Context(), shardRequest(), &buf, client.ShardWant{})
	if err != nil {
		t.Fatalf("DownloadShard: %v", err)
	}
	if got, want := n, int64(len(data)); got != want {
		t.Fatalf("n = %d, want %d", got, want)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatal("written bytes differ from the shard")
	}
	if !proto.Equal(meta, f.meta) {
		t.Fatalf("metadata = %v, want %v", meta, f.meta)
	}
}

// TestDownloadShard_Stalled: a worker that stops sending mid-shard is
// abandoned after the idle timeout with ErrDownloadStalled, rather than
// holding the caller (the job) for as long as it likes.
func TestDownloadShard_Stalled(t *testing.T) {
	f := shardWorker(randomBytes(3 << 20))
	f.stallAt = 1
	c := start(t, f, client.DialOptions{DownloadIdleTimeout: 200 * time.Millisecond})
	_, n, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{})
	if !errors.Is(err, client.ErrDownloadStalled) {
		t.Fatalf("err = %v, want ErrDownloadStalled", err)
	}
	if n != 1<<20 {
		t.Errorf("n = %d, want the one frame sent before the stall", n)
	}
}

// failingWriter takes ok bytes, then fails every write with err.
type failingWriter struct {
	ok  int
	err error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.ok {
		w.ok -= len(p)
		return len(p), nil
	}
	n := w.ok
	w.ok = 0
	return n, w.err
}

// TestDownloadShard_WriteFails: a failed write (the disk is full) ends the
// download with that error and the count that was written, whichever
// message it failed on.
func TestDownloadShard_WriteFails(t *testing.T) {
	full := errors.New("no space left on device")
	for _, ok := range []int{0, 1 << 20, 3<<20 + 5} {
		c := start(t, shardWorker(randomBytes(8<<20)), client.DialOptions{})
		_, n, err := c.DownloadShard(t.Context(), shardRequest(), &failingWriter{ok: ok, err: full}, client.ShardWant{})
		if !errors.Is(err, full) || !strings.Contains(err.Error(), "write: ") {
			t.Fatalf("writer failing after %d bytes: err = %v, want the write's error", ok, err)
		}
		if n != int64(ok) {
			t.Fatalf("writer failing after %d bytes: n = %d", ok, n)
		}
	}
}

func TestDownloadShard_Empty(t *testing.T) {
	c := start(t, shardWorker(nil), client.DialOptions{})
	if _, n, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{}); err != nil || n != 0 {
		t.Fatalf("DownloadShard = %d, %v; want 0, nil", n, err)
	}
}

func TestDownloadShard_ErrChecksumMismatch(t *testing.T) {
	f := shardWorker(randomBytes(3 << 20))
	f.shard = bytes.Clone(f.shard)
	f.shard[len(f.shard)/2] ^= 1 // same size, different bytes
	c := start(t, f, client.DialOptions{})

	_, _, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{})
	if !errors.Is(err, client.ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
}

func TestDownloadShard_ErrChecksumMissing(t *testing.T) {
	f := shardWorker(randomBytes(10))
	f.meta.ChecksumSha256 = ""
	c := start(t, f, client.DialOptions{})
	if _, _, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{}); !errors.Is(err, client.ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
}

func TestDownloadShard_ErrSizeMismatch(t *testing.T) {
	for _, delta := range []int64{-1, 1} {
		f := shardWorker(randomBytes(2 << 20))
		f.meta.EncodedSize += delta
		c := start(t, f, client.DialOptions{})
		if _, _, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{}); !errors.Is(err, client.ErrSizeMismatch) {
			t.Fatalf("encoded_size off by %d: err = %v, want ErrSizeMismatch", delta, err)
		}
	}
}

func TestDownloadShard_ErrProtocol(t *testing.T) {
	f := shardWorker(randomBytes(10))
	f.meta = nil
	c := start(t, f, client.DialOptions{})
	if _, _, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{}); !errors.Is(err, client.ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

// TestDownloadShard_OversizedMessage: a worker whose first message is over
// the client's limit (megabytes of metadata) breaks the protocol: the
// error says so (ErrProtocol), for the job to fetch the shard elsewhere.
func TestDownloadShard_OversizedMessage(t *testing.T) {
	f := shardWorker(randomBytes(10))
	f.meta.EncoderSettings = map[string]string{"x": strings.Repeat("m", 2<<20)}
	c := start(t, f, client.DialOptions{MaxMessageBytes: 1 << 20})
	if _, _, err := c.DownloadShard(t.Context(), shardRequest(), io.Discard, client.ShardWant{}); !errors.Is(err, client.ErrProtocol) ||
		!strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("err = %v, want ErrProtocol saying the message is over the limit", err)
	}
}

func TestErrorCodesPassThrough(t *testing.T) {
	path, _ := writeFile(t, 10)
	calls := map[string]func(context.Context, *client.Client) error{
		"ProcessFile": func(ctx context.Context, c *client.Client) error {
			_, err := c.ProcessFile(ctx, "v.mp4", 0, path, nil)
			return err
		},
		"List": func(ctx context.Context, c *client.Client) error {
			_, err := c.List(ctx, "v.mp4")
			return err
		},
		"Metadata": func(ctx context.Context, c *client.Client) error {
			_, err := c.Metadata(ctx, "v.mp4")
			return err
		},
		"DownloadShard": func(ctx context.Context, c *client.Client) error {
			_, _, err := c.DownloadShard(ctx, shardRequest(), io.Discard, client.ShardWant{})
			return err
		},
	}
	for name, call := range calls {
		for _, code := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.Unavailable, codes.DataLoss} {
			t.Run(name+"/"+code.String(), func(t *testing.T) {
				f := limitedWorker(1000)
				f.err = status.Error(code, "fake failure")
				err := call(t.Context(), start(t, f, client.DialOptions{}))
				if got := status.Code(err); got != code {
					t.Fatalf("code = %v, want %v (err %v)", got, code, err)
				}
				if !strings.Contains(err.Error(), "fake failure") {
					t.Fatalf("error %q lacks the worker's message", err)
				}
			})
		}
	}
}

func TestRejected(t *testing.T) {
	f := &fakeWorker{notOK: true}
	c := start(t, f, client.DialOptions{})
	if _, err := c.List(t.Context(), ""); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("List err = %v, want ErrRejected", err)
	}
	if _, err := c.Metadata(t.Context(), "v.mp4"); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("Metadata err = %v, want ErrRejected", err)
	}
}

func TestHealth(t *testing.T) {
	f := &fakeWorker{health: &pb.HealthCheckResponse{IsHealthy: false, WorkerId: "w1", Message: "draining"}}
	c := start(t, f, client.DialOptions{})
	h, err := c.Health(t.Context())
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if h.GetIsHealthy() || h.GetMessage() != "draining" {
		t.Fatalf("Health = %v, want the unhealthy answer", h)
	}
}

func TestCanceled(t *testing.T) {
	c := start(t, &fakeWorker{}, client.DialOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Health(ctx); status.Code(err) != codes.Canceled {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

func TestDial_ErrMaxMessageBytes(t *testing.T) {
	for _, n := range []int{-1, client.MinMaxMessageBytes - 1} {
		if _, err := client.Dial(t.Context(), "127.0.0.1:1", client.DialOptions{Insecure: true, MaxMessageBytes: n}); err == nil {
			t.Fatalf("Dial with MaxMessageBytes %d succeeded", n)
		}
	}
}

func TestDial_ErrEmptyAddress(t *testing.T) {
	if _, err := client.Dial(t.Context(), "", client.DialOptions{Insecure: true}); err == nil {
		t.Fatal("Dial with an empty address succeeded")
	}
}

// ProcessFileTrimmed carries the trim in the unary request and in the
// upload header; ProcessFile sends none.
func TestProcessFileTrimmed(t *testing.T) {
	trim := &pb.FrameTrim{StartFrame: 12, FrameCount: 48}
	tests := []struct {
		name string
		size int
		sent func(f *fakeWorker) *pb.FrameTrim
	}{
		{"unary", 1000, func(f *fakeWorker) *pb.FrameTrim { return f.unary.GetTrim() }},
		{"streamed", 3000, func(f *fakeWorker) *pb.FrameTrim { return f.header.GetTrim() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := limitedWorker(1000)
			c := start(t, f, client.DialOptions{})
			path, data := writeFile(t, tt.size)
			if _, err := c.ProcessFileTrimmed(t.Context(), "v.mp4", 2, path, nil, trim); err != nil {
				t.Fatalf("ProcessFileTrimmed: %v", err)
			}
			if !bytes.Equal(f.Received(), data) {
				t.Fatal("received bytes differ from the file")
			}
			f.mu.Lock()
			got := tt.sent(f)
			f.mu.Unlock()
			if !proto.Equal(got, trim) {
				t.Fatalf("trim sent = %v, want %v", got, trim)
			}
			if _, err := c.ProcessFile(t.Context(), "v.mp4", 2, path, nil); err != nil {
				t.Fatalf("ProcessFile: %v", err)
			}
			f.mu.Lock()
			got = tt.sent(f)
			f.mu.Unlock()
			if got != nil {
				t.Fatalf("ProcessFile sent trim %v", got)
			}
		})
	}
}

func TestHasFeature(t *testing.T) {
	tests := []struct {
		h    *pb.HealthCheckResponse
		want bool
	}{
		{nil, false},
		{&pb.HealthCheckResponse{}, false},
		{&pb.HealthCheckResponse{Features: []string{"other"}}, false},
		{&pb.HealthCheckResponse{Features: []string{"other", pb.FeatureFrameTrim}}, true},
	}
	for _, tt := range tests {
		if got := client.HasFeature(tt.h, pb.FeatureFrameTrim); got != tt.want {
			t.Errorf("HasFeature(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}
