package grpcapi

import (
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// toProtoMetadata is a chunk's metadata on the wire; an unmeasured
// quality leaves quality_frames and the PSNR and SSIM fields 0.
func toProtoMetadata(m storage.Metadata) *pb.ChunkMetadata {
	pm := &pb.ChunkMetadata{
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
		ReplicatedFrom:      m.ReplicatedFrom,
	}
	if q := m.Quality; q != nil {
		pm.QualityFrames = q.Frames
		pm.PsnrMin, pm.PsnrMean = q.PSNRMin, q.PSNRMean // +Inf: identical
		pm.SsimMin, pm.SsimMean = q.SSIMMin, q.SSIMMean
	}
	return pm
}

// fromProtoMetadata is toProtoMetadata's inverse: a peer's chunk as this
// worker stores it (quality_frames 0: not measured).
func fromProtoMetadata(pm *pb.ChunkMetadata) storage.Metadata {
	m := storage.Metadata{
		VideoID:             pm.GetVideoId(),
		ChunkIndex:          int(pm.GetChunkIndex()),
		OriginalSize:        pm.GetOriginalSize(),
		EncodedSize:         pm.GetEncodedSize(),
		CompressionRatio:    float64(pm.GetCompressionRatio()),
		WorkerID:            pm.GetWorkerId(),
		ShardLocation:       pm.GetShardLocation(),
		Timestamp:           pm.GetTimestamp(),
		ChecksumSHA256:      pm.GetChecksumSha256(),
		InputChecksumSHA256: pm.GetInputChecksumSha256(),
		Encoder:             pm.GetEncoder(),
		VideoCodec:          pm.GetVideoCodec(),
		AudioCodec:          pm.GetAudioCodec(),
		Container:           pm.GetContainer(),
		EncoderSettings:     pm.GetEncoderSettings(),
		DurationSeconds:     pm.GetDurationSeconds(),
		FrameCount:          pm.GetFrameCount(),
		Width:               int(pm.GetWidth()),
		Height:              int(pm.GetHeight()),
		EncodeTimeSeconds:   pm.GetEncodeTimeSeconds(),
		ReplicatedFrom:      pm.GetReplicatedFrom(),
	}
	if pm.GetQualityFrames() > 0 {
		m.Quality = &storage.Quality{
			Frames:  pm.GetQualityFrames(),
			PSNRMin: pm.GetPsnrMin(), PSNRMean: pm.GetPsnrMean(),
			SSIMMin: pm.GetSsimMin(), SSIMMean: pm.GetSsimMean(),
		}
	}
	return m
}

func toProtoChunkInfo(m storage.Metadata) *pb.ChunkInfo {
	return &pb.ChunkInfo{
		ChunkIndex:     int32(m.ChunkIndex),
		ShardLocation:  m.ShardLocation,
		SizeBytes:      m.EncodedSize,
		ChecksumSha256: m.ChecksumSHA256,
	}
}
