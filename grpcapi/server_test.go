package grpcapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/internal/quality"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// fakeEncoder lets tests control an encode: it copies its input to the
// output unless told otherwise.
type fakeEncoder struct {
	started chan struct{} // receives once per Encode, if not nil
	block   chan struct{} // Encode waits on it (or ctx), if not nil
	readN   int64         // read only this many bytes, if > 0
	err     error
	quality *quality.Stats // returned as Result.Quality
	calls   atomic.Int32   // Encode calls

	mu   sync.Mutex // guards last
	last encode.Options
}

func (f *fakeEncoder) Name() string                    { return "fake" }
func (f *fakeEncoder) Check(ctx context.Context) error { return nil }
func (f *fakeEncoder) TrimsFrames() bool               { return true }

// Settings implements encode.SettingsResolver: the codec (default "fake"),
// the CRF if one was asked for, and the trim if any.
func (f *fakeEncoder) Settings(o encode.Options) (map[string]string, error) {
	m := map[string]string{"codec": cmp.Or(o.VideoCodec, "fake")}
	if o.CRF != nil {
		m["crf"] = strconv.Itoa(*o.CRF)
	}
	if t := o.Trim; t != nil {
		m[encode.SettingTrimStart] = strconv.FormatInt(t.Start, 10)
		m[encode.SettingTrimFrames] = strconv.FormatInt(t.Frames, 10)
	}
	return m, nil
}

// lastOptions returns the options of the last Encode call.
func (f *fakeEncoder) lastOptions() encode.Options {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeEncoder) Encode(ctx context.Context, in io.Reader, out encode.Output, opts encode.Options) (encode.Result, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.last = opts
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return encode.Result{}, ctx.Err()
		}
	}
	if f.err != nil {
		return encode.Result{}, f.err
	}
	if f.readN > 0 {
		in = io.LimitReader(in, f.readN)
	}
	if _, err := io.Copy(out, in); err != nil {
		return encode.Result{}, err
	}
	settings, _ := f.Settings(opts)
	return encode.Result{Encoder: "fake", Settings: settings, Quality: f.quality}, nil
}

type harness struct {
	srv    *Server
	store  *storage.Store
	client pb.VideoProcessingServiceClient
}

func newHarness(t *testing.T, enc encode.Encoder, cfg Config) *harness {
	t.Helper()
	return newHarnessFS(t, nil, enc, cfg)
}

// newHarnessFS is newHarness over a store whose write path goes through fsys.
func newHarnessFS(t *testing.T, fsys storage.FS, enc encode.Encoder, cfg Config) *harness {
	t.Helper()
	return newHarnessStore(t, storage.Options{Root: t.TempDir(), FS: fsys}, enc, cfg)
}

// newHarnessStore is newHarness over a store opened with opts.
func newHarnessStore(t *testing.T, opts storage.Options, enc encode.Encoder, cfg Config) *harness {
	t.Helper()
	store, err := storage.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(store, enc, cfg)
	gs := grpc.NewServer(srv.GRPCOptions()...)
	srv.Register(gs)
	return &harness{srv: srv, store: store, client: pb.NewVideoProcessingServiceClient(serveBufconn(t, gs))}
}

// serveBufconn serves gs over an in-memory listener until the test ends
// and returns a connection to it; opts are the client's beyond plaintext.
func serveBufconn(t testing.TB, gs *grpc.Server, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", storage.ErrInvalid), codes.InvalidArgument},
		{fmt.Errorf("x: %w", encode.ErrInvalidInput), codes.InvalidArgument},
		{fmt.Errorf("x: %w", encode.ErrInvalidOptions), codes.InvalidArgument},
		{fmt.Errorf("x: %w", encode.ErrTooManyPixels), codes.InvalidArgument},
		{fmt.Errorf("x: %w", encode.ErrOverrideNotAllowed), codes.PermissionDenied},
		{invalidf("bad"), codes.InvalidArgument},
		{fmt.Errorf("x: %w", storage.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", storage.ErrNoSpace), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", errBusy), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", errTooLarge), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", storage.ErrCorrupt), codes.DataLoss},
		{&storage.CorruptError{Missing: true}, codes.DataLoss}, // not NotFound, though it matches ErrNotFound too
		{fmt.Errorf("x: %w", encode.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", storage.ErrIndexCorrupt), codes.Unavailable},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{status.Error(codes.Aborted, "kept"), codes.Aborted},
		{errors.New("disk on fire"), codes.Internal},
	}
	for _, tt := range tests {
		if got := status.Code(toStatus(tt.err)); got != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
}

func TestBusyQueueIsBounded(t *testing.T) {
	enc := &fakeEncoder{started: make(chan struct{}, 10), block: make(chan struct{})}
	// Room for three unary calls: the third is refused by the queue, not at admission.
	h := newHarness(t, enc, Config{MaxConcurrentTasks: 1, MaxQueuedTasks: 1, MaxUnaryChunks: 3})
	ctx := context.Background()
	results := make(chan error, 2)
	send := func(i int32) {
		_, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: i, ChunkData: []byte("data")})
		results <- err
	}
	go send(0)
	<-enc.started // one encode runs
	go send(1)    // one waits in the queue
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.queued.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("second request never queued")
		}
		time.Sleep(time.Millisecond)
	}
	_, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 2, ChunkData: []byte("data")})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third request: %v, want ResourceExhausted", err)
	}
	var hint *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			hint = r
		}
	}
	if hint == nil || hint.GetRetryDelay().AsDuration() <= 0 {
		t.Fatalf("overload refusal carries no retry hint: %v", status.Convert(err).Details())
	}
	if got := h.srv.ActiveTasks(); got != 1 {
		t.Fatalf("ActiveTasks = %d, want 1", got)
	}
	close(enc.block)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := h.srv.ActiveTasks(); got != 0 {
		t.Fatalf("ActiveTasks after = %d, want 0", got)
	}
}

func TestEncoderLeavingInputUnreadIsAnError(t *testing.T) {
	h := newHarness(t, &fakeEncoder{readN: 3}, Config{})
	_, err := h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("0123456789")})
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want Internal", err)
	}
	if _, err := h.store.Lookup("v", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("chunk stored anyway: %v", err)
	}
}

func TestCorruptedShardIsDataLoss(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{FrameBytes: 7})
	ctx := context.Background()
	resp, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("some shard bytes")})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(resp.GetShardLocation())
	if err != nil {
		t.Fatal(err)
	}
	data[3] ^= 0xff // one flipped byte, same size
	if err := os.WriteFile(resp.GetShardLocation(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.GetShard(ctx, &pb.GetShardRequest{ShardLocation: resp.GetShardLocation()}); status.Code(err) != codes.DataLoss {
		t.Fatalf("GetShard of a corrupted shard: %v, want DataLoss", err)
	}
	// The corrupted shard was quarantined: store it again, corrupt it again.
	if _, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("some shard bytes")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resp.GetShardLocation(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	stream, err := h.client.DownloadShard(ctx, &pb.GetShardRequest{ShardLocation: resp.GetShardLocation()})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = stream.Recv()
		if err != nil {
			break
		}
	}
	if status.Code(err) != codes.DataLoss {
		t.Fatalf("DownloadShard of a corrupted shard ended with %v, want DataLoss", err)
	}
}

func TestUnaryGetShardOverTheLimit(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{MaxMessageBytes: messageHeadroom + 10})
	ctx := context.Background()
	if _, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: make([]byte, 11)}); err != nil {
		t.Fatal(err)
	}
	idx := int32(0)
	_, err := h.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: &idx})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("GetShard over the message limit: %v, want ResourceExhausted", err)
	}
}

func TestCancelledWhileQueued(t *testing.T) {
	enc := &fakeEncoder{started: make(chan struct{}, 10), block: make(chan struct{})}
	// Room for a second unary call, so that it waits in the queue.
	h := newHarness(t, enc, Config{MaxConcurrentTasks: 1, MaxUnaryChunks: 2})
	defer close(enc.block)
	go h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("x")})
	<-enc.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 1, ChunkData: []byte("x")})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("queued request past its deadline: %v, want DeadlineExceeded", err)
	}
}

// A zero Config gets the documented defaults; DefaultConfig spells out the
// same ones and adds the bounds a zero Config goes without.
func TestNewServerDefaults(t *testing.T) {
	store, err := storage.Open(storage.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	zero := NewServer(store, &fakeEncoder{}, Config{}).cfg
	def := NewServer(store, &fakeEncoder{}, DefaultConfig()).cfg
	tests := []struct {
		name      string
		got, want any
	}{
		{"MaxConcurrentTasks", zero.MaxConcurrentTasks, 1},
		{"MaxQueuedTasks", zero.MaxQueuedTasks, 4},
		{"MaxUnaryChunks", zero.MaxUnaryChunks, 1},
		{"MaxUploads", zero.MaxUploads, 2},
		{"MaxChunkBytes", zero.MaxChunkBytes, int64(4 << 30)},
		{"MaxMessageBytes", zero.MaxMessageBytes, pb.DefaultMaxMessageBytes},
		{"FrameBytes", zero.FrameBytes, 1 << 20},
		{"HealthTTL", zero.HealthTTL, 30 * time.Second},
		{"HealthTimeout", zero.HealthTimeout, 10 * time.Second},
		{"UploadIdleTimeout", zero.UploadIdleTimeout, time.Duration(0)},
		{"UploadTimeout", zero.UploadTimeout, time.Duration(0)},
		{"MaxConcurrentStreams", zero.MaxConcurrentStreams, uint32(0)},

		{"default MaxConcurrentTasks", def.MaxConcurrentTasks, runtime.NumCPU()},
		{"default MaxQueuedTasks", def.MaxQueuedTasks, 4 * runtime.NumCPU()},
		{"default MaxChunkBytes", def.MaxChunkBytes, zero.MaxChunkBytes},
		{"default MaxMessageBytes", def.MaxMessageBytes, zero.MaxMessageBytes},
		{"default HealthTTL", def.HealthTTL, zero.HealthTTL},
		{"default UploadIdleTimeout", def.UploadIdleTimeout, 30 * time.Second},
		{"default UploadTimeout", def.UploadTimeout, 10 * time.Minute},
		{"default MaxConcurrentStreams", def.MaxConcurrentStreams, uint32(100)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
