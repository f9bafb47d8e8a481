package grpcapi

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// messageHeadroom is what a GetShardResponse needs beyond the shard bytes.
const messageHeadroom = pb.MessageHeadroom

// GetShard returns a whole shard in one message, verified by the store as
// it is read; shards too large for one message must use DownloadShard. A
// corrupt shard is DataLoss (the store has quarantined it).
func (s *Server) GetShard(ctx context.Context, req *pb.GetShardRequest) (*pb.GetShardResponse, error) {
	r, err := s.openShard(req)
	if err != nil {
		return nil, toStatus(err)
	}
	defer r.Close()
	meta := r.Metadata()
	resp := &pb.GetShardResponse{
		Success:  true,
		Message:  fmt.Sprintf("chunk %d of %s, %d bytes", meta.ChunkIndex, meta.VideoID, meta.EncodedSize),
		Metadata: toProtoMetadata(meta),
	}
	// The shard must be within the unary limit CheckHealth gives, and the
	// answer fit one message whole, its metadata too (a copy's encoder
	// settings may be large), or gRPC refuses it with a bare size error.
	limit := int64(s.cfg.MaxMessageBytes - messageHeadroom)
	n := int64(proto.Size(resp)+protowire.SizeTag(2)+protowire.SizeVarint(uint64(meta.EncodedSize))) + meta.EncodedSize
	switch {
	case meta.EncodedSize > limit:
		return nil, toStatus(fmt.Errorf("%w: shard is %d bytes, over the %d-byte message limit: use DownloadShard",
			errTooLarge, meta.EncodedSize, limit))
	case n > int64(s.cfg.MaxMessageBytes):
		return nil, toStatus(fmt.Errorf("%w: the answer would be %d bytes with its metadata, over the %d-byte message limit: use DownloadShard",
			errTooLarge, n, s.cfg.MaxMessageBytes))
	}
	if meta.EncodedSize > s.cfg.MaxReadBytes {
		return nil, toStatus(fmt.Errorf("%w: shard is %d bytes, over limits.max_read_bytes (%d): use DownloadShard",
			errTooLarge, meta.EncodedSize, s.cfg.MaxReadBytes))
	}
	release, err := s.reserveRead(ctx, meta.EncodedSize)
	if err != nil {
		return nil, toStatus(err)
	}
	buf := s.shardBufs.get(meta.EncodedSize + 1) // ReadAllInto's byte more
	data, err := r.ReadAllInto(buf)
	if err != nil {
		s.shardBufs.put(buf)
		release()
		return nil, toStatus(err)
	}
	resp.ShardData = data
	s.answerHeld(ctx, resp, meta.EncodedSize, release, func() { s.shardBufs.put(buf) })
	return resp, nil
}

// DownloadShard streams a shard: metadata first, then frames of data,
// verified by the store as they are read, the next frames read while this
// one is sent (readAhead). A corrupt shard ends the stream with DataLoss,
// before its last frame, so a client never takes corrupted bytes for a
// success (the store has quarantined it).
func (s *Server) DownloadShard(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	r, err := s.openShard(req)
	if err != nil {
		return toStatus(err)
	}
	defer r.Close()
	if err := stream.Send(&pb.DownloadShardResponse{Metadata: toProtoMetadata(r.Metadata())}); err != nil {
		return err
	}
	ctx := stream.Context()
	frames, stop := readAhead(r, s.frameBuffer, s.recycleFrame, func() (func(), error) {
		return s.reserveRead(ctx, int64(s.cfg.FrameBytes))
	})
	defer stop()
	for f := range frames {
		if len(f.data) > 0 {
			if err := s.sendHeld(stream, &pb.DownloadShardResponse{Data: f.data}, int64(len(f.data)), f.release, f.recycle); err != nil {
				return err
			}
		} else {
			f.release()
			f.recycle()
		}
		if f.err == io.EOF {
			return nil
		}
		if f.err != nil {
			return toStatus(f.err)
		}
	}
	return nil // not reached: the last frame carries io.EOF or the error
}

// frameBuffer is a buffer of FrameBytes for a frame, used before if one
// is free: a fresh one costs its zeroing and page faults, and the
// collector's work, every 1 MiB of a download.
func (s *Server) frameBuffer() *[]byte {
	if b, ok := s.frameBufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, s.cfg.FrameBytes)
	return &b
}

// recycleFrame makes a frame's buffer free again: only once nothing
// refers to its bytes (gRPC has freed them, or never took them).
func (s *Server) recycleFrame(b *[]byte) { s.frameBufs.Put(b) }

// framesAhead is how many frames readAhead reads before they are sent.
const framesAhead = 2

// frame is a piece of a shard read by readAhead; the last one carries the
// read's end: io.EOF or its error.
type frame struct {
	data    []byte
	err     error
	release func() // gives back the frame's share of the read budget
	recycle func() // gives its buffer back for another frame: once nothing refers to data
}

// readAhead reads r on a goroutine of its own into frames of the buffers
// get gives, up to framesAhead frames ahead of their sender, so that
// verifying the next frames overlaps sending this one. Each frame's
// buffer is its own until its recycle (gRPC may still hold a sent message)
// and is reserved first: a failed reserve is the last frame's error. stop
// ends the goroutine and waits for it, giving back what frames not taken
// hold, after which r is the caller's again.
func readAhead(r io.Reader, get func() *[]byte, put func(*[]byte), reserve func() (func(), error)) (frames <-chan frame, stop func()) {
	ch := make(chan frame, framesAhead)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer close(ch)
		for {
			release, err := reserve()
			if err != nil {
				select {
				case ch <- frame{err: err, release: func() {}, recycle: func() {}}:
				case <-done:
				}
				return
			}
			buf := get()
			n, err := r.Read(*buf)
			f := frame{(*buf)[:n], err, release, func() { put(buf) }}
			select {
			case ch <- f:
			case <-done:
				f.release()
				f.recycle()
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() {
		close(done)
		<-exited
		for f := range ch {
			f.release()
			f.recycle()
		}
	}
}

// openShard opens the committed shard a request names for a verified read.
func (s *Server) openShard(req *pb.GetShardRequest) (*storage.VerifiedReader, error) {
	videoID, chunkIndex, err := s.resolveShard(req)
	if err != nil {
		return nil, err
	}
	return s.store.OpenVerified(videoID, chunkIndex)
}

func (s *Server) resolveShard(req *pb.GetShardRequest) (string, int, error) {
	hasID := req.GetVideoId() != "" || req.ChunkIndex != nil
	switch {
	case req.GetShardLocation() != "" && hasID:
		return "", 0, invalidf("name the shard by shard_location or by video_id and chunk_index, not both")
	case req.GetShardLocation() != "":
		return s.store.ResolveLocation(req.GetShardLocation())
	case req.GetVideoId() != "" && req.ChunkIndex != nil:
		if err := validateChunkID(req.GetVideoId(), int64(req.GetChunkIndex())); err != nil {
			return "", 0, err
		}
		return req.GetVideoId(), int(req.GetChunkIndex()), nil
	default:
		return "", 0, invalidf("name the shard: shard_location, or video_id and chunk_index")
	}
}
