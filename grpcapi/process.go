package grpcapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// ProcessChunk encodes a chunk sent whole in one message.
func (s *Server) ProcessChunk(ctx context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	if err := validateChunkID(req.GetVideoId(), int64(req.GetChunkIndex())); err != nil {
		return nil, toStatus(err)
	}
	size := int64(len(req.GetChunkData()))
	if err := s.checkSize(size); err != nil {
		return nil, toStatus(err)
	}
	hasher := newInputHasher()
	hasher.add(req.GetChunkData())
	meta, err := s.process(ctx, req.GetVideoId(), int(req.GetChunkIndex()), bytes.NewReader(req.GetChunkData()), hasher, req.GetEncoding())
	if err != nil {
		return nil, toStatus(err)
	}
	return s.processResponse(meta), nil
}

// UploadChunk is ProcessChunk for chunks of any size: a header message,
// then data frames, never held whole in memory.
func (s *Server) UploadChunk(stream pb.VideoProcessingService_UploadChunkServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(invalidf("upload stream is empty: the first message must be a header"))
	}
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return toStatus(invalidf("the first upload message must be a header, not data"))
	}
	if err := validateChunkID(h.GetVideoId(), int64(h.GetChunkIndex())); err != nil {
		return toStatus(err)
	}
	if err := s.checkSize(h.GetTotalSize()); err != nil {
		return toStatus(err)
	}
	hasher := newInputHasher()
	in := &uploadReader{stream: stream, remaining: h.GetTotalSize(), total: h.GetTotalSize(), hasher: hasher}
	meta, err := s.process(stream.Context(), h.GetVideoId(), int(h.GetChunkIndex()), in, hasher, h.GetEncoding())
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(s.processResponse(meta))
}

func validateChunkID(videoID string, chunkIndex int64) error {
	if err := storage.ValidateVideoID(videoID); err != nil {
		return err
	}
	return storage.ValidateChunkIndex(chunkIndex)
}

func (s *Server) checkSize(size int64) error {
	switch {
	case size <= 0:
		return invalidf("chunk is empty: send the chunk's bytes")
	case size > s.cfg.MaxChunkBytes:
		return fmt.Errorf("%w: chunk is %d bytes, the limit is %d", errTooLarge, size, s.cfg.MaxChunkBytes)
	}
	return nil
}

// process encodes in into a pending shard and commits it. hasher has been
// or is being fed every byte of in, by its source.
func (s *Server) process(ctx context.Context, videoID string, chunkIndex int, in io.Reader, hasher *inputHasher, o *pb.EncodingOptions) (storage.Metadata, error) {
	defer hasher.finish()
	release, err := s.acquire(ctx)
	if err != nil {
		return storage.Metadata{}, err
	}
	defer release()

	pending, err := s.store.Create(videoID, chunkIndex)
	if err != nil {
		return storage.Metadata{}, err
	}
	defer pending.Abort()

	start := time.Now()
	res, err := s.enc.Encode(ctx, in, pending, encodeOptions(o))
	if err != nil {
		return storage.Metadata{}, fmt.Errorf("encode %s chunk %d: %w", videoID, chunkIndex, err)
	}
	// Only a fully read input was checked whole (an upload's size, its frames).
	if n, err := in.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("encoder %s left input unread", res.Encoder)
		}
		return storage.Metadata{}, fmt.Errorf("encode %s chunk %d: %w", videoID, chunkIndex, err)
	}
	encodeTime := res.EncodeTime
	if encodeTime == 0 {
		encodeTime = time.Since(start)
	}
	inputSize, inputSum := hasher.finish()
	meta, err := pending.Commit(storage.Metadata{
		OriginalSize:        inputSize,
		WorkerID:            s.cfg.WorkerID,
		InputChecksumSHA256: inputSum,
		Encoder:             res.Encoder,
		VideoCodec:          res.VideoCodec,
		AudioCodec:          res.AudioCodec,
		Container:           res.Container,
		EncoderSettings:     res.Settings,
		DurationSeconds:     res.DurationSeconds,
		FrameCount:          res.FrameCount,
		Width:               res.Width,
		Height:              res.Height,
		EncodeTimeSeconds:   encodeTime.Seconds(),
	})
	if err != nil {
		return storage.Metadata{}, fmt.Errorf("store %s chunk %d: %w", videoID, chunkIndex, err)
	}
	s.log.Info("chunk stored", "video_id", videoID, "chunk", chunkIndex,
		"original_size", meta.OriginalSize, "encoded_size", meta.EncodedSize,
		"encoder", meta.Encoder, "codec", meta.VideoCodec, "encode_time", encodeTime.Round(time.Millisecond))
	return meta, nil
}

// acquire takes an encode slot, waiting in a bounded queue.
func (s *Server) acquire(ctx context.Context) (release func(), err error) {
	release = func() {
		<-s.slots
		s.active.Add(-1)
	}
	select {
	case s.slots <- struct{}{}:
		s.active.Add(1)
		return release, nil
	default:
	}
	if n := s.queued.Add(1); int(n) > s.cfg.MaxQueuedTasks {
		s.queued.Add(-1)
		return nil, fmt.Errorf("%w: %d encodes running and %d queued; retry later", errBusy, cap(s.slots), n-1)
	}
	defer s.queued.Add(-1)
	select {
	case s.slots <- struct{}{}:
		s.active.Add(1)
		return release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for an encode slot: %w", ctx.Err())
	}
}

func (s *Server) processResponse(m storage.Metadata) *pb.ProcessChunkResponse {
	return &pb.ProcessChunkResponse{
		Success:        true,
		WorkerId:       s.cfg.WorkerID,
		ShardLocation:  m.ShardLocation,
		OriginalSize:   m.OriginalSize,
		EncodedSize:    m.EncodedSize,
		Message:        fmt.Sprintf("chunk %d of %s stored", m.ChunkIndex, m.VideoID),
		ChecksumSha256: m.ChecksumSHA256,
		Metadata:       toProtoMetadata(m),
	}
}

func encodeOptions(o *pb.EncodingOptions) encode.Options {
	if o == nil {
		return encode.Options{}
	}
	opts := encode.Options{VideoCodec: o.GetVideoCodec(), Preset: o.GetPreset()}
	if o.Crf != nil {
		crf := int(o.GetCrf())
		opts.CRF = &crf
	}
	return opts
}

// inputHasher computes a chunk's SHA-256 on its own goroutine while the
// encoder reads the same bytes, so hashing does not add to the encode time.
type inputHasher struct {
	pieces chan []byte
	done   chan struct{}
	once   sync.Once
	n      int64
	sum    string
}

func newInputHasher() *inputHasher {
	h := &inputHasher{pieces: make(chan []byte, 64), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		d := sha256.New()
		for b := range h.pieces {
			d.Write(b)
			h.n += int64(len(b))
		}
		h.sum = hex.EncodeToString(d.Sum(nil))
	}()
	return h
}

// add queues b for hashing; b must not change afterwards.
func (h *inputHasher) add(b []byte) { h.pieces <- b }

// finish waits for every added byte to be hashed and returns the count and
// hex digest. It may be called more than once.
func (h *inputHasher) finish() (int64, string) {
	h.once.Do(func() { close(h.pieces) })
	<-h.done
	return h.n, h.sum
}

// uploadReader presents UploadChunk's data frames as one stream of exactly
// total bytes, and fails if the client sends more, fewer, or a second header.
type uploadReader struct {
	stream           pb.VideoProcessingService_UploadChunkServer
	total, remaining int64
	buf              []byte
	ended            bool
	hasher           *inputHasher // fed each frame as it arrives
}

func (r *uploadReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.ended {
			return 0, io.EOF
		}
		msg, err := r.stream.Recv()
		if errors.Is(err, io.EOF) {
			if r.remaining > 0 {
				return 0, invalidf("upload stream ended after %d of %d bytes", r.total-r.remaining, r.total)
			}
			r.ended = true
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
		if msg.GetHeader() != nil {
			return 0, invalidf("upload stream carries a second header")
		}
		data := msg.GetData()
		if int64(len(data)) > r.remaining {
			return 0, invalidf("upload stream carries more than the %d bytes its header announced", r.total)
		}
		r.remaining -= int64(len(data))
		r.buf = data
		r.hasher.add(data) // gRPC gives each message its own memory
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
