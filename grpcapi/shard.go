package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// messageHeadroom is what a GetShardResponse needs beyond the shard bytes.
const messageHeadroom = pb.MessageHeadroom

// GetShard returns a whole shard in one message, verified against its
// checksum; shards too large for one message must use DownloadShard. A
// mismatch is DataLoss, and the shard is quarantined (see corrupt).
func (s *Server) GetShard(ctx context.Context, req *pb.GetShardRequest) (*pb.GetShardResponse, error) {
	f, meta, err := s.openShard(req)
	if err != nil {
		return nil, toStatus(err)
	}
	defer f.Close()
	if limit := int64(s.cfg.MaxMessageBytes - messageHeadroom); meta.EncodedSize > limit {
		return nil, toStatus(fmt.Errorf("%w: shard is %d bytes, over the %d-byte message limit: use DownloadShard",
			errTooLarge, meta.EncodedSize, limit))
	}
	data := make([]byte, meta.EncodedSize)
	if _, err := io.ReadFull(f, data); err != nil {
		err = fmt.Errorf("%w: read %s: %v", errCorrupted, meta.ShardLocation, err)
		s.corrupt(meta, err)
		return nil, toStatus(err)
	}
	if err := checkShard(meta, int64(len(data)), sha256.Sum256(data), f); err != nil {
		s.corrupt(meta, err)
		return nil, toStatus(err)
	}
	return &pb.GetShardResponse{
		Success:   true,
		ShardData: data,
		Message:   fmt.Sprintf("chunk %d of %s, %d bytes", meta.ChunkIndex, meta.VideoID, len(data)),
		Metadata:  toProtoMetadata(meta),
	}, nil
}

// DownloadShard streams a shard: metadata first, then frames of data. The
// checksum is verified as the bytes go out; a mismatch ends the stream
// with DataLoss, so a client never takes corrupted bytes for a success, and
// the shard is quarantined.
func (s *Server) DownloadShard(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	f, meta, err := s.openShard(req)
	if err != nil {
		return toStatus(err)
	}
	defer f.Close()
	if err := stream.Send(&pb.DownloadShardResponse{Metadata: toProtoMetadata(meta)}); err != nil {
		return err
	}
	h := sha256.New()
	var sent int64
	for {
		// A fresh buffer per frame: gRPC may still hold a sent message.
		buf := make([]byte, s.cfg.FrameBytes)
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			h.Write(buf[:n])
			sent += int64(n)
			if sent > meta.EncodedSize {
				break // checkShard reports the size mismatch
			}
			if err := stream.Send(&pb.DownloadShardResponse{Data: buf[:n]}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			err = fmt.Errorf("%w: read %s: %v", errCorrupted, meta.ShardLocation, err)
			s.corrupt(meta, err)
			return toStatus(err)
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if err := checkShard(meta, sent, sum, nil); err != nil {
		s.corrupt(meta, err)
		return toStatus(err)
	}
	return nil
}

// checkShard compares what was read with the committed metadata. rest, if
// not nil, must hold no further bytes.
func checkShard(meta storage.Metadata, size int64, sum [sha256.Size]byte, rest io.Reader) error {
	if rest != nil {
		if n, _ := rest.Read(make([]byte, 1)); n > 0 {
			size++
		}
	}
	if size != meta.EncodedSize {
		return fmt.Errorf("%w: %s holds %d bytes, its metadata says %d", errCorrupted, meta.ShardLocation, size, meta.EncodedSize)
	}
	if got := hex.EncodeToString(sum[:]); got != meta.ChecksumSHA256 {
		return fmt.Errorf("%w: %s has sha256 %s, its metadata says %s", errCorrupted, meta.ShardLocation, got, meta.ChecksumSHA256)
	}
	return nil
}

// openShard finds and opens the committed shard a request names. A shard
// whose size or type no longer matches is handled as corruption.
func (s *Server) openShard(req *pb.GetShardRequest) (*os.File, storage.Metadata, error) {
	videoID, chunkIndex, err := s.resolveShard(req)
	if err != nil {
		return nil, storage.Metadata{}, err
	}
	f, m, err := s.store.OpenShard(videoID, chunkIndex)
	if err != nil {
		return nil, storage.Metadata{}, s.corruptOpen(err)
	}
	return f, m, nil
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
