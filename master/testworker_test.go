package master_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// workerOpts configures an in-process worker: the real gRPC API over a
// store in a temporary directory and the simulated encoder.
type workerOpts struct {
	MaxTasks        int           // max_concurrent_tasks (default 1)
	Delay           time.Duration // simulated encode time per chunk
	MaxMessageBytes int           // the worker's message limit (default 4 MiB)
	// Hooks, when set, sits in front of the real server to inject faults.
	Hooks *hooks
}

// testWorker is a worker listening on 127.0.0.1 over TCP. It counts the
// chunk RPCs (ProcessChunk and UploadChunk) in flight, as the server sees
// them.
type testWorker struct {
	Addr  string
	Store *storage.Store
	Hooks *hooks // always set (see startWorker)
	gs    *grpc.Server

	// OnChunk, if set before the first call, runs as each chunk RPC starts,
	// with the count of chunk RPCs so far.
	OnChunk func(n int)

	encodes *countingEncoder

	mu      sync.Mutex // guards the fields below
	cur     int
	peak    int
	calls   int
	streams int
	lastEnd time.Time     // when the last chunk RPC ended
	idle    time.Duration // total time with no chunk RPC between two chunk RPCs
	gaps    int
}

func startWorker(tb testing.TB, o workerOpts) *testWorker {
	tb.Helper()
	store, err := storage.Open(storage.Options{Root: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Delay: o.Delay})
	if err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	w := &testWorker{Addr: lis.Addr().String(), Store: store, encodes: &countingEncoder{Simulated: enc}}
	srv := grpcapi.NewServer(store, w.encodes, grpcapi.Config{
		WorkerID:           w.Addr,
		VideoCodec:         "simulated",
		MaxConcurrentTasks: max(o.MaxTasks, 1),
		MaxMessageBytes:    o.MaxMessageBytes,
	})
	// WaitForHandlers: Stop returns only once no handler writes to the
	// store, so the temporary directory can be removed.
	w.gs = grpc.NewServer(grpc.ChainUnaryInterceptor(w.unary), grpc.ChainStreamInterceptor(w.stream),
		grpc.WaitForHandlers(true))
	// The hooks are always there: their ReplicateShard is the test's
	// worker side of replication, which the real server lacks.
	h := o.Hooks
	if h == nil {
		h = &hooks{}
	}
	h.VideoProcessingServiceServer, h.store, h.addr = srv, store, w.Addr
	w.Hooks = h
	pb.RegisterVideoProcessingServiceServer(w.gs, h)
	go w.gs.Serve(lis)
	tb.Cleanup(w.gs.Stop)
	return w
}

// Kill stops the server at once: connections close, calls in flight fail.
func (w *testWorker) Kill() { w.gs.Stop() }

func isChunkRPC(method string) bool {
	return strings.HasSuffix(method, "/ProcessChunk") || strings.HasSuffix(method, "/UploadChunk")
}

func (w *testWorker) begin(stream bool) {
	w.mu.Lock()
	if w.cur == 0 && !w.lastEnd.IsZero() {
		w.idle += time.Since(w.lastEnd)
		w.gaps++
	}
	w.cur++
	w.calls++
	if stream {
		w.streams++
	}
	w.peak = max(w.peak, w.cur)
	n, fn := w.calls, w.OnChunk
	w.mu.Unlock()
	if fn != nil {
		fn(n)
	}
}

func (w *testWorker) end() {
	w.mu.Lock()
	w.cur--
	if w.cur == 0 {
		w.lastEnd = time.Now()
	}
	w.mu.Unlock()
}

// TakeIdle returns the time the worker sat idle between chunk RPCs and the
// number of such gaps, and starts counting afresh.
func (w *testWorker) TakeIdle() (time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	idle, gaps := w.idle, w.gaps
	w.idle, w.gaps, w.lastEnd = 0, 0, time.Time{}
	return idle, gaps
}

func (w *testWorker) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !isChunkRPC(info.FullMethod) {
		return h(ctx, req)
	}
	w.begin(false)
	defer w.end()
	return h(ctx, req)
}

func (w *testWorker) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !isChunkRPC(info.FullMethod) {
		return h(srv, ss)
	}
	w.begin(true)
	defer w.end()
	return h(srv, ss)
}

// countingEncoder counts the encodes running at once and their peak.
type countingEncoder struct {
	*encode.Simulated // its optional interfaces too (trims, settings)

	mu   sync.Mutex
	cur  int
	peak int
}

func (e *countingEncoder) Encode(ctx context.Context, in io.Reader, out encode.Output, opts encode.Options) (encode.Result, error) {
	e.mu.Lock()
	e.cur++
	e.peak = max(e.peak, e.cur)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.cur--
		e.mu.Unlock()
	}()
	return e.Simulated.Encode(ctx, in, out, opts)
}

// EncodePeak is the most encodes the worker ran at once.
func (w *testWorker) EncodePeak() int {
	w.encodes.mu.Lock()
	defer w.encodes.mu.Unlock()
	return w.encodes.peak
}

// InFlight is how many chunk RPCs the worker is serving now.
func (w *testWorker) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// Peak is the most chunk RPCs the worker ever had in flight at once.
func (w *testWorker) Peak() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// Calls counts chunk RPCs, and how many of them were streamed uploads.
func (w *testWorker) Calls() (calls, streams int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls, w.streams
}

// hooks wraps a real server. Its functions are set before the server
// starts and may be nil.
type hooks struct {
	pb.VideoProcessingServiceServer

	// Process replaces ProcessChunk; next is the real one. n counts calls
	// from 1.
	Process func(ctx context.Context, n int, req *pb.ProcessChunkRequest,
		next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error)
	// Health edits CheckHealth's answer.
	Health func(resp *pb.HealthCheckResponse) *pb.HealthCheckResponse
	// Replicate, when set, runs before each ReplicateShard: an answer or
	// an error is ReplicateShard's, neither makes the test's copy.
	Replicate func(req *pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error)
	// Replicated, when set, runs as each ReplicateShard that Replicate
	// let through returns.
	Replicated func(req *pb.ReplicateShardRequest)

	// NoUploads answers UploadChunk with Unimplemented, as a worker of
	// before streamed uploads would, whatever its health says.
	NoUploads bool
	// Serve, when set, edits each DownloadShard message before it is
	// sent; again says whether the shard was downloaded before.
	Serve      func(again bool, msg *pb.DownloadShardResponse)
	downloadMu sync.Mutex
	downloaded map[string]bool // guarded by downloadMu

	n          atomic.Int32
	store      *storage.Store
	addr       string
	replicated atomic.Int32 // copies committed
}

// ReplicateShard is the worker side of replication as the master expects
// it: pull the chunk from the source's DownloadShard (which verifies its
// checksum), commit it with the source's metadata, answer with the copy's.
func (h *hooks) ReplicateShard(ctx context.Context, req *pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error) {
	if h.Replicate != nil {
		if resp, err := h.Replicate(req); resp != nil || err != nil {
			return resp, err
		}
	}
	if h.Replicated != nil {
		defer h.Replicated(req)
	}
	src, err := client.Dial(ctx, req.GetSourceWorker(), client.DialOptions{Insecure: true})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	defer src.Close()
	idx := req.GetChunkIndex()
	p, err := h.store.Create(req.GetVideoId(), int(idx))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	defer p.Abort()
	m, _, err := src.DownloadShard(ctx, &pb.GetShardRequest{VideoId: req.GetVideoId(), ChunkIndex: &idx}, p, client.ShardWant{})
	if err != nil {
		return nil, err
	}
	stored, err := p.Commit(storage.Metadata{VideoID: m.GetVideoId(), ChunkIndex: int(idx), OriginalSize: m.GetOriginalSize(),
		WorkerID: h.addr, Encoder: m.GetEncoder(), VideoCodec: m.GetVideoCodec(), EncoderSettings: m.GetEncoderSettings(),
		InputChecksumSHA256: m.GetInputChecksumSha256(), FrameCount: m.GetFrameCount()})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	h.replicated.Add(1)
	return &pb.ReplicateShardResponse{Success: true, Metadata: &pb.ChunkMetadata{
		VideoId: stored.VideoID, ChunkIndex: idx, EncodedSize: stored.EncodedSize, ShardLocation: stored.ShardLocation,
		ChecksumSha256: stored.ChecksumSHA256, Encoder: stored.Encoder, WorkerId: h.addr, ReplicatedFrom: req.GetSourceWorker(),
	}}, nil
}

func (h *hooks) ProcessChunk(ctx context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	next := func() (*pb.ProcessChunkResponse, error) {
		return h.VideoProcessingServiceServer.ProcessChunk(ctx, req)
	}
	if h.Process == nil {
		return next()
	}
	return h.Process(ctx, int(h.n.Add(1)), req, next)
}

func (h *hooks) DownloadShard(req *pb.GetShardRequest, stream grpc.ServerStreamingServer[pb.DownloadShardResponse]) error {
	if h.Serve == nil {
		return h.VideoProcessingServiceServer.DownloadShard(req, stream)
	}
	key := req.GetShardLocation() + "|" + req.GetVideoId() + "|" + strconv.Itoa(int(req.GetChunkIndex()))
	h.downloadMu.Lock()
	again := h.downloaded[key]
	if h.downloaded == nil {
		h.downloaded = map[string]bool{}
	}
	h.downloaded[key] = true
	h.downloadMu.Unlock()
	return h.VideoProcessingServiceServer.DownloadShard(req, &editedStream{stream, again, h.Serve})
}

// editedStream is a DownloadShard stream whose messages edit edits first.
type editedStream struct {
	grpc.ServerStreamingServer[pb.DownloadShardResponse]
	again bool
	edit  func(again bool, msg *pb.DownloadShardResponse)
}

func (e *editedStream) Send(msg *pb.DownloadShardResponse) error {
	msg = proto.Clone(msg).(*pb.DownloadShardResponse) // the server reuses its frames' buffers
	e.edit(e.again, msg)
	return e.ServerStreamingServer.Send(msg)
}

func (h *hooks) UploadChunk(stream grpc.ClientStreamingServer[pb.UploadChunkRequest, pb.ProcessChunkResponse]) error {
	if h.NoUploads {
		return status.Error(codes.Unimplemented, "test: method UploadChunk not implemented")
	}
	return h.VideoProcessingServiceServer.UploadChunk(stream)
}

func (h *hooks) CheckHealth(ctx context.Context, req *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	resp, err := h.VideoProcessingServiceServer.CheckHealth(ctx, req)
	if err != nil {
		return resp, err
	}
	if resp.GetStoreBytes() == 0 { // a server without the store figures yet
		videos, _ := h.store.List("")
		for _, v := range videos {
			for _, m := range v.Chunks {
				resp.StoreBytes += m.EncodedSize
				resp.StoreChunks++
			}
		}
	}
	if h.Health == nil {
		return resp, nil
	}
	return h.Health(resp), nil
}

// DeleteShard, for a server without it yet: the chunk is moved out of the
// store (quarantined), which is as good as deleted for the master.
func (h *hooks) DeleteShard(ctx context.Context, req *pb.DeleteShardRequest) (*pb.DeleteShardResponse, error) {
	resp, err := h.VideoProcessingServiceServer.DeleteShard(ctx, req)
	if status.Code(err) != codes.Unimplemented {
		return resp, err
	}
	m, err := h.store.Lookup(req.GetVideoId(), int(req.GetChunkIndex()))
	if err != nil {
		return &pb.DeleteShardResponse{Success: true}, nil
	}
	if err := h.store.Quarantine(req.GetVideoId(), int(req.GetChunkIndex()), "deleted"); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &pb.DeleteShardResponse{Success: true, Deleted: true, FreedBytes: m.EncodedSize}, nil
}

// silentWorker returns the address of a listener that accepts connections
// and never says a word.
func silentWorker(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// chunkFile is a chunk written for a test, with what the simulated encoder
// makes of it.
type chunkFile struct {
	master.ChunkTask
	wantSum  string // SHA-256 of the simulated output
	wantSize int64
}

// writeChunks writes n chunk files of size(i) random bytes each.
func writeChunks(tb testing.TB, n int, size func(i int) int) []chunkFile {
	tb.Helper()
	dir := tb.TempDir()
	chunks := make([]chunkFile, n)
	for i := range n {
		data := make([]byte, size(i))
		rand.Read(data)
		path := filepath.Join(dir, fmt.Sprintf("chunk_%04d.bin", i))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		out := simulate(data)
		sum := sha256.Sum256(out)
		chunks[i] = chunkFile{
			ChunkTask: master.ChunkTask{Index: i, Path: path, Size: int64(len(data))},
			wantSum:   hex.EncodeToString(sum[:]),
			wantSize:  int64(len(out)),
		}
	}
	return chunks
}

// simulate is what encode.Simulated at ratio 0.5 outputs for data.
func simulate(data []byte) []byte {
	var out bytes.Buffer
	for len(data) > 0 {
		block := data[:min(len(data), 64<<10)]
		out.Write(block[:int(math.Round(0.5*float64(len(block))))])
		data = data[len(block):]
	}
	return out.Bytes()
}

func tasksOf(chunks []chunkFile) []master.ChunkTask {
	tasks := make([]master.ChunkTask, len(chunks))
	for i, c := range chunks {
		tasks[i] = c.ChunkTask
	}
	return tasks
}

// fastConfig is a config with short waits for tests, without the chunks
// sent ahead (so a worker has at most its cap of chunk RPCs in flight, each
// sent the way its size says; TestDispatch_SendAhead has them).
func fastConfig(tb testing.TB, addrs ...string) master.DispatchConfig {
	return master.DispatchConfig{
		Workers:       addrs,
		NoSendAhead:   true,
		BackoffBase:   5 * time.Millisecond,
		BackoffMax:    40 * time.Millisecond,
		ProbeInterval: 50 * time.Millisecond,
		ProbeTimeout:  500 * time.Millisecond,
		ChunkTimeout:  20 * time.Second,
		Dial:          client.DialOptions{Insecure: true},
		Logger:        testLogger(tb),
	}
}

func newDispatcher(tb testing.TB, cfg master.DispatchConfig) *master.Dispatcher {
	tb.Helper()
	d, err := master.NewDispatcher(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// testLogger logs warnings and worse to the test's log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = tbWriter{}

// recorder collects a Run's results and events, and checks that onDone is
// never called concurrently.
type recorder struct {
	t       *testing.T
	busy    atomic.Int32
	mu      sync.Mutex
	results map[int]master.ChunkResult
	events  []master.Event
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, results: make(map[int]master.ChunkResult)}
}

func (r *recorder) onDone(res master.ChunkResult) error {
	if r.busy.Add(1) != 1 {
		r.t.Errorf("onDone called concurrently")
	}
	defer r.busy.Add(-1)
	time.Sleep(time.Millisecond) // widen the window for overlap
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.results[res.Index]; dup {
		r.t.Errorf("chunk %d reported done twice", res.Index)
	}
	r.results[res.Index] = res
	return nil
}

func (r *recorder) onEvent(ev master.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) Results() map[int]master.ChunkResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int]master.ChunkResult, len(r.results))
	for k, v := range r.results {
		m[k] = v
	}
	return m
}

// Events returns the events of kind, for worker (any worker if empty).
func (r *recorder) Events(kind master.EventKind, worker string) []master.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []master.Event
	for _, ev := range r.events {
		if ev.Kind == kind && (worker == "" || ev.Worker == worker) {
			evs = append(evs, ev)
		}
	}
	return evs
}
