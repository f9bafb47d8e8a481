package grpcapi

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// CheckHealth reports the store's figures and limits, and a store below
// min_free_bytes is unhealthy and refuses chunks, saying why.
func TestStoreLimitsOverTheWire(t *testing.T) {
	ctx := context.Background()
	h := newHarnessStore(t, storage.Options{Root: t.TempDir(), Limits: storage.Limits{MaxBytes: 1 << 20, Eviction: storage.EvictLRU}},
		&fakeEncoder{}, Config{WorkerID: "w"})
	for n := range 3 {
		if _, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: int32(n), ChunkData: make([]byte, 300_000)}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := h.client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStoreChunks() != 3 || resp.GetStoreBytes() != 900_000 || resp.GetStoreMaxBytes() != 1<<20 || resp.GetEvictedChunks() != 0 {
		t.Fatalf("store figures: %v", resp)
	}
	// A fourth crosses max_bytes: the least recently read goes.
	if _, err := h.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: new(int32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 3, ChunkData: make([]byte, 300_000)}); err != nil {
		t.Fatal(err)
	}
	if resp, _ = h.client.CheckHealth(ctx, &pb.HealthCheckRequest{}); resp.GetEvictedChunks() < 1 || resp.GetStoreBytes() > 1<<20 {
		t.Fatalf("after a commit over max_bytes: %v", resp)
	}
	if _, err := h.store.Lookup("v", 0); err != nil {
		t.Errorf("the chunk read last was evicted: %v", err)
	}

	low := newHarnessStore(t, storage.Options{Root: t.TempDir(), Limits: storage.Limits{MinFreeBytes: 1 << 60}}, &fakeEncoder{}, Config{WorkerID: "w"})
	resp, err = low.client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetIsHealthy() || !strings.Contains(resp.GetMessage(), "min_free_bytes") || resp.GetStoreMinFreeBytes() != 1<<60 {
		t.Fatalf("below min_free_bytes: healthy %v, %q", resp.GetIsHealthy(), resp.GetMessage())
	}
	_, err = low.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("x")})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "min_free_bytes") {
		t.Fatalf("ProcessChunk below min_free_bytes: %v, want ResourceExhausted naming the limit", err)
	}
}

// TestEchoedValuesClipped: a client's value quoted back in a refusal (a
// megabyte of encoder name, escaped four times over) comes back, and is
// logged, clipped to maxStatusMessage, saying how long it was: not as a
// status larger than the request, nor a log line five times its size.
func TestEchoedValuesClipped(t *testing.T) {
	sim, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, sim, Config{MaxMessageBytes: 4 << 20})
	_, err = h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("x"),
		Encoding: &pb.EncodingOptions{VideoCodec: strings.Repeat("\x01", 1<<20)}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || len(st.Message()) > maxStatusMessage+64 || !strings.Contains(st.Message(), "bytes in all)") {
		t.Fatalf("a 1 MiB codec name: %v, %d bytes of message %.200q; want InvalidArgument, clipped", st.Code(), len(st.Message()), st.Message())
	}
}

// TestHeaderListBounded: a call's headers are bounded (maxHeaderListBytes),
// so calls that never send their message cannot hold megabytes each.
func TestHeaderListBounded(t *testing.T) {
	w := newTCPWorker(t, Config{})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-pad", strings.Repeat("p", 2*maxHeaderListBytes))
	if _, err := w.client.CheckHealth(ctx, &pb.HealthCheckRequest{}); err == nil {
		t.Fatal("a call with headers over the bound was served")
	}
	if _, err := w.client.CheckHealth(context.Background(), &pb.HealthCheckRequest{}); err != nil {
		t.Fatalf("an ordinary call after it: %v", err)
	}
}

// TestMessageAwaited: a call whose request message never comes (its
// headers only, the stream kept open) is ended after UploadIdleTimeout,
// unary or streamed: it does not hold its headers for as long as the
// client likes. A call whose message comes in time is served.
func TestMessageAwaited(t *testing.T) {
	w := newTCPWorker(t, Config{UploadIdleTimeout: 200 * time.Millisecond})
	conn, err := grpc.NewClient(w.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, method := range []string{pb.VideoProcessingService_GetVideoMetadata_FullMethodName, pb.VideoProcessingService_DownloadShard_FullMethodName} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = s.RecvMsg(new(pb.GetVideoMetadataResponse))
		if took := time.Since(start); err == nil || took > 5*time.Second {
			t.Errorf("%s without its message: ended after %v with %v, want an end after about 200ms", method, took, err)
		}
		cancel()
	}
	if _, err := w.client.CheckHealth(context.Background(), &pb.HealthCheckRequest{}); err != nil {
		t.Errorf("a call with its message: %v", err)
	}
}

// TestConnections: beyond MaxConns in all, a connection is closed as it is
// accepted, from whichever host; one closed makes room again.
func TestConnections(t *testing.T) {
	w := newTCPWorker(t, Config{MaxConns: 2, MaxConnsPerHost: 100})
	held := holdConns(t, w.addr, 2)
	refusedConn(t, w.addr, "a third connection")
	held[0].Close()
	callAgain(t, w)
}

// TestConnectionsPerHost: beyond MaxConnsPerHost open connections from one
// host (idle ones that never speak HTTP/2 here), a new one is closed as it
// is accepted; once one closes, the host is served again.
func TestConnectionsPerHost(t *testing.T) {
	w := newTCPWorker(t, Config{MaxConnsPerHost: 2})
	held := holdConns(t, w.addr, 2)
	refusedConn(t, w.addr, "a third connection from the host")
	held[0].Close()
	callAgain(t, w)
}

// holdConns opens n TCP connections to addr, closed when the test ends.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	return held
}

// refusedConn opens one more connection to addr and wants the worker to
// close it.
func refusedConn(t *testing.T, addr, what string) {
	t.Helper()
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: read %v, want it closed by the worker", what, err)
	}
}

// callAgain wants a call to w to succeed once a held connection is closed.
func callAgain(t *testing.T, w *tcpWorker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		// The worker counts the closed connection out once its read of
		// it fails: until then the call's connection may be refused.
		_, err := w.client.CheckHealth(ctx, &pb.HealthCheckRequest{})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("a call after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
