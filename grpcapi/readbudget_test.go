package grpcapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// stallingConn is a connection whose calls never read their answers: a
// fixed 64 KiB flow-control window that only reading would open.
func stallingConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// stall starts method with req and never reads the answer; cancel ends it.
func stall(t *testing.T, conn *grpc.ClientConn, method string, req proto.Message) (cancel func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(req); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	return cancel
}

// TestReadBudget: clients that ask for shards and never read the answers
// hold at most limits.max_read_bytes of the worker's memory; beyond it
// reads wait, then fail, and are served again once the stalled calls end.
func TestReadBudget(t *testing.T) {
	const shardBytes = 1 << 20
	w := newTCPWorker(t, Config{MaxReadBytes: 3 * shardBytes, FrameBytes: 256 << 10})
	data := strings.Repeat("x", shardBytes)
	for i := range 4 {
		put(t, w.harness, "v", i, data, storage.Metadata{Encoder: "fake"})
	}
	conn := stallingConn(t, w.addr)
	var cancels []func()
	for i := range 3 {
		cancels = append(cancels, stall(t, conn, pb.VideoProcessingService_GetShard_FullMethodName,
			&pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(int32(i))}))
	}
	// The three answers hold the whole budget (the gRPC server has them
	// once their handlers return).
	deadline := time.Now().Add(5 * time.Second)
	for w.srv.readBudget.TryAcquire(1) {
		w.srv.readBudget.Release(1)
		if time.Now().After(deadline) {
			t.Fatal("the stalled answers do not hold the read budget")
		}
		time.Sleep(10 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := w.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(3)})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("GetShard beyond the read budget: %v, want it to wait (DeadlineExceeded)", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer dcancel()
	if err := drainDownload(dctx, w.client, 3); status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DownloadShard beyond the read budget: %v, want it to wait", err)
	}

	for _, c := range cancels {
		c()
	}
	resp, err := w.client.GetShard(context.Background(), &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(3)})
	if err != nil || len(resp.GetShardData()) != shardBytes {
		t.Fatalf("GetShard once the stalled calls ended: %v", err)
	}
	if err := drainDownload(context.Background(), w.client, 2); err != nil {
		t.Fatalf("DownloadShard once the stalled calls ended: %v", err)
	}
	// Everything given back: the whole budget is free again.
	deadline = time.Now().Add(5 * time.Second)
	for !w.srv.readBudget.TryAcquire(3 * shardBytes) {
		if time.Now().After(deadline) {
			t.Fatal("the read budget was not given back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadBudget_StalledConnectionClosed: a connection whose calls hold
// the whole read budget and take nothing of their answers is closed after
// limits.upload_idle_timeout, its calls end, and honest reads, which
// waited meanwhile, are served.
func TestReadBudget_StalledConnectionClosed(t *testing.T) {
	const shardBytes = 1 << 20
	var logs syncBuffer
	w := newTCPWorker(t, Config{MaxReadBytes: 2 * shardBytes, FrameBytes: 256 << 10, UploadIdleTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	data := strings.Repeat("z", shardBytes)
	for i := range 3 {
		put(t, w.harness, "v", i, data, storage.Metadata{Encoder: "fake"})
	}
	conn := stallingConn(t, w.addr)
	for i := range 2 {
		defer stall(t, conn, pb.VideoProcessingService_GetShard_FullMethodName,
			&pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(int32(i))})()
	}
	start := time.Now()
	resp, err := w.client.GetShard(context.Background(), &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(2)})
	if err != nil || len(resp.GetShardData()) != shardBytes {
		t.Fatalf("GetShard beside a connection that stopped reading: %v\n%s", err, logs.String())
	}
	if waited := time.Since(start); waited > readWait/2 {
		t.Errorf("the honest read waited %v: the stalled connection kept the budget", waited)
	}
	if err := drainDownload(context.Background(), w.client, 1); err != nil {
		t.Fatalf("DownloadShard after the stalled connection was closed: %v", err)
	}
	if !strings.Contains(logs.String(), "closing a connection whose client stopped reading its answer") {
		t.Errorf("the worker did not say why it closed the connection:\n%s", logs.String())
	}
}

// TestReadBudget_DecoyTrafficDoesNotKeepStalledHolds: a client that
// stalls two answers while it reads others briskly on the same connection
// does not keep the stalled ones' holds: each answer must be taken at an
// upload's pace, whatever its connection carries besides.
func TestReadBudget_DecoyTrafficDoesNotKeepStalledHolds(t *testing.T) {
	const mib = 1 << 20
	w := newTCPWorker(t, Config{MaxReadBytes: 3 * mib, FrameBytes: 256 << 10, UploadIdleTimeout: time.Second})
	put(t, w.harness, "v", 0, strings.Repeat("a", mib), storage.Metadata{Encoder: "fake"})
	put(t, w.harness, "v", 1, strings.Repeat("b", mib), storage.Metadata{Encoder: "fake"})
	put(t, w.harness, "v", 2, strings.Repeat("c", 256<<10), storage.Metadata{Encoder: "fake"})
	conn := stallingConn(t, w.addr)
	for i := range 2 {
		defer stall(t, conn, pb.VideoProcessingService_GetShard_FullMethodName,
			&pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(int32(i))})()
	}
	decoy := pb.NewVideoProcessingServiceClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			_, _ = decoy.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(2)})
			time.Sleep(100 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !w.srv.readBudget.TryAcquire(3 * mib) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled answers still hold the read budget after 10 idle windows of decoy traffic")
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.srv.readBudget.Release(3 * mib)
}

// TestReadBudget_StalledDownloadHoldsLittle: a DownloadShard never read
// holds a few frames of the budget, not its shard.
func TestReadBudget_StalledDownloadHoldsLittle(t *testing.T) {
	const frameBytes = 64 << 10
	w := newTCPWorker(t, Config{MaxReadBytes: 16 * frameBytes, FrameBytes: frameBytes})
	put(t, w.harness, "v", 0, strings.Repeat("y", 64*frameBytes), storage.Metadata{Encoder: "fake"})
	cancel := stall(t, stallingConn(t, w.addr), pb.VideoProcessingService_DownloadShard_FullMethodName,
		&pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(0)})
	defer cancel()
	time.Sleep(300 * time.Millisecond) // the download fills what it may
	// What is left: the budget less the frames sent but unread, in gRPC's
	// buffers, and those read ahead.
	if !w.srv.readBudget.TryAcquire(8 * frameBytes) {
		t.Fatal("a stalled download holds more than 8 frames of the read budget")
	}
	w.srv.readBudget.Release(8 * frameBytes)
	if err := drainDownload(context.Background(), w.client, 0); err != nil {
		t.Fatalf("an honest download beside the stalled one: %v", err)
	}
}

func drainDownload(ctx context.Context, c pb.VideoProcessingServiceClient, chunk int32) error {
	s, err := c.DownloadShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(chunk)})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestGetShard_MetadataCountsInTheLimit: a shard that fits a message on its
// own but not with its (large) metadata is refused with the DownloadShard
// hint, not with gRPC's bare "larger than max"; DownloadShard serves it.
func TestGetShard_MetadataCountsInTheLimit(t *testing.T) {
	const limit = 1 << 20
	w := newTCPWorker(t, Config{MaxMessageBytes: limit})
	settings := map[string]string{"a": strings.Repeat("s", 50<<10), "b": strings.Repeat("t", 50<<10)}
	put(t, w.harness, "v", 0, strings.Repeat("x", limit-pb.MessageHeadroom), storage.Metadata{Encoder: "fake", EncoderSettings: settings})
	_, err := w.client.GetShard(context.Background(), &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(0)})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "use DownloadShard") ||
		!strings.Contains(err.Error(), "with its metadata") {
		t.Fatalf("GetShard of a shard whose metadata overflows the message: %v", err)
	}
	if err := drainDownload(context.Background(), w.client, 0); err != nil {
		t.Fatalf("DownloadShard of it: %v", err)
	}
}

// TestGetVideoMetadata_TooLargeSaysSo: a video whose metadata does not fit
// one message (the answer has no pages) is refused naming ListShards, not
// with gRPC's bare size error; nothing stored is touched.
func TestGetVideoMetadata_TooLargeSaysSo(t *testing.T) {
	const limit = 256 << 10
	w := newTCPWorker(t, Config{MaxMessageBytes: limit})
	settings := map[string]string{"x": strings.Repeat("s", 60<<10)}
	for i := range 5 {
		put(t, w.harness, "v", i, "data", storage.Metadata{Encoder: "fake", EncoderSettings: settings})
	}
	_, err := w.client.GetVideoMetadata(context.Background(), &pb.GetVideoMetadataRequest{VideoId: "v"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "5 chunks") || !strings.Contains(err.Error(), "ListShards") {
		t.Fatalf("GetVideoMetadata over the message limit: %v", err)
	}
	if _, err := w.client.GetShard(context.Background(), &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(4)}); err != nil {
		t.Fatalf("GetShard after the refusal: %v", err)
	}
}

// TestDownloadShard_RecycledFramesKeepTheirBytes: answer buffers (a
// download's frames, a GetShard's whole shard: these are of one size class)
// go back to their pools only once gRPC is done with them, so downloads and
// GetShard calls side by side, some of them read slowly (their frames wait
// in gRPC's buffers) or given up midway, each get their own shard's bytes.
// Run with -race, an early reuse is a data race as well as wrong bytes.
func TestDownloadShard_RecycledFramesKeepTheirBytes(t *testing.T) {
	const frameBytes = 64 << 10 // the smallest frame sent beside the message, not copied into it
	w := newTCPWorker(t, Config{FrameBytes: frameBytes})
	shards := make([][]byte, 3)
	for i := range shards {
		shards[i] = make([]byte, 20*frameBytes+123)
		rand.NewChaCha8([32]byte{byte(i)}).Read(shards[i])
		put(t, w.harness, "v", i, string(shards[i]), storage.Metadata{Encoder: "fake"})
	}
	var g errgroup.Group
	for round := range 3 {
		for i := range shards {
			g.Go(func() error {
				s, err := w.client.DownloadShard(context.Background(), &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(int32(i))})
				if err != nil {
					return err
				}
				var got []byte
				for {
					msg, err := s.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return err
					}
					got = append(got, msg.GetData()...)
					if i == 0 && round == 0 {
						time.Sleep(5 * time.Millisecond) // a slow reader
					}
				}
				if !bytes.Equal(got, shards[i]) {
					return fmt.Errorf("round %d, chunk %d: got %d bytes that differ from the shard's %d", round, i, len(got), len(shards[i]))
				}
				return nil
			})
		}
	}
	for round := range 10 {
		for i := range shards {
			g.Go(func() error {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if round%3 == 1 && i == 1 {
					time.AfterFunc(time.Millisecond, cancel) // a client that gives up
				}
				resp, err := w.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(int32(i))})
				if ctx.Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
				if !bytes.Equal(resp.GetShardData(), shards[i]) {
					return fmt.Errorf("GetShard round %d, chunk %d: bytes differ from the shard's", round, i)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// closeCountingConn is a net.Conn whose Close is counted.
type closeCountingConn struct {
	net.Conn
	closes atomic.Int32
}

func (c *closeCountingConn) Close() error { c.closes.Add(1); return nil }

// TestReadBudget_ResetCallGivesBackItsHolds: gRPC may drop, unfreed, a
// frame it takes for a call its client has just reset. The call's holds
// are given back once gRPC reports taking an answer for a call already
// over (OutPayload), and its connection is not closed for an answer nobody
// will take; a live call's holds are kept until taken.
func TestReadBudget_ResetCallGivesBackItsHolds(t *testing.T) {
	const n = 1 << 20
	idle := 100 * time.Millisecond
	h := newHarness(t, &fakeEncoder{}, Config{MaxReadBytes: n, UploadIdleTimeout: idle})
	conn := &closeCountingConn{}
	tagger := connTagger{}
	for _, reset := range []bool{false, true} {
		base, cancel := context.WithCancel(context.WithValue(context.Background(), connBytesKey{}, &connProgress{conn: conn}))
		ctx := tagger.TagRPC(base, &stats.RPCTagInfo{})
		release, err := h.srv.reserveRead(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		done, _, start := h.srv.watchHold(ctx, n, release)
		start()
		if reset {
			cancel()
		}
		tagger.HandleRPC(ctx, &stats.OutPayload{})
		if got := h.srv.readBudget.TryAcquire(n); got != reset {
			t.Errorf("reset %v: the budget is free again: %v", reset, got)
		} else if got {
			h.srv.readBudget.Release(n)
		}
		done()
		cancel()
	}
	time.Sleep(3 * idle)
	if c := conn.closes.Load(); c != 0 {
		t.Errorf("the connection was closed %d times for holds given back", c)
	}
}

// TestReadBudget_SlowReaderAtPaceKept: a download taken at 1.6 times the
// pace an answer must keep (uploadProgressBytes per UploadIdleTimeout) is
// kept to its end: a frame's clock starts once it is queued, not while its
// Send waits behind the frame before it, which the client takes at the
// same pace.
func TestReadBudget_SlowReaderAtPaceKept(t *testing.T) {
	const frameBytes = uploadProgressBytes
	idle := time.Second
	var logs syncBuffer
	w := newTCPWorker(t, Config{MaxReadBytes: 64 * frameBytes, FrameBytes: frameBytes, UploadIdleTimeout: idle,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	put(t, w.harness, "v", 0, strings.Repeat("s", 5*frameBytes), storage.Metadata{Encoder: "fake"})
	conn := stallingConn(t, w.addr) // 64 KiB windows: what is not read is not sent
	s, err := pb.NewVideoProcessingServiceClient(conn).DownloadShard(context.Background(),
		&pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(0)})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v\n%s", got, err, logs.String())
		}
		got += len(resp.GetData())
		time.Sleep(idle * 5 / 8) // a frame every 0.625 s: 1.6 times the pace
	}
	if got != 5*frameBytes {
		t.Errorf("got %d bytes, want %d", got, 5*frameBytes)
	}
}
