package grpcapi

import (
	"context"
	"fmt"
	"io"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// messageHeadroom is what a GetShardResponse needs beyond the shard bytes.
const messageHeadroom = 64 << 10

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
	if limit := int64(s.cfg.MaxMessageBytes - messageHeadroom); meta.EncodedSize > limit {
		return nil, toStatus(fmt.Errorf("%w: shard is %d bytes, over the %d-byte message limit: use DownloadShard",
			errTooLarge, meta.EncodedSize, limit))
	}
	data, err := r.ReadAll()
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetShardResponse{
		Success:   true,
		ShardData: data,
		Message:   fmt.Sprintf("chunk %d of %s, %d bytes", meta.ChunkIndex, meta.VideoID, len(data)),
		Metadata:  toProtoMetadata(meta),
	}, nil
}

// DownloadShard streams a shard: metadata first, then frames of data,
// verified by the store as they are read. A corrupt shard ends the stream
// with DataLoss, before its last frame, so a client never takes corrupted
// bytes for a success (the store has quarantined it).
func (s *Server) DownloadShard(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	r, err := s.openShard(req)
	if err != nil {
		return toStatus(err)
	}
	defer r.Close()
	if err := stream.Send(&pb.DownloadShardResponse{Metadata: toProtoMetadata(r.Metadata())}); err != nil {
		return err
	}
	for {
		// A fresh buffer per frame: gRPC may still hold a sent message.
		buf := make([]byte, s.cfg.FrameBytes)
		n, err := r.Read(buf)
		if n > 0 {
			if err := stream.Send(&pb.DownloadShardResponse{Data: buf[:n]}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return toStatus(err)
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
