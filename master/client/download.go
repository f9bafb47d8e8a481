package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// DefaultDownloadIdleTimeout is DialOptions.DownloadIdleTimeout's default.
const DefaultDownloadIdleTimeout = 60 * time.Second

// MinDownloadRate is the slowest a shard download may be on average, in
// bytes per second: one gets the client's DownloadIdleTimeout plus its
// size at this rate, then is abandoned with ErrDownloadStalled, so a
// worker that sends a trickle cannot hold a job either.
const MinDownloadRate = 1 << 20

// ErrDownloadStalled: a shard download received nothing for the client's
// DownloadIdleTimeout, or ran past its deadline (see MinDownloadRate), and
// was abandoned.
var ErrDownloadStalled = errors.New("the worker stopped sending")

// ShardWant is what the caller already knows of a shard it downloads: a
// download whose metadata says otherwise stops before its first byte is
// written.
type ShardWant struct {
	// Size is the shard's size in bytes (0: unknown) and Checksum its
	// SHA-256 in hex ("": unknown), as the chunk map recorded them.
	Size     int64
	Checksum string
	// MaxSize, when positive, bounds the shard's size: the room the
	// caller has for it.
	MaxSize int64
}

// check compares the shard's metadata with what is wanted.
func (want ShardWant) check(meta *pb.ChunkMetadata) error {
	size := meta.GetEncodedSize()
	switch {
	case size < 0:
		return fmt.Errorf("%w: the metadata says %d bytes", ErrSizeMismatch, size)
	case want.Size > 0 && size != want.Size:
		return fmt.Errorf("%w: the worker offers %d bytes, the chunk map says %d", ErrSizeMismatch, size, want.Size)
	case want.MaxSize > 0 && size > want.MaxSize:
		return fmt.Errorf("%w: the worker offers %d bytes, more than the %d there is room for", ErrSizeMismatch, size, want.MaxSize)
	case want.Checksum != "" && !strings.EqualFold(meta.GetChecksumSha256(), want.Checksum):
		return fmt.Errorf("%w: the worker offers sha256 %s, the chunk map says %s", ErrChecksumMismatch, meta.GetChecksumSha256(), want.Checksum)
	}
	return nil
}

// DownloadShard streams the shard req names (by shard_location, or by
// video_id and chunk_index) into w and returns its metadata and the number
// of bytes written. A shard whose metadata differs from want is refused
// before any byte is written.
//
// The bytes are hashed on the way: if their SHA-256 differs from the
// metadata's checksum_sha256 the error wraps ErrChecksumMismatch, if their
// count differs from encoded_size it wraps ErrSizeMismatch (and a stream
// longer than that stops at once). w has then received bytes that must not
// be trusted; a caller writing a file should write a temporary one and
// keep it only on success. On any error the metadata (if it arrived) and
// the count written so far are still returned.
func (c *Client) DownloadShard(ctx context.Context, req *pb.GetShardRequest, w io.Writer, want ShardWant) (*pb.ChunkMetadata, int64, error) {
	desc := "download shard " + describeShard(req)

	ctx, cancel := context.WithCancelCause(ctx) // ends the stream on an early return
	defer cancel(nil)
	// A worker that stops sending mid-stream (stalled, or gone without a
	// reset) must not hold the job: each message restarts the clock.
	stalled := fmt.Errorf("%w: nothing for %v", ErrDownloadStalled, c.idle)
	idle := time.AfterFunc(c.idle, func() { cancel(stalled) })
	defer idle.Stop()
	stream, err := c.rpc.DownloadShard(ctx, req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", desc, err)
	}
	// recv is stream.Recv, with a stall reported as such rather than as
	// the cancellation it causes.
	recv := func() (*pb.DownloadShardResponse, error) {
		idle.Reset(c.idle)
		msg, err := stream.Recv()
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrDownloadStalled) {
			err = cause
		} else if oversized(err) {
			err = fmt.Errorf("%w: the worker sent a message over the limit: %w", ErrProtocol, err)
		}
		return msg, err
	}
	first, err := recv()
	if errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("%s: %w: stream ended before the metadata", desc, ErrProtocol)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", desc, err)
	}
	meta := first.GetMetadata()
	if meta == nil {
		return nil, 0, fmt.Errorf("%s: %w: first message carries no metadata", desc, ErrProtocol)
	}
	if err := want.check(meta); err != nil {
		return meta, 0, fmt.Errorf("%s: %w", desc, err)
	}
	total := c.idle + time.Duration(float64(meta.GetEncodedSize())/MinDownloadRate*float64(time.Second))
	late := fmt.Errorf("%w: %d bytes not received within %v", ErrDownloadStalled, meta.GetEncodedSize(), total.Round(time.Second))
	deadline := time.AfterFunc(total, func() { cancel(late) })
	defer deadline.Stop()

	out := newSink(w, c.codec.Recycle)
	defer out.close() // on an early return; a second close is free
	var received int64
	put := func(data []byte) error {
		if received+int64(len(data)) > meta.GetEncodedSize() {
			return fmt.Errorf("%w: received more than the %d bytes the metadata says", ErrSizeMismatch, meta.GetEncodedSize())
		}
		received += int64(len(data))
		if !out.put(data) {
			_, _, err := out.close()
			return err
		}
		return nil
	}
	fail := func(err error) (*pb.ChunkMetadata, int64, error) {
		n, _, _ := out.close()
		return meta, n, fmt.Errorf("%s: %w", desc, err)
	}
	if err := put(first.GetData()); err != nil {
		return fail(err)
	}
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if msg.GetMetadata() != nil {
			return fail(fmt.Errorf("%w: metadata after the first message", ErrProtocol))
		}
		if err := put(msg.GetData()); err != nil {
			return fail(err)
		}
	}

	n, sum, err := out.close()
	if err != nil {
		return meta, n, fmt.Errorf("%s: %w", desc, err)
	}
	if n != meta.GetEncodedSize() {
		return meta, n, fmt.Errorf("%s: %w: received %d bytes, metadata says %d", desc, ErrSizeMismatch, n, meta.GetEncodedSize())
	}
	got, claimed := hex.EncodeToString(sum), meta.GetChecksumSha256()
	if claimed == "" {
		return meta, n, fmt.Errorf("%s: %w: metadata carries no checksum", desc, ErrChecksumMismatch)
	}
	if !strings.EqualFold(got, claimed) {
		return meta, n, fmt.Errorf("%s: %w: received sha256 %s, metadata says %s", desc, ErrChecksumMismatch, got, claimed)
	}
	return meta, n, nil
}

// sinkDepth is how many received messages a download's sink may hold
// before the receiver waits for it (with 1 MiB frames, 4 MiB).
const sinkDepth = 8

// sink hashes a download's bytes and writes them to w on a goroutine of
// its own, so that receiving the next message overlaps them. Each message
// handed over is the sink's alone (the codec gives every one its own
// slice), and given back to the codec once written (w must not keep it,
// as io.Writer says).
type sink struct {
	msgs   chan []byte
	exited chan struct{}
	failed atomic.Bool // a write failed: err is set
	once   sync.Once

	// The goroutine's own until exited is closed.
	h       hash.Hash
	w       io.Writer
	recycle func([]byte)
	n       int64
	err     error
}

func newSink(w io.Writer, recycle func([]byte)) *sink {
	s := &sink{msgs: make(chan []byte, sinkDepth), exited: make(chan struct{}), h: sha256.New(), w: w, recycle: recycle}
	go s.run()
	return s
}

func (s *sink) run() {
	defer close(s.exited)
	for data := range s.msgs {
		if s.err != nil {
			continue // drained: the caller learns of the error at put or close
		}
		s.h.Write(data)
		m, err := s.w.Write(data)
		s.n += int64(m)
		if err != nil {
			s.err = fmt.Errorf("write: %w", err)
			s.failed.Store(true)
		}
		s.recycle(data)
	}
}

// put hands data over; false once a write has failed (close says why).
func (s *sink) put(data []byte) bool {
	if s.failed.Load() {
		return false
	}
	s.msgs <- data
	return true
}

// close waits for what was handed over to be written and returns the
// bytes written, their SHA-256 and the write error, if any.
func (s *sink) close() (int64, []byte, error) {
	s.once.Do(func() { close(s.msgs) })
	<-s.exited
	return s.n, s.h.Sum(nil), s.err
}

// describeShard names the shard a request asks for, for error messages.
func describeShard(req *pb.GetShardRequest) string {
	if loc := req.GetShardLocation(); loc != "" {
		return fmt.Sprintf("%q", loc)
	}
	if req.ChunkIndex == nil {
		return fmt.Sprintf("of %q", req.GetVideoId())
	}
	return fmt.Sprintf("%d of %q", req.GetChunkIndex(), req.GetVideoId())
}

// oversized reports whether err is gRPC's refusal of a received message
// larger than the limit: ResourceExhausted that the client's own side
// raised, not a worker's busy answer (which says when to retry).
func oversized(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return false
	}
	for _, d := range st.Details() {
		if _, retry := d.(*errdetails.RetryInfo); retry {
			return false
		}
	}
	return strings.Contains(st.Message(), "larger than max")
}
