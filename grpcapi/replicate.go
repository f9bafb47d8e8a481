package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// Errors of a replication's source, mapped in toStatus like the others.
// The source's own status code is its answer to this worker, not this
// worker's to its caller (an Unauthenticated from the source means this
// worker's peer.token is wrong, not the caller's), so it is never kept in
// the chain: fromSource keeps its text only.
var (
	errPeerNotAllowed    = errors.New("source not allowed")             // PermissionDenied
	errSourceNotFound    = errors.New("source does not hold the chunk") // NotFound
	errSourceBadCopy     = errors.New("source's copy does not match")   // DataLoss
	errSourceUnavailable = errors.New("source unavailable")             // Unavailable
	errSourceRefused     = errors.New("source refused this worker")     // PermissionDenied
	errSourceTimeout     = errors.New("source too slow")                // DeadlineExceeded
	errShuttingDown      = errors.New("worker shutting down")           // Unavailable
)

// maxCopiedSettings bounds the encoder_settings a source may send: the
// copy's metadata is kept and served by this worker.
const maxCopiedSettings = 64

// maxCopiedMetadataBytes bounds the encoded size of the metadata a source
// sends (a worker's own is well under 4 KiB): it is written, indexed and
// listed with the copy.
const maxCopiedMetadataBytes = 64 << 10

// ReplicateShard copies a chunk from the peer source_worker: see
// replicate.
func (s *Server) ReplicateShard(ctx context.Context, req *pb.ReplicateShardRequest) (*pb.ReplicateShardResponse, error) {
	m, already, err := s.replicate(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	msg := fmt.Sprintf("chunk %d of %s replicated from %s", m.ChunkIndex, m.VideoID, req.GetSourceWorker())
	if already {
		msg = fmt.Sprintf("chunk %d of %s already stored", m.ChunkIndex, m.VideoID)
	}
	return &pb.ReplicateShardResponse{Success: true, Message: msg, Metadata: toProtoMetadata(m), AlreadyStored: already}, nil
}

// replicate pulls a chunk from the peer req names and commits it with the
// peer's metadata, as Pending.CommitCopy keeps it (the source's encode
// fields, checksum and timestamp), this worker's worker_id and
// shard_location, and replicated_from the source as the caller named it.
//
// Idempotent: when this worker holds the version the source offers (the
// same SHA-256, the local shard verified) it returns that with already
// set, having read only the source's metadata. A different local version
// is replaced atomically, as ProcessChunk replaces one; a local version
// that no longer verifies is quarantined and copied anew.
//
// The copy is the caller's request: it runs under the caller's context
// (its cancellation aborts it), bounded by peer.timeout and by the
// worker's life (Run's end aborts it). Whatever ends it, nothing partial
// is left: the bytes go to a Pending, committed only once they match.
// Dialling this worker itself is allowed (it is loopback, in the default
// peer.allow) and harmless: the answer is already_stored, or NotFound.
func (s *Server) replicate(ctx context.Context, req *pb.ReplicateShardRequest) (storage.Metadata, bool, error) {
	video, index := req.GetVideoId(), int(req.GetChunkIndex())
	if err := validateChunkID(video, int64(index)); err != nil {
		return storage.Metadata{}, false, err
	}
	src, err := parsePeerAddr(req.GetSourceWorker())
	if err != nil {
		return storage.Metadata{}, false, err
	}
	if err := s.replGate.enter(); err != nil {
		return storage.Metadata{}, false, err
	}
	defer s.replGate.leave()

	ctx, cancel := s.peerContext(ctx)
	defer cancel()
	ap, err := s.resolvePeer(ctx, src)
	if err != nil {
		return storage.Metadata{}, false, s.fromSource(ctx, src, err)
	}
	c, err := s.dialPeer(ctx, src, ap)
	if err != nil {
		return storage.Metadata{}, false, fmt.Errorf("dial source %s: %w", src, err)
	}
	defer c.Close()

	start := time.Now()
	r := &replication{s: s, ctx: ctx, c: c, src: src,
		req: &pb.GetShardRequest{VideoId: video, ChunkIndex: proto.Int32(int32(index))}}
	want := client.ShardWant{MaxSize: s.copyRoom()}
	if local, ok := s.verifiedLocal(video, index); ok {
		meta, same, err := r.offers(local, want)
		if same || err != nil {
			return local, same, err
		}
		// Another version: copy it, and only it.
		want.Size, want.Checksum = meta.GetEncodedSize(), meta.GetChecksumSha256()
	}
	m, err := r.copy(want)
	if err != nil {
		return storage.Metadata{}, false, err
	}
	s.log.Info("chunk replicated", "video_id", video, "chunk", index, "source", src.String(),
		"bytes", m.EncodedSize, "duration", time.Since(start).Round(time.Millisecond))
	return m, false, nil
}

// peerContext is ctx bounded by peer.timeout and by the server's life.
func (s *Server) peerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stopOnShutdown := context.AfterFunc(s.life, func() { cancel(errShuttingDown) })
	tctx, tcancel := context.WithTimeoutCause(ctx, s.cfg.Peer.Timeout,
		fmt.Errorf("%w: not done within %v (peer.timeout)", errSourceTimeout, s.cfg.Peer.Timeout))
	return tctx, func() {
		tcancel()
		stopOnShutdown()
		cancel(nil)
	}
}

// copyRoom is the largest copy this worker takes: limits.max_chunk_bytes,
// or the store's free space when that is less.
func (s *Server) copyRoom() int64 {
	room := s.cfg.MaxChunkBytes
	if free, err := s.store.FreeBytes(); err == nil {
		room = min(room, free)
	}
	return room
}

// verifiedLocal returns the chunk's committed version, if there is one and
// its shard still verifies (a corrupt one is quarantined by Verify).
func (s *Server) verifiedLocal(video string, index int) (storage.Metadata, bool) {
	if _, err := s.store.Lookup(video, index); err != nil {
		return storage.Metadata{}, false
	}
	m, err := s.store.Verify(video, index)
	return m, err == nil
}

// replication is one copy from a source.
type replication struct {
	s   *Server
	ctx context.Context
	c   *client.Client
	src peerAddr
	req *pb.GetShardRequest
}

// errSameVersion stops a download whose source offers the local version.
var errSameVersion = errors.New("the source offers the version stored here")

// stopWriter fails the first write: by then the source's metadata has
// been checked against the ShardWant, so a byte means it offers that.
type stopWriter struct{}

func (stopWriter) Write([]byte) (int, error) { return 0, errSameVersion }

// offers asks the source for the version local names and reports whether
// it offers that version (same is set, and nothing is copied: the stream
// stops at its first data); otherwise it returns the source's metadata of
// the version it offers, whose first bytes it discarded.
func (r *replication) offers(local storage.Metadata, want client.ShardWant) (*pb.ChunkMetadata, bool, error) {
	want.Checksum = local.ChecksumSHA256
	meta, _, err := r.c.DownloadShard(r.ctx, r.req, stopWriter{}, want)
	if meta != nil && strings.EqualFold(meta.GetChecksumSha256(), local.ChecksumSHA256) {
		if meta.GetEncodedSize() != local.EncodedSize {
			return nil, false, fmt.Errorf("%w: the source offers sha256 %s at %d bytes; it is %d",
				errSourceBadCopy, local.ChecksumSHA256, meta.GetEncodedSize(), local.EncodedSize)
		}
		return meta, true, nil
	}
	if meta != nil && errors.Is(err, client.ErrChecksumMismatch) {
		return meta, false, nil // refused before its first byte
	}
	return nil, false, r.fail(meta, want, err)
}

// copy downloads the source's shard into a new Pending and commits it as
// a copy; on any error the Pending is aborted.
func (r *replication) copy(want client.ShardWant) (storage.Metadata, error) {
	s := r.s
	p, err := s.store.Create(r.req.GetVideoId(), int(r.req.GetChunkIndex()))
	if err != nil {
		return storage.Metadata{}, err
	}
	defer p.Abort()
	meta, _, err := r.c.DownloadShard(r.ctx, r.req, p, want)
	if err != nil {
		return storage.Metadata{}, r.fail(meta, want, err)
	}
	m, err := r.copied(meta)
	if err != nil {
		return storage.Metadata{}, err
	}
	m, err = p.CommitCopy(m)
	switch {
	case errors.Is(err, storage.ErrMismatch), errors.Is(err, storage.ErrInvalid):
		// The request's ids were valid: what is wrong is the source's.
		return storage.Metadata{}, fmt.Errorf("%w: %w", errSourceBadCopy, err)
	case err != nil:
		return storage.Metadata{}, fmt.Errorf("store copy of %s chunk %d: %w", r.req.GetVideoId(), r.req.GetChunkIndex(), err)
	}
	return m, nil
}

// copied is the source's metadata as this worker commits its copy.
func (r *replication) copied(pm *pb.ChunkMetadata) (storage.Metadata, error) {
	switch {
	case pm.GetVideoId() != r.req.GetVideoId() || pm.GetChunkIndex() != r.req.GetChunkIndex():
		return storage.Metadata{}, fmt.Errorf("%w: the source sent the metadata of %q chunk %d",
			errSourceBadCopy, pm.GetVideoId(), pm.GetChunkIndex())
	case pm.GetOriginalSize() < 0:
		return storage.Metadata{}, fmt.Errorf("%w: original_size %d", errSourceBadCopy, pm.GetOriginalSize())
	case proto.Size(pm) > maxCopiedMetadataBytes:
		return storage.Metadata{}, fmt.Errorf("%w: metadata of %d bytes, at most %d are kept",
			errSourceBadCopy, proto.Size(pm), maxCopiedMetadataBytes)
	case len(pm.GetEncoderSettings()) > maxCopiedSettings:
		return storage.Metadata{}, fmt.Errorf("%w: %d encoder settings, at most %d are kept",
			errSourceBadCopy, len(pm.GetEncoderSettings()), maxCopiedSettings)
	}
	m := fromProtoMetadata(pm)
	m.WorkerID = r.s.cfg.WorkerID
	m.ReplicatedFrom = r.src.String()
	return m, nil
}

// fail explains a download's error: a shard over the room this worker
// has, or what fromSource makes of the rest.
func (r *replication) fail(meta *pb.ChunkMetadata, want client.ShardWant, err error) error {
	if meta != nil && meta.GetEncodedSize() > want.MaxSize {
		if meta.GetEncodedSize() > r.s.cfg.MaxChunkBytes {
			return fmt.Errorf("%w: the source's shard is %d bytes, over limits.max_chunk_bytes (%d)",
				errTooLarge, meta.GetEncodedSize(), r.s.cfg.MaxChunkBytes)
		}
		return fmt.Errorf("%w: the source's shard is %d bytes, %d are free", storage.ErrNoSpace, meta.GetEncodedSize(), want.MaxSize)
	}
	return r.s.fromSource(r.ctx, r.src, err)
}

// fromSource translates an error of a call to the source (or of the
// replication's context) into this worker's errors; local errors (the
// store's) pass unchanged. A source that cannot be reached, or does not
// speak the wire, is answered as unavailable without the reason, which
// goes to the log: the caller would otherwise learn what listens on each
// port peer.allow lets this worker dial (a closed port, another service).
func (s *Server) fromSource(ctx context.Context, src peerAddr, err error) error {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != ctx.Err() {
			return fmt.Errorf("replicate from %s: %w", src, cause)
		}
		return fmt.Errorf("replicate from %s: %w", src, ctx.Err()) // the caller's
	}
	switch {
	case errors.Is(err, errPeerNotAllowed), errors.Is(err, errSourceUnavailable):
		return err
	case errors.Is(err, client.ErrDownloadStalled):
		return fmt.Errorf("%w: %v (peer.idle_timeout)", errSourceTimeout, err)
	case errors.Is(err, client.ErrChecksumMismatch), errors.Is(err, client.ErrSizeMismatch),
		errors.Is(err, client.ErrProtocol):
		return fmt.Errorf("%w: %v", errSourceBadCopy, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return err // not the source's: a local write failed
	}
	var kind error
	switch st.Code() {
	case codes.NotFound:
		kind = errSourceNotFound
	case codes.DataLoss:
		kind = errSourceBadCopy
	case codes.Unauthenticated, codes.PermissionDenied:
		kind = errSourceRefused
	case codes.DeadlineExceeded:
		kind = errSourceTimeout
	default:
		s.warns.warn("replication source unavailable", "source", src.String(), "error", err)
		return fmt.Errorf("%w: %s (the reason is in this worker's log)", errSourceUnavailable, src)
	}
	return fmt.Errorf("%w: %s: %v", kind, src, err)
}
