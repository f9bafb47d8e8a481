package grpcapi

import (
	"context"
	"fmt"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// DeleteShard removes one chunk, shard and metadata. A chunk that is not
// stored is success with deleted false; one being written is
// FailedPrecondition.
func (s *Server) DeleteShard(ctx context.Context, req *pb.DeleteShardRequest) (*pb.DeleteShardResponse, error) {
	if err := validateChunkID(req.GetVideoId(), int64(req.GetChunkIndex())); err != nil {
		return nil, toStatus(err)
	}
	d, err := s.store.Delete(req.GetVideoId(), int(req.GetChunkIndex()))
	if err != nil {
		return nil, toStatus(err)
	}
	msg := fmt.Sprintf("chunk %d of %s deleted, %d bytes freed", req.GetChunkIndex(), req.GetVideoId(), d.Bytes)
	if d.Chunks == 0 {
		msg = fmt.Sprintf("chunk %d of %s is not stored", req.GetChunkIndex(), req.GetVideoId())
	}
	return &pb.DeleteShardResponse{Success: true, Message: msg, Deleted: d.Chunks > 0, FreedBytes: d.Bytes}, nil
}

// DeleteVideo removes every chunk of a video, as DeleteShard does each. It
// is FailedPrecondition, having removed nothing, while a chunk of the
// video is being written.
func (s *Server) DeleteVideo(ctx context.Context, req *pb.DeleteVideoRequest) (*pb.DeleteVideoResponse, error) {
	if err := storage.ValidateVideoID(req.GetVideoId()); err != nil {
		return nil, toStatus(err)
	}
	d, err := s.store.DeleteVideo(req.GetVideoId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteVideoResponse{
		Success:       true,
		Message:       fmt.Sprintf("%d chunks of %s deleted, %d bytes freed", d.Chunks, req.GetVideoId(), d.Bytes),
		DeletedChunks: int32(d.Chunks),
		FreedBytes:    d.Bytes,
	}, nil
}
