package grpcapi

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// ListShards lists committed shards, videos and chunks sorted.
func (s *Server) ListShards(ctx context.Context, req *pb.ListShardsRequest) (*pb.ListShardsResponse, error) {
	if id := req.GetVideoId(); id != "" {
		if err := storage.ValidateVideoID(id); err != nil {
			return nil, toStatus(err)
		}
	}
	videos, err := s.store.List(req.GetVideoId())
	if err != nil && !errors.Is(err, storage.ErrNotFound) { // an unknown video lists as empty
		return nil, toStatus(err)
	}
	resp := &pb.ListShardsResponse{Success: true, WorkerId: s.cfg.WorkerID}
	chunks := 0
	for _, v := range videos {
		info := &pb.VideoInfo{VideoId: v.ID, Chunks: make([]*pb.ChunkInfo, 0, len(v.Chunks))}
		for _, c := range v.Chunks {
			info.Chunks = append(info.Chunks, toProtoChunkInfo(c))
		}
		chunks += len(v.Chunks)
		resp.Videos = append(resp.Videos, info)
	}
	resp.Message = fmt.Sprintf("%d videos, %d chunks", len(videos), chunks)
	return resp, nil
}

// GetVideoMetadata returns every chunk's metadata for one video.
func (s *Server) GetVideoMetadata(ctx context.Context, req *pb.GetVideoMetadataRequest) (*pb.GetVideoMetadataResponse, error) {
	if err := storage.ValidateVideoID(req.GetVideoId()); err != nil {
		return nil, toStatus(err)
	}
	metas, err := s.store.VideoMetadata(req.GetVideoId())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.GetVideoMetadataResponse{
		Success:  true,
		WorkerId: s.cfg.WorkerID,
		Message:  fmt.Sprintf("%d chunks", len(metas)),
	}
	for _, m := range metas {
		resp.ChunksMetadata = append(resp.ChunksMetadata, toProtoMetadata(m))
	}
	return resp, nil
}
