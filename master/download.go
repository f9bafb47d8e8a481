package master

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	replicationpb "github.com/videoshard/videoshard/proto"
)

// DefaultDownloadIdleTimeout is DialOptions.DownloadIdleTimeout's default.
const DefaultDownloadIdleTimeout = 60 * time.Second

// ErrDownloadStalled: a shard download received nothing for the client's
// DownloadIdleTimeout and was abandoned.
var ErrDownloadStalled = errors.New("the worker stopped sending")

// DownloadShard streams the shard req names (by shard_location, or by
// video_id and chunk_index) into w and returns its metadata and the number
// of bytes written.
//
// The bytes are hashed on the way: if their SHA-256 differs from the
// metadata's checksum_sha256 the error wraps ErrChecksumMismatch, if their
// count differs from encoded_size it wraps ErrSizeMismatch. w has then
// received bytes that must not be trusted; a caller writing a file should
// write a temporary one and keep it only on success. On any error the
// metadata (if it arrived) and the count written so far are still returned.
func (c *Client) DownloadShard(ctx context.Context, req *replicationpb.GetShardRequest, w io.Writer) (*replicationpb.ChunkMetadata, int64, error) {
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
	recv := func() (*replicationpb.DownloadShardResponse, error) {
		idle.Reset(c.idle)
		msg, err := stream.Recv()
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrDownloadStalled) {
			err = cause
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

	h := sha256.New()
	var n int64
	write := func(data []byte) error {
		if n+int64(len(data)) > meta.GetEncodedSize() {
			return fmt.Errorf("%w: received more than the %d bytes the metadata says", ErrSizeMismatch, meta.GetEncodedSize())
		}
		h.Write(data)
		m, err := w.Write(data)
		n += int64(m)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	}
	if err := write(first.GetData()); err != nil {
		return meta, n, fmt.Errorf("%s: %w", desc, err)
	}
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return meta, n, fmt.Errorf("%s: %w", desc, err)
		}
		if msg.GetMetadata() != nil {
			return meta, n, fmt.Errorf("%s: %w: metadata after the first message", desc, ErrProtocol)
		}
		if err := write(msg.GetData()); err != nil {
			return meta, n, fmt.Errorf("%s: %w", desc, err)
		}
	}

	if n != meta.GetEncodedSize() {
		return meta, n, fmt.Errorf("%s: %w: received %d bytes, metadata says %d", desc, ErrSizeMismatch, n, meta.GetEncodedSize())
	}
	got := hex.EncodeToString(h.Sum(nil))
	want := meta.GetChecksumSha256()
	if want == "" {
		return meta, n, fmt.Errorf("%s: %w: metadata carries no checksum", desc, ErrChecksumMismatch)
	}
	if !strings.EqualFold(got, want) {
		return meta, n, fmt.Errorf("%s: %w: received sha256 %s, metadata says %s", desc, ErrChecksumMismatch, got, want)
	}
	return meta, n, nil
}

// describeShard names the shard a request asks for, for error messages.
func describeShard(req *replicationpb.GetShardRequest) string {
	if loc := req.GetShardLocation(); loc != "" {
		return fmt.Sprintf("%q", loc)
	}
	if req.ChunkIndex == nil {
		return fmt.Sprintf("of %q", req.GetVideoId())
	}
	return fmt.Sprintf("%d of %q", req.GetChunkIndex(), req.GetVideoId())
}
