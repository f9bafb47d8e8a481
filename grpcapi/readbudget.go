package grpcapi

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/videoshard/videoshard/proto"
)

// readWait is how long a read waits for room in the read budget before it
// is refused: long enough for other answers to drain to honest clients.
const readWait = 30 * time.Second

// reserveRead takes n bytes of the read budget (Config.MaxReadBytes): the
// shard bytes that answers hold until gRPC has written them out to their
// client or dropped them with the stream. A client that does not read its
// answers holds its share until its stream ends, or, once the answer is
// handed to gRPC (answerHeld, sendHeld), until its connection is closed
// for not taking it in time (watchHold); later reads wait up to readWait
// for room, then are refused with ResourceExhausted. release gives the
// bytes back; it may be called more than once.
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

// watchHold watches a hold of n bytes of the budget, handed to gRPC on the
// connection p, as its client takes it (taken, called with each piece of
// it gRPC is done with: see wirecodec.Codec.OnWritten). A hold whose
// client takes less than min(what is left, uploadProgressBytes) of it in
// an UploadIdleTimeout (the pace an upload must keep) belongs to a client
// that has stopped reading it, whatever else its connection carries: the
// connection is closed and the hold given back (gRPC drops what a closed
// connection had queued without freeing it, so without the codec's
// release). done stops the watch and releases.
//
// The hold is also one of its call's (rpcHolds): should the client reset
// the call while its answer goes to gRPC, gRPC may drop a frame it was
// handed without freeing it, so without the codec's release; the call's
// holds are then given back at once (connTagger), not left to close an
// honest connection idleTimeout later.
func (s *Server) watchHold(ctx context.Context, n int64, release func()) (done func(), taken func(int), start func()) {
	done, taken, start = s.watchPace(connOf(ctx), n, release)
	if h := holdsOf(ctx); h != nil {
		forget := h.add(done)
		watched := done
		done = func() { forget(); watched() }
	}
	return done, taken, start
}

// watchPace is watchHold's watch of the pace its client takes the hold at,
// from start on: once the answer is queued for its client, not while it
// waits behind the one before (a stream's Send blocks on gRPC's write
// quota until that one is nearly out), which the client is taking at the
// same pace.
func (s *Server) watchPace(p *connProgress, n int64, release func()) (done func(), taken func(int), start func()) {
	idle := s.cfg.UploadIdleTimeout
	if p == nil || idle <= 0 {
		return release, nil, func() {}
	}
	var got atomic.Int64
	var mu sync.Mutex
	var stopped bool
	var t *time.Timer
	var last int64 // got at the window's start
	check := func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		now := got.Load()
		if now-last >= min(n-last, uploadProgressBytes) {
			last = now
			t.Reset(idle)
			mu.Unlock()
			return
		}
		stopped = true
		mu.Unlock()
		s.warns.warn("closing a connection whose client stopped reading its answer", "peer", p.addr, "held_bytes", n,
			"taken_bytes", now, "within", idle, "key", "limits.upload_idle_timeout")
		_ = p.conn.Close()
		release()
	}
	start = func() {
		mu.Lock()
		if !stopped && t == nil {
			t = time.AfterFunc(idle, check)
		}
		mu.Unlock()
	}
	done = func() {
		mu.Lock()
		stopped = true
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		release()
	}
	return done, func(k int) { got.Add(int64(k)) }, start
}

// answerHeld is for a unary answer of n shard bytes that reserveRead
// counted: release runs once gRPC is finished with them, or as the RPC
// ends if they were never marshalled (or gRPC's codec is not s.codec).
// recycle runs after release only in the first case: once nothing refers
// to the bytes, so that their buffer may hold another answer. (An RPC
// that ends before its answer is marshalled may yet have it marshalled.)
func (s *Server) answerHeld(ctx context.Context, msg any, n int64, release, recycle func()) {
	done, taken, start := s.watchHold(ctx, n, release)
	s.codec.OnWritten(msg, done, taken, recycle)
	start()
	context.AfterFunc(ctx, func() { s.codec.Forget(msg) })
}

// sendHeld sends a stream's message of n shard bytes that reserveRead
// counted: release runs once gRPC is finished with them, or at once if
// Send did not marshal them with s.codec. recycle runs after release only
// in the first case, not when watchHold gives the bytes back early (gRPC
// may still refer to them).
func (s *Server) sendHeld(stream pb.VideoProcessingService_DownloadShardServer, msg *pb.DownloadShardResponse, n int64, release, recycle func()) error {
	done, taken, start := s.watchHold(stream.Context(), n, release)
	s.codec.OnWritten(msg, done, taken, recycle)
	err := stream.Send(msg)
	s.codec.Forget(msg)
	if err != nil {
		done() // the call is over: nobody will take it
		return err
	}
	start()
	return nil
}
