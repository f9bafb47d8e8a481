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
func (s *Server) reserveRead(ctx context.Context, n int64) (release func(), err error) {
	release = sync.OnceFunc(func() { s.readBudget.Release(n) })
	if s.readBudget.TryAcquire(n) {
		return release, nil
	}
	wctx, cancel := context.WithTimeout(ctx, readWait)
	defer cancel()
	if err := s.readBudget.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: answers not yet taken by their clients hold the %d bytes of shards that limits.max_read_bytes allows; retry later",
			errBusy, s.cfg.MaxReadBytes)
	}
	return release, nil
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
