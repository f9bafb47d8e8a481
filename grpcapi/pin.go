package grpcapi

import (
	"context"
	"fmt"

	pb "github.com/videoshard/videoshard/proto"
)

// PinVideo keeps a video's chunks from eviction until UnpinVideo.
func (s *Server) PinVideo(ctx context.Context, req *pb.PinVideoRequest) (*pb.PinVideoResponse, error) {
	if err := s.store.Pin(req.GetVideoId()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.PinVideoResponse{Success: true, Pinned: true, Message: fmt.Sprintf("video %s pinned", req.GetVideoId())}, nil
}

// UnpinVideo makes a video's chunks evictable again.
func (s *Server) UnpinVideo(ctx context.Context, req *pb.PinVideoRequest) (*pb.PinVideoResponse, error) {
	if err := s.store.Unpin(req.GetVideoId()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.PinVideoResponse{Success: true, Message: fmt.Sprintf("video %s unpinned", req.GetVideoId())}, nil
}
