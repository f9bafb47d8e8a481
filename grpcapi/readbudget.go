package grpcapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "github.com/videoshard/videoshard/proto"
)

// readWait is how long a read waits for room in the read budget before it
// is refused: long enough for other answers to drain to honest clients.
const readWait = 30 * time.Second

// reserveRead takes n bytes of the read budget (Config.MaxReadBytes): the
// shard bytes that answers hold until gRPC has written them out to their
// client or dropped them with the stream. A client that does not read its
// answers holds its share until its stream ends, and no more: later reads
// wait up to readWait for room, then are refused with ResourceExhausted.
// release gives the bytes back; it may be called more than once.
//
// A client that stops reading does not hold its share for ever, though:
// its connection is closed once it takes too little of what it is sent
// (watchReader).
func (s *Server) reserveRead(ctx context.Context, n int64) (release func(), err error) {
	if !s.readBudget.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, readWait)
		defer cancel()
		if err := s.readBudget.Acquire(wctx, n); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: answers not yet taken by their clients hold the %d bytes of shards that limits.max_read_bytes allows; retry later",
				errBusy, s.cfg.MaxReadBytes)
		}
	}
	var stop func()
	release = sync.OnceFunc(func() {
		stop()
		s.readBudget.Release(n)
	})
	stop = s.watchReader(connOf(ctx), n, release)
	return release, nil
}

// watchReader closes p's connection when, while a read of n bytes of the
// budget is held, the connection takes less than min(n,
// uploadProgressBytes) of what it is sent in an UploadIdleTimeout: its
// client has stopped reading (or reads slower than an upload must send),
// and nothing else would end its hold. It then calls release: the bytes
// will never be written, and gRPC drops what a closed connection had
// queued without freeing it (so without the codec's release); every hold
// on the connection is given back so, each by its own watch, within an
// UploadIdleTimeout. stop ends the watch.
func (s *Server) watchReader(p *connProgress, n int64, release func()) (stop func()) {
	idle := s.cfg.UploadIdleTimeout
	if p == nil || idle <= 0 {
		return func() {}
	}
	want := min(n, uploadProgressBytes)
	var mu sync.Mutex
	var stopped bool
	var t *time.Timer
	last := p.written.Load()
	check := func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		took := p.written.Load() - last
		if took >= want {
			last += took
			t.Reset(idle)
			mu.Unlock()
			return
		}
		stopped = true
		mu.Unlock()
		s.log.Warn("closing a connection that stopped reading its answers", "peer", p.addr, "held_bytes", n,
			"taken_bytes", took, "within", idle, "key", "limits.upload_idle_timeout")
		_ = p.conn.Close()
		release()
	}
	mu.Lock()
	t = time.AfterFunc(idle, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// answerHeld is for a unary answer whose shard bytes reserveRead counted:
// release runs once gRPC is finished with them, or as the RPC ends if they
// were never marshalled (or gRPC's codec is not s.codec).
func (s *Server) answerHeld(ctx context.Context, msg any, release func()) {
	s.codec.OnWritten(msg, release)
	context.AfterFunc(ctx, func() { s.codec.Forget(msg) })
}

// sendHeld sends a stream's message whose shard bytes reserveRead
// counted: release runs once gRPC is finished with them, or at once if
// Send did not marshal them with s.codec.
func (s *Server) sendHeld(stream pb.VideoProcessingService_DownloadShardServer, msg *pb.DownloadShardResponse, release func()) error {
	s.codec.OnWritten(msg, release)
	err := stream.Send(msg)
	s.codec.Forget(msg)
	return err
}
