package grpcapi

import (
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

func toProtoMetadata(m storage.Metadata) *pb.ChunkMetadata {
	return &pb.ChunkMetadata{
		ChunkIndex:          int32(m.ChunkIndex),
		OriginalSize:        m.OriginalSize,
		EncodedSize:         m.EncodedSize,
		CompressionRatio:    float32(m.CompressionRatio),
		ShardLocation:       m.ShardLocation,
		Timestamp:           m.Timestamp,
		VideoId:             m.VideoID,
		WorkerId:            m.WorkerID,
		ChecksumSha256:      m.ChecksumSHA256,
		Encoder:             m.Encoder,
		VideoCodec:          m.VideoCodec,
		AudioCodec:          m.AudioCodec,
		Container:           m.Container,
		EncoderSettings:     m.EncoderSettings,
		DurationSeconds:     m.DurationSeconds,
		FrameCount:          m.FrameCount,
		Width:               int32(m.Width),
		Height:              int32(m.Height),
		EncodeTimeSeconds:   m.EncodeTimeSeconds,
		InputChecksumSha256: m.InputChecksumSHA256,
	}
}

func toProtoChunkInfo(m storage.Metadata) *pb.ChunkInfo {
	return &pb.ChunkInfo{
		ChunkIndex:     int32(m.ChunkIndex),
		ShardLocation:  m.ShardLocation,
		SizeBytes:      m.EncodedSize,
		ChecksumSha256: m.ChecksumSHA256,
	}
}
